"""The Redis slot store against a real ``redis-server``: concurrency, crashes, restarts.

Nothing here mocks Redis. Several tests start real child processes (``spawn``), kill
one with SIGKILL, or stop and restart the server (persistence off, so a restart
loses every key). Times are fractions of a second; bounds are generous and only
ever guard against hanging, never measure speed.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from _redis import (
    RedisServer,
    churn_worker,
    hold_worker,
    redis_server_binary,
    running_redis,
    steady_worker,
)

from kling_async.coordination import (
    CoordinationUnavailableError,
    Lease,
    RedisSlotStore,
    open_store,
)

pytestmark = pytest.mark.skipif(
    redis_server_binary() is None,
    reason="redis-server is not installed (apt-get install redis-server)",
)

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server for tests that never stop it (each uses its own account)."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server this test may stop and restart."""
    with running_redis(tmp_path) as server:
        yield server


@pytest.fixture
def account() -> str:
    """A fresh account key, so tests sharing a server never see each other's slots."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
async def stores() -> AsyncIterator[list[RedisSlotStore]]:
    """Stores a test opens; closed at the end even when the test fails."""
    opened: list[RedisSlotStore] = []
    yield opened
    for store in opened:
        await store.aclose()


async def eventually(
    read: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], *, within: float = 15.0
) -> Any:
    """Read until ``ok(value)``, at most ``within`` seconds (a guard against hanging)."""
    with anyio.fail_after(within):
        while True:
            value = await read()
            if ok(value):
                return value
            await anyio.sleep(0.02)


async def test_many_clients_never_hold_more_than_capacity(
    shared_server: RedisServer, account: str, stores: list[RedisSlotStore]
) -> None:
    """Eight clients with four tasks each, one- and two-slot leases: never above capacity."""
    capacity = 5
    for _ in range(8):
        stores.append(
            RedisSlotStore(
                shared_server.url,
                account_key=account,
                max_capacity=capacity,
                initial_capacity=capacity,
                recount_grace=0,
            )
        )
    running = 0
    peak = 0
    done = 0

    async def worker(store: RedisSlotStore, slots: int) -> None:
        nonlocal running, peak, done
        for _ in range(6):
            lease = await store.wait_acquire("w", slots, timeout=30)
            assert lease is not None
            running += slots
            peak = max(peak, running)
            await anyio.sleep(0.005)
            running -= slots
            await store.release(lease)
            done += 1

    async with anyio.create_task_group() as tg:
        for index, store in enumerate(stores):
            for task in range(4):
                tg.start_soon(worker, store, 1 + (index + task) % 2)
    assert done == 8 * 4 * 6
    assert 1 < peak <= capacity
    assert await stores[0].held() == 0


def test_processes_never_hold_more_than_capacity(shared_server: RedisServer, account: str) -> None:
    """Three real processes with three tasks each share four slots: never more held."""
    running = SPAWN.Value("i", 0)
    peak = SPAWN.Value("i", 0)
    done = SPAWN.Value("i", 0)
    lock = SPAWN.Lock()
    options = {"max_capacity": 4, "initial_capacity": 4, "recount_grace": 0}
    children = [
        SPAWN.Process(
            target=churn_worker,
            args=(shared_server.url, account, options, 8, 3, 0.01, running, peak, lock, done),
        )
        for _ in range(3)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0
    assert done.value == 3 * 3 * 8
    assert 1 < peak.value <= 4


async def test_a_killed_process_leases_expire(
    shared_server: RedisServer, account: str, stores: list[RedisSlotStore]
) -> None:
    """SIGKILL a process holding every slot: after its TTL, the others take the slots."""
    options: dict[str, Any] = {
        "max_capacity": 3,
        "initial_capacity": 3,
        "recount_grace": 0,
        "lease_ttl": 0.5,
    }
    ready = SPAWN.Event()
    child = SPAWN.Process(target=hold_worker, args=(shared_server.url, account, options, 3, ready))
    child.start()
    try:
        assert await anyio.to_thread.run_sync(ready.wait, 60)
        store = RedisSlotStore(shared_server.url, account_key=account, **options)
        stores.append(store)
        assert await store.acquire("survivor", 1) is None
        assert await store.held() == 3
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        lease = await store.wait_acquire("survivor", 3, timeout=20)
        assert lease is not None
        assert await store.held() == 3
    finally:
        child.kill()
        child.join(timeout=10)
    assert child.exitcode == -signal.SIGKILL


def test_two_processes_with_steady_demand_both_get_slots(
    shared_server: RedisServer, account: str
) -> None:
    """A greedy process (six tasks) cannot starve a modest one (one task) of two slots."""
    grants = SPAWN.Queue()
    stop = SPAWN.Event()
    options = {"max_capacity": 2, "initial_capacity": 2, "recount_grace": 0}
    children = [
        SPAWN.Process(
            target=steady_worker,
            args=(shared_server.url, account, options, name, workers, 0.02, grants, stop),
        )
        for name, workers in (("greedy", 6), ("modest", 1))
    ]
    for child in children:
        child.start()
    counts = {"greedy": 0, "modest": 0}
    try:
        # Count from the moment both are running, so a slow start is not unfairness.
        seen: set[str] = set()
        while len(seen) < 2:
            seen.add(grants.get(timeout=60))
        for _ in range(60):
            counts[grants.get(timeout=60)] += 1
    finally:
        stop.set()
        for child in children:
            child.join(timeout=30)
    assert all(child.exitcode == 0 for child in children)
    # Strict turns would give the modest process about a third; starvation gives 0.
    assert counts["modest"] >= 10, counts
    assert counts["greedy"] >= 10, counts


async def test_redis_down_admits_nobody_then_work_completes(
    own_server: RedisServer, account: str, stores: list[RedisSlotStore]
) -> None:
    """Stop Redis mid-run: no lease is granted while it is down; after a restart all finish."""
    capacity = 3
    for _ in range(2):
        stores.append(
            RedisSlotStore(
                own_server.url,
                account_key=account,
                max_capacity=capacity,
                initial_capacity=capacity,
                recount_grace=0.3,
                lease_ttl=1.0,
                max_outage=60,
            )
        )
    await stores[0].ping()
    await anyio.sleep(0.35)  # past the fresh server's recount grace
    running = 0
    peak = 0
    finished = 0

    async def finished_count() -> int:
        return finished

    async def job(store: RedisSlotStore) -> None:
        nonlocal running, peak, finished
        lease = await store.wait_acquire("job", 1, timeout=60)
        assert lease is not None
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.15)
        running -= 1
        await store.release(lease)
        finished += 1

    async with anyio.create_task_group() as tg:
        for store in stores:
            tg.start_soon(functools.partial(store.keep_alive, interval=0.1))
        async with anyio.create_task_group() as jobs:
            for index in range(12):
                jobs.start_soon(job, stores[index % 2])
            await eventually(finished_count, lambda n: n >= 3)
            own_server.stop()
            # While Redis is down nobody is admitted: the probe and every waiter wait.
            assert await stores[1].acquire("probe", 1) is None
            await anyio.sleep(0.5)
            own_server.start()
        tg.cancel_scope.cancel()
    assert finished == 12
    assert peak <= capacity


async def test_restart_recounts_from_running_leases(
    own_server: RedisServer, account: str, stores: list[RedisSlotStore]
) -> None:
    """After a restart without persistence, holders re-register their leases before others
    may take slots, so the count is rebuilt and never overcommitted."""
    options: dict[str, Any] = {
        "max_capacity": 3,
        "initial_capacity": 3,
        # Generous: the first acquire below must come while the fresh server is still
        # inside the grace, however long the restart and reconnect take on a busy machine.
        "recount_grace": 5.0,
        "lease_ttl": 2.0,
    }
    # The holder may take slots on the fresh test server at once; the other must wait
    # out the grace after the restart below.
    holder = RedisSlotStore(own_server.url, account_key=account, **{**options, "recount_grace": 0})
    other = RedisSlotStore(own_server.url, account_key=account, **options)
    stores += [holder, other]
    await holder.ping()
    held = [await holder.acquire("holder", 1) for _ in range(2)]
    assert all(held)
    own_server.restart()
    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(holder.keep_alive, interval=0.05))
        # The other process is first to touch the fresh server: nobody is admitted
        # while the count is unknown, even though the new server says 0 are held.
        assert await other.acquire("other", 3) is None
        assert await eventually(other.held, lambda n: n == 2) == 2
        lease = await other.wait_acquire("other", 1, timeout=20)
        assert lease is not None
        assert await other.acquire("other", 1) is None
        tg.cancel_scope.cancel()


async def test_epoch_change_alone_triggers_reassert(
    own_server: RedisServer, account: str, stores: list[RedisSlotStore]
) -> None:
    """Without keep_alive, a holder's next call after a restart re-registers its leases."""
    options: dict[str, Any] = {"max_capacity": 4, "initial_capacity": 4, "recount_grace": 0}
    holder = RedisSlotStore(own_server.url, account_key=account, **options)
    stores.append(holder)
    lease = await holder.acquire("holder", 3)
    assert lease is not None
    own_server.restart()
    assert await holder.held() == 3  # noticed the new epoch, re-registered, then counted


async def test_outage_longer_than_allowed_fails_clearly(
    own_server: RedisServer, account: str, stores: list[RedisSlotStore]
) -> None:
    """A waiter gives up with CoordinationUnavailableError once max_outage has passed."""
    store = RedisSlotStore(
        own_server.url, account_key=account, max_outage=0.3, recount_grace=0, connect_timeout=0.5
    )
    stores.append(store)
    await store.ping()
    own_server.stop()
    with anyio.fail_after(30), pytest.raises(CoordinationUnavailableError) as caught:
        await store.wait_acquire("w", 1)
    assert caught.value.down_for > 0.3
    with pytest.raises(CoordinationUnavailableError):
        await store.acquire("w", 1)
    # Keeping leases alive never raises: a lease outlives the outage or is re-registered.
    assert not await store.renew(Lease(lease_id="x", holder="w", slots=1, ttl=1.0))


async def test_secrets_stay_out_of_errors_reprs_and_logs(
    tmp_path: Path, account: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The Redis password reaches no error, repr or log record, even when it is wrong."""
    caplog.set_level(logging.DEBUG, logger="kling_async")
    with running_redis(tmp_path, password="pw-Zq81") as server:
        store = await open_store(server.url, account_key=account, recount_grace=0)
        try:
            assert "pw-Zq81" not in repr(store)
            assert await store.acquire("a", 1) is not None
        finally:
            await store.aclose()
        wrong = server.url.replace("pw-Zq81", "pw-WRONG")
        with pytest.raises(CoordinationUnavailableError) as caught:
            await open_store(wrong, account_key=account)
        assert "pw-WRONG" not in str(caught.value)
        assert caught.value.__cause__ is None
        server.stop()
        down = RedisSlotStore(server.url, account_key=account, connect_timeout=0.5)
        assert await down.acquire("a", 1) is None
        await down.aclose()
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "unreachable" in text
    assert "pw-Zq81" not in text
    assert "pw-WRONG" not in text


async def test_round_trips_are_counted(
    shared_server: RedisServer, account: str, stores: list[RedisSlotStore]
) -> None:
    """A task's acquire, accept, renew and release cost one round trip each."""
    store = RedisSlotStore(shared_server.url, account_key=account, recount_grace=0)
    stores.append(store)
    lease = await store.acquire("a", 1)
    assert lease is not None
    await store.on_accepted()
    await store.renew_all()
    await store.release(lease)
    assert store.round_trips == 4
