"""Reading results files into display-ready jobs: tolerant of every field, merged by key."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs

__all__ = ["RESULTS_GLOB", "File", "Job", "Loaded", "clean_text", "load_results"]

#: Results files read from the output folder when not told otherwise:
#: ``results.jsonl`` and shards such as ``results-2-of-4.jsonl``.
RESULTS_GLOB = "results*.jsonl"

_VIDEO_EXTENSIONS = frozenset({"mp4", "m4v", "mov", "webm", "mkv"})
_IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp", "gif", "avif"})
_AUDIO_EXTENSIONS = frozenset({"mp3", "wav", "m4a", "aac", "ogg", "oga", "flac", "opus"})
_MAX_PROMPT_CHARS = 4000
_MAX_FIELD_CHARS = 1000
# C0 controls other than tab and newline, DEL and the C1 block: never useful in a page.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@attrs.frozen
class File:
    """One downloaded output as the page shows it."""

    href: str
    name: str
    kind: str
    size: int | None


@attrs.frozen
class Job:
    """One results row, normalised for display."""

    key: str
    status: str
    endpoint: str
    prompt: str
    task_id: str
    external_task_id: str
    files: tuple[File, ...]
    units: float | None
    error_code: str
    error_message: str
    created: datetime | None
    finished: datetime | None


@attrs.frozen
class Loaded:
    """Every row read, merged by key, with what could not be read."""

    jobs: tuple[Job, ...]
    sources: tuple[str, ...]
    unreadable: int
    duplicates: int


def clean_text(value: Any, *, limit: int = _MAX_FIELD_CHARS) -> str:
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


def _files(value: Any, *, base: Path, out_dir: Path) -> tuple[File, ...]:
    if not isinstance(value, list):
        return ()
    files: list[File] = []
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
        name = clean_text(Path(raw).name, limit=200)
        files.append(
            File(
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
    message_text = clean_text(message) if message not in (None, "") else ""
    kind = clean_text(row.get("error_type"), limit=100)
    if kind and kind not in message_text:
        message_text = f"{kind}: {message_text}" if message_text else kind
    return clean_text(code, limit=100), message_text


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
    return clean_text(prompt, limit=_MAX_PROMPT_CHARS)


def _job(row: Mapping[str, Any], *, base: Path, out_dir: Path) -> Job:
    code, message = _error(row)
    status = clean_text(row.get("status"), limit=40).strip().lower() or "unknown"
    return Job(
        key=clean_text(row.get("key"), limit=200),
        status=status,
        endpoint=clean_text(row.get("endpoint"), limit=200),
        prompt=_prompt(row),
        task_id=clean_text(row.get("task_id"), limit=200),
        external_task_id=clean_text(row.get("external_task_id"), limit=200),
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


def _latest(job: Job) -> datetime | None:
    return job.finished or job.created


def _merge(jobs: Iterable[Job]) -> tuple[list[Job], int]:
    """One job per key, in first-seen order; a later attempt replaces an earlier one.

    Of two rows with the same key, the one with the later finished (or created)
    time wins; a row with a time beats one without; otherwise the row read last
    wins. Rows without a key are never merged.
    """
    merged: dict[str, Job] = {}
    keyless: list[tuple[int, Job]] = []
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


def load_results(
    out_dir: Path,
    results: Iterable[Mapping[str, Any]]
    | Sequence[str | os.PathLike[str]]
    | str
    | os.PathLike[str]
    | None,
) -> Loaded:
    """Every row named by ``results`` (see :func:`~kling_async._report.write_report`), merged.

    Raises:
        FileNotFoundError: No results file where one was expected.
        TypeError: ``results`` mixes rows and paths.
    """
    if results is not None and not isinstance(results, (str, os.PathLike)):
        items: list[Any] = list(results)  # rows or paths: checked just below
        if items and all(isinstance(item, Mapping) for item in items):
            jobs = [_job(row, base=out_dir, out_dir=out_dir) for row in items]
            merged, duplicates = _merge(jobs)
            return Loaded(jobs=tuple(merged), sources=(), unreadable=0, duplicates=duplicates)
        if not all(isinstance(item, (str, os.PathLike)) for item in items):
            raise TypeError("results must be rows (mappings) or paths of results files, not both")
        paths = _results_files(out_dir, items)
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
        clean_text(os.path.relpath(os.path.abspath(p), os.path.abspath(out_dir)), limit=300)
        for p in paths
    )
    return Loaded(jobs=tuple(merged), sources=sources, unreadable=unreadable, duplicates=duplicates)
