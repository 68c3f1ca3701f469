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

import base64
import hashlib
import html
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs

__all__ = ["REPORT_FILENAME", "RESULTS_GLOB", "write_report"]

#: Name of the page :func:`write_report` writes into the output folder.
REPORT_FILENAME = "report.html"

#: Results files :func:`write_report` reads from the output folder when not told
#: otherwise: ``results.jsonl`` and shards such as ``results-2-of-4.jsonl``.
RESULTS_GLOB = "results*.jsonl"

_STATUS_ORDER = ("succeed", "failed", "error", "not_started", "unknown")
_VIDEO_EXTENSIONS = frozenset({"mp4", "m4v", "mov", "webm", "mkv"})
_IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp", "gif", "avif"})
_AUDIO_EXTENSIONS = frozenset({"mp3", "wav", "m4a", "aac", "ogg", "oga", "flac", "opus"})
_MAX_PROMPT_CHARS = 4000
# Cards whose players load their metadata up front; later ones wait to be played or
# scrolled to, so a page of thousands of jobs does not open thousands of files at once.
_EAGER_CARDS = 120
_MAX_FIELD_CHARS = 1000
# C0 controls other than tab and newline, DEL and the C1 block: never useful in a page.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CLASS_UNSAFE = re.compile(r"[^a-z0-9_-]")


@attrs.frozen
class _File:
    """One downloaded output as the page shows it."""

    href: str
    name: str
    kind: str
    size: int | None


@attrs.frozen
class _Job:
    """One results row, normalised for display."""

    key: str
    status: str
    endpoint: str
    prompt: str
    task_id: str
    external_task_id: str
    files: tuple[_File, ...]
    units: float | None
    error_code: str
    error_message: str
    created: datetime | None
    finished: datetime | None


@attrs.frozen
class _Loaded:
    """Every row read, merged by key, with what could not be read."""

    jobs: tuple[_Job, ...]
    sources: tuple[str, ...]
    unreadable: int
    duplicates: int


# --- reading ------------------------------------------------------------------------


def _text(value: Any, *, limit: int = _MAX_FIELD_CHARS) -> str:
    """A field as display text: ``None`` is blank, controls dropped, length capped."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = _CONTROL.sub("", text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _number(value: Any) -> float | None:
    """A finite number from a number or a numeric string, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _when(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text or epoch seconds/milliseconds."""
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            number = _number(value)
            return _when(number) if number is not None else None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)
    number = _number(value) if not isinstance(value, str) else None
    if number is None or number <= 0:
        return None
    seconds = number / 1000 if number > 1e11 else number  # 1e11 s is the year 5138
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _kind(declared: Any, name: str) -> str:
    """``video``, ``image``, ``audio`` or ``file``: the declared kind, else the extension's."""
    if isinstance(declared, str) and declared.lower() in ("video", "image", "audio"):
        return declared.lower()
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension in _VIDEO_EXTENSIONS:
        return "video"
    if extension in _IMAGE_EXTENSIONS:
        return "image"
    if extension in _AUDIO_EXTENSIONS:
        return "audio"
    return "file"


def _href(raw: str, *, base: Path, out_dir: Path) -> str:
    """A percent-encoded path from the page to a file named by a results row.

    A relative path is taken relative to the folder of the results file that named
    it (older rows named it relative to the working directory: used when only that
    exists). The result is always relative, so it can never name another origin.
    """
    path = Path(raw)
    if not path.is_absolute():
        beside = base / path
        path = path if not beside.exists() and path.exists() else beside
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(out_dir))
    return quote(Path(relative).as_posix(), safe="/")


def _files(value: Any, *, base: Path, out_dir: Path) -> tuple[_File, ...]:
    if not isinstance(value, list):
        return ()
    files: list[_File] = []
    for item in value:
        if isinstance(item, str):
            raw, declared, size = item, None, None
        elif isinstance(item, Mapping) and isinstance(item.get("path"), str):
            raw, declared = item["path"], item.get("kind")
            number = _number(item.get("size"))
            size = int(number) if number is not None and number >= 0 else None
        else:
            continue
        if not raw.strip():
            continue
        name = _text(Path(raw).name, limit=200)
        files.append(
            _File(
                href=_href(raw, base=base, out_dir=out_dir),
                name=name,
                kind=_kind(declared, raw),
                size=size,
            )
        )
    return tuple(files)


def _error(row: Mapping[str, Any]) -> tuple[str, str]:
    """(code, message) of a row's failure.

    ``error`` may be an object (``{"code", "message"}``) or the reason in words,
    with the code beside it in ``error_code`` and the class in ``error_type``.
    """
    value = row.get("error")
    if isinstance(value, Mapping):
        code, message = value.get("code"), value.get("message")
    else:
        code, message = row.get("error_code"), value
    message_text = _text(message) if message not in (None, "") else ""
    kind = _text(row.get("error_type"), limit=100)
    if kind and kind not in message_text:
        message_text = f"{kind}: {message_text}" if message_text else kind
    return _text(code, limit=100), message_text


def _prompt(row: Mapping[str, Any]) -> str:
    """The row's prompt, else the prompt of its request (turbo: the prompt content)."""
    prompt = row.get("prompt")
    request = row.get("request")
    if prompt in (None, "") and isinstance(request, Mapping):
        prompt = request.get("prompt")
        contents = request.get("contents")
        if prompt in (None, "") and isinstance(contents, list):
            texts = [
                c.get("text")
                for c in contents
                if isinstance(c, Mapping) and c.get("type") == "prompt"
            ]
            prompt = next((t for t in texts if isinstance(t, str)), None)
    return _text(prompt, limit=_MAX_PROMPT_CHARS)


def _job(row: Mapping[str, Any], *, base: Path, out_dir: Path) -> _Job:
    code, message = _error(row)
    status = _text(row.get("status"), limit=40).strip().lower() or "unknown"
    return _Job(
        key=_text(row.get("key"), limit=200),
        status=status,
        endpoint=_text(row.get("endpoint"), limit=200),
        prompt=_prompt(row),
        task_id=_text(row.get("task_id"), limit=200),
        external_task_id=_text(row.get("external_task_id"), limit=200),
        files=_files(row.get("files"), base=base, out_dir=out_dir),
        units=_number(row.get("units")),
        error_code=code,
        error_message=message,
        created=_when(row.get("created_at")),
        finished=_when(row.get("finished_at")),
    )


def _results_files(
    out_dir: Path, results: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None
) -> list[Path]:
    if results is None:
        found = sorted(
            out_dir.glob(RESULTS_GLOB), key=lambda p: (p.name != "results.jsonl", p.name)
        )
        if not found:
            raise FileNotFoundError(
                f"no results file in {out_dir} (looked for {RESULTS_GLOB}); "
                "run a batch with --out there first"
            )
        return found
    if isinstance(results, (str, os.PathLike)):
        return [Path(results)]
    return [Path(p) for p in results]


def _read_rows(path: Path) -> tuple[list[Mapping[str, Any]], int]:
    """Every object in a JSON Lines file, and how many lines were not one."""
    rows: list[Mapping[str, Any]] = []
    unreadable = 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
                unreadable += 1
                continue
            if isinstance(row, Mapping):
                rows.append(row)
            else:
                unreadable += 1
    return rows, unreadable


def _latest(job: _Job) -> datetime | None:
    return job.finished or job.created


def _merge(jobs: Iterable[_Job]) -> tuple[list[_Job], int]:
    """One job per key, in first-seen order; a later attempt replaces an earlier one.

    Of two rows with the same key, the one with the later finished (or created)
    time wins; a row with a time beats one without; otherwise the row read last
    wins. Rows without a key are never merged.
    """
    merged: dict[str, _Job] = {}
    keyless: list[tuple[int, _Job]] = []
    order: dict[str, int] = {}
    duplicates = 0
    for index, job in enumerate(jobs):
        if not job.key:
            keyless.append((index, job))
            continue
        kept = merged.get(job.key)
        if kept is None:
            merged[job.key] = job
            order[job.key] = index
            continue
        duplicates += 1
        old, new = _latest(kept), _latest(job)
        if old is None or (new is not None and new >= old):
            merged[job.key] = job
    ranked = [(order[key], job) for key, job in merged.items()] + keyless
    return [job for _, job in sorted(ranked, key=lambda pair: pair[0])], duplicates


def _load(
    out_dir: Path,
    results: Iterable[Mapping[str, Any]]
    | Sequence[str | os.PathLike[str]]
    | str
    | os.PathLike[str]
    | None,
) -> _Loaded:
    if results is not None and not isinstance(results, (str, os.PathLike)):
        items = list(results)
        if items and all(isinstance(item, Mapping) for item in items):
            jobs = [_job(row, base=out_dir, out_dir=out_dir) for row in items]  # type: ignore[arg-type]
            merged, duplicates = _merge(jobs)
            return _Loaded(jobs=tuple(merged), sources=(), unreadable=0, duplicates=duplicates)
        if not all(isinstance(item, (str, os.PathLike)) for item in items):
            raise TypeError("results must be rows (mappings) or paths of results files, not both")
        paths = _results_files(out_dir, items)  # type: ignore[arg-type]
    else:
        paths = _results_files(out_dir, results)
    jobs = []
    unreadable = 0
    for path in paths:
        rows, bad = _read_rows(path)
        unreadable += bad
        base = path.parent
        jobs.extend(_job(row, base=base, out_dir=out_dir) for row in rows)
    merged, duplicates = _merge(jobs)
    sources = tuple(
        _text(os.path.relpath(os.path.abspath(p), os.path.abspath(out_dir)), limit=300)
        for p in paths
    )
    return _Loaded(
        jobs=tuple(merged), sources=sources, unreadable=unreadable, duplicates=duplicates
    )


# --- formatting ---------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _css_class(status: str) -> str:
    return "status-" + (_CLASS_UNSAFE.sub("_", status) or "unknown")


def _status_label(status: str) -> str:
    return status.replace("_", " ")


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 04 min``: short, and exact enough for a run."""
    seconds = max(0.0, seconds)
    if seconds == 0:
        return "0 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _units(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value)}"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def _moment(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def _statuses(jobs: Sequence[_Job]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    known = [(s, counts[s]) for s in _STATUS_ORDER if s in counts]
    others = sorted((s, n) for s, n in counts.items() if s not in _STATUS_ORDER)
    return known + others


def _player(file: _File, *, eager: bool) -> str:
    href, name = _e(file.href), _e(file.name)
    preload = "metadata" if eager else "none"
    if file.kind == "video":
        element = f'<video controls preload="{preload}" src="{href}"></video>'
    elif file.kind == "image":
        lazy = "" if eager else ' loading="lazy"'
        element = f'<img src="{href}" alt="{name}"{lazy}>'
    elif file.kind == "audio":
        element = f'<audio controls preload="{preload}" src="{href}"></audio>'
    else:
        element = ""
    size = f" · {_e(_size(file.size))}" if file.size is not None else ""
    link = f'<a class="file" href="{href}">{name}</a>{size}'
    figure = f'<figure class="player kind-{file.kind}">'
    return f"{figure}{element}<figcaption>{link}</figcaption></figure>"


def _card(job: _Job, *, eager: bool = True) -> str:
    rows: list[tuple[str, str]] = []
    if job.endpoint:
        rows.append(("endpoint", job.endpoint))
    if job.units is not None:
        rows.append(("units", _units(job.units)))
    if job.created:
        rows.append(("created", _moment(job.created)))
    if job.finished:
        rows.append(("finished", _moment(job.finished)))
    if job.created and job.finished:
        rows.append(("took", _duration((job.finished - job.created).total_seconds())))
    if job.task_id:
        rows.append(("task id", job.task_id))
    if job.external_task_id:
        rows.append(("external id", job.external_task_id))
    details = "".join(f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>" for label, value in rows)
    reason = ""
    if job.error_code or job.error_message:
        code = f'<span class="code">{_e(job.error_code)}</span> ' if job.error_code else ""
        reason = f'<p class="reason">{code}{_e(job.error_message)}</p>'
    players = "".join(_player(f, eager=eager) for f in job.files)
    media = (
        f'<div class="media">{players}</div>'
        if players
        else '<div class="media none">no files</div>'
    )
    prompt = f'<p class="prompt">{_e(job.prompt)}</p>' if job.prompt else ""
    status_class = _css_class(job.status)
    return (
        f'<article class="card {status_class}" data-status="{_e(job.status)}">'
        f"{media}"
        f'<div class="body"><header><h3 class="key">{_e(job.key) or "(no key)"}</h3>'
        f'<span class="badge {status_class}">{_e(_status_label(job.status))}</span></header>'
        f"{prompt}{reason}<dl>{details}</dl></div></article>"
    )


# --- timeline -----------------------------------------------------------------------


def _running_steps(jobs: Sequence[_Job]) -> tuple[list[tuple[float, int]], float]:
    """(seconds from the first start, jobs running from then on) and the run's length.

    A job runs from its created time to its finished time; one without a finished
    time runs to the end of the run. Ends sort before starts at the same instant,
    so back-to-back jobs on one slot count as one.
    """
    spans = [(j.created, j.finished) for j in jobs if j.created is not None]
    if not spans:
        return [], 0.0
    start = min(created for created, _ in spans)
    end = max(max((f or c) for c, f in spans), start)
    events: list[tuple[float, int]] = []
    for created, finished in spans:
        stop = finished if finished is not None and finished >= created else end
        events.append(((created - start).total_seconds(), +1))
        events.append(((stop - start).total_seconds(), -1))
    events.sort(key=lambda event: (event[0], event[1]))
    steps: list[tuple[float, int]] = []
    running = 0
    for at, change in events:
        running += change
        if steps and steps[-1][0] == at:
            steps[-1] = (at, running)
        else:
            steps.append((at, running))
    return steps, (end - start).total_seconds()


def _ticks(limit: float, count: int) -> list[float]:
    """Round tick positions from 0 to about ``limit``."""
    if limit <= 0:
        return [0.0]
    raw = limit / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(limit / step) + 1)]


def _timeline(jobs: Sequence[_Job]) -> str:
    steps, length = _running_steps(jobs)
    if not steps:
        return '<p class="muted">No job in the results has a created time: nothing to draw.</p>'
    peak = max(running for _, running in steps)
    width, height, left, right, top, bottom = 960, 220, 48, 16, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    span = length if length > 0 else 1.0

    def x(seconds: float) -> float:
        return left + plot_w * seconds / span

    def y(running: int) -> float:
        return top + plot_h * (1 - running / max(peak, 1))

    points = [f"M{x(0):.1f},{y(0):.1f}"]
    for at, running in steps:
        points.append(f"H{x(at):.1f}V{y(running):.1f}")
    points.append(f"H{x(span):.1f}V{y(0):.1f}Z")
    grid: list[str] = []
    for value in _ticks(float(peak), 4):
        level = int(value)
        if level != value:
            continue
        grid.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(level):.1f}" '
            f'y2="{y(level):.1f}"/><text class="tick" x="{left - 6}" y="{y(level) + 4:.1f}" '
            f'text-anchor="end">{level}</text>'
        )
    for seconds in _ticks(span, 6):
        grid.append(
            f'<text class="tick" x="{x(seconds):.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{_e(_duration(seconds))}</text>'
        )
    caption = (
        f"Jobs running over the run: peak {peak} at once, over {_duration(length)} "
        "(from each job's created time to its finished time)."
    )
    return (
        f'<svg id="slot-timeline" role="img" viewBox="0 0 {width} {height}" '
        f'data-peak="{peak}" aria-label="{_e(caption)}"><title>{_e(caption)}</title>'
        f"{''.join(grid)}"
        f'<path class="area" d="{"".join(points)}"/>'
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>'
        f'<text class="label" x="{left}" y="{height - 2}">time since the first job started</text>'
        f'</svg><p class="muted">{_e(caption)}</p>'
    )


# --- page ---------------------------------------------------------------------------

_STYLE = """
:root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --ink: #1c1f24;
  --muted: #5d6673; --line: #d9dde3; --ok: #1f7a3a; --bad: #b3261e; --warn: #8a5a00;
  --idle: #5d6673; --accent: #2f5fb3; }
@media (prefers-color-scheme: dark) { :root { --bg: #15171a; --card: #1e2126;
  --ink: #e7e9ec; --muted: #9aa3ae; --line: #343a42; --ok: #5cc27a; --bad: #ff8a80;
  --warn: #e0b050; --idle: #9aa3ae; --accent: #8fb3ff; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; padding: 24px; background: var(--bg); color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
h1 { margin: 0 0 4px; font-size: 24px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.muted { color: var(--muted); font-size: 13px; }
.counts { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.count { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 16px; min-width: 110px; }
.count b { display: block; font-size: 24px; }
.count.status-succeed b { color: var(--ok); }
.count.status-failed b, .count.status-error b { color: var(--bad); }
.count.status-not_started b, .count.status-unknown b { color: var(--warn); }
#filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 8px 0 16px; }
#filters button { font: inherit; padding: 5px 12px; border-radius: 16px; cursor: pointer;
  border: 1px solid var(--line); background: var(--card); color: var(--ink); }
#filters button[aria-pressed="true"] { background: var(--accent); border-color: var(--accent);
  color: #fff; }
#search { font: inherit; padding: 5px 10px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--card); color: var(--ink); min-width: 240px; }
#slot-timeline { width: 100%; height: auto; background: var(--card);
  border: 1px solid var(--line); border-radius: 8px; }
#slot-timeline .area { fill: var(--accent); fill-opacity: .35; stroke: var(--accent);
  stroke-width: 1.5; }
#slot-timeline .grid { stroke: var(--line); stroke-width: 1; }
#slot-timeline .axis { stroke: var(--muted); stroke-width: 1; }
#slot-timeline text { fill: var(--muted); font-size: 12px; }
#gallery { display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  overflow: hidden; display: flex; flex-direction: column; border-top-width: 4px; }
.card.status-succeed { border-top-color: var(--ok); }
.card.status-failed, .card.status-error { border-top-color: var(--bad); }
.card.status-not_started, .card.status-unknown { border-top-color: var(--warn); }
.media { display: flex; flex-direction: column; gap: 6px; padding: 8px; background: #0000000d; }
.media.none { color: var(--muted); font-size: 13px; align-items: center; padding: 18px; }
.player { margin: 0; }
.player video, .player img { display: block; width: 100%; max-height: 280px;
  object-fit: contain; background: #000; border-radius: 6px; image-rendering: auto; }
.player audio { width: 100%; }
.player figcaption { font-size: 12px; color: var(--muted); margin-top: 2px;
  overflow-wrap: anywhere; }
.player.missing figcaption::after { content: " · file missing"; color: var(--bad); }
.body { padding: 10px 14px 14px; }
.body header { display: flex; justify-content: space-between; align-items: baseline; gap: 8px; }
.key { margin: 0; font-size: 15px; overflow-wrap: anywhere; }
.badge { font-size: 12px; padding: 1px 8px; border-radius: 10px; white-space: nowrap;
  border: 1px solid currentColor; color: var(--idle); }
.badge.status-succeed { color: var(--ok); }
.badge.status-failed, .badge.status-error { color: var(--bad); }
.badge.status-not_started, .badge.status-unknown { color: var(--warn); }
.prompt { margin: 8px 0; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 9.5em;
  overflow: auto; }
.reason { margin: 8px 0; color: var(--bad); overflow-wrap: anywhere; white-space: pre-wrap; }
.reason .code { font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 8px 0 0;
  font-size: 12.5px; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
a { color: var(--accent); }
"""

_SCRIPT = """
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll("#gallery .card"));
  var buttons = Array.prototype.slice.call(document.querySelectorAll("#filters button"));
  var search = document.getElementById("search");
  var empty = document.getElementById("empty");
  var shown = document.getElementById("shown");
  var current = "all";
  function textOf(card, selector) {
    var node = card.querySelector(selector);
    return node ? node.textContent.toLowerCase() : "";
  }
  function apply() {
    var needle = search.value.trim().toLowerCase();
    var visible = 0;
    cards.forEach(function (card) {
      var match = current === "all" || card.getAttribute("data-status") === current;
      if (match && needle) {
        match = textOf(card, ".key").indexOf(needle) !== -1 ||
          textOf(card, ".prompt").indexOf(needle) !== -1;
      }
      card.hidden = !match;
      if (match) { visible += 1; }
    });
    buttons.forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-filter") === current));
    });
    empty.hidden = visible !== 0;
    shown.textContent = String(visible);
  }
  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      current = button.getAttribute("data-filter");
      apply();
    });
  });
  search.addEventListener("input", apply);
  function markMissing(element) {
    var figure = element.closest("figure");
    if (figure) { figure.classList.add("missing"); }
  }
  Array.prototype.forEach.call(document.querySelectorAll("#gallery video, #gallery audio"),
    function (media) {
      if (media.error) { markMissing(media); }
      media.addEventListener("error", function () { markMissing(media); });
    });
  Array.prototype.forEach.call(document.querySelectorAll("#gallery img"), function (image) {
    if (image.complete && image.naturalWidth === 0) { markMissing(image); }
    image.addEventListener("error", function () { markMissing(image); });
  });
  apply();
}());
"""


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _policy() -> str:
    """Only the page's own style and script run; media only from beside the page."""
    return (
        "default-src 'none'; "
        f"style-src {_csp_hash(_STYLE)}; "
        f"script-src {_csp_hash(_SCRIPT)}; "
        "img-src 'self' file:; media-src 'self' file:; "
        "base-uri 'none'; form-action 'none'"
    )


def _render(loaded: _Loaded, *, title: str) -> str:
    jobs = loaded.jobs
    statuses = _statuses(jobs)
    units = sum(j.units for j in jobs if j.units is not None)
    file_count = sum(len(j.files) for j in jobs)
    _, length = _running_steps(jobs)
    tiles = [f'<div class="count"><b>{len(jobs)}</b>jobs</div>']
    tiles += [
        f'<div class="count {_css_class(s)}" data-status="{_e(s)}"><b>{n}</b>'
        f"{_e(_status_label(s))}</div>"
        for s, n in statuses
    ]
    tiles.append(f'<div class="count"><b>{file_count}</b>files</div>')
    tiles.append(f'<div class="count"><b>{_e(_units(units))}</b>units</div>')
    if length > 0:
        tiles.append(f'<div class="count"><b>{_e(_duration(length))}</b>wall time</div>')
    buttons = [
        f'<button type="button" data-filter="all" aria-pressed="true">all ({len(jobs)})</button>'
    ]
    buttons += [
        f'<button type="button" data-filter="{_e(s)}" aria-pressed="false">'
        f"{_e(_status_label(s))} ({n})</button>"
        for s, n in statuses
    ]
    notes: list[str] = []
    if loaded.sources:
        notes.append("read from " + ", ".join(_e(s) for s in loaded.sources))
    if loaded.duplicates:
        notes.append(f"{loaded.duplicates} repeated key(s) merged, the latest attempt kept")
    if loaded.unreadable:
        notes.append(f"{loaded.unreadable} line(s) could not be read and are left out")
    subtitle = " · ".join(notes)
    cards = "\n".join(_card(j, eager=i < _EAGER_CARDS) for i, j in enumerate(jobs))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_e(_policy())}">
<meta name="referrer" content="no-referrer">
<title>{_e(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{_e(title)}</h1>
<p class="muted">{subtitle}</p>
<section class="counts" id="counts">{"".join(tiles)}</section>
<h2>Slot use</h2>
<section id="timeline">{_timeline(jobs)}</section>
<h2>Jobs <span class="muted">(<span id="shown">{len(jobs)}</span> shown)</span></h2>
<nav id="filters">{"".join(buttons)}
<input type="search" id="search" placeholder="filter by key or prompt"
 aria-label="filter by key or prompt">
</nav>
<main id="gallery">
{cards}
</main>
<p id="empty" class="muted" hidden>No job matches the filter.</p>
<script>{_SCRIPT}</script>
</body>
</html>
"""


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
    loaded = _load(out, results)
    heading = title if title is not None else f"Batch report: {out.resolve().name or out}"
    page = _render(loaded, title=_text(heading, limit=300))
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
