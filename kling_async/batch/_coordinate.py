"""Admission's link to a shared slot store: many processes, one account.

With ``coordinate=`` a batch takes a lease from a
:class:`~kling_async.coordination.SlotStore` for every paid create, on top of its
own ``max_running`` cap, so every process using the account together stays under
the shared window:

- before a create leaves, admission waits for a lease on the job's slots (an image
  task with ``n`` images takes ``n``), first come first served across processes;
- the lease is kept across retries of the same create (a 1302, a refused
  connection); a 1303 gives it back and shrinks the shared window for everybody
  (``on_limited``); a 1302 anywhere in the batch pauses admissions of every process;
- an accepted create grows the shared window; when the task ends its lease goes
  back and its learned duration is shared, so a fresh process polls well from its
  first task (the watcher's planner is seeded from the store before the first
  create of each kind);
- a task resumed from the journal re-registers a lease at once (it holds a slot on
  the gateway whatever the window says);
- with a callback receiver, every task watched by callbacks is claimed in the store
  (by external id before its create leaves, by task id once created), the receiver
  hands callbacks for other workers' tasks to their owners, and this batch reads
  its own inbox: each callback handed over is checked again by its receiver and
  acted on as if it had arrived here;
- every job that ends gives its lease back at once; when the batch ends (or is
  cancelled) with leases still held (tasks that may still run), they are no longer
  renewed and free themselves after the lease TTL, even on a store other users keep
  renewing; claims are dropped, so later callbacks about such tasks are answered
  for redelivery instead of being put in a dead inbox.

Stage methods are synchronous, store calls are not: every store call the stages
cause is queued and run, in order, by one worker in :meth:`Coordination.running`'s
task group; only the wait for a lease is awaited in line, by the admission loop.
When the store cannot be reached, waiting for a lease keeps waiting (no
uncoordinated create is ever sent), the other calls are dropped or left to the
lease TTL, and tasks already created go on being watched and downloaded. After
the store's ``max_outage`` the wait fails and admissions halt with a clear reason.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from .._config import ClientConfig
from .._schedule import Kind, PollPlanner, observed_duration
from .._slots import CoordinatedSlotPool, account_key_of
from ..coordination import (
    DEFAULT_LEASE_TTL,
    CoordinationError,
    Lease,
    SlotStore,
    new_holder_id,
    open_store,
)
from ._job import Job
from ._wake import Wake

if TYPE_CHECKING:
    from .._callbacks import CallbackReceiver

__all__ = ["Coordination", "kind_key", "learned_duration", "open_coordination"]

logger = logging.getLogger("kling_async")

#: Store calls kept waiting for the worker before the oldest are dropped (a long outage).
_MAX_PENDING = 100_000

#: Seconds the end of a batch may spend giving its leases and claims back.
_LET_GO_SECONDS = 10.0


def kind_key(kind: Kind) -> str:
    """The store's name for a task kind (its fields joined with ``|``).

    Args:
        kind: From :func:`~kling_async._schedule.kind_of`.

    Returns:
        The key.
    """
    return "|".join(kind)


def learned_duration(job: Job, now: float) -> float | None:
    """The life of a job's ended task worth sharing, by the watcher's own rule.

    A task created by this process and seen answered has a known creation moment;
    otherwise only the task's server timestamps tell its life (see
    :meth:`Watch._learn <kling_async.batch._watch.Watch>`).

    Args:
        job: The job whose task just ended.
        now: Monotonic seconds.

    Returns:
        Seconds, or ``None`` when nothing may be learned.
    """
    task = job.task
    if task is None or not task.succeeded:
        return None
    server: float | None = None
    if task.created_at is not None and task.updated_at is not None:
        seconds = (task.updated_at - task.created_at).total_seconds()
        server = seconds if seconds > 0 else None
    if job.clean:
        return observed_duration(job.lower, max(now - job.created_at, 1e-6), server)
    return server


def _claim_ids(job: Job) -> list[str]:
    """The ids a job's callbacks are claimed under: its external id, its task id once known."""
    ids = [job.external_id]
    if job.task is not None and job.task.id:
        ids.append(job.task.id)
    return ids


class Coordination:
    """The leases of one batch, and the shared state it reads and writes.

    Args:
        store: The shared store.
        holder: This batch's holder id (default: a fresh ``host:pid:random``).
        planner: The watcher's poll planner, seeded from shared durations.
        callbacks: The batch's callback receiver: it relays through the store, and
            takes over what other workers hand to this batch.
    """

    def __init__(
        self,
        store: SlotStore,
        *,
        holder: str | None = None,
        planner: PollPlanner | None = None,
        callbacks: CallbackReceiver | None = None,
    ) -> None:
        self.store = store
        self.holder = holder or new_holder_id()
        self._planner = planner
        self._callbacks = callbacks
        self._leases: dict[Job, Lease] = {}
        self._claimed: set[Job] = set()
        self._seeded: set[Kind] = set()
        self._ops: collections.deque[tuple[str, Callable[[], Awaitable[None]]]] = (
            collections.deque()
        )
        self._wake = Wake()
        self._stopping = False
        self._waiting: anyio.CancelScope | None = None
        self.lease_ttl = float(getattr(store, "lease_ttl", DEFAULT_LEASE_TTL))
        #: Leases taken (figures).
        self.leases_taken = 0

    def __repr__(self) -> str:
        return f"Coordination({self.store!r}, holder={self.holder!r}, held={len(self._leases)})"

    # --- the admission loop's side ---------------------------------------------------

    def holds(self, job: Job) -> bool:
        """Whether the job holds a lease now.

        Args:
            job: The job.

        Returns:
            ``True`` while its lease is held.
        """
        return job in self._leases

    async def take(self, job: Job) -> bool:
        """Wait for the job's lease (at once when it kept one from an earlier try).

        Args:
            job: The job about to be created.

        Returns:
            ``True`` with the lease held; ``False`` when :meth:`interrupt` stopped the wait.

        Raises:
            CoordinationUnavailableError: The store has been unreachable for longer
                than its ``max_outage``.
        """
        if job in self._leases:
            return True
        await self._seed(job.kind)
        lease: Lease | None = None
        with anyio.CancelScope() as scope:
            self._waiting = scope
            try:
                lease = await self.store.wait_acquire(self.holder, job.slots)
            finally:
                self._waiting = None
        if lease is None:
            return False
        if job.callbacks and job not in self._claimed:
            # Claimed by external id before the create leaves: a callback that beats
            # the create's answer to another worker still finds its way here.
            self._claimed.add(job)
            await self.store.claim_task(job.external_id, self.holder)
        self._leases[job] = lease
        self.leases_taken += 1
        return True

    def interrupt(self) -> None:
        """Stop a wait for a lease in progress (admissions halted)."""
        if self._waiting is not None:
            self._waiting.cancel()

    async def _seed(self, kind: Kind) -> None:
        """Teach the planner the durations other processes saw, once per kind."""
        if self._planner is None or kind in self._seeded:
            return
        try:
            samples = await self.store.durations(kind_key(kind))
        except CoordinationError:
            return  # tried again before the next create of this kind
        self._seeded.add(kind)
        for seconds in samples:
            self._planner.observe(kind, seconds)
        if samples:
            logger.debug("seeded %d shared duration(s) for %s", len(samples), kind_key(kind))

    # --- what the stages report (synchronous; the worker does the store calls) ----------

    def accepted(self, job: Job) -> None:
        """The job's create was accepted: grow the shared window; claim its callbacks.

        Args:
            job: The job (its task is set by the time the worker runs).
        """
        self._submit("window growth", self.store.on_accepted)
        if job.callbacks:
            # Claims route callbacks that reach another process to this one; jobs
            # watched by polling need none.
            self._claimed.add(job)
            self._submit("task claim", lambda: self._claim(job))

    async def _claim(self, job: Job) -> None:
        if job.task is not None and job.task.id:
            await self.store.claim_task(job.task.id, self.holder)

    def limited(self, job: Job) -> None:
        """The job's create was refused with 1303: its lease goes back, the window shrinks.

        Args:
            job: The job.
        """
        lease = self._leases.pop(job, None)
        self._submit("window shrink", lambda: self.store.on_limited(refused=lease))

    def pause(self, seconds: float) -> None:
        """A 1302 was seen: pause admissions of every process for ``seconds``.

        Args:
            seconds: The pause.
        """
        if seconds > 0:
            self._submit("pause", lambda: self.store.pause(seconds))

    def free(self, job: Job) -> None:
        """The job holds no slot any more (ended, failed, never started): give its lease back.

        Args:
            job: The job (a no-op when it holds no lease).
        """
        lease = self._leases.pop(job, None)
        if lease is not None:
            self._submit("release", lambda: self.store.release(lease))
        if job in self._claimed:
            self._claimed.discard(job)
            for ident in _claim_ids(job):
                self._submit("task release", functools.partial(self.store.release_task, ident))

    def hold(self, job: Job) -> None:
        """A task that exists already (resumed, or running after all) holds a lease at once.

        Args:
            job: The job.
        """
        if job in self._leases:
            return
        lease = Lease(
            lease_id=uuid.uuid4().hex, holder=self.holder, slots=job.slots, ttl=self.lease_ttl
        )
        self._leases[job] = lease

        async def register() -> None:
            await self.store.reassert([lease])

        self._submit("lease registration", register)

    def learned(self, job: Job) -> None:
        """The job's task ended cleanly: share how long it ran.

        Args:
            job: The job.
        """
        seconds = learned_duration(job, time.monotonic())
        if seconds is not None and math.isfinite(seconds):
            key = kind_key(job.kind)
            self._submit("duration", lambda: self.store.record_duration(key, seconds))

    def _submit(self, what: str, call: Callable[[], Awaitable[None]]) -> None:
        if len(self._ops) >= _MAX_PENDING:
            dropped, _ = self._ops.popleft()
            logger.debug("coordination call dropped (%s): too many waiting", dropped)
        self._ops.append((what, call))
        self._wake.set()

    # --- the background work -------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the store-call worker and the lease keep-alive for the block.

        On a normal exit every queued call is made before the block ends.
        """
        self._stopping = False
        receiver = self._callbacks
        async with anyio.create_task_group() as outer:
            if receiver is not None:
                outer.start_soon(self._take_over, receiver)
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._worker)
                    try:
                        yield
                    finally:
                        self._stopping = True
                        self._wake.set()
            finally:
                outer.cancel_scope.cancel()

    async def _take_over(self, receiver: CallbackReceiver) -> None:
        """Read this batch's inbox: callbacks other workers received for its tasks."""
        failures = 0
        while True:
            try:
                async for payload in self.store.inbox(self.holder):
                    failures = 0
                    receiver.take_over(payload)
                return  # the store closed
            except CoordinationError as exc:  # down past max_outage: keep trying quietly
                failures += 1
                logger.warning("callback inbox unreadable (%s)", type(exc).__name__)
                await anyio.sleep(min(30.0, 0.5 * 2**failures))

    async def let_go(self) -> None:
        """The batch has ended: make the queued store calls, then give back what is left.

        Leases still held stop being renewed: their creates may have landed, so they
        free themselves after their TTL rather than at once; claims go (a later
        callback is answered for redelivery). Shielded from cancellation and
        bounded in time (the store may be down).
        """
        with anyio.CancelScope(shield=True), anyio.move_on_after(_LET_GO_SECONDS):
            await self._let_go()

    async def _let_go(self) -> None:
        while self._ops:
            what, call = self._ops.popleft()
            await self._run(what, call)
        forget = getattr(self.store, "forget", None)
        if callable(forget):
            for lease in self._leases.values():  # kept: ``holds`` still tells
                forget(lease)
        for job in list(self._claimed):
            for ident in _claim_ids(job):
                await self._run("task release", functools.partial(self.store.release_task, ident))

    async def _worker(self) -> None:
        every = self.lease_ttl / 3.0
        renew_at = time.monotonic() + every
        while True:
            while self._ops:
                what, call = self._ops.popleft()
                await self._run(what, call)
            now = time.monotonic()
            if now >= renew_at:
                renew_at = now + every
                await self._run("renewal", self._renew)
                continue
            if self._stopping:
                return
            await self._wake.wait(renew_at - now)

    async def _renew(self) -> None:
        await self.store.renew_all()

    async def _run(self, what: str, call: Callable[[], Awaitable[None]]) -> None:
        try:
            await call()
        except CoordinationError as exc:
            # Reads raise at once while the store is down; the rest are advice.
            logger.debug("coordination %s not shared (%s)", what, type(exc).__name__)
        except Exception as exc:  # a store's own bug must not stop the batch's tasks
            logger.warning("coordination %s failed (%s)", what, type(exc).__name__)


async def open_coordination(
    spec: Any,
    *,
    config: ClientConfig,
    max_running: int,
    stack: contextlib.AsyncExitStack,
    planner: PollPlanner | None = None,
    callbacks: CallbackReceiver | None = None,
) -> Coordination | None:
    """Turn ``BatchOptions.coordinate`` into a :class:`Coordination` (or ``None``).

    A URL opens a store (closed by ``stack``); a store passed in stays the caller's
    to close. Without ``spec``, the configuration's ``coordination`` (when it has
    one) is used.

    Args:
        spec: ``None``, a ``redis://``/``rediss://``/``unix://`` URL, a
            :class:`~kling_async.coordination.SlotStore`, or a session's
            :class:`~kling_async._slots.CoordinatedSlotPool` (its store is shared);
            ``False`` for none, even when the configuration names a store.
        config: The session's configuration (the account key is derived from it).
        max_running: The batch's cap, the store's ``max_capacity``.
        planner: The watcher's planner, seeded from shared durations.
        stack: Where the store's closing is registered.
        callbacks: The batch's callback receiver (callbacks for other workers' tasks
            are handed over through the store; this batch's are taken over).

    Returns:
        The coordination, or ``None`` without ``coordinate``.

    Raises:
        TypeError: ``spec`` is neither a URL nor a store.
        ConfigurationError: The URL is unusable (or the ``redis`` extra is missing).
        CoordinationUnavailableError: The store did not answer (the message names
            the URL with its password hidden).
    """
    if spec is False:  # explicitly alone: the batch's own window, whatever the session has
        return None
    if spec is None:
        spec = getattr(config, "coordination", None)
    if spec is None or spec == "":
        return None
    if isinstance(spec, CoordinatedSlotPool):  # a session's pool: its store, kept open
        spec = await spec.store()
    if isinstance(spec, str):
        store: SlotStore = await open_store(
            spec, account_key=account_key_of(config), max_capacity=max_running
        )
        stack.push_async_callback(store.aclose)
        if callbacks is not None:  # the store closes with the batch: stop relaying first
            stack.callback(callbacks.relay_through(store))
    elif isinstance(spec, SlotStore):
        store = spec
    else:
        raise TypeError(
            f"coordinate must be a redis:// URL or a SlotStore, not {type(spec).__name__}"
        )
    if callbacks is not None and not isinstance(spec, str):
        # The store outlives the batch (the session's or the caller's): the receiver
        # keeps handing other workers' callbacks to their owners after the batch ends.
        callbacks.relay_through(store)
    coordination = Coordination(store, planner=planner, callbacks=callbacks)
    # Registered after the store's closing: runs first, once the batch's tasks are done.
    stack.push_async_callback(coordination.let_go)
    return coordination
