"""Never pay twice, never lose a paid task: the batch against lookup lag and after-store faults."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from kling_async import CreateOutcomeUnknownError, KlingSession, TextToVideoRequest
from kling_async._journal import JobState, Journal
from kling_async.batch import Batch, JobResult
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway
from kling_async.testing._pytest_plugin import fast_session_options

SCALE = 0.001  # a 100 s video takes 0.1 s
HANG_GUARD = 120.0  # seconds; only to turn a hang into a failure, never a timing check
#: The session's reconcile grace in the fast options (the old batch gave up after it).
OLD_GRACE = fast_session_options()["retry"].reconcile_grace


def t2v(i: int) -> TextToVideoRequest:
    return TextToVideoRequest(prompt=f"a heron number {i}")


@contextlib.asynccontextmanager
async def fake_and_session(**config: Any) -> AsyncIterator[tuple[FakeGateway, KlingSession]]:
    """A fake gateway with ``config`` and a fast session wired to it."""
    config.setdefault("time_scale", SCALE)
    async with (
        run_fake_gateway(FakeConfig(**config)) as fake,
        fake.session(**fast_session_options()) as session,
    ):
        yield fake, session


async def run_all(batch: Batch, items: Any) -> list[JobResult]:
    batch.submit_all(items)
    return [result async for result in batch]


async def test_lookup_lag_and_after_store_faults_never_create_twice_nor_lose_a_task() -> None:
    """Lag 3x the old grace, drops and 5xx after store: one create per job, none ends 1201."""
    lag = 3 * OLD_GRACE
    mix = {"drop_after_store": 2.0, "5xx_after_store": 1.0, "http_504": 1.0, "truncated": 1.0}
    jobs = 40
    async with fake_and_session(
        fault_rate=0.15, fault_mix=mix, lookup_lag=lag, seed=31, max_running=10
    ) as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            async with Batch(session, max_running=10, seed=5) as batch:
                results = await run_all(batch, ((f"j{i}", t2v(i)) for i in range(jobs)))
        stats = fake.stats()
    assert stats["faults_injected"] > 5
    assert stats["duplicate_external_ids"] == 0
    assert stats["creates"] == jobs
    assert len(results) == jobs
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert all(r.external_task_id for r in results)
    assert batch.summary().lookups > 0


async def test_a_job_left_unknown_is_recovered_by_the_next_run(tmp_path: Path) -> None:
    """Dropped after store and invisible past the deadline: unknown, then found by the re-run."""
    journal = tmp_path / "j.db"
    jobs = [("lost", t2v(0)), ("fine", t2v(1))]
    async with fake_and_session(lookup_lag=4 * OLD_GRACE) as (fake, session):
        fake.inject("drop_after_store", count=1, on="create")
        with anyio.fail_after(HANG_GUARD):
            async with Batch(
                session, journal=journal, max_running=1, reconcile_deadline=OLD_GRACE
            ) as first:
                first_results = {r.key: r for r in await run_all(first, jobs)}
        lost = first_results["lost"]
        assert isinstance(lost.error, CreateOutcomeUnknownError)
        assert lost.error.external_task_id == lost.external_task_id
        assert first.summary().unknown == 1
        reader = Journal(journal)
        try:
            entry = reader.get("lost")
        finally:
            reader.close()
        assert entry is not None
        assert entry.state is JobState.UNKNOWN
        assert entry.external_task_id == lost.external_task_id
        with anyio.fail_after(HANG_GUARD):
            async with Batch(session, journal=journal, max_running=1) as second:
                second_results = {r.key: r for r in await run_all(second, jobs)}
        stats = fake.stats()
    assert second_results["lost"].ok
    assert second_results["lost"].external_task_id == lost.external_task_id
    assert second_results["fine"].ok
    assert stats["creates"] == 2
    assert stats["duplicate_external_ids"] == 0
