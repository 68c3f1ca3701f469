"""A graceful stop: stop_admitting() then drain(): nothing queued is created, running tasks end."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from kling_async import KlingSession, TextToVideoRequest
from kling_async._journal import JobState, Journal
from kling_async.batch import Batch, Event, EventKind, JobCancelledError, NotStartedError
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway
from kling_async.testing._pytest_plugin import fast_session_options

SCALE = 0.001
HANG_GUARD = 60.0  # seconds; only to turn a hang into a failure, never a timing check


def t2v(i: int) -> TextToVideoRequest:
    return TextToVideoRequest(prompt=f"a heron number {i}")


@contextlib.asynccontextmanager
async def fake_and_session(**config: Any) -> AsyncIterator[tuple[FakeGateway, KlingSession]]:
    config.setdefault("time_scale", SCALE)
    async with (
        run_fake_gateway(FakeConfig(**config)) as fake,
        fake.session(**fast_session_options(config["time_scale"])) as session,
    ):
        yield fake, session


def states(path: Path) -> dict[str, JobState]:
    journal = Journal(path)
    try:
        return {entry.key: entry.state for entry in journal.entries()}
    finally:
        journal.close()


class StopAfterCreates:
    """An on_event hook that stops the batch once ``count`` tasks exist, like a first Ctrl-C."""

    def __init__(self, fake: FakeGateway, count: int) -> None:
        self.fake = fake
        self.count = count
        self.batch: Batch | None = None
        self.created = 0
        self.creates_at_stop: int | None = None
        self.stopped = anyio.Event()

    def __call__(self, event: Event) -> None:
        if event.kind is EventKind.CREATED:
            self.created += 1
            if self.created == self.count:
                self.creates_at_stop = self.fake.stats()["creates"]
                if self.batch is not None:
                    self.batch.stop_admitting("signal")
                self.stopped.set()


async def test_a_stop_with_25_queued_creates_nothing_more(tmp_path: Path) -> None:
    """Quota 5, 30 jobs, stopped at 5 created: 0 creates after it, 5 end, 25 not started."""
    journal = tmp_path / "run.db"
    async with fake_and_session(max_running=5) as (fake, session):
        stop = StopAfterCreates(fake, 5)
        with anyio.fail_after(HANG_GUARD):
            async with session.batch(
                max_running=5, journal=journal, download_dir=tmp_path / "out", on_event=stop
            ) as batch:
                stop.batch = batch
                batch.submit_all([(f"clip-{i}", t2v(i)) for i in range(30)])
                await stop.stopped.wait()
                left = await batch.drain(HANG_GUARD)
                results = [r async for r in batch]
        creates_at_end = fake.stats()["creates"]
    assert left == 0
    assert stop.creates_at_stop == 5
    assert creates_at_end == 5
    by_status: dict[str, list[Any]] = {}
    for result in results:
        by_status.setdefault(result.status, []).append(result)
    assert len(by_status["succeed"]) == 5
    assert all(r.files for r in by_status["succeed"])
    assert len(by_status["not_started"]) == 25
    assert {r.error.reason for r in by_status["not_started"]} == {"signal"}
    assert batch.summary().creates == 5
    recorded = states(journal)
    assert sorted(recorded.values()).count(JobState.NOT_STARTED) == 25
    assert sorted(recorded.values()).count(JobState.SUCCEED) == 5


async def test_jobs_not_started_by_a_drain_are_created_by_the_next_run(tmp_path: Path) -> None:
    """The 25 jobs a drain left journaled not_started are created on the next run; the 5 are not."""
    journal = tmp_path / "run.db"
    jobs = [(f"clip-{i}", t2v(i)) for i in range(30)]
    async with fake_and_session(max_running=5) as (fake, session):
        stop = StopAfterCreates(fake, 5)
        with anyio.fail_after(HANG_GUARD):
            async with session.batch(max_running=5, journal=journal, on_event=stop) as batch:
                stop.batch = batch
                batch.submit_all(jobs)
                await stop.stopped.wait()
                await batch.drain()
            async with session.batch(max_running=5, journal=journal) as again:
                again.submit_all(jobs)
                results = [r async for r in again]
        stats = fake.stats()
    assert stats["creates"] == 30
    assert stats["duplicate_external_ids"] == 0
    assert all(r.ok for r in results)
    assert sum(r.resumed for r in results) == 5


async def test_a_drain_that_times_out_leaves_running_tasks_in_the_journal(tmp_path: Path) -> None:
    """Tasks still running past the grace stay 'created'; leaving the block does not wait."""
    journal = tmp_path / "run.db"
    async with fake_and_session(time_scale=1.0, video_median=1000.0) as (fake, session):
        created = StopAfterCreates(fake, 3)  # not given the batch: it only counts
        with anyio.fail_after(HANG_GUARD):
            async with session.batch(max_running=3, journal=journal, on_event=created) as batch:
                handles = [batch.submit(t2v(i), key=f"long-{i}") for i in range(3)]
                await created.stopped.wait()
                left = await batch.drain(0.05)
            outcomes = [await h.wait() for h in handles]
    assert left == 3
    assert all(isinstance(o.error, JobCancelledError) for o in outcomes)
    assert set(states(journal).values()) == {JobState.CREATED}


async def test_a_drain_reads_no_more_of_a_lazy_source(tmp_path: Path) -> None:
    """Items of a generator not read before the drain are never read, recorded or created."""
    pulled: list[int] = []

    def items() -> Iterator[tuple[str, TextToVideoRequest]]:
        for i in range(200):
            pulled.append(i)
            yield f"lazy-{i}", t2v(i)

    journal = tmp_path / "run.db"
    async with fake_and_session(max_running=2) as (fake, session):
        stop = StopAfterCreates(fake, 2)
        with anyio.fail_after(HANG_GUARD):
            async with session.batch(max_running=2, journal=journal, on_event=stop) as batch:
                stop.batch = batch
                batch.submit_all(items())
                await stop.stopped.wait()
                assert await batch.drain() == 0
                results = [r async for r in batch]
        creates = fake.stats()["creates"]
    assert creates == 2
    assert len(pulled) < 200
    assert len(states(journal)) == len(results) <= len(pulled)


async def test_after_a_drain_new_submissions_end_not_started() -> None:
    """A job submitted after the drain began is never created: it ends not_started at once."""
    async with fake_and_session() as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            async with session.batch(max_running=2) as batch:
                assert await batch.drain() == 0
                late = batch.submit(t2v(1), key="late")
                result = await late.wait()
        assert fake.stats()["creates"] == 0
    assert result.status == "not_started"
    assert isinstance(result.error, NotStartedError)
    assert result.error.reason == "draining"


async def test_drain_outside_the_block_is_refused() -> None:
    """drain() needs an open batch."""
    async with fake_and_session() as (_, session):
        batch = Batch(session)
        with pytest.raises(RuntimeError, match="inside"):
            await batch.drain()
