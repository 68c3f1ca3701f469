"""The batch journal: one SQLite file (WAL mode), one row per job, a commit per transition.

A job's row is written before anything is sent for it, so a crash at any moment
leaves a state from which a re-run can continue without paying twice::

    pending ──> creating ──> created ──> succeed / failed   (+ files, downloaded)
       │            │            └────> error (retryable: polled again on resume)
       │            └─ outcome unknown: looked up by external id on resume
       └──────────────────────────────> not_started / error

Rows are keyed by ``(batch_id, key)``. A request is identified by its fingerprint
(SHA-256 of its canonical JSON without ``external_task_id`` and ``callback_url``),
so a key reused for a different request is refused before any request is sent.
Base64 payloads never reach the file: the stored request has every long
base64-looking value replaced by a short hash placeholder.

Calls are synchronous and short (a single statement each, in autocommit mode);
the batch makes them from the event loop thread.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from ._errors import ConfigurationError, KlingError

__all__ = [
    "JobState",
    "Journal",
    "JournalEntry",
    "JournalFile",
    "JournalMismatchError",
    "fingerprint",
    "redact_payload",
]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    batch_id TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    external_task_id TEXT NOT NULL,
    request_json TEXT,
    state TEXT NOT NULL,
    task_id TEXT,
    status TEXT,
    task_json TEXT,
    units REAL,
    message TEXT,
    error_type TEXT,
    retryable INTEGER NOT NULL DEFAULT 0,
    downloaded INTEGER NOT NULL DEFAULT 0,
    created_wall REAL,
    updated_wall REAL NOT NULL,
    PRIMARY KEY (batch_id, key)
);
CREATE TABLE IF NOT EXISTS files (
    batch_id TEXT NOT NULL,
    key TEXT NOT NULL,
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    url TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (batch_id, key, idx)
);
"""


class JobState(str, enum.Enum):
    """Where a job is, as recorded in the journal."""

    PENDING = "pending"
    CREATING = "creating"
    CREATED = "created"
    SUCCEED = "succeed"
    FAILED = "failed"
    ERROR = "error"
    NOT_STARTED = "not_started"


class JournalMismatchError(KlingError, ValueError):
    """A key already in the journal was submitted with a different request.

    Nothing was sent for it. Use a new key (or a new journal / batch id) for a
    different request.

    Attributes:
        key: The job key.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"job key {key!r} is already in the journal with a different request; "
            "use another key, or another journal or batch_id for a new batch"
        )


@attrs.frozen(kw_only=True)
class JournalFile:
    """A downloaded output as recorded.

    Attributes:
        index: Position in the task's outputs.
        path: Where it was saved.
        url: Where it came from (signed; treat as private).
        size: Bytes.
        sha256: Hex digest.
    """

    index: int
    path: Path
    url: str = attrs.field(repr=False)
    size: int
    sha256: str


@attrs.frozen(kw_only=True)
class JournalEntry:
    """One job's row.

    Attributes:
        key: The job key.
        seq: Order in which the job was first recorded.
        endpoint: Endpoint name.
        fingerprint: The request's fingerprint.
        external_task_id: The deterministic external id sent with the create.
        state: Where the job is.
        task_id: The server's task id, once known.
        status: The task's last status, once known.
        task: The last task object as received (``None`` before one was seen).
        units: Units charged.
        message: Failure reason or error message.
        error_type: Class name of the error, for ``error`` rows.
        retryable: Whether a re-run should try an ``error`` row again.
        downloaded: Whether every output was downloaded.
        files: Downloaded outputs.
        created_wall: Unix time the task was created (``created`` onwards).
        updated_wall: Unix time of the last transition.
        request: The request body with base64 values replaced by placeholders.
    """

    key: str
    seq: int
    endpoint: str
    fingerprint: str
    external_task_id: str
    state: JobState
    task_id: str | None = None
    status: str | None = None
    task: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    units: float | None = None
    message: str | None = None
    error_type: str | None = None
    retryable: bool = False
    downloaded: bool = False
    files: tuple[JournalFile, ...] = ()
    created_wall: float | None = None
    updated_wall: float = 0.0
    request: Mapping[str, Any] | None = attrs.field(default=None, repr=False)


_ID_FIELDS = ("external_task_id", "callback_url")


def _without_ids(payload: Mapping[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in payload.items() if k not in _ID_FIELDS}
    options = body.get("options")
    if isinstance(options, Mapping):
        rest = {k: v for k, v in options.items() if k not in _ID_FIELDS}
        if rest:
            body["options"] = rest
        else:
            body.pop("options")
    return body


def fingerprint(endpoint: str, payload: Mapping[str, Any]) -> str:
    """Identify a request independently of its external id and callback URL.

    Args:
        endpoint: Endpoint name.
        payload: The request body (wire names).

    Returns:
        Hex SHA-256 of the canonical JSON of endpoint and body.
    """
    canonical = json.dumps(
        {"endpoint": endpoint, "payload": _without_ids(payload)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


_BASE64ISH = re.compile(r"^(data:[^,]{0,100},)?[A-Za-z0-9+/=_-]+$")
_REDACT_MIN = 256


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) >= _REDACT_MIN and _BASE64ISH.match(value[:4096]) and _BASE64ISH.match(value):
            digest = hashlib.sha256(value.encode()).hexdigest()[:16]
            return f"<base64 sha256:{digest} chars:{len(value)}>"
        return value
    if isinstance(value, Mapping):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    return value


def redact_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Copy a request body with every long base64-looking value replaced.

    Args:
        payload: The request body.

    Returns:
        The copy; inline images, masks and audio become
        ``<base64 sha256:... chars:N>``.
    """
    result: dict[str, Any] = _redact(payload)
    return result


def _loads(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


class Journal:
    """The SQLite journal of one batch.

    Args:
        path: The database file (created if missing, with its parent directory).
        batch_id: Which batch of the file to use. Default: the only batch the file
            holds, or a new random id for a new file.

    Raises:
        ConfigurationError: The file holds several batches and no ``batch_id`` was
            given, or it is not a journal of this version.
    """

    def __init__(self, path: str | Path, *, batch_id: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), isolation_level=None)
        try:
            self._setup(batch_id)
        except BaseException:
            self._db.close()
            raise
        self._seq = self._next_seq()

    def _setup(self, batch_id: str | None) -> None:
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise ConfigurationError(
                f"{self.path} is a journal of schema {version}; this version reads {SCHEMA_VERSION}"
            )
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        if batch_id is None:
            known = [row[0] for row in db.execute("SELECT batch_id FROM batches")]
            if len(known) > 1:
                raise ConfigurationError(
                    f"{self.path} holds {len(known)} batches ({', '.join(sorted(known))}); "
                    "pass batch_id to pick one"
                )
            batch_id = known[0] if known else uuid.uuid4().hex[:16]
        db.execute(
            "INSERT OR IGNORE INTO batches (batch_id, created) VALUES (?, ?)",
            (batch_id, time.time()),
        )
        self.batch_id: str = batch_id

    def _next_seq(self) -> int:
        row = self._db.execute(
            "SELECT COALESCE(MAX(seq), -1) FROM jobs WHERE batch_id = ?", (self.batch_id,)
        ).fetchone()
        return int(row[0]) + 1

    def __repr__(self) -> str:
        return f"Journal(path={str(self.path)!r}, batch_id={self.batch_id!r})"

    def close(self) -> None:
        """Close the database (idempotent)."""
        self._db.close()

    # --- reads --------------------------------------------------------------------------

    _COLUMNS = (
        "key, seq, endpoint, fingerprint, external_task_id, state, task_id, status, "
        "task_json, units, message, error_type, retryable, downloaded, created_wall, "
        "updated_wall, request_json"
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
            task=_loads(row[8]),
            units=row[9],
            message=row[10],
            error_type=row[11],
            retryable=bool(row[12]),
            downloaded=bool(row[13]),
            created_wall=row[14],
            updated_wall=row[15],
            request=_loads(row[16]),
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
            f"SELECT {self._COLUMNS} FROM jobs WHERE batch_id = ? AND key = ?",  # noqa: S608
            (self.batch_id, key),
        ).fetchone()
        return None if row is None else self._entry(row)

    def entries(self) -> Iterator[JournalEntry]:
        """Every job of the batch, in the order first recorded.

        Yields:
            Entries.
        """
        rows = self._db.execute(
            f"SELECT {self._COLUMNS} FROM jobs WHERE batch_id = ? ORDER BY seq",  # noqa: S608
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
        self._db.execute(
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
        self._db.execute(
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
        self._db.execute(
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
