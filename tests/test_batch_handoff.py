"""The batch's rendezvous channel: hand-overs, order, ends, and cancellation."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from kling_async.batch._handoff import Handoff


async def test_send_returns_once_a_receiver_has_the_item() -> None:
    send, recv = Handoff[int]().open()
    sent = asyncio.create_task(send.send(1))
    await asyncio.sleep(0.01)
    assert not sent.done()  # nobody took it yet: the sender waits
    assert await recv.receive() == 1
    await asyncio.wait_for(sent, 1)


async def test_items_keep_their_order_and_go_to_receivers_in_line() -> None:
    send, recv = Handoff[int]().open()
    got: list[tuple[str, int]] = []

    async def take(name: str) -> None:
        got.append((name, await recv.receive()))

    first = asyncio.create_task(take("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(take("second"))
    await asyncio.sleep(0)
    await send.send(1)  # a receiver waits: handed over without waiting
    await send.send(2)
    await asyncio.gather(first, second)
    assert got == [("first", 1), ("second", 2)]
    senders = [asyncio.create_task(send.send(i)) for i in (3, 4, 5)]
    await asyncio.sleep(0.01)
    assert [await recv.receive() for _ in range(3)] == [3, 4, 5]
    await asyncio.gather(*senders)


async def test_receivers_end_once_every_sender_closed() -> None:
    send, recv = Handoff[str]().open()
    other = send.clone()
    seen: list[str] = []

    async def drain() -> None:
        async with recv:
            async for item in recv:
                seen.append(item)

    reader = asyncio.create_task(drain())
    async with send:
        await send.send("a")
    await asyncio.sleep(0.01)
    assert not reader.done()  # one sender is still open
    async with other:
        await other.send("b")
    await asyncio.wait_for(reader, 1)
    assert seen == ["a", "b"]
    with pytest.raises(anyio.ClosedResourceError):
        await send.send("c")


async def test_a_send_with_no_receiver_left_is_broken() -> None:
    send, recv = Handoff[int]().open()
    waiting = asyncio.create_task(send.send(1))
    await asyncio.sleep(0.01)
    recv.close()
    with pytest.raises(anyio.BrokenResourceError):
        await asyncio.wait_for(waiting, 1)
    with pytest.raises(anyio.BrokenResourceError):
        await send.send(2)


async def test_a_cancelled_sender_withdraws_its_item() -> None:
    send, recv = Handoff[int]().open()
    withdrawn = asyncio.create_task(send.send(1))
    await asyncio.sleep(0.01)
    withdrawn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await withdrawn
    later = asyncio.create_task(send.send(2))
    assert await asyncio.wait_for(recv.receive(), 1) == 2
    await later


async def test_an_item_reaching_a_cancelled_receiver_goes_to_the_next_one() -> None:
    send, recv = Handoff[int]().open()
    doomed = asyncio.create_task(recv.receive())
    await asyncio.sleep(0.01)  # waiting in line
    await send.send(7)  # handed to it; it has not resumed yet
    doomed.cancel()  # cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await doomed
    # The item was neither lost nor duplicated: the next receiver gets it.
    assert await asyncio.wait_for(recv.receive(), 1) == 7
    pending = asyncio.create_task(recv.receive())
    await asyncio.sleep(0.01)
    assert not pending.done()
    pending.cancel()


async def test_an_item_spilled_by_a_cancelled_receiver_reaches_one_already_waiting() -> None:
    send, recv = Handoff[int]().open()
    doomed = asyncio.create_task(recv.receive())
    await asyncio.sleep(0.01)
    patient = asyncio.create_task(recv.receive())
    await asyncio.sleep(0.01)
    await send.send(9)  # to the first in line
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await asyncio.wait_for(patient, 1) == 9


async def test_a_worker_finding_a_sender_waiting_takes_the_item_without_yielding() -> None:
    send, recv = Handoff[int]().open()
    sent = asyncio.create_task(send.send(3))
    await asyncio.sleep(0.01)
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    before = turns
    assert await recv.receive() == 3
    assert turns == before  # no turn of the loop was spent on the hand-over
    counter.cancel()
    await sent


async def test_a_send_after_every_receiver_closed_outside_a_cancellation_is_broken() -> None:
    send, recv = Handoff[int]().open()
    recv.close()
    with anyio.fail_after(1), pytest.raises(anyio.BrokenResourceError):
        await send.send(1)
