"""The batch report: one self-contained HTML page that shows what a batch produced.

:func:`write_report` reads the ``results.jsonl`` a batch wrote into its output
folder (or several shards of it, or rows given directly) and writes
``OUT/report.html`` beside it:

- the counts per status, the units spent and the wall time at the top,
- buttons that filter the gallery by status, and a search box over keys and prompts,
- an inline SVG timeline of how many jobs were running over the run,
- one card per job with a player for each downloaded file (``<video>``, ``<img>``
  or ``<audio>``, pointing at the file by a path relative to the page), the prompt,
  the status, the reason of a failure (error code and message), the units and the
  timings.

The page needs nothing but the files beside it: no CDN, no web font, no request to
any host. Its CSS and JavaScript are inline and allowed by a Content-Security-Policy
that names their hashes, so nothing else can run in it. Every piece of text that
came from a results file (prompts above all, which are hostile input) is
HTML-escaped, and file paths are percent-encoded, so a row can neither inject
markup nor point a player at another origin.

The fields of a row it uses (the ``results.jsonl`` the ``batch`` command writes):
``key``, ``status``, ``endpoint``, ``prompt`` (else ``request.prompt``, or a turbo
request's prompt content), ``task_id``, ``external_task_id``, ``files`` (objects
with ``path`` relative to the results file's folder, ``size`` and ``kind``, or bare
paths), ``units``, ``error`` (``{"code", "message"}``, or the reason in words with
``error_code`` and ``error_type`` beside it), ``created_at`` and ``finished_at``
(ISO 8601, or epoch seconds or milliseconds). Rows are read tolerantly: a missing
or malformed field shows as blank, an unreadable line is counted and reported on
the page instead of failing the run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._page import render_page
from ._rows import RESULTS_GLOB, clean_text, load_results

__all__ = ["REPORT_FILENAME", "RESULTS_GLOB", "write_report"]

#: Name of the page :func:`write_report` writes into the output folder.
REPORT_FILENAME = "report.html"


def write_report(
    out_dir: str | os.PathLike[str],
    *,
    results: Iterable[Mapping[str, Any]]
    | Sequence[str | os.PathLike[str]]
    | str
    | os.PathLike[str]
    | None = None,
    title: str | None = None,
) -> Path:
    """Write ``OUT/report.html``: the gallery, counts and timeline of a batch's results.

    The page is one self-contained file: its players point at the downloaded files
    by paths relative to ``out_dir``, so keep it beside them (moving the folder as a
    whole is fine). It is replaced atomically, so a reader never sees half a page.

    Args:
        out_dir: The batch's output folder; the page is written there.
        results: Where the rows come from. ``None`` (the default) reads every
            ``results*.jsonl`` in ``out_dir`` (``results.jsonl`` and shards such as
            ``results-1-of-4.jsonl``); a path or a list of paths reads those files,
            wherever they are (file paths in each are relative to its folder); an
            iterable of mappings uses those rows as they are (file paths relative
            to ``out_dir``). Rows with the same key are merged: the latest attempt
            (by finished, then created time) is shown.
        title: The page's heading; defaults to one naming the folder.

    Returns:
        The path of the page written.

    Raises:
        FileNotFoundError: ``results`` is ``None`` and ``out_dir`` holds no results
            file, or a results file named does not exist.
        TypeError: ``results`` mixes rows and paths.
        OSError: The page could not be written.
    """
    out = Path(out_dir)
    loaded = load_results(out, results)
    heading = title if title is not None else f"Batch report: {out.resolve().name or out}"
    page = render_page(loaded, title=clean_text(heading, limit=300))
    out.mkdir(parents=True, exist_ok=True)
    target = out / REPORT_FILENAME
    handle, temporary = tempfile.mkstemp(prefix=".report-", suffix=".html.tmp", dir=out)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(page)
        os.chmod(temporary, 0o644)  # mkstemp makes it 0o600; the page is meant to be shared
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
