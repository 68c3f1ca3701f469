"""A journal is never silently replaced: damaged, foreign or missing journals are refused."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from kling_async import ConfigurationError, KlingError
from kling_async._journal import SCHEMA_VERSION, JobState, Journal, JournalCorruptError

#: The tables as the first journal schema wrote them (no meta table, user_version 1).
SCHEMA_1 = """
CREATE TABLE batches (batch_id TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE jobs (
    batch_id TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, endpoint TEXT NOT NULL,
    fingerprint TEXT NOT NULL, external_task_id TEXT NOT NULL, request_json TEXT,
    state TEXT NOT NULL, task_id TEXT, status TEXT, task_json TEXT, units REAL, message TEXT,
    error_type TEXT, retryable INTEGER NOT NULL DEFAULT 0,
    downloaded INTEGER NOT NULL DEFAULT 0, created_wall REAL, updated_wall REAL NOT NULL,
    PRIMARY KEY (batch_id, key)
);
CREATE TABLE files (
    batch_id TEXT NOT NULL, key TEXT NOT NULL, idx INTEGER NOT NULL, path TEXT NOT NULL,
    url TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (batch_id, key, idx)
);
PRAGMA user_version=1;
"""


def _filled(path: Path, jobs: int = 400) -> bytes:
    """A real journal with some pages, closed cleanly; returns its bytes."""
    with Journal(path, batch_id="B") as journal:
        for i in range(jobs):
            journal.record(
                f"k{i}",
                endpoint="text2video",
                fingerprint=f"{i:064d}",
                external_task_id=f"ext-{i}",
                request={"prompt": "a quiet lake at dawn " * 10},
            )
            journal.mark_creating(f"k{i}")
    return path.read_bytes()


def _refused(path: Path, reason: str, **options: bool) -> JournalCorruptError:
    with pytest.raises(JournalCorruptError) as info:
        Journal(path, **options)
    error = info.value
    assert reason in error.reason
    assert str(path) in str(error)
    assert "move it aside" in str(error)
    return error


def test_a_new_journal_records_its_schema_and_is_private(tmp_path: Path) -> None:
    """meta holds schema_version, batch_id and created_at; the file is 0o600; no leftovers."""
    path = tmp_path / "out" / "journal.sqlite"
    with Journal(path) as journal:
        batch_id = journal.batch_id
        journal.record("k", endpoint="text2video", fingerprint="f", external_task_id="e")
        assert path.stat().st_mode & 0o777 == 0o600
        wal = Path(f"{path}-wal")
        assert wal.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "journal.sqlite",
        "journal.sqlite.lock",
    ]
    with sqlite3.connect(path) as db:
        meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert meta["batch_id"] == batch_id
    assert float(meta["created_at"]) > 0


def test_an_empty_file_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    """A 0-byte journal raises JournalCorruptError (a ConfigurationError) and stays 0 bytes."""
    path = tmp_path / "j.db"
    path.write_bytes(b"")
    error = _refused(path, "empty")
    assert isinstance(error, ConfigurationError)
    assert isinstance(error, KlingError)
    assert error.path == path
    assert path.read_bytes() == b""
    path.unlink()  # moved aside: the lock was released, a new journal opens
    Journal(path).close()


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.02])
def test_a_truncated_journal_is_refused(tmp_path: Path, keep: float) -> None:
    """A journal cut short (here to part of its length) is refused, not reused."""
    path = tmp_path / "j.db"
    whole = _filled(path)
    path.write_bytes(whole[: int(len(whole) * keep)])
    _refused(path, "truncated")


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    """Text where the journal should be is refused as not a SQLite database."""
    path = tmp_path / "j.db"
    path.write_text("these are not the pages you are looking for\n" * 50)
    _refused(path, "not a SQLite database")


def test_overwritten_pages_are_refused(tmp_path: Path) -> None:
    """Garbage written over the middle of the file fails SQLite's own checks."""
    path = tmp_path / "j.db"
    whole = bytearray(_filled(path))
    middle = len(whole) // 2
    whole[middle : middle + 8192] = os.urandom(8192)
    path.write_bytes(bytes(whole))
    with pytest.raises(JournalCorruptError, match="SQLite"):
        Journal(path)


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    """A SQLite file without the journal's tables is not taken over."""
    path = tmp_path / "j.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
    _refused(path, "not a kling_async journal")
    with sqlite3.connect(path) as db:
        assert [row[0] for row in db.execute("SELECT name FROM sqlite_master")] == ["notes"]


def test_an_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    """A journal whose meta table names a later schema is refused, naming that version."""
    path = tmp_path / "j.db"
    _filled(path, jobs=3)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '7' WHERE name = 'schema_version'")
    error = _refused(path, "schema version 7")
    assert f"reads schema {SCHEMA_VERSION}" in str(error)


def test_a_missing_journal_beside_results_is_refused(tmp_path: Path) -> None:
    """expect_existing: a missing or empty file is refused and nothing is created."""
    path = tmp_path / "j.db"
    _refused(path, "journal missing but results exist", expect_existing=True)
    assert not path.exists()
    path.write_bytes(b"")
    _refused(path, "empty", expect_existing=True)
    path.unlink()
    _filled(path, jobs=1)
    with Journal(path, expect_existing=True) as journal:
        assert journal.batch_id == "B"


def test_a_deleted_journal_with_its_wal_left_behind_is_refused(tmp_path: Path) -> None:
    """The main file gone but its -wal still there: refused, not started afresh."""
    path = tmp_path / "j.db"
    Path(f"{path}-wal").write_bytes(b"\x37\x7f\x06\x82" + bytes(60))
    _refused(path, "write-ahead log")
    assert not path.exists()


def test_a_schema_1_journal_is_migrated_in_place(tmp_path: Path) -> None:
    """A journal written before the meta table opens with its jobs and gains schema 2."""
    path = tmp_path / "j.db"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_1)
        db.execute("INSERT INTO batches VALUES ('old', 1.0)")
        db.execute(
            "INSERT INTO jobs (batch_id, key, seq, endpoint, fingerprint, external_task_id, "
            "state, task_id, units, updated_wall) "
            "VALUES ('old', 'k', 0, 'text2video', 'f', 'ext-k', 'failed', 't1', 2.0, 5.0)"
        )
    with Journal(path, read_only=True) as reader:  # a reader leaves it as it is
        entry = reader.get("k")
        assert entry is not None
        assert entry.attempt == 1
        assert [a.external_task_id for a in reader.attempts("k")] == ["ext-k"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    with Journal(path) as journal:
        assert journal.batch_id == "old"
        entry = journal.get("k")
        assert entry is not None
        assert entry.state is JobState.FAILED
        assert entry.task_id == "t1"
        assert entry.attempt == 1
        assert journal.start_attempt("k", "ext-k-2") == 2
    with sqlite3.connect(path) as db:
        meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert meta["batch_id"] == "old"


def test_a_schema_1_journal_with_a_missing_table_is_refused(tmp_path: Path) -> None:
    """An old-style file without its files table is not a journal to migrate."""
    path = tmp_path / "j.db"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_1)
        db.execute("DROP TABLE files")
    _refused(path, "missing tables: files")
