"""Every attempt of a job stays on record; unclear creates are kept as 'unknown'."""

from __future__ import annotations

from pathlib import Path

import pytest

from kling_async._journal import JobState, Journal, JournalMismatchError


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    """A journal with three recorded jobs (a, b, c), closed after the test."""
    opened = Journal(tmp_path / "j.db", batch_id="B")
    for key in "abc":
        opened.record(key, endpoint="text2video", fingerprint=f"f-{key}", external_task_id=key)
    return opened


def _fail(journal: Journal, key: str, *, units: float = 2.0) -> None:
    journal.mark_creating(key)
    journal.mark_created(key, task_id=f"t-{key}", status="submitted", created_wall=10.0)
    journal.mark_terminal(
        key,
        succeeded=False,
        task_id=f"t-{key}",
        status="failed",
        task={"task_id": f"t-{key}", "task_status": "failed"},
        units=units,
        message="content check",
    )


def test_a_new_attempt_archives_the_old_one_and_starts_pending(journal: Journal) -> None:
    """start_attempt keeps attempt 1 as it ended and resets the row under the new id."""
    _fail(journal, "a")
    journal.add_file("a", index=0, path=Path("a.mp4"), url="http://x/a", size=1, sha256="00")
    assert journal.start_attempt("a", "a-2") == 2
    entry = journal.get("a")
    assert entry is not None
    assert entry.state is JobState.PENDING
    assert entry.external_task_id == "a-2"
    assert entry.attempt == 2
    assert entry.task_id is None
    assert entry.task is None
    assert entry.units is None
    assert entry.message is None
    assert entry.files == ()
    assert entry.fingerprint == "f-a"
    first, second = journal.attempts("a")
    assert (first.number, first.external_task_id, first.state) == (1, "a", JobState.FAILED)
    assert (first.task_id, first.units, first.message) == ("t-a", 2.0, "content check")
    assert first.created_wall == 10.0
    assert not first.current
    assert (second.number, second.external_task_id, second.state) == (2, "a-2", JobState.PENDING)
    assert second.current


def test_attempts_survive_a_reopen_and_keep_counting(tmp_path: Path) -> None:
    """A third attempt after a reopen is number 3; all three are listed in order."""
    path = tmp_path / "j.db"
    with Journal(path) as journal:
        journal.record("k", endpoint="text2video", fingerprint="f", external_task_id="k-1")
        journal.mark_error("k", message="boom", error_type="ServerError", retryable=True)
        assert journal.start_attempt("k", "k-2") == 2
        journal.mark_not_started("k", message="budget")
    with Journal(path) as journal:
        assert journal.start_attempt("k", "k-3") == 3
        attempts = journal.attempts("k")
    assert [(a.number, a.external_task_id, a.state) for a in attempts] == [
        (1, "k-1", JobState.ERROR),
        (2, "k-2", JobState.NOT_STARTED),
        (3, "k-3", JobState.PENDING),
    ]
    assert attempts[0].error_type == "ServerError"


@pytest.mark.parametrize("state", ["creating", "created", "unknown"])
def test_a_job_whose_task_may_exist_cannot_start_again(journal: Journal, state: str) -> None:
    """creating, created and unknown rows refuse a new attempt (it could pay twice)."""
    journal.mark_creating("a")
    if state == "created":
        journal.mark_created("a", task_id="t", status="submitted")
    if state == "unknown":
        journal.mark_unknown("a", external_task_id="a", message="no answer")
    with pytest.raises(ValueError, match=state):
        journal.start_attempt("a", "a-2")
    assert [a.number for a in journal.attempts("a")] == [1]


def test_an_external_id_is_never_reused(journal: Journal) -> None:
    """A new attempt needs an id no attempt of any job in the batch has carried."""
    _fail(journal, "a")
    with pytest.raises(ValueError, match="already used"):
        journal.start_attempt("a", "a")
    with pytest.raises(ValueError, match="already used"):
        journal.start_attempt("a", "b")
    journal.start_attempt("a", "a-2")
    journal.mark_not_started("a", message="stop")
    with pytest.raises(ValueError, match="already used"):
        journal.start_attempt("a", "a")
    with pytest.raises(KeyError):
        journal.start_attempt("missing", "m-2")


def test_a_changed_request_starts_anew_under_its_own_fingerprint(journal: Journal) -> None:
    """With a new fingerprint and body the row describes the new request from then on."""
    _fail(journal, "a")
    with pytest.raises(JournalMismatchError):
        journal.check("a", "text2video", "f-new")
    journal.start_attempt(
        "a", "a-2", endpoint="text2video", fingerprint="f-new", request={"prompt": "new"}
    )
    entry = journal.check("a", "text2video", "f-new")
    assert entry is not None
    assert entry.request == {"prompt": "new"}
    with pytest.raises(JournalMismatchError):
        journal.check("a", "text2video", "f-a")


def test_unknown_keeps_the_external_id_and_is_listed_for_lookup(journal: Journal) -> None:
    """mark_unknown stores the id to look up; keys_in finds unknown rows first thing."""
    journal.mark_creating("b")
    journal.mark_unknown("b", external_task_id="b", message="create unanswered for 600 s")
    entry = journal.get("b")
    assert entry is not None
    assert entry.state is JobState.UNKNOWN
    assert entry.external_task_id == "b"
    assert entry.message == "create unanswered for 600 s"
    assert journal.keys_in({JobState.UNKNOWN}) == ["b"]


def test_keys_in_lists_jobs_by_state_in_recorded_order(journal: Journal) -> None:
    """keys_in takes states or their names and keeps the order jobs were recorded in."""
    _fail(journal, "c")
    journal.mark_error("a", message="x", error_type="ServerError", retryable=True)
    assert journal.keys_in([JobState.FAILED, "error"]) == ["a", "c"]
    assert journal.keys_in(["pending"]) == ["b"]
    assert journal.keys_in([]) == []
    assert journal.keys_in([JobState.SUCCEED]) == []
    with pytest.raises(ValueError, match="nonsense"):
        journal.keys_in(["nonsense"])
