"""Pure schedules: backoff, Retry-After parsing, poll delays and the rate limiter."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import anyio
import pytest

from kling_async._backoff import backoff_delay, parse_retry_after, poll_delays, set_testing
from kling_async._config import PollPolicy
from kling_async._ratelimit import RateLimiter


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
