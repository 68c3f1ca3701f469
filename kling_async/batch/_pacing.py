"""When the batch may send: the shared request-rate limiter, backoffs, and the refusal breaker.

Admission owns one :class:`Pacing`; the create and watch stages use it too, so a
1302 seen by any request pauses every request of the batch, and a burst of refused
creates, whatever its cause, pauses admissions (a hard ceiling, not a tuning knob).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable

from .._backoff import backoff_delay, is_testing
from .._config import RetryPolicy
from .._ratelimit import RateLimiter

__all__ = ["Pacing", "RefusalBreaker"]

logger = logging.getLogger("kling_async")


class RefusalBreaker:
    """A hard ceiling on refused creates per second (pure: the caller passes the clock).

    Args:
        per_second: Refusals allowed within any one-second span.
    """

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self._times: deque[float] = deque()
        #: Times the breaker tripped.
        self.trips = 0

    def refused(self, now: float) -> float:
        """Count one refusal at ``now``.

        Args:
            now: Monotonic seconds.

        Returns:
            The moment until which admissions must pause (``now`` or earlier: none).
        """
        self._times.append(now)
        self._forget_before(now)
        if len(self._times) < self.per_second:
            return now
        self.trips += 1
        # Pause until the oldest refusal in the span leaves it.
        return self._times[0] + 1.0

    def _forget_before(self, now: float) -> None:
        """Drop the refusals older than the one-second span ending at ``now``."""
        while self._times and self._times[0] <= now - 1.0:
            self._times.popleft()

    def room_at(self, now: float, share: float) -> float:
        """When the refusals of the last second will number under ``share`` of the ceiling.

        Args:
            now: Monotonic seconds.
            share: Part of ``per_second`` (0 to 1).

        Returns:
            That moment (``now`` when there is room already).
        """
        self._forget_before(now)
        excess = len(self._times) - math.ceil(self.per_second * share) + 1
        if excess <= 0:
            return now
        return self._times[excess - 1] + 1.0


class Pacing:
    """The batch's clocks for sending: rate limit, pauses of admissions, backoffs.

    Args:
        max_requests_per_second: Shared request-rate limit (``None``: none).
        max_refusals_per_second: The breaker's ceiling on refused creates.
        retry: The session's retry policy (backoff bounds).
        rng: Jitter source.
    """

    def __init__(
        self,
        *,
        max_requests_per_second: float | None,
        max_refusals_per_second: float,
        retry: RetryPolicy,
        rng: random.Random,
    ) -> None:
        self.limiter = RateLimiter(max_requests_per_second or math.inf)
        self.breaker = RefusalBreaker(max_refusals_per_second)
        self._retry = retry
        self._rng = rng
        #: No admission before this moment (monotonic).
        self.not_before = 0.0
        #: Requests refused with 1302/429 that reached the batch.
        self.limited_1302 = 0
        #: Told the length of every 1302 pause (a shared store pauses other processes).
        self.on_throttled: Callable[[float], None] | None = None

    def retry_delay(self, attempt: int) -> float:
        """Backoff before retry ``attempt`` (the session's retry bounds, jittered).

        Args:
            attempt: 1 for the first retry.

        Returns:
            Seconds (0 under :func:`~kling_async._backoff.set_testing`).
        """
        policy = self._retry
        return backoff_delay(
            attempt,
            initial=policy.initial_delay,
            maximum=policy.max_delay,
            multiplier=policy.multiplier,
            rng=self._rng,
        )

    def server_delay(self, retry_after: float | None) -> float:
        """How long to pause on a 1302/429: ``Retry-After`` when given (0 in tests).

        Args:
            retry_after: The server's hint, if any.

        Returns:
            Seconds.
        """
        if is_testing():
            return 0.0
        return retry_after if retry_after is not None else self.retry_delay(1)

    def throttled(self, retry_after: float | None) -> None:
        """A request was refused for the request rate: pause every request of the batch.

        Args:
            retry_after: The server's hint, if any.
        """
        self.limited_1302 += 1
        delay = self.server_delay(retry_after)
        self.limiter.pause(delay)
        if self.on_throttled is not None:
            self.on_throttled(delay)

    def pause(self, attempt: int, retry_after: float | None) -> None:
        """Hold every admission for a backoff (and at least the server's hint).

        Args:
            attempt: Which retry this is.
            retry_after: The server's hint, if any.
        """
        delay = max(self.retry_delay(attempt), self.server_delay(retry_after))
        self.not_before = max(self.not_before, time.monotonic() + delay)

    def refused(self) -> None:
        """Count a refused create; past the ceiling, hold admissions until the rate falls."""
        now = time.monotonic()
        until = self.breaker.refused(now)
        if until <= now:
            return
        if self.not_before < until:
            # Once loudly per batch; a busy large batch may brush the ceiling often.
            log = logger.warning if self.breaker.trips <= 1 else logger.debug
            log(
                "more than %g creates refused within a second: admissions pause for %.2fs"
                " (said once a batch; the summary counts refusals)",
                self.breaker.per_second,
                until - now,
            )
        self.not_before = max(self.not_before, until)
