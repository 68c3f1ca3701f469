"""``kling-async get|wait|download ENDPOINT TASK_ID``: one existing task, as JSON.

* ``get``: query it once.
* ``wait``: poll it until it ends (exit 1 when it failed).
* ``download``: save its outputs (with ``--wait``, once it has ended).

``TASK_ID`` is the server's task id, or your ``external_task_id`` with ``--external``.
"""

from __future__ import annotations

import argparse
from typing import Any

from .._endpoints import endpoint_for
from .._errors import ConfigurationError
from .._session import KlingSession
from .._task import Task
from ._common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    HelpFormatter,
    add_endpoint_argument,
    endpoints_help,
    error,
    positive_float,
    print_json,
    task_to_json,
)
from ._settings import (
    add_connection_arguments,
    add_poll_arguments,
    add_time_scale_argument,
    config_from_args,
    configuration_message,
)

__all__ = ["add_parsers", "run_download", "run_get", "run_wait"]


def _session(args: argparse.Namespace) -> KlingSession | None:
    try:
        return KlingSession(config=config_from_args(args))
    except ConfigurationError as exc:
        error(configuration_message(exc))
        return None


async def _fetch(session: KlingSession, args: argparse.Namespace) -> Task:
    endpoint = endpoint_for(args.endpoint)
    if args.external:
        return await session.get(endpoint, external_task_id=args.task_id)
    return await session.get(endpoint, args.task_id)


async def run_get(args: argparse.Namespace) -> int:
    """Run the ``get`` command.

    Args:
        args: Parsed arguments.

    Returns:
        The exit status.
    """
    session = _session(args)
    if session is None:
        return EXIT_BAD_INPUT
    async with session:
        print_json(task_to_json(await _fetch(session, args)))
        return EXIT_OK


async def run_wait(args: argparse.Namespace) -> int:
    """Run the ``wait`` command.

    Args:
        args: Parsed arguments.

    Returns:
        The exit status: 0 succeeded, 1 failed.
    """
    session = _session(args)
    if session is None:
        return EXIT_BAD_INPUT
    async with session:
        task = await _fetch(session, args)
        task = await session.wait(task, timeout=args.timeout, raise_on_failure=False)
        print_json(task_to_json(task))
        return EXIT_FAILED if task.failed else EXIT_OK


async def run_download(args: argparse.Namespace) -> int:
    """Run the ``download`` command.

    Args:
        args: Parsed arguments.

    Returns:
        The exit status: 0 saved, 1 nothing to save (the task has not succeeded).
    """
    session = _session(args)
    if session is None:
        return EXIT_BAD_INPUT
    async with session:
        task = await _fetch(session, args)
        if not task.is_terminal and args.wait:
            task = await session.wait(task, raise_on_failure=False)
        if not task.succeeded:
            print_json(task_to_json(task))
            error(f"task {task.id} is {task.status.value}: nothing to download")
            return EXIT_FAILED
        files = await session.download(task, args.out)
        result = task_to_json(task)
        result["files"] = [
            {"path": str(f.path), "size": f.size, "sha256": f.sha256, "skipped": f.skipped}
            for f in files
        ]
        print_json(result)
        return EXIT_OK


_COMMANDS = (
    ("get", "query one task and print it as JSON"),
    ("wait", "poll one task until it ends, then print it"),
    ("download", "save a task's outputs and print what was saved"),
)


def add_parsers(sub: Any) -> None:
    """Add the ``get``, ``wait`` and ``download`` commands.

    Args:
        sub: The subparsers object of the main parser.
    """
    for name, text in _COMMANDS:
        cmd: argparse.ArgumentParser = sub.add_parser(
            name,
            help=text,
            description=text[0].upper() + text[1:] + ".",
            formatter_class=HelpFormatter,
            epilog=endpoints_help(),
        )
        add_endpoint_argument(cmd)
        cmd.add_argument(
            "task_id",
            metavar="TASK_ID",
            help="the server's task id (or your external_task_id with --external)",
        )
        cmd.add_argument(
            "--external",
            action="store_true",
            help="TASK_ID is your external_task_id (default: the server's task id)",
        )
        if name == "wait":
            cmd.add_argument(
                "--timeout",
                type=positive_float,
                metavar="S",
                help="overall deadline, seconds (default: the poll policy's, one hour)",
            )
        if name == "download":
            cmd.add_argument("--out", required=True, metavar="DIR", help="where to save")
            cmd.add_argument(
                "--wait",
                action="store_true",
                help="wait for the task to end first (default: fail if it has not)",
            )
        add_connection_arguments(cmd)
        if name in ("wait", "download"):
            add_poll_arguments(cmd)
        else:
            add_time_scale_argument(cmd)
