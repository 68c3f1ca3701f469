"""Pure backoff and polling schedules, and ``Retry-After`` parsing.

Nothing here sleeps: callers get numbers of seconds. :func:`set_testing` makes every
SDK-internal delay zero, so a test suite exercising retries runs instantly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from ._config import PollPolicy

__all__ = ["backoff_delay", "is_testing", "parse_retry_after", "poll_delays", "set_testing"]

_testing = False
_rng = random.Random()


def set_testing(enabled: bool) -> None:
    """Zero every retry, reconcile and poll delay the SDK computes (for test suites).

    Args:
        enabled: ``True`` to make delays zero, ``False`` to restore them.
    """
    global _testing
    _testing = enabled


def is_testing() -> bool:
    """Whether :func:`set_testing` is on.

    Returns:
        The current switch.
    """
    return _testing


def backoff_delay(
    attempt: int,
    *,
    initial: float,
    maximum: float,
    multiplier: float = 2.0,
    rng: random.Random | None = None,
) -> float:
    """Capped exponential backoff with full jitter.

    Args:
        attempt: 1 for the delay before the first retry, 2 for the second...
        initial: Bound of the first delay, seconds.
        maximum: Cap of any delay, seconds.
        multiplier: Growth of the bound per attempt.
        rng: Random source (default: module-level).

    Returns:
        Seconds to wait: uniform in ``[0, min(maximum, initial * multiplier**(attempt-1))]``.
    """
    if _testing:
        return 0.0
    bound = min(maximum, initial * multiplier ** max(0, attempt - 1))
    return (rng or _rng).uniform(0.0, bound)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header: delta-seconds or an HTTP date.

    Args:
        value: The header value.
        now: Current time for the date form (default: now, UTC).

    Returns:
        Seconds to wait (never negative), or ``None`` when absent or unparseable.
    """
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())


def poll_delays(policy: PollPolicy, rng: random.Random | None = None) -> Iterator[float]:
    """The delays ``wait`` sleeps between polls: late start, then geometric with jitter.

    Args:
        policy: The poll policy.
        rng: Random source (default: module-level).

    Yields:
        Seconds before each successive poll (infinite).
    """
    source = rng or _rng

    def jittered(value: float) -> float:
        if _testing:
            return 0.0
        spread = value * policy.jitter
        return max(0.0, value + source.uniform(-spread, spread))

    yield jittered(policy.initial_delay)
    interval = policy.interval
    while True:
        yield jittered(min(interval, policy.max_interval))
        interval = min(policy.max_interval, interval * policy.multiplier)
