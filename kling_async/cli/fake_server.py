"""``kling-async fake-server``: the fake gateway of :mod:`kling_async.testing`, standalone.

It serves on loopback until Ctrl-C or SIGTERM and prints how to point the SDK (or
``kling-async batch``) at it; ``/__fake__/stats`` reports what it received.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..testing import add_fake_server_arguments, run_fake_server_from_args
from ._common import EXIT_OK, HelpFormatter, document_defaults

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """Run the fake gateway in its own event loop until interrupted.

    Args:
        args: Parsed arguments.

    Returns:
        0 after a clean stop, 2 for bad options, 1 when the port could not be bound.
    """
    try:
        return run_fake_server_from_args(args)
    except KeyboardInterrupt:
        return EXIT_OK


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``fake-server`` command.

    Args:
        sub: The subparsers object of the main parser.

    Returns:
        The command's parser.
    """
    parser: argparse.ArgumentParser = sub.add_parser(
        "fake-server",
        help="run the fake gateway standalone (for your own tests)",
        formatter_class=HelpFormatter,
        description="Serve the fake Kling gateway on loopback until interrupted. Point "
        "the SDK at it with KLING_BASE_URL and KLING_TURBO_BASE_URL (printed at start); "
        "pass the same --time-scale to `kling-async batch` so its polls keep pace.",
    )
    add_fake_server_arguments(parser)
    document_defaults(parser)
    return parser
