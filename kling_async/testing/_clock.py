"""The fake gateway's one clock: every delay the fake keeps is measured on it.

Task lives, callback moments, lookup lag and URL expiry are all timestamps on this
clock, so :meth:`FakeClock.advance` moves every one of them together, and
``time_scale`` (with ``scale_delays``) shrinks them by the same factor.
"""

from __future__ import annotations

import time

__all__ = ["FakeClock"]


class FakeClock:
    """``time.monotonic()`` plus every :meth:`advance`, and the fake's scale.

    Args:
        time_scale: Factor applied to task lives (always) and, when
            ``scale_delays`` is set, to lookup lag, URL lifetime and latencies.
        scale_delays: Whether configured delays follow ``time_scale`` too.
    """

    __slots__ = ("_offset", "scale_delays", "time_scale", "wall_offset")

    def __init__(self, *, time_scale: float, scale_delays: bool) -> None:
        self.time_scale = time_scale
        self.scale_delays = scale_delays
        self._offset = 0.0
        #: Add to a clock value to get Unix seconds (fixed at creation).
        self.wall_offset = time.time() - time.monotonic()

    def now(self) -> float:
        """The fake's monotonic time, in seconds."""
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward.

        Args:
            seconds: How far.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds

    def delay(self, seconds: float) -> float:
        """A configured delay as it runs on this clock.

        Args:
            seconds: The configured value.

        Returns:
            ``seconds * time_scale`` when delays are scaled, else ``seconds``.
        """
        return seconds * self.time_scale if self.scale_delays else seconds

    def unix_ms(self, moment: float) -> int:
        """A clock value as Unix milliseconds.

        Args:
            moment: A value of :meth:`now` (past, present or future).

        Returns:
            Milliseconds since the epoch.
        """
        return int((moment + self.wall_offset) * 1000)
