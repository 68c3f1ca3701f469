"""What a batch run leaves behind: ``results.jsonl`` and a summary that names names.

``results.jsonl`` has one object per job, in input order:

========================  ================================================================
``key``                   the job's key
``line``                  its line in the jobs file
``endpoint``              the family's path under ``/kling/``
``prompt``                the request's prompt (for the report), when it has one
``status``                ``succeed``, ``failed``, ``error`` or ``not_started``
``task_id``               the server's id, once created
``external_task_id``      the id the SDK sent with the create (a re-run reuses it)
``files``                 ``[{"path", "size", "sha256"}]`` of the saved outputs; ``path``
                          is relative to the folder of ``results.jsonl`` (OUT)
``outputs``               the result URLs (signed: treat as private)
``units``                 units charged
``error_type``            class of the error (``TaskFailedError``, ``NotStartedError``...)
``error_code``            the gateway's numeric code, when the error carried one
``error``                 the reason, in words
``created_at``            when the task was created (UTC, ISO 8601)
``finished_at``           when the job ended (UTC, ISO 8601)
``resumed``               whether the result was read back from an earlier run's journal
``attempt``               which attempt of the job this is (``--retry-failed`` adds one)
========================  ================================================================

A run left early (Ctrl-C) still writes a line per job, from the journal: a job
whose task was created and is still running says so (``error_type``
``JobCancelledError``); running the same command again picks it up.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import attrs

from .._errors import KlingError
from .._journal import JobState, Journal, JournalEntry
from ..batch import BatchSummary, JobResult, RecordedJobError
from ._common import printable
from ._jobs import Job
from ._progress import print_summary
from ._settings import SettingsProblem

__all__ = [
    "NAMED_LIMIT",
    "BatchOutcome",
    "job_record",
    "named_lines",
    "print_batch_summary",
    "prompt_of",
    "read_journal",
    "status_counts",
    "write_results",
]

#: Jobs named one per line in the summary; the rest are counted.
NAMED_LIMIT = 20
#: Longest reason shown in the summary (the full text is in results.jsonl).
_REASON_WIDTH = 160

_INTERRUPTED = "JobCancelledError"


@attrs.define(kw_only=True)
class BatchOutcome:
    """How a batch run ended.

    Attributes:
        results: Result of every job that ended, by key.
        summary: The batch's figures (``None`` when it never opened).
        stopped: ``True`` after a first Ctrl-C (admissions stopped).
        left_early: ``True`` when the run was left before every job ended
            (Ctrl-C), so unfinished jobs are read from the journal.
        interrupted: ``True`` after any Ctrl-C or SIGTERM.
        settings: A settings problem that stopped admissions (wrong key,
            endpoint path or base URL).
        journal: The journal file, if any.
    """

    results: dict[str, JobResult] = attrs.field(factory=dict)
    summary: BatchSummary | None = None
    stopped: bool = False
    left_early: bool = False
    interrupted: bool = False
    settings: SettingsProblem | None = None
    journal: Path | None = None


def _iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    return datetime.fromtimestamp(value, tz=timezone.utc).isoformat()


def _error_fields(error: BaseException | None) -> dict[str, Any]:
    if error is None:
        return {"error_type": None, "error_code": None, "error": None}
    kind = type(error).__name__
    if isinstance(error, RecordedJobError) and error.error_type:
        kind = error.error_type
    code = getattr(error, "code", None)
    task = getattr(error, "task", None)
    message = getattr(task, "message", "") if task is not None else ""
    return {
        "error_type": kind,
        "error_code": code if isinstance(code, int) and not isinstance(code, bool) else None,
        "error": message or str(error) or kind,
    }


def _relative(path: Path, base: Path | None) -> str:
    """A saved file's path as written in results.jsonl: relative to OUT when known."""
    if base is None:
        return str(path)
    return os.path.relpath(os.path.abspath(path), os.path.abspath(base))


def _from_result(record: dict[str, Any], result: JobResult, base: Path | None) -> None:
    record["status"] = result.status
    record["resumed"] = result.resumed
    record["external_task_id"] = result.external_task_id
    task = result.task
    if task is not None:
        record["task_id"] = task.id or None
        record["external_task_id"] = task.external_id or result.external_task_id
        record["outputs"] = list(task.urls)
        record["units"] = task.units
        record["created_at"] = _iso(task.created_at)
        if task.is_terminal:
            record["finished_at"] = _iso(task.updated_at)
    record["files"] = [
        {"path": _relative(f.path, base), "size": f.size, "sha256": f.sha256} for f in result.files
    ]
    if result.status != "succeed":
        record.update(_error_fields(result.error))


def _left_early(record: dict[str, Any], entry: JournalEntry) -> None:
    """Say what the journal knows of a job the run left before it ended."""
    state = entry.state
    record["task_id"] = entry.task_id
    record["units"] = entry.units
    again = "run the same command again to resume"
    if state is JobState.FAILED:
        record.update(
            status="failed", error_type="TaskFailedError", error=entry.message or "failed"
        )
        return
    if state is JobState.ERROR:
        record.update(
            status="error", error_type=entry.error_type or "error", error=entry.message or "error"
        )
        return
    if state is JobState.UNKNOWN:
        record.update(
            status="error",
            error_type="CreateOutcomeUnknownError",
            error="the create's outcome is unclear; the next run looks the task up by its "
            "external id before creating anything",
        )
        return
    if state in (JobState.PENDING, JobState.NOT_STARTED):
        record.update(
            status="not_started",
            error_type="NotStartedError",
            error=f"not sent: the run was interrupted; {again}",
        )
        return
    if state is JobState.SUCCEED:
        reason = "interrupted while saving the outputs"
    elif entry.task_id:
        reason = "interrupted before the task ended; it keeps running on the server"
    else:
        reason = "interrupted while creating the task (a re-run looks it up before creating)"
    record.update(status="error", error_type=_INTERRUPTED, error=f"{reason}; {again}")


def prompt_of(request: object) -> str | None:
    """The prompt text of a request: its ``prompt``, or a turbo request's prompt content.

    Args:
        request: A request model.

    Returns:
        The text, or ``None`` when the request has none.
    """
    prompt = getattr(request, "prompt", None)
    if isinstance(prompt, str) and prompt:
        return prompt
    for content in getattr(request, "contents", None) or ():
        text = getattr(content, "text", None)
        if getattr(content, "type", None) == "prompt" and isinstance(text, str):
            return text
    return None


def job_record(
    job: Job,
    result: JobResult | None,
    entry: JournalEntry | None,
    *,
    base: Path | None = None,
) -> dict[str, Any]:
    """One line of ``results.jsonl``.

    Args:
        job: The job as read from the input.
        result: Its result, when it ended in this run (or was read back).
        entry: Its journal row, when there is a journal.
        base: The folder of the results file: saved files' paths are written
            relative to it (``None``: as the batch gave them).

    Returns:
        The JSON-ready record (see the module docstring for the fields).
    """
    record: dict[str, Any] = {
        "key": job.key,
        "line": job.line,
        "endpoint": job.endpoint.path,
        "prompt": prompt_of(job.request),
        "status": "not_started",
        "task_id": None,
        "external_task_id": None,
        "files": [],
        "outputs": [],
        "units": None,
        "error_type": None,
        "error_code": None,
        "error": None,
        "created_at": None,
        "finished_at": None,
        "resumed": False,
        "attempt": 1,
    }
    if result is not None:
        _from_result(record, result, base)
    elif entry is not None:
        _left_early(record, entry)
    else:
        record.update(error_type="NotStartedError", error="not sent: the run ended before this job")
    if entry is not None:
        if record["status"] == "not_started" and entry.state in (
            JobState.CREATING,
            JobState.UNKNOWN,
        ):
            record["error"] = (
                f"{record['error'] or 'not started'}; an earlier create may have reached the "
                "server: the next run looks it up by its external id before creating"
            )
        record["attempt"] = entry.attempt
        record["external_task_id"] = record["external_task_id"] or entry.external_task_id
        if entry.created_wall is not None:
            record["created_at"] = _iso(entry.created_wall)
        ended = entry.state in (JobState.SUCCEED, JobState.FAILED, JobState.ERROR)
        if ended and record["status"] in ("succeed", "failed", "error"):
            record["finished_at"] = _iso(entry.updated_wall)
        if record["units"] is None:
            record["units"] = entry.units
    return record


def read_journal(path: Path | None) -> dict[str, JournalEntry]:
    """Every row of a journal file, by key (empty when there is none or it is unreadable).

    The journal is opened read-only: reading never takes (or waits for) its lock.

    Args:
        path: The journal file.

    Returns:
        The rows.
    """
    if path is None or not path.exists():
        return {}
    try:
        journal = Journal(path, read_only=True)
    except (KlingError, OSError, ValueError):
        return {}
    try:
        return {entry.key: entry for entry in journal.entries()}
    finally:
        journal.close()


def write_results(path: Path, jobs: Sequence[Job], outcome: BatchOutcome) -> list[dict[str, Any]]:
    """Write ``results.jsonl``: one object per job, in input order (atomically).

    Args:
        path: The file to write.
        jobs: Every job of the input.
        outcome: What the run produced.

    Returns:
        The records written.
    """
    entries = read_journal(outcome.journal)
    base = path.parent
    records = [
        job_record(job, outcome.results.get(job.key), entries.get(job.key), base=base)
        for job in jobs
    ]
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return records


def _fmt_units(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value else "0"


def _shown_status(record: dict[str, Any]) -> str:
    if record["error_type"] == _INTERRUPTED:
        return "running" if record["task_id"] else "interrupted"
    return str(record["status"])


def _reason(record: dict[str, Any]) -> str:
    kind = record["error_type"] or ""
    code = record["error_code"]
    head = f"{kind} {code}" if code is not None else kind
    text = printable(str(record["error"] or ""))
    if len(text) > _REASON_WIDTH:
        text = text[: _REASON_WIDTH - 3] + "..."
    return f"{head}: {text}" if head else text


def named_lines(records: Sequence[dict[str, Any]], *, limit: int = NAMED_LIMIT) -> list[str]:
    """One line per job that did not succeed (the first ``limit``), then a count of the rest.

    Args:
        records: The records of ``results.jsonl``.
        limit: How many to name.

    Returns:
        The lines (empty when every job succeeded).
    """
    bad = [r for r in records if r["status"] != "succeed"]
    if not bad:
        return []
    width = min(max(len(str(r["key"])) for r in bad[:limit]), 40)
    lines = [
        f"  {printable(str(r['key'])).ljust(width)}  {_shown_status(r).ljust(11)}  {_reason(r)}"
        for r in bad[:limit]
    ]
    if len(bad) > limit:
        lines.append(f"  and {len(bad) - limit} more")
    return lines


def status_counts(records: Sequence[dict[str, Any]]) -> Counter[str]:
    """Jobs per summary category: the four statuses, with interrupted ones apart.

    Args:
        records: The records of ``results.jsonl``.

    Returns:
        ``succeed``, ``failed``, ``error``, ``not_started``, ``running`` (left
        running on the server) and ``interrupted`` (left while creating).
    """
    counts: Counter[str] = Counter()
    for record in records:
        shown = _shown_status(record)
        counts[shown if shown in ("running", "interrupted") else record["status"]] += 1
    return counts


def print_batch_summary(
    outcome: BatchOutcome,
    records: Sequence[dict[str, Any]],
    *,
    title: str,
    extra: Sequence[tuple[str, str]] = (),
    details: Path | None = None,
    stream: TextIO | None = None,
) -> None:
    """Print the summary of a batch run: counts, figures, then every job that did not succeed.

    Counts come from ``records`` (one per job, whatever happened), so they add up
    to the number of jobs even after an interrupted run.

    Args:
        outcome: The run.
        records: The records written to ``results.jsonl``.
        title: Table title.
        extra: More ``(label, value)`` rows.
        details: Where the per-job details are (the results file), to point at.
        stream: Where to print (default ``sys.stdout``).
    """
    counts = status_counts(records)
    rows: list[tuple[str, str]] = [
        ("Jobs", str(len(records))),
        ("Succeeded", str(counts["succeed"])),
        ("Failed", str(counts["failed"])),
    ]
    for label, name in (
        ("Errors", "error"),
        ("Not started", "not_started"),
        ("Left running on the server", "running"),
        ("Interrupted while creating", "interrupted"),
    ):
        if counts[name]:
            rows.append((label, str(counts[name])))
    s = outcome.summary
    if s is not None:
        if s.resumed:
            rows.append(("Resumed from journal", str(s.resumed)))
        rows += [
            ("Units charged", _fmt_units(s.units)),
            ("Polls per task", f"{s.polls_per_task:.1f}"),
            ("Requests (creates / status)", f"{s.creates} / {s.status_requests}"),
        ]
        if s.concurrency_limited or s.rate_limited:
            # Mostly the batch's own slot probes: a refused create costs nothing.
            label = "Refused creates, not charged (1303 / 1302)"
            rows.append((label, f"{s.concurrency_limited} / {s.rate_limited}"))
        if s.latency_p50 is not None:
            rows.append(
                ("Task latency p50 / p95", f"{s.latency_p50:.1f} s / {(s.latency_p95 or 0):.1f} s")
            )
    rows.append(("Files downloaded", str(sum(len(r["files"]) for r in records))))
    if s is not None and not any(label == "Wall time" for label, _ in extra):
        rows.append(("Wall time", f"{s.wall_time:.1f} s"))
    rows += list(extra)
    print_summary(rows, title=title, stream=stream)
    lines = named_lines(records)
    if not lines:
        return
    out = stream if stream is not None else sys.stdout
    bad = sum(1 for r in records if r["status"] != "succeed")
    out.write(f"Not succeeded ({bad} of {len(records)}):\n" + "\n".join(lines) + "\n")
    if details is not None:
        out.write(f"Details of every job: {details}\n")
    out.flush()
