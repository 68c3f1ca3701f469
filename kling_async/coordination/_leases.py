"""Taking, keeping and giving back leases, on top of the store primitives."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import anyio
import anyio.lowlevel

from .. import _telemetry
from ._contract import Lease
from ._core import _Attempt, _StoreCore, _Unavailable, logger

__all__: list[str] = []


class _LeaseStore(_StoreCore):
    """The lease half of the public API: acquire, wait, renew, release, reassert."""

    async def _attempt(self, lease: Lease, *, queued: bool, enqueue: bool) -> _Attempt:
        """One try, safe against cancellation.

        A slot granted to a caller cancelled meanwhile is given back at once instead
        of waiting out its TTL.
        """
        with anyio.CancelScope(shield=True):
            result = await self._run(lambda: self._try(lease, queued=queued, enqueue=enqueue))
            if result.granted:
                self._adopt(lease)
        if result.granted:
            try:
                await anyio.lowlevel.checkpoint_if_cancelled()
            except BaseException:
                await self.release(lease)
                raise
        return result

    def _adopt(self, lease: Lease) -> None:
        self._own[lease.lease_id] = lease
        _telemetry.add_slots_held(lease.slots)

    def _disown(self, lease: Lease) -> bool:
        if self._own.pop(lease.lease_id, None) is None:
            return False
        _telemetry.add_slots_held(-lease.slots)
        return True

    async def acquire(self, holder: str, slots: int, *, ttl: float | None = None) -> Lease | None:
        """Take ``slots`` at once if the window has room for them and for every waiter ahead.

        Args:
            holder: Id of the calling process or session.
            slots: Slots the task takes (>= 1).
            ttl: Seconds the lease lives without renewal (default: the store's).

        Returns:
            The lease, or ``None`` when there is no room, admission is paused, or the
            store is unreachable.

        Raises:
            CoordinationUnavailableError: The store has been unreachable too long.
            ValueError: ``slots`` or ``ttl`` out of range.
        """
        self._check_open()
        lease = self._new_lease(holder, slots, ttl)
        try:
            result = await self._attempt(lease, queued=False, enqueue=False)
        except _Unavailable:
            self._check_outage_bound()
            return None
        return lease if result.granted else None

    async def wait_acquire(
        self,
        holder: str,
        slots: int,
        *,
        ttl: float | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (documented bound on the wait)
    ) -> Lease | None:
        """Queue for ``slots`` (first come, first served across processes) and take them.

        Within a process, callers queue in arrival order and only the first of them
        holds a place in the shared queue, so processes take turns however many
        callers each one has. A caller is admitted when the window has room for its
        slots and for those of every place ahead of it; a task larger than the whole
        window is admitted when nothing is held.

        Args:
            holder: Id of the calling process or session.
            slots: Slots the task takes (>= 1).
            ttl: Seconds the lease lives without renewal (default: the store's).
            timeout: Seconds to wait at most (``None``: no limit).

        Returns:
            The lease, or ``None`` when ``timeout`` passed first.

        Raises:
            CoordinationUnavailableError: The store has been unreachable for longer
                than ``max_outage``.
            ValueError: ``slots`` or ``ttl`` out of range.
        """
        self._check_open()
        lease = self._new_lease(holder, slots, ttl)
        _telemetry.add_queue_length(1)
        try:
            with anyio.move_on_after(timeout):
                async with self._fifo:
                    return await self._wait_turn(lease)
        finally:
            _telemetry.add_queue_length(-1)
        return None

    async def _wait_turn(self, lease: Lease) -> Lease:
        queued = False
        failures = 0
        self._ensure_listening()
        try:
            while True:
                since = self._generation
                try:
                    result = await self._attempt(lease, queued=queued, enqueue=True)
                except _Unavailable:
                    self._check_outage_bound()
                    failures += 1
                    await self._backoff(failures)
                    continue
                failures = 0
                if result.granted:
                    queued = False  # the grant took the queue place with it
                    return lease
                queued = result.queued
                self._ensure_listening()  # again, in case the listener gave up
                wait = self._poll_interval
                if result.retry_in > 0:
                    wait = min(wait, result.retry_in)
                await self._wait_for_change(since, wait)
        finally:
            if queued:
                # Shielded: a cancelled waiter still gives its place up (or it expires).
                with anyio.CancelScope(shield=True), contextlib.suppress(_Unavailable):
                    await self._run(lambda: self._leave_queue(lease.lease_id))

    async def renew(self, lease: Lease) -> bool:
        """Extend ``lease`` by its TTL (re-registering it if the store lost it).

        Args:
            lease: A lease from this store, not released.

        Returns:
            ``False`` when the store could not be reached (the lease stays valid until
            its TTL and is re-registered once the store answers).
        """
        self._check_open()
        try:
            await self._run(lambda: self._renew([lease]))
        except _Unavailable:
            return False
        return True

    async def renew_all(self) -> bool:
        """Extend every lease this store handed out and has not released.

        Returns:
            ``False`` when the store could not be reached.
        """
        self._check_open()
        leases = list(self._own.values())
        if not leases and not self._needs_reassert:
            return True
        try:
            await self._run(lambda: self._renew(leases))
        except _Unavailable:
            return False
        return True

    async def keep_alive(self, *, interval: float | None = None) -> None:
        """Renew this store's leases every ``interval`` seconds until cancelled.

        Run it in the task group that owns the store. Failures are tolerated: a lease
        outlives an outage shorter than its TTL, and is re-registered after a longer one.

        Args:
            interval: Seconds between renewals (default: a third of the store's TTL).
        """
        every = self.lease_ttl / 3.0 if interval is None else interval
        if every <= 0:
            raise ValueError("interval must be > 0")
        while True:
            await anyio.sleep(every)
            if self._closed:
                return
            await self.renew_all()

    async def release(self, lease: Lease) -> None:
        """Give ``lease``'s slots back (the task ended, or its create was refused).

        Shielded from cancellation, so a cancelled task still frees its slots. Never
        raises for an outage, nor after :meth:`aclose`: an unreleased lease expires
        after its TTL.

        Args:
            lease: The lease.
        """
        self._disown(lease)
        if self._closed:
            return
        with anyio.CancelScope(shield=True):
            try:
                await self._run(lambda: self._release([lease]))
            except _Unavailable:
                logger.debug("lease %s left to expire: store unreachable", lease.lease_id)

    def forget(self, lease: Lease) -> None:
        """Stop renewing ``lease`` without giving it back: it expires after its TTL.

        For the lease of a task that may still run when nobody follows it any more
        (a batch left with tasks running): its slots stay counted a while, then free
        themselves, even while other users of this store keep renewing theirs.

        Args:
            lease: A lease from this store.
        """
        self._disown(lease)

    async def reassert(self, leases: Iterable[Lease] | None = None) -> bool:
        """Register leases the store may have lost (after a restart without persistence).

        The store does this by itself for its own leases when it notices an outage
        end or its state vanish; call it with the leases of tasks a resumed process
        found still running.

        Args:
            leases: Leases of tasks still running (default: every lease this store
                handed out and has not released). They become this store's own.

        Returns:
            ``False`` when the store could not be reached.
        """
        self._check_open()
        if leases is not None:
            for lease in leases:
                if lease.lease_id not in self._own:
                    self._adopt(lease)
        everything = list(self._own.values())
        try:
            await self._run(lambda: self._renew(everything))
        except _Unavailable:
            self._needs_reassert = True
            return False
        return True
