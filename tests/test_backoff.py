"""Pure schedules: backoff, Retry-After, poll and reconcile delays, time scaling, rate limits."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import anyio
import pytest

from kling_async import ConfigurationError, KlingSession, TextToVideoRequest
from kling_async._backoff import (
    backoff_delay,
    parse_retry_after,
    pause_seconds,
    poll_delays,
    set_testing,
)
from kling_async._config import ClientConfig, PollPolicy, RetryPolicy
from kling_async._create import reconcile_delays
from kling_async._ratelimit import RateLimiter
from kling_async.testing._pytest_plugin import FakeFactory


def test_backoff_is_full_jitter_and_capped() -> None:
    """Delays stay in [0, min(max, initial*mult^(n-1))] and reach the cap."""
    rng = random.Random(1)
    for attempt in range(1, 12):
        bound = min(8.0, 0.5 * 2 ** (attempt - 1))
        samples = [backoff_delay(attempt, initial=0.5, maximum=8.0, rng=rng) for _ in range(200)]
        assert all(0.0 <= s <= bound for s in samples)
        assert max(samples) > bound * 0.8


def test_testing_switch_zeroes_delays() -> None:
    """set_testing(True) makes every computed delay zero."""
    set_testing(True)
    try:
        assert backoff_delay(5, initial=1, maximum=10) == 0.0
        delays = poll_delays(PollPolicy(initial_delay=30))
        assert [next(delays) for _ in range(3)] == [0.0, 0.0, 0.0]
    finally:
        set_testing(False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-2", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    """Delta-seconds parse; junk and absence give None; negatives clamp to 0."""
    assert parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    """The HTTP-date form is turned into seconds from now."""
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(90.0)


def test_poll_delays_start_late_then_grow_to_a_cap() -> None:
    """The first delay is initial_delay; later ones grow geometrically up to max_interval."""
    policy = PollPolicy(initial_delay=20, interval=5, multiplier=2, max_interval=30, jitter=0)
    delays = poll_delays(policy)
    assert [next(delays) for _ in range(6)] == [20, 5, 10, 20, 30, 30]


def test_poll_delays_jitter_stays_within_bounds() -> None:
    """Jitter moves each delay by at most the configured fraction."""
    policy = PollPolicy(initial_delay=10, interval=10, multiplier=1, max_interval=10, jitter=0.2)
    delays = poll_delays(policy, random.Random(3))
    samples = [next(delays) for _ in range(100)]
    assert all(8.0 <= s <= 12.0 for s in samples)
    assert len(set(samples)) > 50


async def test_rate_limiter_spaces_requests() -> None:
    """At rate R with burst 1, N acquires span at least (N-1)/R seconds of schedule."""
    limiter = RateLimiter(200.0)
    start = time.monotonic()
    for _ in range(5):
        await limiter.acquire()
    # Schedule-based, not a timing assertion: the limiter's own next slot moved 5/R ahead.
    assert limiter._next - start >= 5 / 200.0 - 1e-9
    assert limiter.requests == 5


async def test_rate_limiter_pause_holds_acquirers() -> None:
    """pause() pushes the next slot past the pause end."""
    limiter = RateLimiter(1000.0, burst=10)
    limiter.pause(0.05)
    await limiter.acquire()
    assert time.monotonic() >= limiter._paused_until


def test_rate_limiter_rejects_nonsense() -> None:
    """A zero rate is a configuration error, said at construction."""
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(0)


async def test_rate_limiter_is_shared_fairly() -> None:
    """Concurrent acquirers all get through."""
    limiter = RateLimiter(500.0, burst=5)
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(limiter.acquire)
    assert limiter.requests == 20


def test_retry_after_cap_and_non_finite_values() -> None:
    """A hint above the cap is cut to it; inf, nan and overflowing dates are ignored."""
    assert parse_retry_after("1e9", maximum=60.0) == 60.0
    assert parse_retry_after("inf", maximum=60.0) is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", maximum=60.0) == 60.0
    assert parse_retry_after("Mon, 01 Jan 2001 00:00:00 GMT") == 0.0


def test_pause_never_passes_the_deadline() -> None:
    """pause_seconds takes the larger of backoff and hint, cut to the time left, None when gone."""
    assert pause_seconds(1.0, 5.0, remaining=None) == 5.0
    assert pause_seconds(1.0, 5.0, remaining=2.0) == 2.0
    assert pause_seconds(3.0, None, remaining=10.0) == 3.0
    assert pause_seconds(1.0, 5.0, remaining=0.0) is None


def test_reconcile_lookups_are_finite_and_back_off() -> None:
    """Lookup pauses grow by 1.5 up to the cap and cover the window in a finite count."""
    policy = RetryPolicy(reconcile_interval=1.0, max_delay=4.0)
    delays = list(reconcile_delays(policy, 20.0))
    assert delays[:4] == [1.0, 1.5, 2.25, 3.375]
    assert max(delays) == 4.0
    assert sum(delays) >= 20.0
    assert list(reconcile_delays(policy, 0.0)) == []
    set_testing(True)
    try:
        assert list(reconcile_delays(policy, 20.0)) == [0.0] * len(delays)
    finally:
        set_testing(False)


def test_time_scaled_shrinks_every_delay_on_the_gateways_clock() -> None:
    """time_scaled(0.01) scales polls, backoff, reconcile and the slot TTL; not HTTP timeouts."""
    base = ClientConfig(api_key="k", endpoint_path="e")
    fast = base.time_scaled(0.01)
    assert fast.poll.initial_delay == pytest.approx(base.poll.initial_delay * 0.01)
    assert fast.poll.interval == pytest.approx(base.poll.interval * 0.01)
    assert fast.poll.max_interval == pytest.approx(base.poll.max_interval * 0.01)
    assert fast.retry.initial_delay == pytest.approx(base.retry.initial_delay * 0.01)
    assert fast.retry.max_delay == pytest.approx(base.retry.max_delay * 0.01)
    assert fast.retry.reconcile_interval == pytest.approx(base.retry.reconcile_interval * 0.01)
    assert fast.retry.reconcile_grace == pytest.approx(base.retry.reconcile_grace * 0.01)
    assert fast.retry.max_retry_after == pytest.approx(base.retry.max_retry_after * 0.01)
    assert fast.slot_ttl == pytest.approx(base.slot_ttl * 0.01)
    assert fast.timeouts == base.timeouts
    assert fast.api_key == base.api_key


def test_time_scaled_deadlines_keep_a_floor() -> None:
    """Scaled deadlines never drop below min_deadline (this machine does not speed up)."""
    base = ClientConfig(api_key="k", endpoint_path="e")
    fast = base.time_scaled(0.001, min_deadline=30.0)
    assert fast.poll.timeout == 30.0
    assert fast.retry.reconcile_deadline == 30.0
    slow = base.time_scaled(2.0)
    assert slow.poll.timeout == base.poll.timeout * 2.0
    assert base.time_scaled(1.0) is base


@pytest.mark.parametrize("factor", [0.0, -1.0, float("inf"), float("nan")])
def test_time_scaled_refuses_nonsense(factor: float) -> None:
    """A factor that is not a positive finite number is a configuration error."""
    with pytest.raises(ConfigurationError, match="factor"):
        ClientConfig(api_key="k", endpoint_path="e").time_scaled(factor)


async def test_a_time_scaled_session_finishes_on_a_fast_fake(
    kling_fake_factory: FakeFactory,
) -> None:
    """A session configured with time_scaled(fake.time_scale) runs a task on the fake quickly."""
    async with kling_fake_factory() as fake:
        config = ClientConfig(
            api_key=fake.config.api_key,
            endpoint_path=fake.config.endpoint_path,
            base_url=fake.url,
            turbo_base_url=fake.url,
        ).time_scaled(fake.config.time_scale)
        async with KlingSession(config=config) as session:
            with anyio.fail_after(60):
                task = await session.text_to_video.run(TextToVideoRequest(prompt="x"))
    assert task.succeeded
