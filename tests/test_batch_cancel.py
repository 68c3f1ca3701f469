"""JobHandle.cancel(): a queued job is withdrawn (never created, never paid); a sent one is not."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from kling_async import KlingSession, TextToVideoRequest
from kling_async._journal import JobState, Journal
from kling_async.batch import Event, EventKind, JobHandle, NotStartedError
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway
from kling_async.testing._pytest_plugin import fast_session_options

SCALE = 0.001
HANG_GUARD = 60.0  # seconds; only to turn a hang into a failure, never a timing check


def t2v(i: int) -> TextToVideoRequest:
    return TextToVideoRequest(prompt=f"a swift number {i}")


@contextlib.asynccontextmanager
async def fake_and_session(**config: Any) -> AsyncIterator[tuple[FakeGateway, KlingSession]]:
    async with (
        run_fake_gateway(FakeConfig(time_scale=SCALE, **config)) as fake,
        fake.session(**fast_session_options()) as session,
    ):
        yield fake, session


async def test_a_queued_job_is_withdrawn_and_never_created(tmp_path: Path) -> None:
    """Quota 1, three jobs: the queued middle one is cancelled, never created, journaled so."""
    journal = tmp_path / "run.db"
    async with fake_and_session(max_running=1) as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            async with session.batch(max_running=1, journal=journal) as batch:
                first = batch.submit(t2v(0), key="first")
                middle = batch.submit(t2v(1), key="middle")
                last = batch.submit(t2v(2), key="last")
                found = batch.job("middle")
                assert found is not None
                assert found.external_task_id == middle.external_task_id
                assert middle.cancel() is True
                assert batch.job("middle") is None
                assert middle.done()
                results = {r.key: r for r in [r async for r in batch]}
        stats = fake.stats()
    assert stats["creates"] == 2
    assert [t["external_task_id"] for t in fake.task_records()] == [
        first.external_task_id,
        last.external_task_id,
    ]
    withdrawn = results["middle"]
    assert withdrawn.status == "not_started"
    assert isinstance(withdrawn.error, NotStartedError)
    assert withdrawn.error.reason == "cancelled"
    assert results["first"].ok
    assert results["last"].ok
    assert batch.summary().not_started == 1
    reader = Journal(journal)
    try:
        entry = reader.get("middle")
    finally:
        reader.close()
    assert entry is not None
    assert entry.state is JobState.NOT_STARTED


async def test_cancel_is_refused_once_the_create_was_sent() -> None:
    """Cancelling a job whose task exists returns False; the task is followed to its end."""
    answers: list[bool] = []
    handles: dict[str, JobHandle] = {}

    def hook(event: Event) -> None:
        if event.kind is EventKind.CREATED and event.key in handles:
            answers.append(handles[event.key].cancel())

    async with fake_and_session() as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            async with session.batch(max_running=2, on_event=hook) as batch:
                handles["sent"] = batch.submit(t2v(0), key="sent")
                result = await handles["sent"].wait()
        assert fake.stats()["creates"] == 1
    assert answers == [False]
    assert result.ok
    assert handles["sent"].cancel() is False  # ended: too late as well


async def test_a_job_held_back_by_the_results_bound_can_be_cancelled() -> None:
    """With max_buffered_results, a job waiting behind unread results is withdrawn too."""
    async with fake_and_session() as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            async with session.batch(max_running=1, max_buffered_results=1) as batch:
                first = batch.submit(t2v(0), key="first")
                await first.wait()  # its result now waits, unread: the bound is reached
                held = batch.submit(t2v(1), key="held")
                assert held.cancel() is True
                results = [r async for r in batch]
        assert fake.stats()["creates"] == 1
    assert [(r.key, r.status) for r in results] == [("first", "succeed"), ("held", "not_started")]


async def test_a_cancelled_job_is_created_when_submitted_to_a_later_run(tmp_path: Path) -> None:
    """A withdrawn job is journaled not_started, so the next run on the journal creates it."""
    journal = tmp_path / "run.db"
    async with fake_and_session() as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            async with session.batch(journal=journal) as batch:
                assert batch.submit(t2v(0), key="later").cancel() is True
            async with session.batch(journal=journal) as again:
                result = await again.submit(t2v(0), key="later").wait()
        assert fake.stats()["creates"] == 1
    assert result.ok
