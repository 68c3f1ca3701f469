"""The batch journal: one SQLite file (WAL mode), one row per job, a commit per transition.

A job's row is written before anything is sent for it, so a crash at any moment
leaves a state from which a re-run can continue without paying twice::

    pending ──> creating ──> created ──> succeed / failed   (+ files, downloaded)
       │            │            └────> error (retryable: polled again on resume)
       │            ├─ outcome unclear: looked up by external id on resume
       │            └─ still unclear past the reconcile deadline: unknown
       └──────────────────────────────> not_started / error

Rows are keyed by ``(batch_id, key)``. A request is identified by its fingerprint
(SHA-256 of its canonical JSON without ``external_task_id`` and ``callback_url``),
so a key reused for a different request is refused before any request is sent.
A job may be run again under a new external id (:meth:`Journal.start_attempt`);
every earlier attempt stays on record (:meth:`Journal.attempts`).

One batch, one process: a :class:`Journal` holds an exclusive lock on the file
(see :mod:`kling_async._journal_lock`) from construction to :meth:`Journal.close`;
a second opener, in this process or another, gets :class:`JournalLockedError` at
once. Several web-app workers therefore need one journal each.
``Journal(path, read_only=True)`` reads without the lock (reports, inspection).

A journal is never silently replaced: an empty, truncated or corrupt file, one of
an unknown schema version, or a missing one when results exist beside it
(``expect_existing=True``) raises :class:`JournalCorruptError` and nothing is
sent. The file records its schema version in a ``meta`` table; journals of the
first schema (no ``meta``) are migrated in place when opened for writing.

What the file holds, and who may read it
-----------------------------------------
Resuming never needs a request body from the journal: the caller submits the same
jobs again and each is matched by key and fingerprint. So the stored request
(``jobs.request_json``, for inspection and reports) keeps prompts, URLs and
options but has every long base64-looking value (inline images, masks, audio)
replaced by ``<base64 sha256:<16 hex> chars:<length>>``; the same redaction
applies to the stored task objects. No API key, secret or endpoint path is ever
written. The file does hold prompts, task ids, external ids and the signed result
URLs of outputs, so it is created private to the user (mode 0o600, like its
``-wal``/``-shm`` companions and its lock file).

Calls are synchronous and short (a statement or one transaction each, in
autocommit mode); the batch makes them from the event loop thread. Commits use
``synchronous=NORMAL``: durable across a crash of the process, not of the machine.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ._errors import ConfigurationError
from ._journal_attempts import begin_attempt, list_attempts
from ._journal_errors import JournalCorruptError, JournalLockedError, JournalMismatchError
from ._journal_lock import JournalLock
from ._journal_records import (
    JobState,
    JournalAttempt,
    JournalEntry,
    JournalFile,
    fingerprint,
    loads_or_none,
    redact_payload,
)
from ._journal_schema import SCHEMA_VERSION, open_journal_db

__all__ = [
    "SCHEMA_VERSION",
    "JobState",
    "Journal",
    "JournalAttempt",
    "JournalCorruptError",
    "JournalEntry",
    "JournalFile",
    "JournalLockedError",
    "JournalMismatchError",
    "fingerprint",
    "redact_payload",
]


_Store = TypeVar("_Store", bound="_JournalStore")


class _JournalStore:
    """Opening, locking, closing and reading a journal; :class:`Journal` adds writes."""

    def __init__(
        self,
        path: str | Path,
        *,
        batch_id: str | None = None,
        expect_existing: bool = False,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._lock: JournalLock | None = None
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._lock = JournalLock(self.path)
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot lock the journal {self.path}: {exc.strerror or type(exc).__name__}"
                ) from None
        try:
            opened = open_journal_db(
                self.path,
                batch_id=batch_id,
                expect_existing=expect_existing,
                read_only=read_only,
            )
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        self._db = opened.db
        self.batch_id: str = opened.batch_id
        self._legacy = opened.legacy
        self._seq = self._next_seq()

    def _next_seq(self) -> int:
        row = self._db.execute(
            "SELECT COALESCE(MAX(seq), -1) FROM jobs WHERE batch_id = ?", (self.batch_id,)
        ).fetchone()
        return int(row[0]) + 1

    def __repr__(self) -> str:
        return f"Journal(path={str(self.path)!r}, batch_id={self.batch_id!r})"

    def __enter__(self: _Store) -> _Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database and release the lock (idempotent)."""
        self._db.close()
        if self._lock is not None:
            self._lock.release()

    def _write(self, sql: str, params: Iterable[Any] = ()) -> None:
        if self.read_only:
            raise RuntimeError(f"the journal {self.path} was opened read-only")
        self._db.execute(sql, tuple(params))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise RuntimeError(f"the journal {self.path} was opened read-only")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- reads --------------------------------------------------------------------------

    @property
    def _columns(self) -> str:
        attempt = "1" if self._legacy else "attempt"
        return (
            "key, seq, endpoint, fingerprint, external_task_id, state, task_id, status, "
            "task_json, units, message, error_type, retryable, downloaded, created_wall, "
            f"updated_wall, request_json, {attempt}"
        )

    def _entry(self, row: tuple[Any, ...]) -> JournalEntry:
        key = row[0]
        files = tuple(
            JournalFile(index=i, path=Path(p), url=u, size=s, sha256=h)
            for i, p, u, s, h in self._db.execute(
                "SELECT idx, path, url, size, sha256 FROM files "
                "WHERE batch_id = ? AND key = ? ORDER BY idx",
                (self.batch_id, key),
            )
        )
        return JournalEntry(
            key=key,
            seq=row[1],
            endpoint=row[2],
            fingerprint=row[3],
            external_task_id=row[4],
            state=JobState(row[5]),
            task_id=row[6],
            status=row[7],
            task=loads_or_none(row[8]),
            units=row[9],
            message=row[10],
            error_type=row[11],
            retryable=bool(row[12]),
            downloaded=bool(row[13]),
            created_wall=row[14],
            updated_wall=row[15],
            request=loads_or_none(row[16]),
            attempt=int(row[17]),
            files=files,
        )

    def get(self, key: str) -> JournalEntry | None:
        """Read one job's row.

        Args:
            key: The job key.

        Returns:
            The entry, or ``None`` when the key is new.
        """
        row = self._db.execute(
            f"SELECT {self._columns} FROM jobs WHERE batch_id = ? AND key = ?",  # noqa: S608
            (self.batch_id, key),
        ).fetchone()
        return None if row is None else self._entry(row)

    def entries(self) -> Iterator[JournalEntry]:
        """Every job of the batch, in the order first recorded.

        Yields:
            Entries.
        """
        rows = self._db.execute(
            f"SELECT {self._columns} FROM jobs WHERE batch_id = ? ORDER BY seq",  # noqa: S608
            (self.batch_id,),
        ).fetchall()
        for row in rows:
            yield self._entry(row)

    def counts(self) -> dict[str, int]:
        """Jobs per state.

        Returns:
            ``{state: count}`` for the states present.
        """
        rows = self._db.execute(
            "SELECT state, COUNT(*) FROM jobs WHERE batch_id = ? GROUP BY state", (self.batch_id,)
        )
        return {str(state): int(count) for state, count in rows.fetchall()}

    def keys_in(self, states: Iterable[JobState | str]) -> list[str]:
        """The keys of the jobs in any of ``states``, in the order first recorded.

        Args:
            states: E.g. ``{JobState.FAILED, JobState.ERROR}`` for ``--retry-failed``,
                or ``{JobState.UNKNOWN}`` for the lookups a run must do first.

        Returns:
            The keys.
        """
        wanted = sorted({JobState(state).value for state in states})
        if not wanted:
            return []
        marks = ", ".join("?" for _ in wanted)
        rows = self._db.execute(
            f"SELECT key FROM jobs WHERE batch_id = ? AND state IN ({marks}) ORDER BY seq",  # noqa: S608
            (self.batch_id, *wanted),
        )
        return [str(row[0]) for row in rows.fetchall()]

    def attempts(self, key: str) -> list[JournalAttempt]:
        """Every attempt of a job, oldest first; the last one is its current row.

        Args:
            key: The job key.

        Returns:
            The attempts (empty for an unknown key).
        """
        return list_attempts(self._db, batch_id=self.batch_id, key=key, legacy=self._legacy)


class Journal(_JournalStore):
    """The SQLite journal of one batch, held exclusively until :meth:`close`.

    Args:
        path: The database file (created if missing, with its parent directory).
        batch_id: Which batch of the file to use. Default: the only batch the file
            holds, or a new random id for a new file.
        expect_existing: The caller knows the batch ran before (its results are
            there): refuse to start a new journal when the file is missing or empty.
        read_only: Read without taking the lock (for reports and inspection while a
            batch may run); nothing is created, migrated or written, and every
            write method raises :class:`RuntimeError`.

    Raises:
        JournalLockedError: Another process, or another open ``Journal`` in this
            one, holds the journal.
        JournalCorruptError: The file is empty, truncated, corrupt, of an unknown
            schema version, or missing when ``expect_existing`` is set.
        ConfigurationError: The file holds several batches and no ``batch_id`` was
            given, or the lock file cannot be created.
    """

    # --- writes -------------------------------------------------------------------------

    def check(self, key: str, endpoint: str, fingerprint: str) -> JournalEntry | None:
        """Make sure ``key`` is new, or recorded with this very request.

        Args:
            key: The job key.
            endpoint: Endpoint name.
            fingerprint: From :func:`fingerprint`.

        Returns:
            The existing entry, or ``None`` when the key is new.

        Raises:
            JournalMismatchError: The key is recorded with a different request.
        """
        existing = self.get(key)
        if existing is not None and (
            existing.fingerprint != fingerprint or existing.endpoint != endpoint
        ):
            raise JournalMismatchError(key)
        return existing

    def record(
        self,
        key: str,
        *,
        endpoint: str,
        fingerprint: str,
        external_task_id: str,
        request: Mapping[str, Any] | None = None,
    ) -> JournalEntry | None:
        """Register a job before anything is sent for it.

        Args:
            key: The job key.
            endpoint: Endpoint name.
            fingerprint: From :func:`fingerprint`.
            external_task_id: The external id its create will carry.
            request: The request body (stored redacted).

        Returns:
            The existing entry when the key was already recorded with the same
            request (a resume), else ``None`` (a new ``pending`` row was written).

        Raises:
            JournalMismatchError: The key is recorded with a different request.
        """
        existing = self.check(key, endpoint, fingerprint)
        if existing is not None:
            return existing
        body = None if request is None else json.dumps(redact_payload(request), default=str)
        self._write(
            "INSERT INTO jobs (batch_id, key, seq, endpoint, fingerprint, external_task_id, "
            "request_json, state, updated_wall) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.batch_id,
                key,
                self._seq,
                endpoint,
                fingerprint,
                external_task_id,
                body,
                JobState.PENDING.value,
                time.time(),
            ),
        )
        self._seq += 1
        return None

    def _update(self, key: str, **fields: Any) -> None:
        fields["updated_wall"] = time.time()
        names = ", ".join(f"{name} = ?" for name in fields)
        self._write(
            f"UPDATE jobs SET {names} WHERE batch_id = ? AND key = ?",  # noqa: S608
            (*fields.values(), self.batch_id, key),
        )

    def mark_pending(self, key: str) -> None:
        """The create was refused before anything was created (1302/1303): back to waiting.

        Args:
            key: The job key.
        """
        self._update(key, state=JobState.PENDING.value)

    def mark_creating(self, key: str) -> None:
        """The create is about to be sent (its outcome is unknown until answered).

        Args:
            key: The job key.
        """
        self._update(key, state=JobState.CREATING.value)

    def mark_created(
        self, key: str, *, task_id: str, status: str, created_wall: float | None = None
    ) -> None:
        """The server accepted the create.

        Args:
            key: The job key.
            task_id: The server's task id.
            status: Its status as answered.
            created_wall: Unix time of creation (default: now).
        """
        self._update(
            key,
            state=JobState.CREATED.value,
            task_id=task_id,
            status=status,
            created_wall=time.time() if created_wall is None else created_wall,
            retryable=0,
        )

    def mark_terminal(
        self,
        key: str,
        *,
        succeeded: bool,
        task_id: str,
        status: str,
        task: Mapping[str, Any],
        units: float | None,
        message: str | None,
    ) -> None:
        """The task ended.

        Args:
            key: The job key.
            succeeded: Whether it succeeded.
            task_id: Its id.
            status: Its final status.
            task: The task object as received (outputs included).
            units: Units charged.
            message: The failure reason, if any.
        """
        self._update(
            key,
            state=(JobState.SUCCEED if succeeded else JobState.FAILED).value,
            task_id=task_id,
            status=status,
            task_json=json.dumps(redact_payload(task), default=str),
            units=units,
            message=message or None,
            error_type=None,
            retryable=0,
        )

    def mark_error(
        self,
        key: str,
        *,
        message: str,
        error_type: str,
        retryable: bool,
        task: Mapping[str, Any] | None = None,
    ) -> None:
        """The job ended with an error (no usable result).

        Args:
            key: The job key.
            message: The error message (never holds secrets or base64).
            error_type: The exception's class name.
            retryable: Whether a re-run should try again.
            task: The last task object, when the task exists.
        """
        fields: dict[str, Any] = {
            "state": JobState.ERROR.value,
            "message": message,
            "error_type": error_type,
            "retryable": int(retryable),
        }
        if task is not None:
            fields["task_json"] = json.dumps(redact_payload(task), default=str)
        self._update(key, **fields)

    def mark_not_started(self, key: str, *, message: str) -> None:
        """The job was never sent (budget, fail-fast, account error).

        Args:
            key: The job key.
            message: Why.
        """
        self._update(key, state=JobState.NOT_STARTED.value, message=message, retryable=1)

    def add_file(
        self, key: str, *, index: int, path: Path, url: str, size: int, sha256: str
    ) -> None:
        """Record one downloaded output.

        Args:
            key: The job key.
            index: Position in the task's outputs.
            path: Where it was saved.
            url: Where it came from.
            size: Bytes.
            sha256: Hex digest.
        """
        self._write(
            "INSERT OR REPLACE INTO files (batch_id, key, idx, path, url, size, sha256) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.batch_id, key, index, str(path), url, size, sha256),
        )

    def mark_downloaded(self, key: str) -> None:
        """Every output of the job is downloaded.

        Args:
            key: The job key.
        """
        self._update(key, downloaded=1)

    # --- unclear outcomes and attempts -------------------------------------------------

    def mark_unknown(self, key: str, *, external_task_id: str, message: str) -> None:
        """The create's outcome stayed unclear past the reconcile deadline.

        The task may exist and be paid: the next run must look it up by
        ``external_task_id`` before doing anything else for this job.

        Args:
            key: The job key.
            external_task_id: The external id the unclear create carried.
            message: Why the outcome is unknown (never holds secrets or base64).
        """
        self._update(
            key,
            state=JobState.UNKNOWN.value,
            external_task_id=external_task_id,
            message=message,
            error_type=None,
            retryable=1,
        )

    def start_attempt(
        self,
        key: str,
        external_task_id: str,
        *,
        endpoint: str | None = None,
        fingerprint: str | None = None,
        request: Mapping[str, Any] | None = None,
    ) -> int:
        """Run a recorded job again under a new external id, keeping the old attempt.

        The current attempt (state, task id, units, message...) is archived; the
        job's row goes back to ``pending`` with the new external id, and its file
        records are dropped (the new attempt's outputs replace them). For
        ``--rerun-changed``, pass the changed request's endpoint, fingerprint and
        body: the row then describes the new request.

        Args:
            key: The job key.
            external_task_id: A new external id, never used before in this batch.
            endpoint: The endpoint name, when the request changed.
            fingerprint: The new request's fingerprint, when it changed.
            request: The new request body (stored redacted), when it changed.

        Returns:
            The new attempt's number (2 for the first retry).

        Raises:
            KeyError: The key is not in the journal.
            ValueError: The job's create may have reached the server (``creating``,
                ``created`` or ``unknown``: follow or look it up first, or it could be
                paid twice), or the external id was used before in this batch.
        """
        changed: dict[str, Any] = {}
        if endpoint is not None:
            changed["endpoint"] = endpoint
        if fingerprint is not None:
            changed["fingerprint"] = fingerprint
        if request is not None:
            changed["request_json"] = json.dumps(redact_payload(request), default=str)
        with self._transaction() as db:
            return begin_attempt(
                db,
                batch_id=self.batch_id,
                key=key,
                external_task_id=external_task_id,
                changed=changed,
            )
