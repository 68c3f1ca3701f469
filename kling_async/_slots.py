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

Several processes on one account (web-app workers, hosts) share their slots with
:meth:`SlotPool.coordinated`: each slot is then also a lease from a
:class:`~kling_async.coordination.SlotStore` (Redis), queued first come first served
across processes, kept alive while the task runs and given back when it is seen
ending; a crashed process's leases expire. :meth:`SlotPool.for_config` picks the
pool a configuration asks for.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ._config import ClientConfig
from ._task import Task

if TYPE_CHECKING:
    from .coordination import Lease, SlotStore

__all__ = ["CoordinatedSlotPool", "SlotLease", "SlotPool", "account_key_of"]

logger = logging.getLogger("kling_async")


def account_key_of(config: ClientConfig) -> str:
    """The account id processes share slots under: a fingerprint of the credential.

    Processes configured with the same API key (or access key) share one pool; the
    key itself never reaches the store.

    Args:
        config: The configuration.

    Returns:
        16 hex characters.
    """
    from .coordination import account_fingerprint

    return account_fingerprint(config.api_key or config.access_key or "")


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

    def try_acquire(self, count: int = 1) -> SlotLease | None:
        """Take ``count`` slots at once if nobody waits and they fit, else take nothing.

        The same grant :meth:`acquire` makes without waiting, for callers that
        would otherwise set up a deadline for a wait that does not happen.

        Args:
            count: Slots the task will hold.

        Returns:
            The lease, or ``None`` when :meth:`acquire` would have to wait.
        """
        count = max(1, count)
        if self.limit is None:
            return SlotLease(count=count)
        count = min(count, self.limit)
        if self._queue or not self._fits(count):
            return None
        lease = SlotLease(count=count)
        self._leases.add(lease)
        return lease

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

    @classmethod
    def coordinated(
        cls,
        store: SlotStore | str,
        *,
        limit: int,
        account_key: str = "default",
        ttl: float = 3600.0,
        holder: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> CoordinatedSlotPool:
        """A pool whose slots are leases from a store shared with other processes.

        Args:
            store: An open :class:`~kling_async.coordination.SlotStore`, or a
                ``redis://`` URL opened at the first acquire (and closed by
                :meth:`aclose`).
            limit: This process's cap on slots (the store's ``max_capacity`` for a URL).
            account_key: The account's id in the store (see :func:`account_key_of`);
                used with a URL only.
            ttl: Seconds a lease bound to a task is kept without the task being
                observed ending.
            holder: This process's holder id (default: ``host:pid:random``).
            clock: Monotonic clock.

        Returns:
            The pool.
        """
        return CoordinatedSlotPool(
            store, limit=limit, account_key=account_key, ttl=ttl, holder=holder, clock=clock
        )

    @classmethod
    def for_config(cls, config: ClientConfig) -> SlotPool:
        """The pool a configuration asks for: shared when it names a coordination store.

        A configuration's ``coordination`` (a URL or a store; read with ``getattr``
        so that configurations without the field work unchanged) makes the pool
        :meth:`coordinated`, capped at ``max_running`` (10 when unset).

        Args:
            config: The session's configuration.

        Returns:
            The pool.
        """
        shared = getattr(config, "coordination", None)
        if shared:
            return cls.coordinated(
                shared,
                limit=config.max_running or 10,
                account_key=account_key_of(config),
                ttl=config.slot_ttl,
            )
        return cls(config.max_running, ttl=config.slot_ttl)

    @classmethod
    def for_session(cls, config: ClientConfig) -> SlotPool:
        """The pool a session holds: one every paid call on it shares, batches included.

        With a coordination store, as :meth:`for_config`. With ``max_running`` alone,
        the pool is :meth:`coordinated` over a private
        :class:`~kling_async.coordination.InProcessSlotStore` whose window starts at
        ``max_running``: single calls queue on it, and every batch opened with
        ``session.batch(...)`` admits through the same store (its own
        ``max_running`` is then its share), first come first served. Without either,
        the unbounded local pool.

        Args:
            config: The session's configuration.

        Returns:
            The pool.
        """
        limit = config.max_running
        if getattr(config, "coordination", None) or limit is None:
            return cls.for_config(config)
        from .coordination import InProcessSlotStore

        store = InProcessSlotStore(max_capacity=limit, initial_capacity=limit)
        pool = CoordinatedSlotPool(store, limit=limit, ttl=config.slot_ttl)
        pool._owns_store = True
        return pool

    async def aclose(self) -> None:
        """Stop background work (nothing to do for a local pool)."""

    async def changed(self, *, timeout: float) -> None:  # noqa: ASYNC109  (a bounded nap)
        """Wait until a slot of this pool is given back, or ``timeout`` seconds pass.

        Used after a 1303: another of our tasks ending is the earliest sign a slot
        may be free again.

        Args:
            timeout: Seconds to wait at most.
        """
        with anyio.move_on_after(max(0.0, timeout)):
            await self._event().wait()


class CoordinatedSlotPool(SlotPool):
    """A :class:`SlotPool` whose every lease is also a lease from a shared store.

    Build it with :meth:`SlotPool.coordinated`. Waiting is the store's (first come,
    first served across processes, paused while another process saw a 1302);
    leases are renewed in the background while held and given back in the
    background when released (a lease the store could not be told about expires
    after its TTL). While the store is unreachable, :meth:`acquire` keeps waiting:
    no paid call goes out uncoordinated.

    Args:
        store: An open store, or a URL opened at the first acquire.
        limit: This process's cap on slots.
        account_key: The account's id in the store (URL only).
        ttl: Seconds a lease bound to a task is kept without the task being seen ending.
        holder: This process's holder id.
        clock: Monotonic clock.
    """

    def __init__(
        self,
        store: SlotStore | str,
        *,
        limit: int,
        account_key: str = "default",
        ttl: float = 3600.0,
        holder: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(limit, ttl=ttl, clock=clock)
        from .coordination import new_holder_id

        self.holder = holder or new_holder_id()
        self._url = store if isinstance(store, str) else None
        self._store: SlotStore | None = None if isinstance(store, str) else store
        self._account_key = account_key
        self._opening: anyio.Lock | None = None
        self._shared: dict[SlotLease, Lease] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._keeper: asyncio.Task[None] | None = None
        self._owns_store = self._url is not None  # closed by :meth:`aclose`
        self._grown: set[SlotLease] = set()  # leases whose accepted create was shared

    def __repr__(self) -> str:
        return (
            f"CoordinatedSlotPool(limit={self.limit}, in_use={self.in_use}, "
            f"waiting={self.waiting}, store={self._store!r})"
        )

    async def store(self) -> SlotStore:
        """The shared store, opened on first use when the pool was given a URL.

        Returns:
            The store.

        Raises:
            CoordinationUnavailableError: Redis did not answer the first time.
            ConfigurationError: The URL is unusable.
        """
        if self._store is not None:
            return self._store
        if self._opening is None:
            self._opening = anyio.Lock()
        async with self._opening:
            if self._store is None:
                from .coordination import open_store

                assert self._url is not None  # noqa: S101  (one of the two is set)
                self._store = await open_store(
                    self._url, account_key=self._account_key, max_capacity=self.limit or 1
                )
        return self._store

    def try_acquire(self, count: int = 1) -> SlotLease | None:
        """Nothing at once: every shared lease comes from the store (see :meth:`acquire`).

        Args:
            count: Slots the task will hold.

        Returns:
            ``None``.
        """
        return None

    async def acquire(self, count: int = 1) -> SlotLease:
        """Take a shared lease on ``count`` slots, waiting in the shared queue.

        Cancelling the wait takes nothing (a lease granted meanwhile is given back).

        Args:
            count: Slots the task will hold.

        Returns:
            The lease, to :meth:`bind` and :meth:`release` as with any pool.

        Raises:
            CoordinationUnavailableError: The store has been unreachable for longer
                than its ``max_outage`` (or could not be opened).
        """
        count = max(1, count)
        store = await self.store()
        self._expire()  # a forgotten task's slots go back before anyone queues behind them
        token = object()  # counted in ``waiting`` while the store queues us
        self._queue.append(token)
        try:
            shared = await store.wait_acquire(self.holder, count)
        finally:
            self._queue.remove(token)
        assert shared is not None  # noqa: S101  (no timeout: granted or raised)
        lease = SlotLease(count=count)
        self._leases.add(lease)
        self._shared[lease] = shared
        if self._keeper is None or self._keeper.done():
            self._keeper = self._spawn(self._keep(store))
        return lease

    async def _keep(self, store: SlotStore) -> None:
        """Renew the store's leases, and give back leases past their TTL, until cancelled.

        One timer per pool (never one per task): it wakes every third of the store's
        lease TTL, or at the next local expiry when that comes sooner.
        """
        from .coordination import CoordinationError

        every = max(0.05, float(getattr(store, "lease_ttl", 30.0)) / 3.0)
        while True:
            until = self._next_expiry() - self._clock()
            await anyio.sleep(max(0.0, min(every, until)))
            self._expire()
            try:
                await store.renew_all()
            except CoordinationError:  # the store was closed under us: nothing to renew
                return

    def bind(self, lease: SlotLease, *, task_id: str | None, external_task_id: str | None) -> None:
        """Tie a lease to its task; a create accepted (``task_id`` known) grows the window.

        Args:
            lease: The lease.
            task_id: The task's id (``None`` while unknown).
            external_task_id: Its external id, if any.
        """
        super().bind(lease, task_id=task_id, external_task_id=external_task_id)
        store = self._store
        if task_id and store is not None and lease in self._shared and lease not in self._grown:
            # A 1303 shrinks the shared window (``changed``); an accepted create grows
            # it back, as a batch's admission does.
            self._grown.add(lease)
            self._spawn(store.on_accepted())

    def release(self, lease: SlotLease) -> None:
        """Give a lease's slots back, here and (in the background) in the store.

        Args:
            lease: The lease (idempotent).
        """
        if lease.released:
            return
        super().release(lease)
        self._grown.discard(lease)
        shared = self._shared.pop(lease, None)
        if shared is not None and self._store is not None:
            self._spawn(self._store.release(shared))

    async def changed(self, *, timeout: float) -> None:  # noqa: ASYNC109  (a bounded nap)
        """After a 1303: shrink the shared window for every process, then wait as usual.

        The session calls this only when a create was refused for concurrency, so the
        refusal is shared here (in the background); the caller keeps its lease for
        the retry.

        Args:
            timeout: Seconds to wait at most.
        """
        if self._store is not None:
            self._spawn(self._store.on_limited())
        await super().changed(timeout=timeout)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:  # no loop (a release at interpreter exit): let it expire
            work.close()
            logger.debug("shared slot left to expire: no event loop")
            return None
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def aclose(self) -> None:
        """Stop renewing, finish the pending releases, and close a store this pool opened.

        Leases still held are left to expire (their tasks may still run).
        """
        if self._keeper is not None:
            self._keeper.cancel()
        pending = list(self._background)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._keeper = None
        if self._owns_store and self._store is not None:
            store, self._store = self._store, None
            await store.aclose()
