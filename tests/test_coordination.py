"""The slot-store contract, pinned on both stores; pure helpers; ``open_store``.

Every test taking ``make_store`` runs twice: on the in-process store, and on the
Redis store against a real ``redis-server`` (skipped only when the binary is
missing). With Redis, each ``make_store()`` call is a separate client sharing one
account, as separate processes would be; in-process it is the same store.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
from _redis import redis_server_binary, running_redis

from kling_async import ConfigurationError
from kling_async.coordination import (
    CoordinationError,
    CoordinationUnavailableError,
    InProcessSlotStore,
    Lease,
    RedisSlotStore,
    SlotStore,
    account_fingerprint,
    grown_window,
    new_holder_id,
    open_store,
    redact_url,
    shrunk_window,
    window_capacity,
)

NO_REDIS = "redis-server is not installed (apt-get install redis-server)"

Store = InProcessSlotStore | RedisSlotStore
MakeStore = Callable[..., Awaitable[Store]]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server for the module; tests separate themselves by account key."""
    if redis_server_binary() is None:
        pytest.skip(NO_REDIS)
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(params=["in-process", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[MakeStore]:
    """A factory of store handles on one fresh account, closed after the test."""
    made: list[Store] = []
    account = uuid.uuid4().hex[:12]
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    async def make(**options: Any) -> Store:
        options.setdefault("max_capacity", 3)
        options.setdefault("initial_capacity", options["max_capacity"])
        if url is None:
            if not made:
                made.append(InProcessSlotStore(**options))
            return made[0]
        store = RedisSlotStore(url, account_key=account, recount_grace=0, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()


# --- pure helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "cap", "expected"),
    [(0.2, 10, 1), (3.0, 10, 3), (3.9999999999, 10, 4), (12.5, 10, 10), (7.7, 5, 5)],
)
def test_window_capacity(window: float, cap: int, expected: int) -> None:
    """A window admits its whole slots, at least one, at most the cap."""
    assert window_capacity(window, cap) == expected


def test_grown_window_slow_start_then_additive() -> None:
    """Before any 1303 a create adds a slot; after, increase/window; never past the cap."""
    assert grown_window(4.0, limited=False, increase=1.0, max_capacity=10) == 5.0
    assert grown_window(10.0, limited=False, increase=1.0, max_capacity=10) == 10.0
    assert grown_window(8.0, limited=True, increase=1.0, max_capacity=10) == pytest.approx(8.125)


@pytest.mark.parametrize(
    ("window", "others", "expected"),
    [
        (12.0, 10, 10.0),  # the quota just measured
        (12.0, 2, 6.0),  # someone outside holds slots: halve
        (4.0, 9, 4.0),  # never grows on a refusal
        (1.0, 0, 1.0),  # never below one
        (10.6, 10, 10.0),
    ],
)
def test_shrunk_window(window: float, others: int, expected: float) -> None:
    """A 1303 halves the window, but not below the slots measured running."""
    assert shrunk_window(window, held_others=others, decrease=0.5) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:s3cret@host:6379/0", "redis://***@host:6379/0"),
        ("redis://user:s3cret@host/1", "redis://***@host/1"),
        ("rediss://host:6380/0?password=s3cret&ssl=1", "rediss://host:6380/0?password=***&ssl=1"),
        ("unix://:s3cret@/run/redis.sock?db=2", "unix://***@/run/redis.sock?db=2"),
        ("redis://host:6379/0", "redis://host:6379/0"),
    ],
)
def test_redact_url_hides_credentials(url: str, expected: str) -> None:
    """User information and password parameters never survive redaction."""
    assert redact_url(url) == expected
    assert "s3cret" not in redact_url(url)


def test_account_fingerprint_is_stable_and_hides_the_key() -> None:
    """The same key gives the same short id; different keys differ; the key is not in it."""
    key = "sk-live-abcdef0123456789"
    assert account_fingerprint(key) == account_fingerprint(key)
    assert account_fingerprint(key) != account_fingerprint(key + "x")
    assert len(account_fingerprint(key)) == 16
    assert "abcdef" not in account_fingerprint(key)


def test_new_holder_id_is_unique_per_call() -> None:
    """Holder ids carry the pid and never repeat."""
    first, second = new_holder_id(), new_holder_id()
    assert first != second
    assert f":{os.getpid()}:" in first


async def test_both_stores_satisfy_the_protocol() -> None:
    """Both implementations are SlotStores (runtime protocol check)."""
    assert isinstance(InProcessSlotStore(), SlotStore)
    store = RedisSlotStore("redis://127.0.0.1:1/0", account_key="a")
    assert isinstance(store, SlotStore)
    await store.aclose()


# --- the contract, on both stores --------------------------------------------------------


async def test_acquire_grants_up_to_capacity(make_store: MakeStore) -> None:
    """Leases are granted while they fit; then acquire says no, and held counts slots."""
    a = await make_store()
    b = await make_store()
    first = await a.acquire("a", 2)
    second = await b.acquire("b", 1)
    assert first is not None
    assert second is not None
    assert await b.acquire("b", 1) is None
    assert await a.held() == 3
    await a.release(first)
    assert await b.held() == 1
    assert await b.acquire("b", 2) is not None


async def test_image_task_takes_n_slots_and_a_huge_one_runs_alone(make_store: MakeStore) -> None:
    """n slots count n; a task larger than the window runs only when nothing is held."""
    store = await make_store()
    small = await store.acquire("a", 1)
    assert small is not None
    assert await store.acquire("a", 5) is None
    await store.release(small)
    huge = await store.acquire("a", 5)
    assert huge is not None
    assert await store.held() == 5
    assert await store.acquire("a", 1) is None


async def test_wait_acquire_is_woken_by_a_release(make_store: MakeStore) -> None:
    """A waiter gets the slot another handle gives back."""
    a = await make_store()
    b = await make_store(poll_interval=30.0)  # only a wake-up can admit it in time
    held = [await a.acquire("a", 1) for _ in range(3)]
    got: list[Lease | None] = []
    async with anyio.create_task_group() as tg:

        async def wait() -> None:
            got.append(await b.wait_acquire("b", 1, timeout=10))

        tg.start_soon(wait)
        await eventually(lambda: a.queued(), lambda n: n > 0)
        lease = held[0]
        assert lease is not None
        await a.release(lease)
    assert got[0] is not None
    assert await a.held() == 3


async def test_wait_acquire_times_out_and_leaves_the_queue(make_store: MakeStore) -> None:
    """A timed-out waiter gets None and keeps no place in the queue."""
    store = await make_store()
    for _ in range(3):
        assert await store.acquire("a", 1) is not None
    assert await store.wait_acquire("a", 1, timeout=0.2) is None
    assert await store.queued() == 0
    assert await store.held() == 3


async def test_cancelled_waiter_takes_nothing(make_store: MakeStore) -> None:
    """Cancelling a waiter leaves no lease and no queue place behind."""
    store = await make_store()
    for _ in range(3):
        assert await store.acquire("a", 1) is not None
    with anyio.move_on_after(0.2):
        await store.wait_acquire("a", 1)
    assert await store.queued() == 0
    assert await store.held() == 3


async def test_a_big_waiter_at_the_head_is_not_starved(make_store: MakeStore) -> None:
    """While a 3-slot task waits first, a later 1-slot try does not slip past it."""
    a = await make_store()
    b = await make_store()
    one = await a.acquire("a", 1)
    two = await a.acquire("a", 1)
    assert one is not None
    assert two is not None
    got: list[Lease | None] = []
    async with anyio.create_task_group() as tg:

        async def wait_big() -> None:
            got.append(await b.wait_acquire("b", 3, timeout=10))

        tg.start_soon(wait_big)
        await eventually(lambda: a.queued(), lambda n: n > 0)
        await a.release(one)
        assert await a.acquire("a", 1) is None  # one slot is free, but the head wants three
        await a.release(two)
    assert got[0] is not None
    assert got[0].slots == 3


async def test_limited_shrinks_the_shared_window_to_what_runs(make_store: MakeStore) -> None:
    """A 1303 seen by one handle drops every handle's window to the slots still held."""
    a = await make_store(max_capacity=6)
    b = await make_store(max_capacity=6)
    leases = [await a.acquire("a", 1) for _ in range(5)]
    refused = await b.acquire("b", 1)
    assert refused is not None
    assert all(leases)
    await b.on_limited(refused=refused)
    assert await a.capacity() == 5
    assert await a.held() == 5
    for lease in leases:
        assert lease is not None
        await a.release(lease)
    await a.on_limited()  # nothing held: multiplicative decrease
    assert await b.capacity() == 2


async def test_accepted_grows_the_window_for_everyone(make_store: MakeStore) -> None:
    """Slow start adds a slot per accepted create; after a 1303, growth is additive."""
    a = await make_store(max_capacity=10, initial_capacity=2)
    b = await make_store(max_capacity=10, initial_capacity=2)
    await a.on_accepted()
    await a.on_accepted()
    assert await b.capacity() == 4
    await b.set_capacity(4)
    await b.on_limited()  # nothing held: 4 -> 2
    assert await a.capacity() == 2
    for _ in range(2):
        await a.on_accepted()  # 2 -> 2.5 -> 2.9
    assert await b.capacity() == 2
    await a.on_accepted()  # -> 3.24
    assert await b.capacity() == 3


async def test_pause_holds_admission_for_everyone(make_store: MakeStore) -> None:
    """A pause set by one handle refuses every acquire until it ends, then admits."""
    a = await make_store()
    b = await make_store()
    await a.pause(0.4)
    assert await b.acquire("b", 1) is None
    assert 0 < await b.paused_for() <= 0.4
    lease = await b.wait_acquire("b", 1, timeout=10)
    assert lease is not None
    assert await a.paused_for() == 0


async def test_durations_are_shared_and_bounded(make_store: MakeStore) -> None:
    """Durations recorded by one handle are read by another, oldest first, newest kept."""
    a = await make_store(max_samples=3)
    b = await make_store(max_samples=3)
    for seconds in (1.0, 2.0, 3.0, 4.5):
        await a.record_duration("t2v:kling-v2:std:5", seconds)
    assert await b.durations("t2v:kling-v2:std:5") == [2.0, 3.0, 4.5]
    assert await b.durations("other") == []


async def test_callbacks_reach_the_owner_inbox(make_store: MakeStore) -> None:
    """A callback published for a claimed task lands in the owner's inbox; others say None."""
    owner = await make_store()
    other = await make_store()
    await owner.claim_task("task-1", "worker-a")
    assert await other.owner_of("task-1") == "worker-a"
    assert await other.publish_callback("task-1", b'{"task_status":"succeed"}') == "worker-a"
    assert await other.publish_callback("task-2", b"{}") is None
    with anyio.fail_after(10):
        async for payload in owner.inbox("worker-a"):
            assert payload == b'{"task_status":"succeed"}'
            break
    await owner.release_task("task-1")
    assert await other.owner_of("task-1") is None


async def test_renew_reregisters_a_lease_the_store_lost(make_store: MakeStore) -> None:
    """Renewing a lease that expired puts its slots back in the count (the task runs)."""
    store = await make_store()
    lease = await store.acquire("a", 2, ttl=0.05)
    assert lease is not None
    await anyio.sleep(0.15)
    assert await store.held() == 0
    assert await store.renew(lease)
    assert await store.held() == 2


async def test_release_is_idempotent(make_store: MakeStore) -> None:
    """Releasing twice (or a lease of nobody) changes nothing."""
    store = await make_store()
    lease = await store.acquire("a", 1)
    assert lease is not None
    await store.release(lease)
    await store.release(lease)
    await store.release(Lease(lease_id="nobody", holder="x", slots=3, ttl=1.0))
    assert await store.held() == 0


async def test_bad_arguments_are_rejected(make_store: MakeStore) -> None:
    """Slots must be a positive int and the TTL positive."""
    store = await make_store()
    with pytest.raises(ValueError, match="slots"):
        await store.acquire("a", 0)
    with pytest.raises(ValueError, match="slots"):
        await store.acquire("a", True)
    with pytest.raises(ValueError, match="ttl"):
        await store.acquire("a", 1, ttl=0)


# --- in-process specifics -------------------------------------------------------------------


async def test_in_process_leases_expire_by_the_clock() -> None:
    """An unrenewed lease is dropped once its TTL passes on the store's clock."""
    now = [0.0]
    store = InProcessSlotStore(max_capacity=2, initial_capacity=2, clock=lambda: now[0])
    lease = await store.acquire("a", 2, ttl=10)
    assert lease is not None
    now[0] = 9.0
    assert await store.renew(lease)
    now[0] = 18.0
    assert await store.held() == 2
    now[0] = 19.5
    assert await store.held() == 0


async def test_keep_alive_renews_own_leases() -> None:
    """keep_alive renews every lease the store handed out and has not released."""
    now = [0.0]
    store = InProcessSlotStore(max_capacity=2, initial_capacity=2, clock=lambda: now[0])
    lease = await store.acquire("a", 1, ttl=1.0)
    assert lease is not None
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: store.keep_alive(interval=0.01))
        for step in range(1, 6):
            now[0] = step * 0.9
            await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert await store.held() == 1


async def test_closed_store_refuses_calls() -> None:
    """After aclose, calls raise CoordinationError instead of silently working."""
    store = InProcessSlotStore()
    await store.aclose()
    with pytest.raises(CoordinationError, match="closed"):
        await store.acquire("a", 1)


# --- open_store -----------------------------------------------------------------------------


async def test_open_store_without_url_is_in_process() -> None:
    """No URL means today's behaviour: the in-process store, nothing to install."""
    store = await open_store(None, max_capacity=7)
    assert isinstance(store, InProcessSlotStore)
    assert store.max_capacity == 7
    await store.aclose()


async def test_open_store_in_process_ignores_shared_only_options() -> None:
    """One set of settings serves both stores: Redis-only options are ignored in-process."""
    store = await open_store(None, lease_ttl=5.0, recount_grace=1.0, socket_timeout=1.0)
    assert isinstance(store, InProcessSlotStore)
    assert store.lease_ttl == 5.0
    await store.aclose()


async def test_release_after_close_is_quiet() -> None:
    """A task ending after its store closed gives its lease back without an error."""
    store = InProcessSlotStore()
    lease = await store.acquire("a", 1)
    assert lease is not None
    await store.aclose()
    await store.release(lease)


async def test_open_store_rejects_other_schemes_without_the_password() -> None:
    """An unknown scheme is a configuration error whose message hides the password."""
    with pytest.raises(ConfigurationError) as caught:
        await open_store("memcached://:hunter2@host:11211", account_key="a")
    assert "hunter2" not in str(caught.value)
    assert "memcached://***@host:11211" in str(caught.value)


async def eventually(
    read: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], *, within: float = 10.0
) -> Any:
    """Read until ``ok(value)``, at most ``within`` seconds (a generous bound, not a timing)."""
    with anyio.fail_after(within):
        while True:
            value = await read()
            if ok(value):
                return value
            await anyio.sleep(0.01)


def _closed_port() -> int:
    """A loopback port with nothing listening on it (bound, read, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__]


async def test_unreachable_redis_names_the_url_without_the_password() -> None:
    """Redis down at start: a typed error naming the redacted URL; no secret in its chain."""
    port = _closed_port()
    url = f"redis://:hunter2@127.0.0.1:{port}/0"
    with pytest.raises(CoordinationUnavailableError) as caught:
        await open_store(url, account_key="acct", connect_timeout=1.0)
    error = caught.value
    assert error.url == f"redis://***@127.0.0.1:{port}/0"
    assert error.url in str(error)
    for link in _chain(error):
        assert "hunter2" not in repr(link)
        assert "hunter2" not in str(link)


def test_redis_store_checks_its_names() -> None:
    """An account key that could break the key layout is refused up front."""
    with pytest.raises(ConfigurationError, match="account_key"):
        RedisSlotStore("redis://127.0.0.1:1/0", account_key="a}b{c")
