"""Admission's arithmetic: the AIMD window over concurrency slots and the units budget.

Both are plain state machines with no I/O; the batch's admission stage drives them
(see :mod:`kling_async.batch._admission`).
"""

from __future__ import annotations

__all__ = ["AdmissionWindow", "Budget", "Kind"]

#: A task kind: endpoint name first, then what stretches a task's life (built by
#: :func:`kling_async._schedule.kind_of`, which re-exports this alias).
Kind = tuple[str, ...]


class AdmissionWindow:
    """AIMD window over concurrency slots, never above ``max_running``.

    Args:
        max_running: The user's cap on slots held at once.
        initial: Slow-start window (default ``min(max_running, 4)``).
        increase: Slots added back per clean completion once a limit was seen,
            divided by the window (``1.0``: about one probing create per window's
            worth of completions).

    Raises:
        ValueError: ``max_running`` < 1.
    """

    def __init__(
        self, max_running: int, *, initial: float | None = None, increase: float = 1.0
    ) -> None:
        if max_running < 1:
            raise ValueError("max_running must be >= 1")
        self.max_running = max_running
        self.window = float(min(max_running, initial if initial is not None else 4))
        self.increase = increase
        #: Whether the server has refused a create for concurrency yet.
        self.limited = False
        #: 1303 answers seen in a row (reset by an accepted create).
        self.consecutive_limited = 0

    @property
    def limit(self) -> int:
        """Slots that may be held now (at least 1)."""
        return max(1, min(self.max_running, int(self.window + 1e-9)))

    def can_admit(self, running: int, slots: int) -> bool:
        """Whether a task taking ``slots`` may be created now.

        A task larger than the whole window still runs when nothing else does.

        Args:
            running: Slots held by tasks created (or being created) and not ended.
            slots: Slots the new task takes.

        Returns:
            ``True`` to create it.
        """
        return running == 0 or running + slots <= self.limit

    def on_accepted(self) -> None:
        """A create was accepted: slow start grows the window by one slot."""
        self.consecutive_limited = 0
        if not self.limited and self.window < self.max_running:
            self.window = min(float(self.max_running), self.window + 1.0)

    def on_limited(self, running: int) -> None:
        """A create was refused with 1303 while ``running`` slots were confirmed held.

        Args:
            running: Slots of tasks known created and not ended.
        """
        self.limited = True
        self.consecutive_limited += 1
        # Down to what ran, never rounded: a refusal while more than the window was
        # held (a probe past it) must not undo the growth completions earned.
        self.window = max(1.0, min(self.window, float(running)))

    def on_completed(self, slots: int) -> None:
        """A task ended cleanly, freeing ``slots``: grow the window additively.

        Args:
            slots: The slots it held.
        """
        if not self.limited or self.window >= self.max_running:
            return  # slow start grows on accepted creates instead
        self.window = min(
            float(self.max_running), self.window + self.increase * slots / self.window
        )


class Budget:
    """Units spent and reserved against an optional ``max_units``.

    Per-kind costs are learned from finished tasks (the largest seen, to err on the
    safe side). A kind with no estimate may run one task at a time until one is
    learned.

    Args:
        max_units: The cap, or ``None`` for no cap.
    """

    def __init__(self, max_units: float | None) -> None:
        self.max_units = max_units
        #: Units charged by finished tasks.
        self.spent = 0.0
        #: Units reserved by tasks in flight (estimates).
        self.reserved = 0.0
        #: Tasks in flight whose cost could not be estimated.
        self.unknown = 0
        self._per_slot: dict[Kind, float] = {}

    def learn(self, kind: Kind, units: float, slots: int) -> None:
        """Record what a finished task of ``kind`` cost.

        Args:
            kind: Its kind.
            units: Units charged.
            slots: Slots it held (image count), to scale the estimate.
        """
        if units <= 0:
            return
        per_slot = units / max(1, slots)
        for depth in range(1, len(kind) + 1):
            key = kind[:depth]
            self._per_slot[key] = max(self._per_slot.get(key, 0.0), per_slot)

    def estimate(self, kind: Kind, slots: int) -> float | None:
        """Expected cost of a task, from the most specific kind seen.

        Args:
            kind: Its kind.
            slots: Slots it takes.

        Returns:
            Units, or ``None`` when nothing related finished yet.
        """
        for depth in range(len(kind), 0, -1):
            per_slot = self._per_slot.get(kind[:depth])
            if per_slot is not None:
                return per_slot * max(1, slots)
        return None

    def try_reserve(self, estimate: float | None) -> bool:
        """Reserve a task's units if they fit.

        Args:
            estimate: From :meth:`estimate` (``None``: unknown).

        Returns:
            ``True`` when reserved; call :meth:`settle` when the task ends.
        """
        if self.max_units is None:
            return True
        if estimate is None:
            if self.unknown or self.spent + self.reserved >= self.max_units:
                return False
            self.unknown += 1
            return True
        if self.spent + self.reserved + estimate > self.max_units + 1e-9:
            return False
        self.reserved += estimate
        return True

    def settle(self, estimate: float | None, actual: float) -> None:
        """Release a reservation and book what was charged.

        Args:
            estimate: What :meth:`try_reserve` was given.
            actual: Units actually charged (0 for failed or never-created tasks).
        """
        if self.max_units is not None:
            if estimate is None:
                self.unknown = max(0, self.unknown - 1)
            else:
                self.reserved = max(0.0, self.reserved - estimate)
        self.spent += max(0.0, actual)

    def exhausted(self) -> bool:
        """Whether nothing more can ever be admitted (cap reached, nothing in flight).

        Returns:
            ``True`` when spent units alone leave no room.
        """
        return self.max_units is not None and self.spent >= self.max_units - 1e-9
