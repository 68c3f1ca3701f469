"""Public resume: a batch reopened on a journal follows, downloads and yields unfinished jobs."""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from kling_async import ImageGenerationRequest, KlingSession, TextToVideoRequest
from kling_async._converter import to_payload
from kling_async._endpoints import endpoint_for_request
from kling_async._journal import JobState, Journal, JournalMismatchError, fingerprint
from kling_async.batch import Event, EventKind, NotStartedError
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway
from kling_async.testing._pytest_plugin import fast_session_options

HANG_GUARD = 60.0  # seconds; only to turn a hang into a failure, never a timing check
LONG = {
    "time_scale": 1.0,
    "video_median": 200.0,
    "image_median": 200.0,
    "video_sigma": 0.0,
    "image_sigma": 0.0,
}
#: Tasks of about a second: the abrupt end comes long before any ends.
SHORT = {"time_scale": 0.01, "video_sigma": 0.0}
END_ALL = 1_000.0  # seconds of fake clock: every task ends, no result URL expires yet


def t2v(i: int) -> TextToVideoRequest:
    return TextToVideoRequest(prompt=f"a kingfisher number {i}")


@contextlib.asynccontextmanager
async def fake_and_session(**config: Any) -> AsyncIterator[tuple[FakeGateway, KlingSession]]:
    """A fake whose tasks run until advanced, and a session that polls it fast."""
    async with (
        run_fake_gateway(FakeConfig(**config)) as fake,
        fake.session(**fast_session_options()) as session,
    ):
        yield fake, session


def journal_entries(path: Path) -> dict[str, Any]:
    journal = Journal(path)
    try:
        return {entry.key: entry for entry in journal.entries()}
    finally:
        journal.close()


class CancelAfterCreates:
    """Cancels a scope once ``count`` tasks exist: the batch ends as abruptly as on SIGTERM."""

    def __init__(self, scope: anyio.CancelScope, count: int) -> None:
        self.scope = scope
        self.count = count
        self.created = 0

    def __call__(self, event: Event) -> None:
        if event.kind is EventKind.CREATED:
            self.created += 1
            if self.created == self.count:
                self.scope.cancel()


async def end_abruptly(session: KlingSession, journal: Path, out: Path, jobs: list[Any]) -> None:
    """Open a batch with a journal, submit ``jobs``, and cancel it once 5 tasks exist."""
    with anyio.CancelScope() as scope:
        hook = CancelAfterCreates(scope, 5)
        async with session.batch(
            max_running=5, journal=journal, download_dir=out, on_event=hook
        ) as batch:
            batch.submit_all(jobs)
            async for _ in batch:
                pass
    assert scope.cancelled_caught


async def test_an_abrupt_end_then_resume_downloads_every_created_task(tmp_path: Path) -> None:
    """Cancelled with 5 created: reopened with resume_unfinished, all 5 are yielded, 0 creates."""
    journal, out = tmp_path / "web.db", tmp_path / "out"
    jobs = [(f"clip-{i}", t2v(i)) for i in range(10)]
    async with fake_and_session(max_running=5, **LONG) as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            await end_abruptly(session, journal, out, jobs)
            creates = fake.stats()["creates"]
            fake.advance(END_ALL)  # every task ends while nobody watches
            async with session.batch(
                journal=journal, download_dir=out, resume_unfinished=True
            ) as batch:
                results = [r async for r in batch]
        stats = fake.stats()
    assert creates == 5
    assert stats["creates"] == 5
    assert batch.summary().creates == 0
    assert sorted(r.key for r in results) == sorted(
        key for key, e in journal_entries(journal).items() if e.task_id
    )
    assert len(results) == 5
    for result in results:
        assert result.ok
        (saved,) = result.files
        assert saved.path == out / f"{result.key}.mp4"
        assert hashlib.sha256(saved.path.read_bytes()).hexdigest() == saved.sha256
    entries = journal_entries(journal)
    assert sum(e.state is JobState.SUCCEED and e.downloaded for e in entries.values()) == 5
    assert sum(e.state is JobState.PENDING for e in entries.values()) == 5


async def test_resume_then_submitting_the_same_jobs_creates_only_the_rest(tmp_path: Path) -> None:
    """resume_unfinished() takes up 5; submitting all 10 again adopts those, creates 5 more."""
    journal, out = tmp_path / "web.db", tmp_path / "out"
    jobs = [(f"clip-{i}", t2v(i)) for i in range(10)]
    async with fake_and_session(max_running=5, **SHORT) as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            await end_abruptly(session, journal, out, jobs)
            async with session.batch(max_running=5, journal=journal, download_dir=out) as batch:
                assert await batch.resume_unfinished() == 5
                assert await batch.resume_unfinished() == 0  # already taken up
                resumed = batch.job("clip-0")
                assert resumed is not None
                assert resumed.cancel() is False  # its task exists: too late
                assert batch.job("clip-9") is None  # never sent: not resumed
                adopted = batch.submit(jobs[0][1], key=jobs[0][0])
                batch.submit_all(jobs[1:])
                results = [r async for r in batch]
                first = await adopted.wait()
                assert batch.job("clip-0") is None  # ended: the batch forgot it
        stats = fake.stats()
    assert stats["creates"] == 10
    assert stats["duplicate_external_ids"] == 0
    assert sorted(r.key for r in results) == sorted(key for key, _ in jobs)
    assert all(r.ok for r in results)
    assert first.key == "clip-0"
    assert first.ok


async def test_a_resumed_key_submitted_with_another_request_is_refused(tmp_path: Path) -> None:
    """Adopting a resumed job checks the request against the journal, like any resubmission."""
    journal, out = tmp_path / "web.db", tmp_path / "out"
    jobs = [(f"clip-{i}", t2v(i)) for i in range(6)]
    async with fake_and_session(max_running=5, **LONG) as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            await end_abruptly(session, journal, out, jobs)
            fake.advance(END_ALL)
            async with session.batch(
                journal=journal, download_dir=out, resume_unfinished=True
            ) as batch:
                with pytest.raises(JournalMismatchError):
                    batch.submit(t2v(99), key="clip-0")
                results = [r async for r in batch]
    assert len(results) == 5


async def test_unconfirmed_creates_are_looked_up_never_sent(tmp_path: Path) -> None:
    """Rows left 'creating': a task found by external id is followed; a missing one is not sent."""
    journal_path, out = tmp_path / "web.db", tmp_path / "out"
    landed, lost = ImageGenerationRequest(prompt="a wren", n=2), t2v(7)
    async with fake_and_session(**LONG) as (fake, session):
        journal = Journal(journal_path, batch_id="b1")
        for key, request, ext in (("landed", landed, "ext-landed"), ("lost", lost, "ext-lost")):
            payload = to_payload(request)
            name = endpoint_for_request(request).name
            journal.record(
                key,
                endpoint=name,
                fingerprint=fingerprint(name, payload),
                external_task_id=ext,
                request=payload,
            )
            journal.mark_creating(key)
        journal.close()
        await session.create(landed, external_task_id="ext-landed")  # the create that landed
        fake.advance(END_ALL)
        with anyio.fail_after(HANG_GUARD):
            async with session.batch(
                journal=journal_path, download_dir=out, resume_unfinished=True
            ) as batch:
                results = {r.key: r async for r in batch}
        stats = fake.stats()
    assert stats["creates"] == 1
    assert results["landed"].ok
    assert [f.path.name for f in results["landed"].files] == ["landed-1.png", "landed-2.png"]
    assert results["lost"].status == "not_started"
    assert isinstance(results["lost"].error, NotStartedError)
    assert results["lost"].error.reason == "resume"
    entries = journal_entries(journal_path)
    assert entries["landed"].state is JobState.SUCCEED
    assert entries["lost"].state is JobState.CREATING  # a resubmission looks it up first


#: The child of the SIGTERM test: one batch of 10 jobs, killed by SIGTERM at the 5th task.
CHILD = r"""
import asyncio, os, signal, sys
from kling_async import ClientConfig, KlingSession, TextToVideoRequest
from kling_async.testing._pytest_plugin import fast_session_options

url, journal, out = sys.argv[1:4]
created = 0

def hook(event):
    global created
    if event.kind.value == "created":
        created += 1
        if created == 5:
            os.kill(os.getpid(), signal.SIGTERM)

async def main():
    config = ClientConfig(
        api_key="test-key", endpoint_path="test-endpoint", base_url=url, turbo_base_url=url,
        **fast_session_options(),
    )
    async with KlingSession(config=config) as session:
        async with session.batch(
            max_running=5, journal=journal, download_dir=out, on_event=hook
        ) as batch:
            batch.submit_all((f"clip-{i}", TextToVideoRequest(prompt=f"a kingfisher number {i}"))
                             for i in range(10))
            async for _ in batch:
                pass

asyncio.run(main())
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGTERM")
async def test_sigterm_then_restart_with_resume_downloads_every_created_task(
    tmp_path: Path,
) -> None:
    """A child SIGTERMed with 5 tasks created; the restart resumes them: 5 files, 5 creates."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    journal, out = tmp_path / "web.db", tmp_path / "out"
    async with fake_and_session(max_running=5, **LONG) as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            done = await anyio.run_process(
                [sys.executable, str(script), fake.url, str(journal), str(out)], check=False
            )
            assert done.returncode == -15, done.stderr.decode()[-2000:]
            assert fake.stats()["creates"] == 5
            fake.advance(END_ALL)
            async with session.batch(
                journal=journal, download_dir=out, resume_unfinished=True
            ) as batch:
                results = [r async for r in batch]
        stats = fake.stats()
    assert stats["creates"] == 5
    assert len(results) == 5
    assert all(r.ok and r.files[0].path.is_file() for r in results)
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(f"{r.key}.mp4" for r in results)
