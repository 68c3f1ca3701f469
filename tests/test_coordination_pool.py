"""Single calls sharing slots across processes: ``SlotPool.coordinated`` over a slot store."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from _redis import RedisServer, redis_server_binary, running_redis

from kling_async import ClientConfig, Task, TaskStatus
from kling_async._slots import CoordinatedSlotPool, SlotPool, account_key_of
from kling_async.coordination import InProcessSlotStore, RedisSlotStore

GUARD = 10.0  # seconds; turns a hang into a failure, never a timing check


async def until_held(store: InProcessSlotStore | RedisSlotStore, held: int) -> None:
    """Let background releases run until the store counts ``held`` slots."""
    with anyio.fail_after(GUARD):
        while await store.held() != held:
            await anyio.lowlevel.checkpoint()


def ended(task_id: str) -> Task:
    return Task(id=task_id, endpoint="text2video", status=TaskStatus.SUCCEED)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port."""
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with running_redis(tmp_path) as server:
        yield server


async def test_two_pools_on_one_store_share_its_slots() -> None:
    """Two sessions' pools, one store of 2 slots: the third call waits for a release."""
    store = InProcessSlotStore(max_capacity=2, initial_capacity=2)
    first = SlotPool.coordinated(store, limit=2)
    second = SlotPool.coordinated(store, limit=2)
    a = await first.acquire()
    b = await second.acquire()
    assert await store.held() == 2
    got: list[object] = []

    async def third() -> None:
        got.append(await second.acquire())

    with anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(third)
            while second.waiting == 0:
                await anyio.lowlevel.checkpoint()
            assert not got
            first.release(a)
    assert len(got) == 1
    assert second.in_use == 2
    second.release(b)
    await until_held(store, 1)
    await first.aclose()
    await second.aclose()


async def test_an_image_task_takes_one_shared_slot_per_image() -> None:
    """acquire(3) holds three slots of the shared window."""
    store = InProcessSlotStore(max_capacity=4, initial_capacity=4)
    pool = SlotPool.coordinated(store, limit=4)
    lease = await pool.acquire(3)
    assert lease.count == 3
    assert await store.held() == 3
    pool.release(lease)
    await until_held(store, 0)
    await pool.aclose()


async def test_seeing_a_task_end_gives_its_shared_slot_back() -> None:
    """A bound lease is released in the store when a read observes its task terminal."""
    store = InProcessSlotStore(max_capacity=2)
    pool = SlotPool.coordinated(store, limit=2)
    lease = await pool.acquire()
    pool.bind(lease, task_id="t1", external_task_id="e1")
    pool.observe(Task(id="t1", endpoint="text2video", status=TaskStatus.PROCESSING))
    assert await store.held() == 1
    pool.observe(ended("t1"))
    await until_held(store, 0)
    assert lease.released
    await pool.aclose()


async def test_a_cancelled_wait_takes_no_shared_slot() -> None:
    """Cancelling a call queued for a full store leaves the store's count unchanged."""
    store = InProcessSlotStore(max_capacity=1, initial_capacity=1)
    pool = SlotPool.coordinated(store, limit=1)
    held = await pool.acquire()
    with anyio.move_on_after(0.05):
        await pool.acquire()
    assert pool.waiting == 0
    assert await store.held() == 1
    pool.release(held)
    await until_held(store, 0)
    await pool.aclose()


def test_for_config_keeps_a_local_pool_without_coordination() -> None:
    """No coordination setting: the plain pool with the configuration's cap and TTL."""
    pool = SlotPool.for_config(ClientConfig(api_key="k", endpoint_path="p", max_running=3))
    assert type(pool) is SlotPool
    assert pool.limit == 3


def test_for_config_shares_slots_when_the_configuration_names_a_store() -> None:
    """A configuration with ``coordination`` gets a coordinated pool keyed by its account."""
    store = InProcessSlotStore(max_capacity=5)
    config = types.SimpleNamespace(
        coordination=store, max_running=5, slot_ttl=60.0, api_key="k", access_key=None
    )
    pool = SlotPool.for_config(config)  # type: ignore[arg-type]
    assert isinstance(pool, CoordinatedSlotPool)
    assert pool.limit == 5
    assert pool.ttl == 60.0


def test_the_account_key_is_a_fingerprint_never_the_key() -> None:
    """Same key, same account; the key itself appears nowhere in the id."""
    one = account_key_of(ClientConfig(api_key="secret-key-1", endpoint_path="p"))
    again = account_key_of(ClientConfig(api_key="secret-key-1", endpoint_path="q"))
    other = account_key_of(ClientConfig(api_key="secret-key-2", endpoint_path="p"))
    assert one == again != other
    assert "secret" not in one


async def test_pools_given_a_redis_url_share_its_slots(redis: RedisServer) -> None:
    """Two pools (two web workers) given one URL open it lazily, share it, close it."""
    first = SlotPool.coordinated(redis.url, limit=1, account_key="web")
    second = SlotPool.coordinated(redis.url, limit=1, account_key="web")
    async with RedisSlotStore(redis.url, account_key="web", recount_grace=0) as check:
        await check.ping()
        await check.set_capacity(1)
        lease = await first.acquire()
        assert await check.held() == 1
        with anyio.move_on_after(0.2):
            await second.acquire()
        assert await check.held() == 1  # the second call waited: one account, one slot
        first.release(lease)
        await until_held(check, 0)
        await first.aclose()
        await second.aclose()


async def test_a_1303_in_a_single_call_shrinks_the_shared_window() -> None:
    """The session's wait after a 1303 tells the store, so other processes admit fewer."""
    store = InProcessSlotStore(max_capacity=8, initial_capacity=8)
    pool = SlotPool.coordinated(store, limit=8)
    lease = await pool.acquire()
    await pool.changed(timeout=0.0)
    with anyio.fail_after(GUARD):
        while await store.capacity() == 8:
            await anyio.lowlevel.checkpoint()
    assert await store.held() == 1  # the caller keeps its lease for the retry
    pool.release(lease)
    await pool.aclose()
