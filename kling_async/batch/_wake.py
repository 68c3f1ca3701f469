"""A reusable wake-up signal for the batch's loops (one waiter each)."""

from __future__ import annotations

import anyio

__all__ = ["Wake"]


class Wake:
    """A wake-up for one waiting loop; a ``set`` while nobody waits is kept for the next wait."""

    __slots__ = ("_event", "_flag")

    def __init__(self) -> None:
        self._flag = False
        self._event: anyio.Event | None = None

    def set(self) -> None:
        """Wake the waiter (or the next one to wait)."""
        self._flag = True
        if self._event is not None:
            self._event.set()

    async def wait(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait for a ``set`` (or ``timeout`` seconds), then clear the signal.

        Args:
            timeout: Longest wait, seconds; ``None`` for no limit.
        """
        if not self._flag:
            event = self._event = anyio.Event()
            if timeout is None:
                await event.wait()
            else:
                with anyio.move_on_after(max(0.0, timeout)):
                    await event.wait()
        self._flag = False
        self._event = None
