"""How long a batch still needs, from how long its tasks have taken so far.

Pure functions over plain numbers: no clock is read here. :class:`DurationModel`
keeps the observed create-to-end times per endpoint family; :func:`estimate_remaining`
plays the remaining jobs through the concurrency slots with those durations.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Sequence

__all__ = ["DurationModel", "estimate_remaining"]

#: Samples kept per family (the most recent ones: generation times drift).
_KEEP = 200


class DurationModel:
    """Observed task durations (created to ended, seconds), per endpoint family."""

    def __init__(self) -> None:
        self._samples: dict[str, list[float]] = {}

    def add(self, family: str, seconds: float) -> None:
        """Record one task's duration.

        Args:
            family: The endpoint family (``text2video``...).
            seconds: From its creation to noticing its end.
        """
        if seconds < 0:
            return
        samples = self._samples.setdefault(family, [])
        samples.append(seconds)
        if len(samples) > _KEEP:
            del samples[0]

    @property
    def learned(self) -> bool:
        """Whether any task has finished yet."""
        return any(self._samples.values())

    def expected(self, family: str) -> float | None:
        """The median duration of a family; of all tasks when the family has none yet.

        Args:
            family: The endpoint family.

        Returns:
            Seconds, or ``None`` before any task has finished.
        """
        own = self._samples.get(family)
        if own:
            return statistics.median(own)
        every = [s for samples in self._samples.values() for s in samples]
        return statistics.median(every) if every else None


def estimate_remaining(
    *,
    running: Sequence[tuple[float, float]],
    queued: Sequence[float],
    slots: int,
) -> float:
    """Seconds until the last job ends, if every task takes its expected time.

    Each running task frees its slot when its expected duration is up (at once
    when it is overdue); each queued job, in order, takes the first slot to free
    and holds it for its expected duration.

    Args:
        running: ``(age, expected)`` seconds of each running task.
        queued: Expected seconds of each job still to be created, in admission order.
        slots: Tasks that may run at once (at least 1).

    Returns:
        The estimate; 0 when nothing is left.
    """
    free_at = [max(expected - age, 0.0) for age, expected in running]
    free_at.extend(0.0 for _ in range(max(slots, 1) - len(free_at)))
    heapq.heapify(free_at)
    end = max(free_at, default=0.0)
    for duration in queued:
        start = heapq.heappop(free_at)
        finish = start + max(duration, 0.0)
        end = max(end, finish)
        heapq.heappush(free_at, finish)
    return end
