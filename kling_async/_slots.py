"""One pool of concurrency slots per session, shared by every paid call on it.

The account runs at most N tasks at once; a create beyond that is refused with
1303. Rather than let each call find that out by being refused, the session holds a
:class:`SlotPool`: a paid call first takes a slot (waiting, first come first served,
while the pool is full), keeps it while its task runs, and gives it back when the
task is *seen* ending — by ``wait``/``run``, or by any ``get``/``refresh`` on the
session that observes the task terminal. A task nobody watches (a bare ``create``)
gives its slot back after ``ttl`` seconds, so a forgotten task cannot block the pool
for ever.

With ``limit=None`` the pool never makes anyone wait and tracks nothing; it still
tells 1303-refused callers when a slot of this session freed (:meth:`SlotPool.changed`).
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable

import anyio
import attrs

from ._task import Task

__all__ = ["SlotLease", "SlotPool"]


@attrs.define(eq=False)
class SlotLease:
    """Slots taken for one task.

    Attributes:
        count: Slots held (an image task holds one per image).
        task_id: The task's id once created.
        external_task_id: Its external id, when it has one.
        expires_at: Monotonic time after which the slots are given back anyway
            (set once a create was sent).
        released: Whether the slots were given back.
    """

    count: int
    task_id: str | None = None
    external_task_id: str | None = None
    expires_at: float = math.inf
    released: bool = False


class SlotPool:
    """A first-come-first-served pool of ``limit`` slots.

    Args:
        limit: Slots available at once; ``None`` for no bound.
        ttl: Seconds a lease bound to a task is kept without the task being
            observed ending.
        clock: Monotonic clock (tests may pass their own).
    """

    def __init__(
        self,
        limit: int | None,
        *,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("limit must be >= 1 or None")
        self.limit = limit
        self.ttl = ttl
        self._clock = clock
        self._leases: set[SlotLease] = set()
        self._by_id: dict[str, SlotLease] = {}
        self._queue: collections.deque[object] = collections.deque()
        self._changed: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"SlotPool(limit={self.limit}, in_use={self.in_use}, waiting={self.waiting})"

    @property
    def in_use(self) -> int:
        """Slots held now (expired leases are given back first)."""
        self._expire()
        return sum(lease.count for lease in self._leases)

    @property
    def waiting(self) -> int:
        """Callers waiting for a slot."""
        return len(self._queue)

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _event(self) -> anyio.Event:
        if self._changed is None:
            self._changed = anyio.Event()
        return self._changed

    def _expire(self) -> None:
        now = self._clock()
        expired = [lease for lease in self._leases if lease.expires_at <= now]
        for lease in expired:
            self.release(lease)

    def _fits(self, count: int) -> bool:
        return self.limit is None or self.in_use + count <= self.limit

    def _next_expiry(self) -> float:
        return min((lease.expires_at for lease in self._leases), default=math.inf)

    async def acquire(self, count: int = 1) -> SlotLease:
        """Take ``count`` slots, waiting (in arrival order) while the pool is full.

        A request for more slots than the pool has takes the whole pool. Bound the
        wait with the caller's own deadline (``anyio.fail_after``); cancelling it
        takes nothing.

        Args:
            count: Slots the task will hold.

        Returns:
            The lease, to :meth:`bind` once the task exists and :meth:`release`.
        """
        count = max(1, count)
        if self.limit is None:
            return SlotLease(count=count)
        count = min(count, self.limit)
        token = object()
        self._queue.append(token)
        try:
            while not (self._queue[0] is token and self._fits(count)):
                event = self._event()
                until = self._next_expiry() - self._clock()
                with anyio.move_on_after(max(0.0, until)):
                    await event.wait()
            lease = SlotLease(count=count)
            self._leases.add(lease)
            return lease
        finally:
            self._queue.remove(token)
            self._notify()  # the next in line may fit now

    def bind(self, lease: SlotLease, *, task_id: str | None, external_task_id: str | None) -> None:
        """Tie a lease to its task, so observing the task ending gives it back.

        Also starts the lease's time to live.

        Args:
            lease: The lease.
            task_id: The task's id (``None`` while unknown).
            external_task_id: Its external id, if any.
        """
        if lease.released or self.limit is None:
            return
        lease.task_id = task_id or lease.task_id
        lease.external_task_id = external_task_id or lease.external_task_id
        lease.expires_at = min(lease.expires_at, self._clock() + self.ttl)
        for key in (lease.task_id, lease.external_task_id):
            if key:
                self._by_id[key] = lease

    def release(self, lease: SlotLease) -> None:
        """Give a lease's slots back (idempotent).

        Args:
            lease: The lease.
        """
        if lease.released:
            return
        lease.released = True
        self._leases.discard(lease)
        for key in (lease.task_id, lease.external_task_id):
            if key and self._by_id.get(key) is lease:
                del self._by_id[key]
        self._notify()

    def observe(self, task: Task) -> None:
        """Give back the slots of a task seen ending (no-op for running or unknown tasks).

        Args:
            task: A task state just read from the gateway.
        """
        if not task.is_terminal or not self._by_id:
            return
        for key in (task.id, task.external_id):
            lease = self._by_id.get(key) if key else None
            if lease is not None:
                self.release(lease)

    async def changed(self, *, timeout: float) -> None:  # noqa: ASYNC109  (a bounded nap)
        """Wait until a slot of this pool is given back, or ``timeout`` seconds pass.

        Used after a 1303: another of our tasks ending is the earliest sign a slot
        may be free again.

        Args:
            timeout: Seconds to wait at most.
        """
        with anyio.move_on_after(max(0.0, timeout)):
            await self._event().wait()
