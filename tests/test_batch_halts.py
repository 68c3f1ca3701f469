"""Fatal settings stop a batch at once; hostile answers stay one job's business."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kling_async import ClientConfig, KlingSession, TextToVideoRequest
from kling_async.batch import Batch, JobResult, NotStartedError
from kling_async.testing import FakeConfig, run_fake_gateway
from kling_async.testing._pytest_plugin import fast_session_options

SCALE = 0.001
HANG_GUARD = 60.0  # seconds; only to turn a hang into a failure, never a timing check
JOBS = 50


def t2v(i: int) -> TextToVideoRequest:
    return TextToVideoRequest(prompt=f"a lynx number {i}")


async def run_all(batch: Batch, items: Any) -> list[JobResult]:
    batch.submit_all(items)
    return [result async for result in batch]


@pytest.mark.parametrize(
    ("session_settings", "reason", "setting"),
    [
        ({"api_key": "wrong-key"}, "key", "KLING_API_KEY"),
        ({"endpoint_path": "wrong-path"}, "route", "KLING_ENDPOINT_PATH"),
    ],
)
async def test_a_wrong_setting_halts_the_batch_at_once_and_names_it(
    session_settings: dict[str, str], reason: str, setting: str
) -> None:
    """Wrong key or path: a handful of creates, the rest not started (resumable), setting named."""
    async with run_fake_gateway(FakeConfig(time_scale=SCALE)) as fake:
        settings = {"api_key": fake.config.api_key, "endpoint_path": fake.config.endpoint_path}
        settings.update(session_settings)
        config = ClientConfig(
            base_url=fake.url, turbo_base_url=fake.url, **settings, **fast_session_options()
        )
        async with KlingSession(config=config) as session:
            with anyio.fail_after(HANG_GUARD):
                async with Batch(session, max_running=10) as batch:
                    results = await run_all(batch, [(f"j{i}", t2v(i)) for i in range(JOBS)])
        stats = fake.stats()
    summary = batch.summary()
    errors = [r for r in results if r.status == "error"]
    skipped = [r for r in results if r.status == "not_started"]
    assert len(results) == JOBS
    assert len(errors) + len(skipped) == JOBS
    # Only the creates already in flight when the first refusal came back were sent.
    assert summary.creates <= 10
    assert stats["create_requests"] <= 10
    assert len(skipped) >= JOBS - 10
    for result in skipped:
        assert isinstance(result.error, NotStartedError)
        assert result.error.reason == reason
        assert result.error.setting is not None
        assert setting in result.error.setting
    assert summary.halted is not None
    assert setting in summary.halted
    assert batch.halted is not None
    assert batch.halted.reason == reason


async def test_stop_admitting_is_not_reported_as_a_halt() -> None:
    """A user stop ends jobs not_started but names no wrong setting."""
    async with (
        run_fake_gateway(FakeConfig(time_scale=SCALE)) as fake,
        fake.session(**fast_session_options()) as session,
        Batch(session, max_running=1) as batch,
    ):
        batch.stop_admitting("user")
        results = await run_all(batch, [t2v(i) for i in range(3)])
    assert {r.status for r in results} == {"not_started"}
    assert batch.summary().halted is None


async def test_hostile_answers_end_single_jobs_never_the_batch() -> None:
    """Malformed, deep, non-finite and wrongly typed answers: the batch ends, nothing twice."""
    hostile = {
        "non_json": 1.0,
        "bad_code": 1.0,
        "deep_nesting": 1.0,
        "nan_index": 1.0,
        "non_finite": 1.0,
        "wrong_types": 1.0,
        "drop_after_store": 1.0,
    }
    config = FakeConfig(time_scale=SCALE, fault_rate=0.2, fault_mix=hostile, seed=17)
    async with run_fake_gateway(config) as fake:
        async with fake.session(**fast_session_options()) as session:
            with anyio.fail_after(HANG_GUARD):
                async with Batch(session, max_running=8, lookup_patience=0.5) as batch:
                    results = await run_all(batch, [(f"h{i}", t2v(i)) for i in range(30)])
        stats = fake.stats()
    assert stats["faults_injected"] > 5
    assert len(results) == 30
    assert {r.key for r in results} == {f"h{i}" for i in range(30)}
    assert stats["duplicate_external_ids"] == 0
    assert stats["creates"] == 30
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
