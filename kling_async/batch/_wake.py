"""A reusable wake-up signal for the batch's loops (one waiter each).

The batch runs on asyncio (aiohttp's loop), inside anyio task groups. A wait is a
bare future and, with a timeout, one timer handle: the loops wait thousands of
times a second in a large batch, and an anyio ``Event`` under a cancel scope costs
several times more. A cancel scope around the waiter still cancels it as any await.
"""

from __future__ import annotations

import asyncio

__all__ = ["Wake"]


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Wake:
    """A wake-up for one waiting loop; a ``set`` while nobody waits is kept for the next wait."""

    __slots__ = ("_flag", "_waiter")

    def __init__(self) -> None:
        self._flag = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        """Wake the waiter (or the next one to wait)."""
        self._flag = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float | None = None) -> None:
        """Wait for a ``set`` (or ``timeout`` seconds), then clear the signal.

        Args:
            timeout: Longest wait, seconds; ``None`` for no limit.
        """
        if not self._flag:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = None
            if timeout is not None:
                timer = loop.call_later(max(0.0, timeout), _release, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        self._flag = False
