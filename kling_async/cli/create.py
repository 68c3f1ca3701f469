"""``kling-async create ENDPOINT --json BODY``: create one task and print it as JSON.

The body is checked by the very function the batch uses for each line of a jobs
file (:func:`~kling_async.cli._jobs.request_from_json`) before any request exists:
a body breaking a documented limit exits 2 with every problem named, and nothing
is sent.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import attrs

from .._endpoints import ENDPOINTS, endpoint_for
from .._errors import ConfigurationError
from .._models import IdentifyFaceRequest
from .._session import KlingSession
from ._common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    HelpFormatter,
    add_endpoint_argument,
    endpoints_help,
    error,
    face_to_json,
    print_json,
    task_to_json,
)
from ._jobs import describe, read_body, request_from_json
from ._settings import (
    add_connection_arguments,
    add_poll_arguments,
    config_from_args,
    configuration_message,
)

__all__ = ["add_parser", "run"]


async def run(args: argparse.Namespace) -> int:
    """Run the ``create`` command.

    Args:
        args: Parsed arguments.

    Returns:
        The exit status: 0 created (and, with ``--wait``, succeeded), 1 the task
        failed, 2 a bad endpoint, body or setting (nothing sent).
    """
    try:
        endpoint = endpoint_for(args.endpoint)
    except KeyError:
        names = ", ".join(ep.name for ep in ENDPOINTS)
        error(f"unknown endpoint {args.endpoint!r}; expected one of: {names}")
        return EXIT_BAD_INPUT
    try:
        body = read_body(args.json)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        error(f"--json: cannot read a JSON object: {exc}")
        return EXIT_BAD_INPUT
    if not isinstance(body, dict):
        error("--json: the body must be a JSON object")
        return EXIT_BAD_INPUT
    extra: dict[str, Any] | None = None
    if args.allow_unknown_fields:
        # Top-level fields the SDK does not know travel beside the model, as written;
        # everything it knows is still checked.
        known = {field.name for field in attrs.fields(endpoint.request_type)}
        extra = {k: v for k, v in body.items() if k not in known}
        body = {k: v for k, v in body.items() if k in known}
    request, problems, warnings = request_from_json(endpoint, body)
    if request is None:
        for problem in problems:
            error(f"{endpoint.path}: {problem.path}: {describe(problem)}")
        error("nothing was sent")
        return EXIT_BAD_INPUT
    for warning in warnings:
        error(f"warning: {endpoint.path}: {warning.path}: {describe(warning)} (sent anyway)")
    try:
        config = config_from_args(args)
    except ConfigurationError as exc:
        error(configuration_message(exc))
        return EXIT_BAD_INPUT
    async with KlingSession(config=config) as session:
        if isinstance(request, IdentifyFaceRequest):
            print_json(face_to_json(await session.identify_face(request)))
            return EXIT_OK
        task = await session.create(
            request, external_task_id=args.external_task_id, extra_body=extra or None
        )
        if args.wait:
            task = await session.wait(task, raise_on_failure=False)
        print_json(task_to_json(task))
        return EXIT_FAILED if task.failed else EXIT_OK


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``create`` command.

    Args:
        sub: The subparsers object of the main parser.

    Returns:
        The command's parser.
    """
    parser: argparse.ArgumentParser = sub.add_parser(
        "create",
        help="create one task and print it as JSON",
        formatter_class=HelpFormatter,
        description="Create a task and print it as JSON. The body is checked against every "
        "documented limit first, exactly as a line of a jobs file; nothing is sent when it "
        "breaks one.",
        epilog=endpoints_help(),
    )
    add_endpoint_argument(parser)
    parser.add_argument(
        "--json",
        required=True,
        metavar="BODY|@FILE",
        help="the request body: inline JSON, @file.json, or @- for stdin",
    )
    parser.add_argument(
        "--allow-unknown-fields",
        action="store_true",
        help="send top-level fields this SDK does not know, as written (by default they "
        "are refused with a suggestion: a misspelled optional field is silently ignored "
        "by the API and wastes a paid task)",
    )
    parser.add_argument(
        "--external-task-id",
        metavar="ID",
        help="your id for the task (default: a generated one)",
    )
    parser.add_argument(
        "--wait", action="store_true", help="wait until the task ends (default: return at once)"
    )
    add_connection_arguments(parser)
    add_poll_arguments(parser)
    return parser
