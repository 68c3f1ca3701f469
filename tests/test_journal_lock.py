"""One batch, one process: the journal's exclusive lock, tried with real processes."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sqlite3
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

import pytest

from kling_async import KlingError
from kling_async import _journal_lock as journal_lock
from kling_async._journal import Journal, JournalLockedError

#: A hang guard for waits between processes (never reached when things work).
GUARD = 120.0

SPAWN = multiprocessing.get_context("spawn")


def _hold_until(path: str, opened: Event, release: Event) -> None:
    """Child: open the journal, say so, and keep it until told (or killed)."""
    journal = Journal(path)
    opened.set()
    release.wait(GUARD)
    journal.close()


def _contend(path: str, start: Barrier, attempted: Barrier, results: Any) -> None:
    """Child: open a fresh journal together with the others; report who won."""
    start.wait(GUARD)
    try:
        journal = Journal(path)
    except JournalLockedError as exc:
        results.put(("locked", os.getpid(), exc.pid, ""))
        attempted.wait(GUARD)
        return
    except Exception as exc:  # reported, so the parent's assertion shows it
        results.put(("crashed", os.getpid(), None, f"{type(exc).__name__}: {exc}"))
        attempted.wait(GUARD)
        return
    results.put(("won", os.getpid(), None, journal.batch_id))
    attempted.wait(GUARD)  # keep the lock until every process has tried
    journal.close()


def _open_in_turn(path: str, results: Any, turn: Any = None) -> None:
    """Child: open the journal when it is this child's turn, record a job, report the batch id."""
    with turn if turn is not None else contextlib.nullcontext(), Journal(path) as journal:
        journal.record(
            f"job-{os.getpid()}", endpoint="text2video", fingerprint="f", external_task_id="e"
        )
        results.put(journal.batch_id)


def _batches(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT batch_id FROM batches")]


def test_a_second_journal_in_this_process_is_refused_at_once(tmp_path: Path) -> None:
    """Two open Journals on one file conflict even in one process; close frees it."""
    path = tmp_path / "j.db"
    first = Journal(path)
    with pytest.raises(JournalLockedError) as info:
        Journal(path)
    assert info.value.pid == os.getpid()
    assert info.value.path == path
    assert str(os.getpid()) in str(info.value)
    assert str(path) in str(info.value)
    assert isinstance(info.value, KlingError)
    first.close()
    first.close()  # idempotent
    with Journal(path) as again:
        assert again.batch_id == first.batch_id


def test_the_lock_file_is_private_and_names_the_holder(tmp_path: Path) -> None:
    """The lock file beside the journal is mode 0o600 and holds the holder's PID."""
    path = tmp_path / "j.db"
    with Journal(path):
        lock = journal_lock.lock_path_for(path)
        assert lock == tmp_path / "j.db.lock"
        assert lock.read_text(encoding="ascii").strip() == str(os.getpid())
        assert lock.stat().st_mode & 0o777 == 0o600


def test_another_process_holding_the_journal_is_named_then_its_death_frees_it(
    tmp_path: Path,
) -> None:
    """A holder in another process is named by PID; SIGKILL releases the lock."""
    path = tmp_path / "j.db"
    opened, release = SPAWN.Event(), SPAWN.Event()
    child = SPAWN.Process(target=_hold_until, args=(str(path), opened, release))
    child.start()
    try:
        assert opened.wait(GUARD)
        with pytest.raises(JournalLockedError) as info:
            Journal(path)
        assert info.value.pid == child.pid
        assert f"process {child.pid}" in str(info.value)
    finally:
        child.kill()
        child.join(GUARD)
    with Journal(path) as journal:  # the kernel released the dead holder's lock
        assert journal.batch_id


def test_four_processes_on_a_fresh_journal_one_wins_and_one_batch_id(tmp_path: Path) -> None:
    """Four openers at once: one holds it, three get JournalLockedError, none crash."""
    path = tmp_path / "fresh" / "j.db"
    start, attempted = SPAWN.Barrier(4), SPAWN.Barrier(4)
    results = SPAWN.Queue()
    children = [
        SPAWN.Process(target=_contend, args=(str(path), start, attempted, results))
        for _ in range(4)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=GUARD) for _ in children]
    for child in children:
        child.join(GUARD)
    assert [child.exitcode for child in children] == [0, 0, 0, 0]
    kinds = sorted(kind for kind, *_ in outcomes)
    assert kinds == ["locked", "locked", "locked", "won"], outcomes
    winner = next(pid for kind, pid, _, _ in outcomes if kind == "won")
    # A loser names the winner, or nobody when it looked before the PID was written.
    assert {holder for kind, _, holder, _ in outcomes if kind == "locked"} <= {winner, None}
    batch_id = next(detail for kind, _, _, detail in outcomes if kind == "won")
    assert _batches(path) == [batch_id]
    # Another process coming back once the winner is done joins the same batch.
    with Journal(path) as again:
        assert again.batch_id == batch_id
    assert _batches(path) == [batch_id]


def test_processes_in_turn_share_one_batch_id_without_contention(tmp_path: Path) -> None:
    """Openers that never overlap all see the first one's batch id; one batch in the file."""
    path = tmp_path / "j.db"
    results = SPAWN.Queue()
    turn = SPAWN.Lock()  # started together (imports overlap), open one after another
    children = [
        SPAWN.Process(target=_open_in_turn, args=(str(path), results, turn)) for _ in range(4)
    ]
    for child in children:
        child.start()
    seen = [results.get(timeout=GUARD) for _ in children]
    for child in children:
        child.join(GUARD)
    assert [child.exitcode for child in children] == [0, 0, 0, 0]
    assert len(set(seen)) == 1
    assert _batches(path) == seen[:1]
    with Journal(path, read_only=True) as reader:
        assert len(list(reader.entries())) == 4


def test_a_reader_needs_no_lock_and_cannot_write(tmp_path: Path) -> None:
    """read_only=True opens beside the holder, sees its commits and refuses writes."""
    path = tmp_path / "j.db"
    with Journal(path) as writer:
        writer.record("k", endpoint="text2video", fingerprint="f", external_task_id="e")
        with Journal(path, read_only=True) as reader:
            entry = reader.get("k")
            assert entry is not None
            assert reader.batch_id == writer.batch_id
            with pytest.raises(RuntimeError, match="read-only"):
                reader.mark_creating("k")
            with pytest.raises(RuntimeError, match="read-only"):
                reader.start_attempt("k", "e2")


def test_without_fcntl_an_exclusive_lock_file_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The O_EXCL fallback refuses a second opener, says a stale file may be deleted."""
    monkeypatch.setattr(journal_lock, "fcntl", None)
    path = tmp_path / "j.db"
    lock = tmp_path / "j.db.lock"
    first = Journal(path)
    assert lock.read_text(encoding="ascii").strip() == str(os.getpid())
    with pytest.raises(JournalLockedError) as info:
        Journal(path)
    assert info.value.stale_possible
    assert info.value.pid == os.getpid()
    assert "j.db.lock" in str(info.value)
    first.close()
    assert not lock.exists()
    # A holder that died leaves its file: refused until someone removes it.
    lock.write_text("999999\n", encoding="ascii")
    with pytest.raises(JournalLockedError, match="999999"):
        Journal(path)
    lock.unlink()
    Journal(path).close()


def test_a_holder_that_has_not_written_its_pid_yet_is_still_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locked this instant, its PID not yet written: the refusal waits for it (ms), not None.

    Two batch commands started together on one folder used to name "another
    process" about one time in six; a stale PID left by a dead holder is not read.
    The holder's write lands during the loser's second pause (no timer: the
    loser's own pauses stand for the time it takes).
    """
    import fcntl

    path = tmp_path / "j.sqlite"
    lock_file = journal_lock.lock_path_for(path)
    lock_file.write_text("99999999\n")  # left behind by a holder that died
    fd = os.open(lock_file, os.O_RDWR)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            os.pwrite(fd, b"4242\n", 0)  # the holder writes its PID meanwhile

    monkeypatch.setattr(journal_lock, "_pause", pause)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)  # a new holder, between its truncate and its write
        with pytest.raises(JournalLockedError) as info:
            journal_lock.JournalLock(path)
    finally:
        os.close(fd)
    assert len(pauses) == 2
    assert info.value.pid == 4242
    held = journal_lock.JournalLock(path)
    assert lock_file.read_text().strip() == str(os.getpid())
    held.release()
    assert lock_file.read_text() == ""  # no PID of a process that no longer holds it
