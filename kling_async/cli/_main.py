"""The parser, the dispatch to each command, and the error-to-exit-status mapping."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TextIO

from .. import __version__
from .._endpoints import Endpoint, endpoint_for
from .._errors import (
    ConfigurationError,
    KlingError,
    TaskFailedError,
    ValidationError,
    WaitTimeoutError,
)
from .._journal_errors import JournalCorruptError, JournalLockedError
from . import batch, create, demo, fake_server, get, report
from ._common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_STATUS_HELP,
    PROG,
    HelpFormatter,
    document_defaults,
    error,
)
from ._settings import settings_problem

__all__ = ["amain", "build_parser", "main"]

_COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[int]]] = {
    "create": create.run,
    "get": get.run_get,
    "wait": get.run_wait,
    "download": get.run_download,
    "demo": demo.run,
    "report": report.run,
}


def build_parser() -> argparse.ArgumentParser:
    """The command line parser.

    Returns:
        The parser with every command; every option's help names its default.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=HelpFormatter,
        description="Kling video, image and audio generation from the shell: batches with "
        "resume, single tasks, and a zero-setup demo against the embedded fake gateway.",
        epilog=EXIT_STATUS_HELP,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more: -v info, -vv debug (default: warnings only)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo.add_parser(sub)
    batch.add_parser(sub)
    create.add_parser(sub)
    get.add_parsers(sub)
    report.add_parser(sub)
    fake_server.add_parser(sub)
    for command in sub.choices.values():
        document_defaults(command)
    return parser


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is *now*, so a live progress display that
    redirects it can print log lines above the bars instead of through them."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        del value


@contextlib.contextmanager
def _logging_to_stderr(verbosity: int) -> Iterator[None]:
    """Show the SDK's warnings (more with -v) on stderr while the command runs."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("kling_async")
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _endpoint_of(args: argparse.Namespace) -> Endpoint | None:
    try:
        return endpoint_for(args.endpoint) if getattr(args, "endpoint", None) else None
    except KeyError:
        return None


async def _dispatch(args: argparse.Namespace, *, handle_interrupts: bool) -> int:
    try:
        if args.command == "batch":
            return await batch.run(args, handle_interrupts=handle_interrupts)
        return await _COMMANDS[args.command](args)
    except (JournalLockedError, JournalCorruptError) as exc:
        error(str(exc))  # says which file, what is wrong, and the way forward
        return EXIT_BAD_INPUT
    except ValidationError as exc:
        for p in exc.problems:
            error(f"{exc.endpoint or 'request'}: {p.path}: {p.message}")
        return EXIT_BAD_INPUT
    except ConfigurationError as exc:
        error(f"bad configuration: {exc}")
        return EXIT_BAD_INPUT
    except (TaskFailedError, WaitTimeoutError) as exc:
        error(str(exc))
        return EXIT_FAILED
    except KlingError as exc:
        problem = settings_problem(exc, _endpoint_of(args), backend=getattr(args, "backend", None))
        if problem is not None:
            error(problem.message)
            return EXIT_BAD_INPUT
        error(f"{type(exc).__name__}: {exc}")
        return EXIT_FAILED
    except KeyError as exc:  # endpoint_for on a bad name
        error(str(exc.args[0]) if exc.args else "unknown endpoint")
        return EXIT_BAD_INPUT


async def amain(argv: Sequence[str]) -> int:
    """Run a command in the current event loop (for tests and embedding).

    Signal handling is left to the caller; ``fake-server`` is not available here.

    Args:
        argv: Arguments, without the program name.

    Returns:
        The exit status.

    Raises:
        ValueError: The command is ``fake-server``, which runs its own event loop.
    """
    args = build_parser().parse_args(list(argv))
    if args.command == "fake-server":
        raise ValueError("fake-server runs its own event loop; use main()")
    return await _dispatch(args, handle_interrupts=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kling-async`` console script.

    Args:
        argv: Arguments, without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    with _logging_to_stderr(args.verbose):
        if args.command == "fake-server":
            return fake_server.run(args)
        try:
            return asyncio.run(_dispatch(args, handle_interrupts=True))
        except KeyboardInterrupt:
            error("interrupted")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # Output piped into `head` or similar: stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_FAILED
