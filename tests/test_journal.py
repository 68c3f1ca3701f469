"""The batch journal: SQLite in WAL mode, fingerprints, redaction, transitions, batch ids."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest

from kling_async import ConfigurationError
from kling_async._journal import (
    JobState,
    Journal,
    JournalMismatchError,
    fingerprint,
    redact_payload,
)

IMAGE_B64 = base64.b64encode(bytes(range(256)) * 40).decode()


def test_fingerprint_ignores_external_id_and_callback_url() -> None:
    """The same request with other ids or callback URLs has the same fingerprint."""
    a = fingerprint("text2video", {"prompt": "cat", "external_task_id": "x", "callback_url": "u"})
    b = fingerprint("text2video", {"callback_url": "v", "prompt": "cat"})
    turbo_a = fingerprint(
        "turbo-text2video",
        {"prompt": "cat", "options": {"external_task_id": "1", "callback_url": "u"}},
    )
    turbo_b = fingerprint("turbo-text2video", {"prompt": "cat"})
    assert a == b
    assert turbo_a == turbo_b


def test_fingerprint_changes_with_the_request_or_endpoint() -> None:
    """A different body or endpoint gives a different fingerprint."""
    base = fingerprint("text2video", {"prompt": "cat"})
    assert fingerprint("text2video", {"prompt": "dog"}) != base
    assert fingerprint("image2video", {"prompt": "cat"}) != base
    watermark = {"prompt": "cat", "options": {"watermark_info": {"enabled": True}}}
    assert fingerprint("turbo-text2video", watermark) != fingerprint(
        "turbo-text2video", {"prompt": "cat"}
    )


def test_redaction_replaces_base64_but_keeps_urls_and_text() -> None:
    """Long base64 values become short placeholders; URLs and prompts stay."""
    payload = {
        "prompt": "a long prompt " * 40,
        "image": IMAGE_B64,
        "image_list": [{"image": IMAGE_B64}, {"image": "https://example.com/a.png"}],
    }
    redacted = redact_payload(payload)
    assert redacted["prompt"] == payload["prompt"]
    assert redacted["image"].startswith("<base64 sha256:")
    assert redacted["image_list"][0]["image"].startswith("<base64 sha256:")
    assert redacted["image_list"][1]["image"] == "https://example.com/a.png"
    assert IMAGE_B64 not in str(redacted)


def test_new_journal_uses_wal_and_a_random_batch_id(tmp_path: Path) -> None:
    """A new file gets WAL mode and a fresh batch id that a reopen keeps."""
    path = tmp_path / "sub" / "j.db"
    journal = Journal(path)
    batch_id = journal.batch_id
    journal.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = Journal(path)
    assert again.batch_id == batch_id
    again.close()


def test_several_batches_need_an_explicit_batch_id(tmp_path: Path) -> None:
    """With two batches in one file, opening without batch_id is refused."""
    path = tmp_path / "j.db"
    Journal(path, batch_id="a").close()
    Journal(path, batch_id="b").close()
    with pytest.raises(ConfigurationError, match="batch_id"):
        Journal(path)
    chosen = Journal(path, batch_id="b")
    assert chosen.batch_id == "b"
    chosen.close()


def test_record_refuses_a_reused_key_with_another_request(tmp_path: Path) -> None:
    """Same key, same fingerprint: the entry comes back; another fingerprint raises."""
    journal = Journal(tmp_path / "j.db", batch_id="b")
    assert (
        journal.record("k", endpoint="text2video", fingerprint="f1", external_task_id="e") is None
    )
    entry = journal.record("k", endpoint="text2video", fingerprint="f1", external_task_id="e2")
    assert entry is not None
    assert entry.state is JobState.PENDING
    assert entry.external_task_id == "e"
    with pytest.raises(JournalMismatchError, match="'k'") as info:
        journal.record("k", endpoint="text2video", fingerprint="f2", external_task_id="e")
    assert info.value.key == "k"
    journal.close()


def test_transitions_are_committed_and_read_back(tmp_path: Path) -> None:
    """Every transition is visible to another connection at once (committed)."""
    path = tmp_path / "j.db"
    journal = Journal(path, batch_id="b")
    journal.record(
        "k",
        endpoint="text2video",
        fingerprint="f",
        external_task_id="e",
        request={"image": IMAGE_B64},
    )
    journal.mark_creating("k")
    reader = Journal(path, batch_id="b", read_only=True)
    entry = reader.get("k")
    assert entry is not None
    assert entry.state is JobState.CREATING
    assert IMAGE_B64 not in path.read_bytes().decode("latin-1")
    journal.mark_created("k", task_id="t1", status="submitted", created_wall=123.0)
    journal.mark_terminal(
        "k",
        succeeded=True,
        task_id="t1",
        status="succeed",
        task={"task_id": "t1", "task_status": "succeed"},
        units=3.0,
        message="",
    )
    journal.add_file("k", index=0, path=tmp_path / "a.mp4", url="http://x/a", size=10, sha256="ab")
    journal.mark_downloaded("k")
    entry = reader.get("k")
    assert entry is not None
    assert entry.state is JobState.SUCCEED
    assert entry.task_id == "t1"
    assert entry.created_wall == 123.0
    assert entry.task == {"task_id": "t1", "task_status": "succeed"}
    assert entry.units == 3.0
    assert entry.downloaded
    assert entry.files[0].path == tmp_path / "a.mp4"
    assert entry.files[0].sha256 == "ab"
    assert reader.counts() == {"succeed": 1}
    reader.close()
    journal.close()


def test_error_not_started_and_pending_states(tmp_path: Path) -> None:
    """Errors keep their type and retryability; refusals go back to pending."""
    journal = Journal(tmp_path / "j.db", batch_id="b")
    for key in ("a", "b", "c"):
        journal.record(key, endpoint="text2video", fingerprint=key, external_task_id=key)
    journal.mark_error("a", message="boom", error_type="ServerError", retryable=True)
    journal.mark_not_started("b", message="budget")
    journal.mark_creating("c")
    journal.mark_pending("c")
    a, b, c = (journal.get(k) for k in "abc")
    assert a is not None
    assert a.state is JobState.ERROR
    assert a.retryable
    assert a.error_type == "ServerError"
    assert b is not None
    assert b.state is JobState.NOT_STARTED
    assert b.message == "budget"
    assert c is not None
    assert c.state is JobState.PENDING
    assert [e.key for e in journal.entries()] == ["a", "b", "c"]
    assert journal.get("missing") is None
    journal.close()


def test_keys_are_scoped_by_batch_id(tmp_path: Path) -> None:
    """The same key in two batches of one file are two jobs."""
    path = tmp_path / "j.db"
    one = Journal(path, batch_id="one")
    one.record("k", endpoint="text2video", fingerprint="f1", external_task_id="e1")
    one.close()
    two = Journal(path, batch_id="two")
    assert two.record("k", endpoint="text2video", fingerprint="f2", external_task_id="e2") is None
    two.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A journal written by a newer schema version is not silently misread."""
    path = tmp_path / "j.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(ConfigurationError, match="schema"):
        Journal(path)
