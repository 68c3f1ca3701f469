"""Before a batch re-runs: refuse changed lines, or start new attempts for them and for failures.

A journal remembers each key's request (by fingerprint). Running the same file
again resumes it; a line whose request changed since is refused, naming the key
and the fields that differ, unless ``--rerun-changed`` asks to run it anew.
``--retry-failed`` runs jobs that ended ``failed`` or in a final error again.

Either way a job runs again as a new *attempt* under a new external id
(:meth:`~kling_async._journal.Journal.start_attempt`): the journal keeps every
earlier attempt, and an id the gateway has seen is never sent twice. Jobs whose
task may exist (being created, created, or of unknown outcome) are never restarted:
the batch follows or looks them up first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from .._converter import to_payload
from .._journal import JobState, Journal, JournalEntry, fingerprint, redact_payload
from ._jobs import Job

__all__ = ["Attempts", "ChangedJob", "attempt_external_id", "prepare_attempts"]

_MAYBE_CREATED = frozenset({JobState.CREATING, JobState.CREATED, JobState.UNKNOWN})
_SUCCEEDED = frozenset({"succeed", "succeeded", "success"})


@attrs.frozen(kw_only=True)
class ChangedJob:
    """A line whose request differs from the one its key was first run with.

    Attributes:
        key: The job key.
        line: Its line in the jobs file.
        fields: Top-level request fields that differ (``endpoint`` when the family did).
        running: Whether its task may still exist (it cannot be re-run yet).
    """

    key: str
    line: int
    fields: tuple[str, ...]
    running: bool = False

    def message(self) -> str:
        """Say what changed and the two ways forward.

        Returns:
            One line for a person.
        """
        what = ", ".join(self.fields) or "the request"
        if self.running:
            return (
                f"job {self.key!r} changed ({what}) while its first task may still be "
                "running; run the file unchanged once to settle it, or use a new key"
            )
        return (
            f"job {self.key!r} changed since it ran ({what}); give the line a new key, "
            "or pass --rerun-changed to run it anew under a new external id"
        )


@attrs.frozen(kw_only=True)
class Attempts:
    """What :func:`prepare_attempts` found and did.

    Attributes:
        refused: Changed lines that stop the run (nothing was changed in the journal).
        retried: Keys of failed jobs started again.
        rerun: Keys of changed jobs started anew.
    """

    refused: tuple[ChangedJob, ...] = ()
    retried: tuple[str, ...] = ()
    rerun: tuple[str, ...] = ()


def _changed_fields(entry: JournalEntry, endpoint: str, payload: Mapping[str, Any]) -> list[str]:
    fields = ["endpoint"] if entry.endpoint != endpoint else []
    before = dict(entry.request or {})
    after = redact_payload(payload)
    for name in sorted(set(before) | set(after)):
        if name in ("external_task_id", "callback_url"):
            continue
        if before.get(name) != after.get(name):
            fields.append(name)
    return fields


def _retryable(entry: JournalEntry) -> bool:
    """A failure that only a new attempt can change (never one whose task may exist)."""
    if entry.state is JobState.FAILED:
        return True
    if entry.state is not JobState.ERROR or entry.retryable:
        return False  # a retryable error is looked up, then created, by the batch itself
    return (entry.status or "").lower() not in _SUCCEEDED  # succeeded: only files missing


def attempt_external_id(batch_id: str, key: str, attempt: int) -> str:
    """The external id of a job's ``attempt`` (2 and up): new for each attempt.

    Args:
        batch_id: The journal's batch id.
        key: The job key.
        attempt: The attempt's number.

    Returns:
        ``kb-`` and 24 hex digits.
    """
    digest = hashlib.sha256(f"{batch_id}\x00{key}\x00attempt {attempt}".encode()).hexdigest()
    return f"kb-{digest[:24]}"


def prepare_attempts(
    journal_path: Path,
    jobs: Sequence[Job],
    *,
    retry_failed: bool,
    rerun_changed: bool,
    expect_existing: bool = False,
) -> Attempts:
    """Compare the jobs with the journal; start the new attempts the flags ask for.

    Nothing is written when any line is refused. Opening the journal here also
    checks it before anything is sent: locked by another run, damaged, or missing
    while ``expect_existing`` says an earlier run left results.

    Args:
        journal_path: The batch's journal (nothing to do when it does not exist).
        jobs: The jobs of the file.
        retry_failed: Start failed and errored jobs again.
        rerun_changed: Start changed jobs anew instead of refusing them.
        expect_existing: An earlier run's results are beside the journal, so a
            missing journal was deleted or moved: refuse it instead of starting afresh.

    Returns:
        What was refused, retried and re-run.

    Raises:
        JournalLockedError: Another process runs this journal.
        JournalCorruptError: The journal is damaged, or missing though expected.
        KlingError: The journal cannot be opened for another reason.
    """
    if not journal_path.exists() and not expect_existing:
        return Attempts()
    journal = Journal(journal_path, expect_existing=expect_existing)
    try:
        refused: list[ChangedJob] = []
        starts: list[tuple[Job, JournalEntry, dict[str, Any] | None]] = []
        for job in jobs:
            entry = journal.get(job.key)
            if entry is None:
                continue
            payload = to_payload(job.request)
            changed = entry.endpoint != job.endpoint.name or entry.fingerprint != fingerprint(
                job.endpoint.name, payload
            )
            if changed:
                fields = tuple(_changed_fields(entry, job.endpoint.name, payload))
                running = entry.state in _MAYBE_CREATED
                if rerun_changed and not running:
                    starts.append((job, entry, payload))
                else:
                    refused.append(
                        ChangedJob(key=job.key, line=job.line, fields=fields, running=running)
                    )
            elif retry_failed and _retryable(entry):
                starts.append((job, entry, None))
        if refused:
            return Attempts(refused=tuple(refused))
        for job, entry, body in starts:
            journal.start_attempt(
                job.key,
                attempt_external_id(journal.batch_id, job.key, entry.attempt + 1),
                endpoint=job.endpoint.name if body is not None else None,
                fingerprint=fingerprint(job.endpoint.name, body) if body is not None else None,
                request=body,
            )
        return Attempts(
            retried=tuple(job.key for job, _, body in starts if body is None),
            rerun=tuple(job.key for job, _, body in starts if body is not None),
        )
    finally:
        journal.close()
