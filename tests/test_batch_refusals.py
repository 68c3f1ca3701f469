"""Refusals are evidence: callbacks, probing and an over-quota window stay near-silent."""

from __future__ import annotations

import contextlib

import anyio
import pytest

from kling_async import TextToVideoRequest
from kling_async._callbacks import CallbackReceiver
from kling_async.batch import Batch
from kling_async.testing import FakeConfig, run_fake_gateway
from kling_async.testing._pytest_plugin import fast_session_options

SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
HANG_GUARD = 120.0  # seconds; only to turn a hang into a failure, never a timing check
JOBS = 50
QUOTA = 5


@pytest.mark.parametrize("callbacks", [False, True])
async def test_above_quota_and_probing_draw_a_handful_of_refusals(callbacks: bool) -> None:
    """50 jobs, quota 5, max_running 10, probing: ~60 refusals with callbacks, bounded without."""
    config = FakeConfig(
        time_scale=0.005, max_running=QUOTA, webhook_secret=SECRET if callbacks else None, seed=3
    )
    receiver = CallbackReceiver(secret=SECRET) if callbacks else None
    requests = [TextToVideoRequest(prompt=f"a gull {i}") for i in range(JOBS)]
    async with contextlib.AsyncExitStack() as stack:
        fake = await stack.enter_async_context(run_fake_gateway(config))
        session = await stack.enter_async_context(fake.session(**fast_session_options()))
        if receiver is not None:
            await stack.enter_async_context(receiver.serve())
        with anyio.fail_after(HANG_GUARD):
            async with Batch(
                session,
                max_running=2 * QUOTA,
                probe_slots=True,
                callbacks=receiver,
                max_refusals_per_second=1000.0,  # measure the scheduler, not the breaker
                seed=1,
            ) as batch:
                batch.submit_all(requests)
                results = [r async for r in batch]
        stats = fake.stats()
    assert len(results) == JOBS
    assert all(r.ok for r in results)
    assert stats["creates"] == JOBS
    assert stats["max_running_observed"] <= QUOTA
    # With callbacks nothing is probed for (ends are reported): a handful. Without,
    # probes fill freed slots early; refused ones back off after a few in a row.
    bound = 60 if callbacks else 15 * JOBS
    assert stats["concurrency_limited"] <= bound, stats["concurrency_limited"]
    assert batch.summary().concurrency_limited == stats["concurrency_limited"]
