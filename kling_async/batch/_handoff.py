"""A rendezvous channel between the batch's loops and its worker pools (asyncio).

The poller hands each due poll to an idle poll worker, admission each admitted
job to an idle create worker. An anyio memory stream of size 0 does the same, but
every hand-over costs it three turns of the event loop (a checkpoint on each side
and the receiver's wake-up); in a 4,000-job batch that is tens of thousands of
turns a minute. Here a hand-over to a worker already waiting costs one turn (its
wake-up), and a worker that finds a sender waiting takes the item without
yielding at all.

Semantics are those of a zero-size memory stream: ``send`` returns once a receiver
has the item; items go out in the order sent and to receivers in the order they
began waiting; the receiving side ends (``async for`` stops) once every sender is
closed; a send after every receiver closed raises
:class:`anyio.BrokenResourceError`. A receiver cancelled after an item reached it
but before it resumed passes the item on to the next receiver: nothing handed over
is lost to a cancellation.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Generic, NoReturn, Protocol, TypeVar

import anyio

__all__ = ["Handoff", "Inbox", "Outbox", "Receiver", "Sender"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)

_E = TypeVar("_E", bound="_End[Any]")

_END: Any = object()  # given to waiting receivers once every sender closed


class Outbox(Protocol[T_contra]):
    """The sending end a loop takes (a :class:`Sender`, or an anyio stream in tests)."""

    async def send(self, item: T_contra) -> None:
        """Hand ``item`` over; return once a receiver has it."""
        ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any: ...


class Inbox(Protocol[T_co]):
    """The receiving end a worker takes (a :class:`Receiver`, or an anyio stream)."""

    def __aiter__(self) -> AsyncIterator[T_co]: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any: ...


async def _broken() -> NoReturn:
    """Refuse a send: every receiver is gone.

    Receivers go when the worker pool is cancelled with the batch. Inside a
    cancelled scope the cancellation is waited for, so the sender ends as
    cancelled, as every other loop does, rather than with an error of its own.
    """
    if anyio.current_effective_deadline() == -math.inf:
        await anyio.sleep_forever()
    raise anyio.BrokenResourceError


class Handoff(Generic[T]):
    """The shared state of one channel: who waits, with what.

    Open ends with :meth:`open`; clone an end for each further loop or worker.
    """

    __slots__ = ("_receivers", "_senders", "_spilled", "open_receivers", "open_senders")

    def __init__(self) -> None:
        # Waiting senders (their future -> their item) and receivers, oldest first.
        self._senders: OrderedDict[asyncio.Future[bool], T] = OrderedDict()
        self._receivers: OrderedDict[asyncio.Future[T], None] = OrderedDict()
        # Items that reached a receiver cancelled before it resumed: next in line.
        self._spilled: deque[T] = deque()
        self.open_senders = 0
        self.open_receivers = 0

    def open(self) -> tuple[Sender[T], Receiver[T]]:
        """The first sending and receiving ends of the channel."""
        return Sender(self), Receiver(self)

    def _give(self, item: T) -> bool:
        """Hand ``item`` to the oldest waiting receiver, if any."""
        while self._receivers:
            waiter, _ = self._receivers.popitem(last=False)
            if not waiter.done():
                waiter.set_result(item)
                return True
        return False

    async def send(self, item: T) -> None:
        """Hand ``item`` to a receiver, waiting for one if none waits (see :class:`Sender`)."""
        if self.open_receivers == 0:
            await _broken()
        if self._give(item):
            return
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._senders[waiter] = item
        try:
            taken = await waiter
        except BaseException:
            # Not taken yet: withdrawn. Taken already: it is delivered, and the
            # cancellation goes on as for any await.
            self._senders.pop(waiter, None)
            raise
        if not taken:
            await _broken()

    async def receive(self) -> T:
        """The next item, waiting for a sender if none waits (see :class:`Receiver`)."""
        if self._spilled:
            return self._spilled.popleft()
        while self._senders:
            waiter, item = self._senders.popitem(last=False)
            if not waiter.done():  # a cancelled sender withdrew its item
                waiter.set_result(True)
                return item
        if self.open_senders == 0:
            raise anyio.EndOfStream
        waiter_: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._receivers[waiter_] = None
        try:
            item = await waiter_
        except BaseException:
            self._receivers.pop(waiter_, None)
            if waiter_.done() and not waiter_.cancelled():
                got = waiter_.result()
                if got is not _END and not self._give(got):
                    self._spilled.append(got)
            raise
        if item is _END:
            raise anyio.EndOfStream
        return item

    def sender_closed(self) -> None:
        """One sending end closed; after the last, waiting receivers end."""
        self.open_senders -= 1
        if self.open_senders == 0:
            while self._receivers:
                waiter, _ = self._receivers.popitem(last=False)
                if not waiter.done():
                    waiter.set_result(_END)

    def receiver_closed(self) -> None:
        """One receiving end closed; after the last, waiting senders are refused."""
        self.open_receivers -= 1
        if self.open_receivers == 0:
            while self._senders:
                waiter, _ = self._senders.popitem(last=False)
                if not waiter.done():
                    waiter.set_result(False)


class _End(Generic[T]):
    """What both ends share: closing once (also on leaving ``with``/``async with``)."""

    __slots__ = ("_closed", "_state")

    def __init__(self, state: Handoff[T]) -> None:
        self._state = state
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError

    def _release(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Close this end (idempotent)."""
        if not self._closed:
            self._closed = True
            self._release()

    def __enter__(self: _E) -> _E:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self: _E) -> _E:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Sender(_End[T]):
    """One sending end (``async with`` closes it; :meth:`clone` opens another).

    The last sending end closed ends the receivers' loops.
    """

    __slots__ = ()

    def __init__(self, state: Handoff[T]) -> None:
        super().__init__(state)
        state.open_senders += 1

    def _release(self) -> None:
        self._state.sender_closed()

    def clone(self) -> Sender[T]:
        """Another sending end of the same channel."""
        self._check_open()
        return Sender(self._state)

    async def send(self, item: T) -> None:
        """Hand ``item`` over; return once a receiver has it.

        Args:
            item: What to hand over.

        Raises:
            anyio.ClosedResourceError: This end was closed.
            anyio.BrokenResourceError: Every receiving end was closed.
        """
        self._check_open()
        await self._state.send(item)


class Receiver(_End[T]):
    """One receiving end, iterated with ``async for`` until every sender closed."""

    __slots__ = ()

    def __init__(self, state: Handoff[T]) -> None:
        super().__init__(state)
        state.open_receivers += 1

    def _release(self) -> None:
        self._state.receiver_closed()

    def clone(self) -> Receiver[T]:
        """Another receiving end of the same channel."""
        self._check_open()
        return Receiver(self._state)

    async def receive(self) -> T:
        """The next item, waiting for a sender if none waits.

        Returns:
            The item.

        Raises:
            anyio.EndOfStream: Every sending end was closed.
            anyio.ClosedResourceError: This end was closed.
        """
        self._check_open()
        return await self._state.receive()

    def __aiter__(self) -> Receiver[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
