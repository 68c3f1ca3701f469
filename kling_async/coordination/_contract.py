"""The slot-store contract: the protocol, the lease, the errors and the defaults.

A *slot store* is the one place an account's concurrency slots are counted. Every
paid create first takes a :class:`Lease` on as many slots as the task uses (a video
1, an image task with ``n`` images ``n``), keeps it alive while the task runs and
gives it back when the task ends. A lease has a time to live: the holder renews it
(:meth:`SlotStore.keep_alive` does so for every lease a store handed out), so the
leases of a process that crashed expire and their slots come back on their own.

Besides the leases, the store shares what one process learns with all of them:
the admission *window* (AIMD over slots: :meth:`~SlotStore.on_accepted` grows it,
:meth:`~SlotStore.on_limited` shrinks it, for everybody), a *pause* after a 1302,
learned task *durations* per kind, and a *mailbox* through which a callback that
reached the wrong process is handed to the process that owns the task.

Faults. A store that cannot be reached never lets its callers overcommit:

- ``acquire`` returns ``None`` (no slot); ``wait_acquire`` keeps waiting,
  retrying with backoff; ``inbox`` keeps retrying.
- ``renew``, ``renew_all``, ``keep_alive``, ``release`` and ``reassert`` are
  tolerated (``False``): leases stay valid until their TTL, and are re-registered
  when the store answers again.
- ``on_accepted``, ``on_limited``, ``pause``, ``record_duration``, ``claim_task``
  and ``release_task`` are dropped (logged at debug level).
- ``held``, ``capacity``, ``queued``, ``paused_for``, ``durations``, ``owner_of``,
  ``publish_callback``, ``deliver`` and ``set_capacity`` raise
  :class:`CoordinationUnavailableError` at once: the caller decides (a callback
  answered 503 is retried by its sender).

Once the store has been unreachable for longer than ``max_outage`` seconds in a
row, ``acquire``, ``wait_acquire`` and ``inbox`` raise
:class:`CoordinationUnavailableError` instead: a clear failure after a bounded
wait. When the store answers again after an outage, or turns out to have lost its
state (a restart without persistence), the store re-registers every lease it still
holds (:meth:`SlotStore.reassert`), so the count is rebuilt from the processes' own
running tasks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Protocol, runtime_checkable

import attrs

from .._errors import KlingError

__all__ = [
    "DEFAULT_CLAIM_TTL",
    "DEFAULT_INITIAL_CAPACITY",
    "DEFAULT_LEASE_TTL",
    "DEFAULT_MAX_OUTAGE",
    "DEFAULT_MAX_SAMPLES",
    "DEFAULT_POLL_INTERVAL",
    "CoordinationError",
    "CoordinationUnavailableError",
    "Lease",
    "SlotStore",
]


#: Seconds a lease lives without renewal; :meth:`SlotStore.keep_alive` renews at a third.
DEFAULT_LEASE_TTL = 30.0
#: Seconds the store may stay unreachable before admission fails clearly.
DEFAULT_MAX_OUTAGE = 120.0
#: Task durations kept per kind.
DEFAULT_MAX_SAMPLES = 200
#: Seconds a task's ownership claim lives (longer than any task runs).
DEFAULT_CLAIM_TTL = 6 * 3600.0
#: Seconds between checks while waiting when no wake-up arrives.
DEFAULT_POLL_INTERVAL = 0.5
#: Slow-start window: slots admitted before the first create was accepted.
DEFAULT_INITIAL_CAPACITY = 4


class CoordinationError(KlingError):
    """The coordination store is misused or answered something unusable.

    Attributes:
        url: The store's URL with any password replaced by ``***`` (``""`` in-process).
    """

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class CoordinationUnavailableError(CoordinationError):
    """The store could not be reached: at start, for a read, or for longer than allowed.

    Attributes:
        url: The store's URL, redacted.
        down_for: Seconds the store had been unreachable (0 for a first failure).
    """

    def __init__(self, message: str, *, url: str = "", down_for: float = 0.0) -> None:
        super().__init__(message, url=url)
        self.down_for = down_for


@attrs.frozen
class Lease:
    """Slots held for one task, until released or expired.

    A lease holds no clock value: its expiry lives in the store (in Redis, on the
    server's clock), so processes on hosts with different clocks agree on it.

    Attributes:
        lease_id: Unique id of the lease.
        holder: Id of the process (or session) holding it.
        slots: Slots it holds (an image task with ``n`` images holds ``n``).
        ttl: Seconds it lives after each renewal.
    """

    lease_id: str
    holder: str
    slots: int
    ttl: float


@runtime_checkable
class SlotStore(Protocol):
    """Shared slots and account state for every process using one account.

    See the module docstring for what each call does while the store is unreachable.
    """

    @property
    def max_capacity(self) -> int:
        """This process's cap on the shared window (its ``max_running``)."""
        ...

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
        """
        ...

    async def wait_acquire(
        self,
        holder: str,
        slots: int,
        *,
        ttl: float | None = None,
        timeout: float | None = None,
    ) -> Lease | None:
        """Queue for ``slots`` (first come, first served across processes) and take them.

        Args:
            holder: Id of the calling process or session.
            slots: Slots the task takes (>= 1).
            ttl: Seconds the lease lives without renewal (default: the store's).
            timeout: Seconds to wait at most (``None``: no limit).

        Returns:
            The lease, or ``None`` when ``timeout`` passed first.

        Raises:
            CoordinationUnavailableError: The store has been unreachable too long.
        """
        ...

    async def renew(self, lease: Lease) -> bool:
        """Extend ``lease`` by its TTL (re-registering it if the store lost it).

        Args:
            lease: A lease from this store.

        Returns:
            ``False`` when the store could not be reached (the lease stays valid until
            its TTL and is re-registered once the store answers).
        """
        ...

    async def renew_all(self) -> bool:
        """Extend every lease this store handed out and has not released.

        Returns:
            ``False`` when the store could not be reached.
        """
        ...

    async def keep_alive(self, *, interval: float | None = None) -> None:
        """Renew this store's leases every ``interval`` seconds until cancelled.

        Args:
            interval: Seconds between renewals (default: a third of the store's TTL).
        """
        ...

    async def release(self, lease: Lease) -> None:
        """Give ``lease``'s slots back (the task ended). Never raises for an outage."""
        ...

    async def reassert(self, leases: Iterable[Lease] | None = None) -> bool:
        """Register leases the store may have lost (after a restart without persistence).

        Args:
            leases: Leases of tasks still running (default: every lease this store
                handed out and has not released).

        Returns:
            ``False`` when the store could not be reached.
        """
        ...

    async def held(self) -> int:
        """Slots held now by every process of the account.

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        ...

    async def capacity(self) -> int:
        """Slots the shared window admits now (at most :attr:`max_capacity`).

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        ...

    async def queued(self) -> int:
        """Places in the shared wait queue (at most one per waiting process).

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        ...

    async def set_capacity(self, slots: int) -> None:
        """Set the shared window (e.g. to a quota known for certain).

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        ...

    async def on_accepted(self) -> None:
        """A create was accepted: grow the shared window (slow start, then additively)."""
        ...

    async def on_limited(self, *, refused: Lease | None = None) -> None:
        """A create was refused with 1303: release ``refused`` and shrink the window.

        The window drops multiplicatively, but no lower than the slots the other
        leases hold (the quota just measured), so it converges on the real limit.

        Args:
            refused: The lease taken for the refused create, if any.
        """
        ...

    async def pause(self, seconds: float) -> None:
        """Hold admission for every process for ``seconds`` (a 1302 was seen)."""
        ...

    async def paused_for(self) -> float:
        """Seconds left in the shared pause (0 when not paused).

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        ...

    async def record_duration(self, kind: str, seconds: float) -> None:
        """Remember how long a task of ``kind`` ran (a bounded list per kind)."""
        ...

    async def durations(self, kind: str) -> list[float]:
        """The durations recorded for ``kind``, oldest first.

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        ...

    async def claim_task(self, task_id: str, holder: str, *, ttl: float | None = None) -> None:
        """Record that ``holder`` owns ``task_id`` (its callbacks go to ``holder``)."""
        ...

    async def release_task(self, task_id: str) -> None:
        """Forget this store's claim on ``task_id`` (the task ended)."""
        ...

    async def owner_of(self, task_id: str) -> str | None:
        """The holder that claimed ``task_id``, or ``None``.

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        ...

    async def publish_callback(self, task_id: str, body: bytes) -> str | None:
        """Hand a callback for ``task_id`` to the holder that owns the task.

        Returns:
            The owner it was delivered to, or ``None`` when nobody claimed the task.

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        ...

    async def deliver(self, owner: str, payload: bytes) -> None:
        """Put ``payload`` in ``owner``'s inbox.

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        ...

    def inbox(self, holder: str) -> AsyncIterator[bytes]:
        """Payloads delivered to ``holder``, in order, as they arrive (endless)."""
        ...

    async def aclose(self) -> None:
        """Stop background work and close connections (leases are left to expire)."""
        ...


# --- pure helpers -------------------------------------------------------------------
