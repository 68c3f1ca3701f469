"""The machinery under both stores: primitives, wake-ups and outage handling.

A store implements the primitives (``_try``, ``_renew``...), each raising
:class:`_Unavailable` when its backing service cannot be reached; :class:`_StoreCore`
turns those into the fault behaviour the contract promises (see
:mod:`kling_async.coordination._contract`).
"""

from __future__ import annotations

import abc
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio
import attrs

from .._backoff import backoff_delay
from ._contract import (
    DEFAULT_INITIAL_CAPACITY,
    CoordinationError,
    CoordinationUnavailableError,
    Lease,
)

__all__: list[str] = []

logger = logging.getLogger("kling_async.coordination")

T = TypeVar("T")


class _Unavailable(Exception):
    """Raised by a store primitive when the store could not be reached."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@attrs.frozen
class _Attempt:
    """What one try at acquiring returned."""

    granted: bool
    #: Whether the try left (or kept) a place in the wait queue.
    queued: bool = False
    #: Seconds after which trying again makes sense (pause, recount), 0 for "on change".
    retry_in: float = 0.0


@attrs.frozen
class _Status:
    held: int
    capacity: int
    paused_for: float
    queued: int


class _StoreCore(abc.ABC):
    """Primitives, wake-ups, lease bookkeeping and outage tracking.

    Subclasses implement the primitives (``_try`` and friends), each raising
    :class:`_Unavailable` when the backing service cannot be reached.
    """

    def __init__(
        self,
        *,
        max_capacity: int,
        initial_capacity: int | None,
        increase: float,
        decrease: float,
        lease_ttl: float,
        poll_interval: float,
        max_outage: float,
        max_samples: int,
        claim_ttl: float,
        describe: str,
    ) -> None:
        if max_capacity < 1:
            raise ValueError("max_capacity must be >= 1")
        if not 0.0 < decrease < 1.0:
            raise ValueError("decrease must be between 0 and 1")
        if increase <= 0 or lease_ttl <= 0 or poll_interval <= 0 or max_outage <= 0:
            raise ValueError("increase, lease_ttl, poll_interval and max_outage must be > 0")
        if max_samples < 1:
            raise ValueError("max_samples must be >= 1")
        self._max_capacity = max_capacity
        initial = DEFAULT_INITIAL_CAPACITY if initial_capacity is None else initial_capacity
        self._initial = float(max(1, min(max_capacity, initial)))
        self._increase = increase
        self._decrease = decrease
        self.lease_ttl = lease_ttl
        self._poll_interval = poll_interval
        self.max_outage = max_outage
        self._max_samples = max_samples
        self._claim_ttl = claim_ttl
        self._describe = describe
        self._own: dict[str, Lease] = {}
        self._claims: dict[str, tuple[str, float]] = {}  # task id -> (holder, deadline)
        self._fifo = anyio.Lock()
        self._generation = 0
        self._changed = anyio.Event()
        self._down_since: float | None = None
        self._needs_reassert = False
        self._reasserts = 0  # successful re-registrations, so reads know to read again
        self._closed = False

    # --- primitives ------------------------------------------------------------------

    @abc.abstractmethod
    async def _try(
        self, lease: Lease, *, queued: bool, enqueue: bool
    ) -> _Attempt:  # pragma: no cover - abstract
        """One atomic try: grant ``lease`` or (if ``enqueue``) keep a place in the queue."""

    @abc.abstractmethod
    async def _leave_queue(self, lease_id: str) -> None:  # pragma: no cover - abstract
        """Drop the queue place held under ``lease_id``."""

    @abc.abstractmethod
    async def _renew(self, leases: Sequence[Lease]) -> None:  # pragma: no cover
        """Extend (or re-register) ``leases``."""

    @abc.abstractmethod
    async def _release(self, leases: Sequence[Lease]) -> None:  # pragma: no cover
        """Remove ``leases``."""

    @abc.abstractmethod
    async def _limited(self, refused: Lease | None) -> None:  # pragma: no cover
        """Remove ``refused`` and shrink the window."""

    @abc.abstractmethod
    async def _accepted(self) -> None:  # pragma: no cover
        """Grow the window."""

    @abc.abstractmethod
    async def _set_window(self, slots: int) -> None:  # pragma: no cover
        """Set the window."""

    @abc.abstractmethod
    async def _pause(self, seconds: float) -> None:  # pragma: no cover
        """Extend the shared pause to at least ``seconds`` from now."""

    @abc.abstractmethod
    async def _status(self) -> _Status:  # pragma: no cover
        """Read the shared counters."""

    @abc.abstractmethod
    async def _push_duration(self, kind: str, seconds: float) -> None:  # pragma: no cover
        """Append a duration sample."""

    @abc.abstractmethod
    async def _durations(self, kind: str) -> list[float]:  # pragma: no cover
        """Read the duration samples."""

    @abc.abstractmethod
    async def _claim(self, task_id: str, holder: str, ttl: float) -> None:  # pragma: no cover
        """Record an owner."""

    @abc.abstractmethod
    async def _unclaim(self, task_id: str, holder: str) -> None:  # pragma: no cover
        """Forget an owner, if still ``holder``."""

    @abc.abstractmethod
    async def _owner(self, task_id: str) -> str | None:  # pragma: no cover
        """Read an owner."""

    @abc.abstractmethod
    async def _deliver(self, owner: str, payload: bytes) -> None:  # pragma: no cover
        """Append to an inbox."""

    @abc.abstractmethod
    async def _pop(
        self,
        holder: str,
        timeout: float,  # noqa: ASYNC109  (a bounded blocking read)
    ) -> bytes | None:  # pragma: no cover
        """Take the next inbox item, waiting up to ``timeout`` seconds."""

    async def _close(self) -> None:  # noqa: B027  (an optional hook)
        """Release connections (subclasses)."""

    def _ensure_listening(self) -> None:  # noqa: B027  (an optional hook)
        """Start whatever delivers wake-ups from other processes (subclasses)."""

    # --- wake-ups ----------------------------------------------------------------------

    def _notify(self) -> None:
        """Something changed that may let a waiter in: wake the waiters."""
        self._generation += 1
        self._changed.set()
        self._changed = anyio.Event()

    async def _wait_for_change(self, since: int, nap: float) -> None:
        if self._generation != since:
            return
        with anyio.move_on_after(max(0.0, nap)):
            await self._changed.wait()

    # --- fault handling --------------------------------------------------------------

    async def _run(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run a primitive, tracking outages and re-registering leases after one."""
        try:
            result = await op()
        except _Unavailable as exc:
            self._went_down(exc.detail)
            raise
        if self._down_since is not None:
            logger.info(
                "coordination store %s is reachable again after %.1f s",
                self._describe,
                time.monotonic() - self._down_since,
            )
            self._down_since = None
            self._needs_reassert = True
        if self._needs_reassert:
            await self._reassert_own()
        return result

    def _went_down(self, detail: str) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning(
                "coordination store %s unreachable (%s): admission waits until it answers",
                self._describe,
                detail,
            )

    def _down_for(self) -> float:
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    def _check_outage_bound(self) -> None:
        down_for = self._down_for()
        if down_for > self.max_outage:
            raise CoordinationUnavailableError(
                f"coordination store {self._describe} unreachable for {down_for:.0f} s "
                f"(more than max_outage={self.max_outage:g} s)",
                url=self._describe,
                down_for=down_for,
            )

    def _unavailable(self, detail: str) -> CoordinationUnavailableError:
        return CoordinationUnavailableError(
            f"coordination store {self._describe} unreachable ({detail})",
            url=self._describe,
            down_for=self._down_for(),
        )

    async def _reassert_own(self) -> None:
        self._needs_reassert = False
        leases = list(self._own.values())
        claims = [
            (task_id, holder, deadline - time.monotonic())
            for task_id, (holder, deadline) in self._claims.items()
        ]
        try:
            if leases:
                await self._renew(leases)
            for task_id, holder, left in claims:
                if left > 0:
                    await self._claim(task_id, holder, left)
        except _Unavailable as exc:
            self._needs_reassert = True
            self._went_down(exc.detail)
            return
        self._reasserts += 1
        if leases or claims:
            logger.info(
                "re-registered %d lease(s) and %d claim(s) with %s",
                len(leases),
                len(claims),
                self._describe,
            )

    async def _backoff(self, attempt: int) -> None:
        # A floor keeps a test suite's zeroed delays from spinning on a dead socket.
        await anyio.sleep(max(0.02, backoff_delay(attempt, initial=0.05, maximum=2.0)))

    def _check_open(self) -> None:
        if self._closed:
            raise CoordinationError(f"coordination store {self._describe} is closed")

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called (every later call raises)."""
        return self._closed

    @property
    def max_capacity(self) -> int:
        """This process's cap on the shared window (its ``max_running``)."""
        return self._max_capacity

    def _new_lease(self, holder: str, slots: int, ttl: float | None) -> Lease:
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ValueError("slots must be an int >= 1")
        ttl = self.lease_ttl if ttl is None else ttl
        if ttl <= 0:
            raise ValueError("ttl must be > 0")
        return Lease(lease_id=uuid.uuid4().hex, holder=holder, slots=slots, ttl=float(ttl))

    async def _read(self, op: Callable[[], Awaitable[T]]) -> T:
        self._check_open()
        try:
            before = self._reasserts
            result = await self._run(op)
            if self._reasserts != before:
                # The read ran on state just rebuilt by our own re-registration:
                # read again so that it counts our leases.
                result = await self._run(op)
            return result
        except _Unavailable as exc:
            detail = exc.detail
        raise self._unavailable(detail)  # outside ``except``: no foreign __context__

    async def _advise(self, what: str, op: Callable[[], Awaitable[None]]) -> None:
        self._check_open()
        try:
            await self._run(op)
        except _Unavailable:
            logger.debug("%s not shared: coordination store unreachable", what)
