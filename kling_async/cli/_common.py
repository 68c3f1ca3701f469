"""What every command shares: exit codes, messages on stderr, JSON on stdout, help layout.

Argument types live here too, each raising :class:`argparse.ArgumentTypeError` with a
message a person can act on, so argparse never shows a function's name.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any, TextIO

import attrs

from .._endpoints import ENDPOINTS
from .._task import FaceSession, Task

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STATUS_HELP",
    "PROG",
    "HelpFormatter",
    "add_endpoint_argument",
    "document_defaults",
    "endpoints_help",
    "error",
    "face_to_json",
    "positive_float",
    "positive_int",
    "print_json",
    "printable",
    "task_to_json",
]

PROG = "kling-async"

#: Every job (or the one task) succeeded.
EXIT_OK = 0
#: Some jobs failed or ended in error (or the one task failed, or an API error).
EXIT_FAILED = 1
#: Usage, input, settings or journal problem: nothing (more) was sent.
EXIT_BAD_INPUT = 2
#: Interrupted by Ctrl-C or SIGTERM; run the same command again to resume.
EXIT_INTERRUPTED = 130

EXIT_STATUS_HELP = (
    "exit status:\n"
    "  0    every job succeeded\n"
    "  1    some jobs failed or ended in error (details in DIR/results.jsonl)\n"
    "  2    usage, input, settings (key, endpoint path, base URL) or journal problem\n"
    "  130  interrupted (Ctrl-C or SIGTERM); run the same command again to resume"
)


class HelpFormatter(argparse.HelpFormatter):
    """Wraps each paragraph of a description on its own; keeps indented lists as written.

    A paragraph (text between blank lines) with an indented line, such as the
    endpoint list or the exit codes, is printed verbatim.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line[:1].isspace() for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(
                    textwrap.fill(
                        " ".join(paragraph.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                    )
                )
        return "\n\n".join(paragraphs)


def endpoints_help(*, tasks_only: bool = False) -> str:
    """The endpoint families, one per line: short name and path (either is accepted).

    Args:
        tasks_only: Leave out families that create no task (identify-face).

    Returns:
        Text for an epilog.
    """
    rows = [ep for ep in ENDPOINTS if ep.is_task or not tasks_only]
    width = max(len(ep.name) for ep in rows)
    lines = [f"  {ep.name.ljust(width)}  {ep.path}" for ep in rows]
    return "endpoints (ENDPOINT is a name or a path under /kling/):\n" + "\n".join(lines)


def add_endpoint_argument(parser: argparse.ArgumentParser) -> None:
    """Add the positional ``ENDPOINT``.

    Args:
        parser: A command's parser (its epilog should list the endpoints).
    """
    parser.add_argument(
        "endpoint",
        metavar="ENDPOINT",
        help="endpoint family: a short name (text2video) or its path under /kling/ "
        "(videos/text2video); see the list below",
    )


def error(message: str, stream: TextIO | None = None) -> None:
    """Write ``kling-async: message`` on stderr.

    Args:
        message: One line, for a person.
        stream: Where to write (default ``sys.stderr`` as it is now).
    """
    out = stream if stream is not None else sys.stderr
    out.write(f"{PROG}: {printable(message)}\n")
    out.flush()


def print_json(value: Any, stream: TextIO | None = None) -> None:
    """Print a value as indented JSON (for scripts), then flush.

    Args:
        value: Anything ``json.dumps`` takes (other objects become strings).
        stream: Where to print (default ``sys.stdout``).
    """
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
    out.flush()


def printable(text: str) -> str:
    """Replace control characters (line breaks, escapes, carriage returns) by spaces.

    Messages that came from a server end up in one line of a log, never as
    terminal escapes.

    Args:
        text: Any text.

    Returns:
        The text on one line.
    """
    return "".join(" " if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 else c for c in text)


def positive_int(text: str) -> int:
    """Parse a whole number of at least 1 (an argparse ``type``).

    Args:
        text: The argument as typed.

    Returns:
        The number.

    Raises:
        argparse.ArgumentTypeError: Not a whole number, or below 1.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """Parse a number above 0 (an argparse ``type``).

    Args:
        text: The argument as typed.

    Returns:
        The number.

    Raises:
        argparse.ArgumentTypeError: Not a number, or not above 0.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def document_defaults(parser: argparse.ArgumentParser) -> None:
    """Make sure every option's help says its default.

    Options whose help already names a default are left alone; the others get
    ``(default: ...)`` appended: ``off`` for switches, ``not set`` for ``None``.

    Args:
        parser: A parser whose options are all added.
    """
    for action in parser._actions:  # argparse offers no public iterator over its actions
        if not action.option_strings or action.help in (None, argparse.SUPPRESS):
            continue
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        if action.required or "default" in str(action.help):
            continue
        if isinstance(action, argparse._StoreTrueAction):
            shown = "off"
        elif action.default is None:
            shown = "not set"
        else:
            shown = "%(default)s"
        action.help = f"{action.help} (default: {shown})"


def task_to_json(task: Task) -> dict[str, Any]:
    """A task as a JSON-ready dict, for scripts.

    Args:
        task: The task.

    Returns:
        ``task_id``, ``endpoint``, ``status`` (``submitted``/``processing``/
        ``succeed``/``failed``/``unknown``), ``raw_status``, ``external_task_id``,
        ``message``, times, ``units``, ``outputs`` (kind, url, name), ``video_ids``
        and the raw ``data`` object.
    """
    return {
        "task_id": task.id,
        "endpoint": task.endpoint,
        "status": task.status.value,
        "raw_status": task.raw_status,
        "external_task_id": task.external_id,
        "message": task.message,
        "created_at": task.created_at.isoformat() if task.created_at else None,
        "updated_at": task.updated_at.isoformat() if task.updated_at else None,
        "units": task.units,
        "outputs": [{"kind": f.kind, "url": f.url, "name": f.name} for f in task.files],
        "video_ids": [v.id for v in task.videos if v.id],
        "data": dict(task.raw),
    }


def face_to_json(face: FaceSession) -> dict[str, Any]:
    """An identify-face answer as a JSON-ready dict.

    Args:
        face: The answer.

    Returns:
        ``session_id``, ``faces`` and the raw ``data`` object.
    """
    return {
        "session_id": face.session_id,
        "faces": [attrs.asdict(f) for f in face.faces],
        "data": dict(face.raw),
    }
