"""Pure backoff and polling schedules, and ``Retry-After`` parsing.

Nothing here sleeps: callers get numbers of seconds. :func:`set_testing` makes every
SDK-internal delay zero, so a test suite exercising retries runs instantly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from ._config import PollPolicy

__all__ = [
    "backoff_delay",
    "is_testing",
    "parse_retry_after",
    "pause_seconds",
    "poll_delays",
    "set_testing",
]

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


def parse_retry_after(
    value: str | None, *, now: datetime | None = None, maximum: float | None = None
) -> float | None:
    """Parse a ``Retry-After`` header: delta-seconds or an HTTP date.

    A hint is advice from a server that may be wrong or hostile: non-finite
    (``inf``, ``nan``) and unparseable values are ignored, a negative one counts as
    0 (no pause beyond the caller's own backoff), and a value above ``maximum`` is
    cut to it, so no hint can pause a caller for long.

    Args:
        value: The header value.
        now: Current time for the date form (default: now, UTC).
        maximum: Cap of the result, seconds (``None``: no cap).

    Returns:
        Seconds to wait (0 for a negative value or a date in the past), or ``None``
        when absent, non-finite or unparseable.
    """
    if not value:
        return None
    text = value.strip()
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _seconds_until_date(text, now)
    else:
        if not math.isfinite(seconds):
            return None
        seconds = max(0.0, seconds)
    if seconds is None:
        return None
    return seconds if maximum is None else min(seconds, maximum)


def _seconds_until_date(text: str, now: datetime | None) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    try:
        delta = (when - current).total_seconds()
    except OverflowError:
        return None
    return max(0.0, delta) if math.isfinite(delta) else None


def pause_seconds(
    backoff: float, retry_after: float | None, *, remaining: float | None
) -> float | None:
    """How long to pause before the next attempt, never past the caller's deadline.

    Args:
        backoff: The computed backoff, seconds.
        retry_after: The server's (already capped) hint, seconds, or ``None``.
        remaining: Seconds left before the caller's deadline, or ``None`` for none.

    Returns:
        Seconds to pause: the larger of the backoff and the hint (the hint is
        ignored under :func:`set_testing`), cut to ``remaining``; ``None`` when the
        deadline has passed and no further attempt should be made.
    """
    delay = backoff
    if retry_after is not None and not _testing:
        delay = max(delay, retry_after)
    if remaining is None:
        return delay
    if remaining <= 0:
        return None
    return min(delay, remaining)


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
