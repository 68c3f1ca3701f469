"""The shared-state half of the public API: window, pause, durations, mailbox."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from typing import TypeVar

import anyio

from ._contract import Lease
from ._core import _Unavailable, logger
from ._leases import _LeaseStore

__all__: list[str] = []

_S = TypeVar("_S", bound="_StoreBase")


class _StoreBase(_LeaseStore):
    """Everything a store offers; subclasses implement the primitives."""

    async def held(self) -> int:
        """Slots held now by every process of the account.

        Returns:
            The slot count (expired leases excluded).

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        return (await self._read(self._status)).held

    async def capacity(self) -> int:
        """Slots the shared window admits now (at most :attr:`max_capacity`).

        Returns:
            The slot count.

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        return (await self._read(self._status)).capacity

    async def queued(self) -> int:
        """Places in the shared wait queue (at most one per waiting process).

        Returns:
            The count.

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        return (await self._read(self._status)).queued

    async def set_capacity(self, slots: int) -> None:
        """Set the shared window (e.g. to a quota known for certain).

        Args:
            slots: The new window (>= 1; capped by each process's ``max_capacity``).

        Raises:
            CoordinationUnavailableError: The store could not be reached.
            ValueError: ``slots`` < 1.
        """
        if slots < 1:
            raise ValueError("slots must be >= 1")
        await self._read(lambda: self._set_window(slots))

    async def on_accepted(self) -> None:
        """A create was accepted: grow the shared window (slow start, then additively)."""
        await self._advise("window growth", self._accepted)

    async def on_limited(self, *, refused: Lease | None = None) -> None:
        """A create was refused with 1303: release ``refused`` and shrink the window.

        The window drops multiplicatively, but no lower than the slots the other
        leases hold (the quota the gateway just enforced), so every process converges
        on the real limit together.

        Args:
            refused: The lease taken for the refused create, if any (it is released).
        """
        self._check_open()
        if refused is not None:
            self._disown(refused)
        with anyio.CancelScope(shield=True):
            try:
                await self._run(lambda: self._limited(refused))
            except _Unavailable:
                logger.debug("window shrink not shared: coordination store unreachable")

    async def pause(self, seconds: float) -> None:
        """Hold admission for every process for ``seconds`` (a 1302 was seen).

        The longest pause wins. Durations, not clock times, cross processes, so hosts
        need not agree on the time.

        Args:
            seconds: How long to pause.
        """
        if seconds > 0:
            await self._advise("pause", lambda: self._pause(seconds))

    async def paused_for(self) -> float:
        """Seconds left in the shared pause (0 when not paused).

        Returns:
            Seconds.

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        return (await self._read(self._status)).paused_for

    async def record_duration(self, kind: str, seconds: float) -> None:
        """Remember how long a task of ``kind`` ran (the newest ``max_samples`` are kept).

        Args:
            kind: The task kind (endpoint, model, mode...).
            seconds: Its duration.
        """
        if seconds >= 0 and math.isfinite(seconds):
            await self._advise("duration", lambda: self._push_duration(kind, seconds))

    async def durations(self, kind: str) -> list[float]:
        """The durations recorded for ``kind``, oldest first.

        Args:
            kind: The task kind.

        Returns:
            Up to ``max_samples`` durations in seconds.

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        return await self._read(lambda: self._durations(kind))

    async def claim_task(self, task_id: str, holder: str, *, ttl: float | None = None) -> None:
        """Record that ``holder`` owns ``task_id``: its callbacks are handed to ``holder``.

        Args:
            task_id: The gateway's task id.
            holder: The owner's holder id.
            ttl: Seconds the claim lives (default: the store's ``claim_ttl``).
        """
        seconds = self._claim_ttl if ttl is None else ttl
        self._claims[task_id] = (holder, time.monotonic() + seconds)
        await self._advise("task claim", lambda: self._claim(task_id, holder, seconds))

    async def release_task(self, task_id: str) -> None:
        """Forget this store's claim on ``task_id`` (the task ended and was handled).

        Args:
            task_id: The gateway's task id.
        """
        claim = self._claims.pop(task_id, None)
        if claim is not None:
            await self._advise("task release", lambda: self._unclaim(task_id, claim[0]))

    async def owner_of(self, task_id: str) -> str | None:
        """The holder that claimed ``task_id``, or ``None``.

        Args:
            task_id: The gateway's task id.

        Returns:
            The holder id, or ``None``.

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        return await self._read(lambda: self._owner(task_id))

    async def publish_callback(self, task_id: str, body: bytes) -> str | None:
        """Hand a (verified) callback for ``task_id`` to the holder that owns the task.

        Args:
            task_id: The task the callback is about.
            body: The callback's body.

        Returns:
            The owner it was delivered to, or ``None`` when nobody claimed the task
            (answer so that the sender retries).

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        owner = await self.owner_of(task_id)
        if owner is not None:
            await self.deliver(owner, body)
        return owner

    async def deliver(self, owner: str, payload: bytes) -> None:
        """Put ``payload`` in ``owner``'s inbox (kept a bounded time for a dead owner).

        Args:
            owner: A holder id.
            payload: Bytes to hand over.

        Raises:
            CoordinationUnavailableError: The store could not be reached.
        """
        await self._read(lambda: self._deliver(owner, payload))

    async def inbox(self, holder: str) -> AsyncIterator[bytes]:
        """Payloads delivered to ``holder``, in order, as they arrive (endless).

        Args:
            holder: The holder id whose inbox to read.

        Yields:
            Each payload once.

        Raises:
            CoordinationUnavailableError: The store has been unreachable for longer
                than ``max_outage``.
        """
        failures = 0
        while not self._closed:
            try:
                item = await self._run(lambda: self._pop(holder, 1.0))
            except _Unavailable:
                self._check_outage_bound()
                failures += 1
                await self._backoff(failures)
                continue
            failures = 0
            if item is not None:
                yield item

    async def aclose(self) -> None:
        """Stop background work and close connections.

        Leases still held are not released: their tasks may still run on the gateway,
        so they keep their slots until their TTL.
        """
        if self._closed:
            return
        self._closed = True
        self._notify()
        await self._close()

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
