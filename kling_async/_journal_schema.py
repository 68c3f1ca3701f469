"""Opening a journal file: create it whole, or prove it is one, or refuse it.

A journal is never silently replaced. An existing file must be a SQLite
database that passes ``PRAGMA integrity_check`` and carries this schema (or
the first schema, which is migrated in place); anything else raises
:class:`~kling_async._journal_errors.JournalCorruptError` before a request is
sent. A new journal is built in a private temporary file (mode 0o600) and
linked into place once its schema and batch id are committed, so a crash while
creating it never leaves an empty or half-made file under the journal's name.

Every connection sets ``busy_timeout`` before any other statement, and every
write made while opening (schema, migration, batch id) runs in one
``BEGIN IMMEDIATE`` transaction, so concurrent openers queue instead of failing
with ``database is locked`` or splitting the batch id.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import time
import uuid
from pathlib import Path

import attrs

from ._errors import ConfigurationError
from ._journal_errors import JournalCorruptError, JournalLockedError

__all__ = ["BUSY_TIMEOUT_MS", "SCHEMA_VERSION", "OpenedJournal", "open_journal_db"]

#: The schema this version writes: a ``meta`` table (schema_version, batch_id,
#: created_at), ``attempts`` and ``jobs.attempt``. Schema 1 (no ``meta``) is migrated.
SCHEMA_VERSION = 2
#: ``PRAGMA user_version`` values of journals written before the ``meta`` table.
_LEGACY_USER_VERSIONS = (0, 1)
#: How long a connection waits for another one's write lock before failing.
BUSY_TIMEOUT_MS = 30_000

_MAGIC = b"SQLite format 3\x00"
_HEADER = 100
_MODE = 0o600

_BASE_TABLES = (
    """CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    created REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS jobs (
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
)""",
    """CREATE TABLE IF NOT EXISTS files (
    batch_id TEXT NOT NULL,
    key TEXT NOT NULL,
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    url TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (batch_id, key, idx)
)""",
)

_V2_TABLES = (
    """CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS attempts (
    batch_id TEXT NOT NULL,
    key TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    external_task_id TEXT NOT NULL,
    state TEXT NOT NULL,
    task_id TEXT,
    status TEXT,
    task_json TEXT,
    units REAL,
    message TEXT,
    error_type TEXT,
    created_wall REAL,
    updated_wall REAL NOT NULL,
    PRIMARY KEY (batch_id, key, attempt)
)""",
)

_JOB_COLUMNS = frozenset(
    (
        *("batch_id", "key", "seq", "endpoint", "fingerprint", "external_task_id"),
        *("request_json", "state", "task_id", "status", "task_json", "units", "message"),
        *("error_type", "retryable", "downloaded", "created_wall", "updated_wall"),
    )
)


@attrs.frozen(kw_only=True)
class OpenedJournal:
    """A connection to a journal that passed every check.

    Attributes:
        db: The connection (autocommit mode).
        batch_id: The batch the caller works on.
        legacy: ``True`` for a schema-1 journal opened read-only (not migrated: no
            ``attempts`` table, no ``jobs.attempt`` column).
    """

    db: sqlite3.Connection
    batch_id: str
    legacy: bool = False


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    db = sqlite3.connect(target, isolation_level=None, uri=uri, timeout=BUSY_TIMEOUT_MS / 1000)
    # Before any other statement: switching to WAL or reading the schema may
    # have to wait for another connection, and must wait rather than fail.
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return db


def _check_bytes(path: Path) -> None:
    """Refuse files that cannot be a whole SQLite database, before SQLite sees them."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            header = handle.read(_HEADER)
    except IsADirectoryError:
        raise JournalCorruptError(path, "it is a folder, not a file") from None
    except OSError as exc:
        raise JournalCorruptError(path, f"cannot be read ({exc.strerror})") from None
    if size == 0:
        raise JournalCorruptError(path, "empty (0 bytes)")
    if not header.startswith(_MAGIC):
        raise JournalCorruptError(path, "not a SQLite database")
    if size < _HEADER:
        raise JournalCorruptError(path, f"truncated ({size} bytes)")
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    pages, valid_for, change_counter = (
        struct.unpack(">I", header[28:32])[0],
        struct.unpack(">I", header[92:96])[0],
        struct.unpack(">I", header[24:28])[0],
    )
    wal = Path(f"{path}-wal")
    # The header's page count is trustworthy only when written by the same change
    # as the counter, and the file alone is the whole database only without a WAL
    # (a checkpoint cut short is finished from the WAL).
    wal_pending = wal.exists() and wal.stat().st_size > 0
    if valid_for == change_counter and pages and not wal_pending and size < pages * page_size:
        raise JournalCorruptError(
            path, f"truncated ({size} bytes where its header announces {pages * page_size})"
        )


def _check_integrity(path: Path, db: sqlite3.Connection) -> None:
    try:
        rows = db.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise JournalLockedError(path, None) from None
        raise JournalCorruptError(path, f"unreadable by SQLite ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise JournalCorruptError(path, f"unreadable by SQLite ({exc})") from None
    if rows != [("ok",)]:
        first = str(rows[0][0]) if rows else "no answer"
        raise JournalCorruptError(path, f"fails SQLite's integrity check ({first[:200]})")


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _schema_version(path: Path, db: sqlite3.Connection) -> int:
    """The journal's schema version, after checking the tables it needs are there."""
    tables = _tables(db)
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        text = "" if row is None else str(row[0])
        if not text.isdigit():
            raise JournalCorruptError(path, "its meta table has no schema version")
        version = int(text)
        if version != SCHEMA_VERSION:
            raise JournalCorruptError(
                path,
                f"written with journal schema version {version}; this version of "
                f"kling_async reads schema {SCHEMA_VERSION} (use the kling_async that wrote it)",
            )
        wanted = {"batches", "jobs", "files", "attempts"}
    else:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version not in _LEGACY_USER_VERSIONS:
            raise JournalCorruptError(
                path, f"unknown journal schema version {version} (this version reads 1 and 2)"
            )
        if not tables:
            raise JournalCorruptError(path, "not a kling_async journal (a database without tables)")
        wanted = {"batches", "jobs", "files"}
    missing = sorted(wanted - tables)
    if missing:
        raise JournalCorruptError(
            path, f"not a kling_async journal (missing tables: {', '.join(missing)})"
        )
    columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    if not columns >= _JOB_COLUMNS:
        absent = ", ".join(sorted(_JOB_COLUMNS - columns))
        raise JournalCorruptError(path, f"its jobs table lacks columns ({absent})")
    return version if "meta" in tables else 1


def _create_v2_tables(db: sqlite3.Connection, *, batch_id: str | None, now: float) -> None:
    """Add what schema 2 has over schema 1 (inside the caller's transaction)."""
    for statement in _V2_TABLES:
        db.execute(statement)
    columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    if "attempt" not in columns:
        db.execute("ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1")
    rows = {
        "schema_version": str(SCHEMA_VERSION),
        "created_at": repr(now),
        "format": "kling_async batch journal",
    }
    if batch_id is not None:
        rows["batch_id"] = batch_id
    db.executemany("INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)", rows.items())
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create(path: Path, batch_id: str | None) -> None:
    """Build a complete new journal beside ``path`` and link it into place."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.new")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _MODE))
    try:
        db = _connect(str(tmp))
        try:
            db.execute("PRAGMA journal_mode=WAL")
            now = time.time()
            chosen = batch_id or uuid.uuid4().hex[:16]
            db.execute("BEGIN IMMEDIATE")
            for statement in _BASE_TABLES:
                db.execute(statement)
            _create_v2_tables(db, batch_id=chosen, now=now)
            db.execute("INSERT INTO batches (batch_id, created) VALUES (?, ?)", (chosen, now))
            db.execute("COMMIT")
        finally:
            db.close()  # the last close checkpoints the WAL into the file
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # made meanwhile by a writer that takes no lock: open that one
        except OSError:
            if not path.exists():  # a file system without hard links
                os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _refuse_missing(path: Path, *, expect_existing: bool) -> None:
    if expect_existing:
        raise JournalCorruptError(
            path, "journal missing but results exist (it was deleted or moved)"
        )
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise JournalCorruptError(
            path, f"journal missing but its write-ahead log {wal.name} is still there"
        )


def _pick_batch(path: Path, db: sqlite3.Connection, batch_id: str | None) -> str | None:
    known = sorted(row[0] for row in db.execute("SELECT batch_id FROM batches"))
    if batch_id is not None:
        return batch_id
    if len(known) > 1:
        raise ConfigurationError(
            f"{path} holds {len(known)} batches ({', '.join(known)}); pass batch_id to pick one"
        )
    return known[0] if known else None


def _open_writer(path: Path, batch_id: str | None, expect_existing: bool) -> OpenedJournal:
    if not path.exists():
        _refuse_missing(path, expect_existing=expect_existing)
        _create(path, batch_id)
    _check_bytes(path)
    db = _connect(str(path))
    try:
        _check_integrity(path, db)
        version = _schema_version(path, db)
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            chosen = _pick_batch(path, db, batch_id) or uuid.uuid4().hex[:16]
            now = time.time()
            if version == 1:
                _create_v2_tables(db, batch_id=chosen, now=now)
            db.execute(
                "INSERT OR IGNORE INTO batches (batch_id, created) VALUES (?, ?)", (chosen, now)
            )
            db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('batch_id', ?)", (chosen,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    except BaseException:
        db.close()
        raise
    return OpenedJournal(db=db, batch_id=chosen)


def _open_reader(path: Path, batch_id: str | None) -> OpenedJournal:
    if not path.exists():
        raise JournalCorruptError(path, "journal missing")
    _check_bytes(path)
    try:
        db = _connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise JournalCorruptError(path, f"unreadable by SQLite ({exc})") from None
    try:
        _check_integrity(path, db)
        version = _schema_version(path, db)
        chosen = _pick_batch(path, db, batch_id)
    except BaseException:
        db.close()
        raise
    if chosen is None:
        db.close()
        raise JournalCorruptError(path, "it holds no batch")
    return OpenedJournal(db=db, batch_id=chosen, legacy=version == 1)


def open_journal_db(
    path: Path, *, batch_id: str | None, expect_existing: bool, read_only: bool
) -> OpenedJournal:
    """Open (creating, checking or migrating) the journal at ``path``.

    The caller holds the journal's lock when ``read_only`` is false.

    Args:
        path: The journal file.
        batch_id: The batch to use; ``None`` for the only one (or a new one).
        expect_existing: Refuse to create a missing file (results exist beside it).
        read_only: Open for reading only: nothing is created, migrated or written.

    Returns:
        The open connection and the batch id.

    Raises:
        JournalCorruptError: The file is empty, truncated, corrupt, of an unknown
            schema, or missing when it must exist.
        ConfigurationError: Several batches and no ``batch_id``.
    """
    if read_only:
        return _open_reader(path, batch_id)
    return _open_writer(path, batch_id, expect_existing)
