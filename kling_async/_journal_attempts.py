"""Attempts of a journal job: archive the current one, start the next, list them all.

A job's row in ``jobs`` is always its current attempt; earlier attempts are
copied to ``attempts`` (same columns, keyed by attempt number) when a new one
starts, so ``--retry-failed`` and ``--rerun-changed`` keep the history of what
was created, under which external id, and what it cost.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from ._journal_records import JobState, JournalAttempt

__all__ = ["MAYBE_CREATED", "begin_attempt", "list_attempts"]

#: States from which a job's create may have reached the server: a new attempt
#: then could pay twice, so :func:`begin_attempt` refuses them.
MAYBE_CREATED = frozenset({JobState.CREATING, JobState.CREATED, JobState.UNKNOWN})

_FIELDS = (
    "external_task_id, state, task_id, status, units, message, error_type, "
    "created_wall, updated_wall"
)

_ARCHIVE = (
    "INSERT INTO attempts (batch_id, key, attempt, external_task_id, state, task_id, status, "
    "task_json, units, message, error_type, created_wall, updated_wall) "
    "SELECT batch_id, key, attempt, external_task_id, state, task_id, status, task_json, "
    "units, message, error_type, created_wall, updated_wall FROM jobs "
    "WHERE batch_id = ? AND key = ?"
)

#: What a new attempt starts from (besides its number and external id).
_FRESH: Mapping[str, Any] = {
    "state": JobState.PENDING.value,
    "task_id": None,
    "status": None,
    "task_json": None,
    "units": None,
    "message": None,
    "error_type": None,
    "retryable": 0,
    "downloaded": 0,
    "created_wall": None,
}


def _attempt(row: tuple[Any, ...], *, current: bool) -> JournalAttempt:
    return JournalAttempt(
        number=int(row[0]),
        external_task_id=row[1],
        state=JobState(row[2]),
        task_id=row[3],
        status=row[4],
        units=row[5],
        message=row[6],
        error_type=row[7],
        created_wall=row[8],
        updated_wall=row[9],
        current=current,
    )


def list_attempts(
    db: sqlite3.Connection, *, batch_id: str, key: str, legacy: bool
) -> list[JournalAttempt]:
    """Every attempt of a job, oldest first, the current one last.

    Args:
        db: The journal's connection.
        batch_id: The batch.
        key: The job key.
        legacy: The journal is of the first schema (no ``attempts`` table).

    Returns:
        The attempts; empty for an unknown key.
    """
    earlier = []
    if not legacy:
        earlier = [
            _attempt(row, current=False)
            for row in db.execute(
                f"SELECT attempt, {_FIELDS} FROM attempts "  # noqa: S608
                "WHERE batch_id = ? AND key = ? ORDER BY attempt",
                (batch_id, key),
            ).fetchall()
        ]
    number = "1" if legacy else "attempt"
    row = db.execute(
        f"SELECT {number}, {_FIELDS} FROM jobs WHERE batch_id = ? AND key = ?",  # noqa: S608
        (batch_id, key),
    ).fetchone()
    return earlier if row is None else [*earlier, _attempt(row, current=True)]


def begin_attempt(
    db: sqlite3.Connection,
    *,
    batch_id: str,
    key: str,
    external_task_id: str,
    changed: Mapping[str, Any],
) -> int:
    """Archive a job's current attempt and reset its row for the next one.

    Run inside the caller's ``BEGIN IMMEDIATE`` transaction.

    Args:
        db: The journal's connection.
        batch_id: The batch.
        key: The job key.
        external_task_id: The new attempt's external id.
        changed: Columns of a changed request (``endpoint``, ``fingerprint``,
            ``request_json``), or nothing.

    Returns:
        The new attempt's number.

    Raises:
        KeyError: The key is not in the journal.
        ValueError: The job's task may exist, or the external id was used before.
    """
    row = db.execute(
        "SELECT state, attempt FROM jobs WHERE batch_id = ? AND key = ?", (batch_id, key)
    ).fetchone()
    if row is None:
        raise KeyError(key)
    state = JobState(row[0])
    if state in MAYBE_CREATED:
        raise ValueError(
            f"job {key!r} is {state.value}: its task may exist; follow it or look it "
            "up by its external id before starting another attempt"
        )
    used = db.execute(
        "SELECT 1 FROM jobs WHERE batch_id = ? AND external_task_id = ? UNION ALL "
        "SELECT 1 FROM attempts WHERE batch_id = ? AND external_task_id = ? LIMIT 1",
        (batch_id, external_task_id, batch_id, external_task_id),
    ).fetchone()
    if used is not None:
        raise ValueError(
            f"external id {external_task_id!r} was already used in this batch; "
            "each attempt needs a new one"
        )
    db.execute(_ARCHIVE, (batch_id, key))
    number = int(row[1]) + 1
    fields = {
        **_FRESH,
        **changed,
        "attempt": number,
        "external_task_id": external_task_id,
        "updated_wall": time.time(),
    }
    names = ", ".join(f"{name} = ?" for name in fields)
    db.execute(
        f"UPDATE jobs SET {names} WHERE batch_id = ? AND key = ?",  # noqa: S608
        (*fields.values(), batch_id, key),
    )
    db.execute("DELETE FROM files WHERE batch_id = ? AND key = ?", (batch_id, key))
    return number
