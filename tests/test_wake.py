"""The batch loops' wake-up signal: kept sets, timeouts, cancellation."""

from __future__ import annotations

import asyncio
import time

import anyio

from kling_async.batch._wake import Wake


async def test_a_set_before_the_wait_is_kept_for_it() -> None:
    """A set while nobody waits makes the next wait return at once, and only that one."""
    wake = Wake()
    wake.set()
    started = time.monotonic()
    await wake.wait(5.0)
    assert time.monotonic() - started < 0.5
    started = time.monotonic()
    await wake.wait(0.05)  # nothing set since: the timeout ends it
    assert time.monotonic() - started >= 0.04


async def test_a_set_wakes_the_waiter_before_its_timeout() -> None:
    """The waiter returns when another task sets the signal, long before its timeout."""
    wake = Wake()
    woke: list[float] = []

    async def waiter() -> None:
        await wake.wait(30.0)
        woke.append(time.monotonic())

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await asyncio.sleep(0.02)
        set_at = time.monotonic()
        wake.set()
    assert woke
    assert woke[0] - set_at < 1.0


async def test_a_cancel_scope_ends_the_wait_and_the_signal_stays_usable() -> None:
    """Cancelling a waiter leaves no timer or waiter behind; a later set still counts."""
    wake = Wake()
    with anyio.move_on_after(0.02) as scope:
        await wake.wait()
    assert scope.cancelled_caught
    wake.set()
    started = time.monotonic()
    await wake.wait(5.0)
    assert time.monotonic() - started < 0.5
