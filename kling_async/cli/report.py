"""``kling-async report OUT``: write ``OUT/report.html`` from the batch's ``results.jsonl``.

The page (see :mod:`kling_async._report`) is one self-contained file: a playable
card per job, counts and status filters, and a timeline of the run. ``kling-async
batch`` and the demo write it at the end of every run; this command writes it again,
for instance after merging shards or moving the folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._report import REPORT_FILENAME, write_report
from ._common import EXIT_BAD_INPUT, EXIT_OK, HelpFormatter, error

__all__ = ["add_parser", "run", "write_run_report"]


def write_run_report(out: Path) -> Path | None:
    """Write the report at the end of a run; a failure is a warning, never the run's.

    Args:
        out: The output folder holding ``results.jsonl``.

    Returns:
        The page written, or ``None`` when it could not be (a warning says why).
    """
    try:
        return write_report(out)
    except (OSError, ValueError, TypeError) as exc:
        error(f"warning: could not write {out / REPORT_FILENAME}: {exc}")
        return None


async def run(args: argparse.Namespace) -> int:
    """Run the ``report`` command.

    Args:
        args: Parsed arguments.

    Returns:
        0 when the page was written, 2 when there are no results to show.
    """
    out = Path(args.out)
    results = [Path(p) for p in args.results] if args.results else None
    try:
        page = write_report(out, results=results, title=args.title)
    except FileNotFoundError as exc:
        error(f"no results to report: {exc}")
        return EXIT_BAD_INPUT
    except OSError as exc:
        error(f"cannot write the report in {out}: {exc}")
        return EXIT_BAD_INPUT
    print(page)
    return EXIT_OK


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``report`` command.

    Args:
        sub: The subparsers object of the main parser.

    Returns:
        The command's parser.
    """
    parser: argparse.ArgumentParser = sub.add_parser(
        "report",
        help="write OUT/report.html: a gallery of every job of a batch",
        formatter_class=HelpFormatter,
        description="Write OUT/report.html from the results.jsonl of a batch (and any "
        "results-*.jsonl shards beside it): one self-contained page with a player per "
        "output, the prompt, status, reason, units and timings of every job, counts and "
        "status filters, and a timeline of the run. It loads nothing from the network.",
    )
    parser.add_argument("out", metavar="OUT", help="the batch's output folder")
    parser.add_argument(
        "--results",
        nargs="+",
        metavar="FILE",
        help="results files to read (default: every results*.jsonl in OUT)",
    )
    parser.add_argument(
        "--title", metavar="TEXT", help="the page's heading (default: one naming OUT)"
    )
    return parser
