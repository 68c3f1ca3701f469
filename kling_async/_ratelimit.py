"""An async token-bucket request-rate limiter that can be paused by server hints."""

from __future__ import annotations

import time

import anyio

__all__ = ["RateLimiter"]


class RateLimiter:
    """Limit requests to ``rate`` per second (bursts up to ``burst``), shared by many tasks.

    Acquirers are served in arrival order. :meth:`pause` (on 1302/429 with
    ``Retry-After``) holds every acquirer until the pause ends.

    Args:
        rate: Requests per second; must be > 0.
        burst: Requests allowed back to back after an idle period.

    Raises:
        ValueError: ``rate`` or ``burst`` is not positive.
    """

    def __init__(self, rate: float, *, burst: int = 1) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = burst
        self._interval = 1.0 / self.rate
        # Time at which the bucket would be full again; the next slot is
        # max(now, _next - (burst-1)*interval).
        self._next = 0.0
        self._paused_until = 0.0
        #: How many times :meth:`acquire` returned.
        self.requests = 0

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate:g}, burst={self.burst})"

    def pause(self, seconds: float) -> None:
        """Hold every acquirer for ``seconds`` from now (longest pause wins).

        Args:
            seconds: How long to pause.
        """
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    async def acquire(self) -> None:
        """Wait until a request may be sent, then take its slot."""
        while True:
            now = time.monotonic()
            earliest = max(now, self._paused_until, self._next - (self.burst - 1) * self._interval)
            self._next = max(earliest, self._next) + self._interval
            delay = earliest - now
            if delay > 0:
                await anyio.sleep(delay)
            # A pause that began while this caller slept applies to it too.
            if time.monotonic() >= self._paused_until:
                break
        self.requests += 1
