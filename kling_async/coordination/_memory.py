"""The in-process slot store: one process's slots, nothing to install (the default)."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence

import anyio

from ._base import _StoreBase
from ._contract import (
    DEFAULT_CLAIM_TTL,
    DEFAULT_LEASE_TTL,
    DEFAULT_MAX_OUTAGE,
    DEFAULT_MAX_SAMPLES,
    DEFAULT_POLL_INTERVAL,
    Lease,
)
from ._core import _Attempt, _Status
from ._helpers import grown_window, shrunk_window, window_capacity

__all__ = ["InProcessSlotStore"]


class InProcessSlotStore(_StoreBase):
    """Slots, window, pause, durations and mailbox kept in this process's memory.

    It follows exactly the rules of the Redis store (same queue, same window
    arithmetic, leases expire after their TTL), so code written against
    :class:`~kling_async.coordination.SlotStore` behaves the same with one process
    or many. It never becomes unreachable.

    Args:
        max_capacity: Most slots held at once (the ``max_running`` setting).
        initial_capacity: Slow-start window (default ``min(max_capacity, 4)``).
        increase: Additive increase after the first 1303 (slots per window's worth
            of accepted creates).
        decrease: Multiplicative decrease on a 1303 (bounded below by what is held).
        lease_ttl: Default seconds a lease lives without renewal.
        poll_interval: Seconds between re-checks while waiting with no wake-up (for
            leases that expire rather than being released).
        max_samples: Durations kept per kind.
        claim_ttl: Default seconds a task claim lives.
        clock: Monotonic clock in seconds (tests pass a fake one).

    Raises:
        ValueError: A setting is out of range.
    """

    def __init__(
        self,
        *,
        max_capacity: int = 10,
        initial_capacity: int | None = None,
        increase: float = 1.0,
        decrease: float = 0.5,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            max_capacity=max_capacity,
            initial_capacity=initial_capacity,
            increase=increase,
            decrease=decrease,
            lease_ttl=lease_ttl,
            poll_interval=poll_interval,
            max_outage=DEFAULT_MAX_OUTAGE,
            max_samples=max_samples,
            claim_ttl=claim_ttl,
            describe="in-process",
        )
        self._clock = clock
        self._window = self._initial
        self._limited_seen = False
        self._paused_until = 0.0
        self._leases: dict[str, tuple[int, float]] = {}  # id -> (slots, expiry)
        self._queue: dict[str, int] = {}  # id -> slots, in arrival order
        self._samples: dict[str, collections.deque[float]] = {}
        self._owners: dict[str, tuple[str, float]] = {}  # task id -> (holder, expiry)
        self._inboxes: dict[str, collections.deque[bytes]] = {}
        self._inbox_event = anyio.Event()

    def __repr__(self) -> str:
        return (
            f"InProcessSlotStore(max_capacity={self.max_capacity}, "
            f"capacity={window_capacity(self._window, self.max_capacity)}, "
            f"held={sum(s for s, _ in self._leases.values())})"
        )

    # --- internals -------------------------------------------------------------------

    def _purge(self) -> int:
        now = self._clock()
        dead = [lease_id for lease_id, (_, expiry) in self._leases.items() if expiry <= now]
        for lease_id in dead:
            del self._leases[lease_id]
        if dead:
            self._notify()
        return sum(slots for slots, _ in self._leases.values())

    # --- primitives ------------------------------------------------------------------

    async def _try(self, lease: Lease, *, queued: bool, enqueue: bool) -> _Attempt:
        held = self._purge()
        if queued and lease.lease_id not in self._queue:
            queued = False
        now = self._clock()
        wait = max(0.0, self._paused_until - now)
        capacity = window_capacity(self._window, self.max_capacity)
        ahead = 0
        for place, slots in self._queue.items():
            if place == lease.lease_id:
                break
            ahead += slots
        fits = (held == 0 and ahead == 0) or held + ahead + lease.slots <= capacity
        if wait == 0 and fits:
            self._leases[lease.lease_id] = (lease.slots, now + lease.ttl)
            if self._queue.pop(lease.lease_id, None) is not None:
                self._notify()  # the next place may fit now
            return _Attempt(granted=True)
        if not queued and enqueue:
            self._queue[lease.lease_id] = lease.slots
            queued = True
        return _Attempt(granted=False, queued=queued, retry_in=wait)

    async def _leave_queue(self, lease_id: str) -> None:
        if self._queue.pop(lease_id, None) is not None:
            self._notify()

    async def _renew(self, leases: Sequence[Lease]) -> None:
        now = self._clock()
        for lease in leases:
            self._leases[lease.lease_id] = (lease.slots, now + lease.ttl)

    async def _release(self, leases: Sequence[Lease]) -> None:
        for lease in leases:
            self._leases.pop(lease.lease_id, None)
        self._notify()

    async def _limited(self, refused: Lease | None) -> None:
        if refused is not None:
            self._leases.pop(refused.lease_id, None)
        held_others = self._purge()
        self._limited_seen = True
        self._window = shrunk_window(self._window, held_others=held_others, decrease=self._decrease)
        self._notify()

    async def _accepted(self) -> None:
        before = window_capacity(self._window, self.max_capacity)
        self._window = grown_window(
            self._window,
            limited=self._limited_seen,
            increase=self._increase,
            max_capacity=self.max_capacity,
        )
        if window_capacity(self._window, self.max_capacity) > before:
            self._notify()

    async def _set_window(self, slots: int) -> None:
        self._window = float(slots)
        self._notify()

    async def _pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def _status(self) -> _Status:
        held = self._purge()
        return _Status(
            held=held,
            capacity=window_capacity(self._window, self.max_capacity),
            paused_for=max(0.0, self._paused_until - self._clock()),
            queued=len(self._queue),
        )

    async def _push_duration(self, kind: str, seconds: float) -> None:
        samples = self._samples.setdefault(kind, collections.deque(maxlen=self._max_samples))
        samples.append(float(seconds))

    async def _durations(self, kind: str) -> list[float]:
        return list(self._samples.get(kind, ()))

    async def _claim(self, task_id: str, holder: str, ttl: float) -> None:
        self._owners[task_id] = (holder, self._clock() + ttl)

    async def _unclaim(self, task_id: str, holder: str) -> None:
        if self._owners.get(task_id, ("", 0.0))[0] == holder:
            del self._owners[task_id]

    async def _owner(self, task_id: str) -> str | None:
        found = self._owners.get(task_id)
        if found is None:
            return None
        if found[1] <= self._clock():
            del self._owners[task_id]
            return None
        return found[0]

    async def _deliver(self, owner: str, payload: bytes) -> None:
        self._inboxes.setdefault(owner, collections.deque()).append(payload)
        self._inbox_event.set()
        self._inbox_event = anyio.Event()

    async def _pop(
        self,
        holder: str,
        timeout: float,  # noqa: ASYNC109  (a bounded blocking read)
    ) -> bytes | None:
        box = self._inboxes.get(holder)
        if not box:
            with anyio.move_on_after(timeout):
                await self._inbox_event.wait()
            box = self._inboxes.get(holder)
        if box:
            return box.popleft()
        return None

    async def _close(self) -> None:
        self._inbox_event.set()  # readers blocked on an empty inbox see the store closed
