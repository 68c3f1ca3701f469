"""One slot pool per session: calls wait for a slot instead of failing, and slots come back."""

from __future__ import annotations

import anyio
import pytest

from kling_async import (
    ImageGenerationRequest,
    SlotPool,
    SlotTimeoutError,
    Task,
    TextToVideoRequest,
)
from kling_async._converter import parse_task
from kling_async.testing import FakeConfig
from kling_async.testing._pytest_plugin import FakeFactory, fast_session_options


def _task(task_id: str, status: str) -> Task:
    return parse_task("text2video", {"task_id": task_id, "task_status": status})


async def test_a_full_pool_serves_waiters_in_arrival_order() -> None:
    """With one slot held, the next two callers get it in the order they asked."""
    pool = SlotPool(1)
    first = await pool.acquire()
    order: list[str] = []

    async def take(name: str) -> None:
        lease = await pool.acquire()
        order.append(name)
        pool.release(lease)

    async with anyio.create_task_group() as group:
        group.start_soon(take, "b")
        await anyio.wait_all_tasks_blocked()
        group.start_soon(take, "c")
        await anyio.wait_all_tasks_blocked()
        assert pool.waiting == 2
        pool.release(first)
    assert order == ["b", "c"]
    assert pool.in_use == 0


async def test_try_acquire_grants_only_what_acquire_would_grant_without_waiting() -> None:
    """A free slot is taken at once; a full pool, or one with callers in line, gives nothing."""
    pool = SlotPool(2)
    first = pool.try_acquire()
    assert first is not None
    assert pool.in_use == 1
    held = await pool.acquire()
    assert pool.try_acquire() is None  # full
    assert pool.in_use == 2

    async def wait_in_line() -> None:
        pool.release(await pool.acquire())

    async with anyio.create_task_group() as group:
        group.start_soon(wait_in_line)
        await anyio.wait_all_tasks_blocked()
        pool.release(first)  # a slot frees, but a caller waits for it: no jumping the line
        assert pool.waiting == 1
        assert pool.try_acquire() is None
    pool.release(held)
    assert pool.in_use == 0
    big = pool.try_acquire(5)  # more than the pool: the whole pool, as acquire() does
    assert big is not None
    assert big.count == 2
    assert SlotPool(None).try_acquire(3) is not None


async def test_a_cancelled_waiter_takes_nothing() -> None:
    """Cancelling a caller waiting for a slot leaves the pool as it was."""
    pool = SlotPool(1)
    held = await pool.acquire()
    with anyio.move_on_after(0.01):
        await pool.acquire()
    assert (pool.in_use, pool.waiting) == (1, 0)
    pool.release(held)
    assert pool.in_use == 0


async def test_observing_a_task_end_gives_its_slots_back() -> None:
    """A lease bound to a task is released when the task is seen terminal, not before."""
    pool = SlotPool(2)
    lease = await pool.acquire(2)
    pool.bind(lease, task_id="t-1", external_task_id="e-1")
    pool.observe(_task("t-1", "processing"))
    assert pool.in_use == 2
    pool.observe(_task("t-1", "succeed"))
    assert pool.in_use == 0


async def test_an_unobserved_task_gives_its_slot_back_after_the_ttl() -> None:
    """A bare create's slot is released once its time to live has passed."""
    now = [100.0]
    pool = SlotPool(1, ttl=30.0, clock=lambda: now[0])
    lease = await pool.acquire()
    pool.bind(lease, task_id="t-1", external_task_id=None)
    now[0] += 29.0
    assert pool.in_use == 1
    now[0] += 2.0
    assert pool.in_use == 0
    assert lease.released


async def test_a_request_larger_than_the_pool_takes_the_whole_pool() -> None:
    """Asking for more slots than exist waits for all of them rather than for ever."""
    pool = SlotPool(2)
    lease = await pool.acquire(4)
    assert lease.count == 2
    assert pool.in_use == 2


async def test_an_unbounded_pool_never_waits() -> None:
    """limit=None: acquire returns at once and nothing is tracked."""
    pool = SlotPool(None)
    leases = [await pool.acquire() for _ in range(100)]
    assert pool.in_use == 0
    assert len(leases) == 100


async def test_fifty_runs_share_five_slots_without_a_refusal(
    kling_fake_factory: FakeFactory,
) -> None:
    """50 concurrent run() on one session at quota 5: all succeed, the gateway refuses none."""
    results: list[Task] = []
    async with kling_fake_factory(FakeConfig(time_scale=0.001, max_running=5)) as fake:
        async with fake.session(max_running=5, **fast_session_options()) as session:

            async def one(i: int) -> None:
                results.append(
                    await session.text_to_video.run(TextToVideoRequest(prompt=f"p{i}"), timeout=120)
                )

            async with anyio.create_task_group() as group:
                for i in range(50):
                    group.start_soon(one, i)
            assert session.slots.in_use == 0
        stats = fake.stats()
    assert len(results) == 50
    assert all(task.succeeded for task in results)
    assert stats["concurrency_limited"] == 0
    assert stats["creates"] == 50
    assert stats["max_running_observed"] <= 5


async def test_without_a_pool_refusals_are_waited_out(kling_fake_factory: FakeFactory) -> None:
    """No max_running: 1303 refusals wait for a slot and retry; every run still succeeds."""
    async with kling_fake_factory(FakeConfig(time_scale=0.001, max_running=3)) as fake:
        async with (
            fake.session(**fast_session_options()) as session,
            anyio.create_task_group() as group,
        ):
            for i in range(12):
                group.start_soon(session.text_to_video.run, TextToVideoRequest(prompt=f"p{i}"))
        stats = fake.stats()
    assert stats["creates"] == 12
    assert stats["tasks_by_status"]["succeed"] == 12


async def test_images_hold_one_slot_per_image(kling_fake_factory: FakeFactory) -> None:
    """An image task asking for 4 images holds 4 of the session's slots while it runs."""
    async with (
        kling_fake_factory(FakeConfig(time_scale=0.001)) as fake,
        fake.session(max_running=5, **fast_session_options()) as session,
    ):
        task = await session.image_generation.create(ImageGenerationRequest(prompt="x", n=4))
        assert session.slots.in_use == 4
        await session.wait(task)
        assert session.slots.in_use == 0


async def test_no_slot_before_the_deadline_creates_nothing(
    kling_fake_factory: FakeFactory,
) -> None:
    """A run that cannot get a slot in its timeout raises SlotTimeoutError and sends nothing."""
    async with kling_fake_factory(FakeConfig(time_scale=1.0)) as fake:
        async with fake.session(max_running=1, **fast_session_options()) as session:
            await session.text_to_video.create(TextToVideoRequest(prompt="holds the slot"))
            with pytest.raises(SlotTimeoutError):
                await session.text_to_video.run(TextToVideoRequest(prompt="x"), timeout=0.05)
        assert fake.stats()["create_requests"] == 1
