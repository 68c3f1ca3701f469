"""Batches sharing one account through a slot store: leases per create, shared refusals.

The admission stage is driven alone (no gateway) for the exact calls it makes on the
store; whole batches run against the fake gateway with an in-process store shared
by several batches, and, where Redis itself matters, a real ``redis-server``.
"""

from __future__ import annotations

import contextlib
import functools
import random
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import redis.asyncio as aioredis
from _redis import RedisServer, redis_server_binary, running_redis
from anyio.streams.memory import MemoryObjectReceiveStream

from kling_async import (
    ClientConfig,
    ConcurrencyLimitedError,
    ImageGenerationRequest,
    KlingSession,
    RateLimitedError,
    Task,
    TaskStatus,
    TextToVideoRequest,
)
from kling_async._config import RetryPolicy
from kling_async._endpoints import endpoint_for
from kling_async._schedule import PollPlanner, kind_of
from kling_async._slots import account_key_of
from kling_async.batch import BatchOptions, NotStartedError
from kling_async.batch._admission import Admission
from kling_async.batch._coordinate import Coordination, kind_key
from kling_async.batch._job import Job
from kling_async.batch._ports import NullJournal
from kling_async.batch._results import Results
from kling_async.batch._sums import FreedSlots
from kling_async.coordination import (
    CoordinationUnavailableError,
    InProcessSlotStore,
    Lease,
    RedisSlotStore,
)
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway
from kling_async.testing._pytest_plugin import fast_session_options

SCALE = 0.002  # a 100 s video lives 0.2 s
GUARD = 60.0  # seconds; turns a hang into a failure, never a timing check
CONFIG = ClientConfig(api_key="key", endpoint_path="path")

needs_redis = pytest.mark.skipif(
    redis_server_binary() is None,
    reason="redis-server is not installed (apt-get install redis-server)",
)


class RecordingStore(InProcessSlotStore):
    """An in-process store that records the calls admission makes."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.waits: list[int] = []
        self.refused: list[Lease | None] = []
        self.pauses: list[float] = []

    async def wait_acquire(self, holder: str, slots: int, **options: Any) -> Lease | None:
        self.waits.append(slots)
        return await super().wait_acquire(holder, slots, **options)

    async def on_limited(self, *, refused: Lease | None = None) -> None:
        self.refused.append(refused)
        await super().on_limited(refused=refused)

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        await super().pause(seconds)


class NoRunning:
    """The watcher's view when nothing runs."""

    def expected_freed(self, now: float) -> FreedSlots:
        return FreedSlots(0.0, 0.0, 0.0)

    def none_ended_by(self, sent: float) -> None:
        raise AssertionError("a coordinated 1303 says nothing about this process's tasks")

    def none_more_ended_by(self, sent: float) -> None:
        raise AssertionError("a coordinated 1303 says nothing about this process's tasks")

    def running_count(self) -> int:
        return 0


def make_job(i: int, *, slots: int = 1) -> Job:
    request = TextToVideoRequest(prompt=f"clip {i}")
    return Job(f"k{i}", request, endpoint_for("text2video"), f"ext-{i}", kind_of("t2v", {}), slots)


async def coordinated_admission(
    store: InProcessSlotStore, stack: contextlib.AsyncExitStack, *, max_running: int = 4
) -> tuple[Admission, Results]:
    """An admission stage coordinated through ``store``, with no gateway behind it."""
    admission: Admission | None = None

    def halt(reason: NotStartedError) -> None:
        assert admission is not None
        admission.halt(reason)

    results = Results(on_event=None, fail_fast=False, halt=halt)
    results.open = True
    admission = Admission(
        max_running=max_running,
        probe_slots=False,
        max_units=None,
        max_requests_per_second=None,
        max_refusals_per_second=100.0,
        retry=RetryPolicy(initial_delay=0.0, max_delay=0.0),
        probe_threshold=0.5,
        rng=random.Random(0),
        journal=NullJournal("b"),
        results=results,
        running=NoRunning(),
        on_capacity=lambda: None,
    )
    await admission.coordinate(store, config=CONFIG, stack=stack)
    return admission, results


@contextlib.asynccontextmanager
async def admitting(admission: Admission) -> AsyncIterator[MemoryObjectReceiveStream[Job]]:
    """Run the admission loop for the block; yield the create stream."""
    send, receive = anyio.create_memory_object_stream[Job](0)
    with receive, anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(admission.admit_loop, send)
            yield receive
            tg.cancel_scope.cancel()


async def settled(store: InProcessSlotStore, held: int) -> None:
    """Let the coordination worker run until ``store`` holds ``held`` slots."""
    while await store.held() != held:
        await anyio.lowlevel.checkpoint()


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def fake_with_sessions(
    count: int, **config: Any
) -> AsyncIterator[tuple[FakeGateway, list[KlingSession]]]:
    """A fake gateway and ``count`` fast sessions with the same key (one account)."""
    config.setdefault("time_scale", SCALE)
    async with run_fake_gateway(FakeConfig(**config)) as fake, contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(fake.session(**fast_session_options(SCALE)))
            for _ in range(count)
        ]
        yield fake, sessions


async def run_batch(session: KlingSession, tag: str, jobs: int, **options: Any) -> Any:
    """Run ``jobs`` text-to-video jobs in one batch; return its summary."""
    async with session.batch(max_running=10, **options) as batch:
        batch.submit_all(
            [(f"{tag}-{i}", TextToVideoRequest(prompt=f"{tag} {i}")) for i in range(jobs)]
        )
        statuses = [result.status async for result in batch]
    assert statuses == ["succeed"] * jobs
    return batch.summary()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port."""
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with running_redis(tmp_path) as server:
        yield server


# --- the admission stage alone ----------------------------------------------------------


async def test_each_create_waits_for_a_lease_on_its_slots() -> None:
    """Every admitted job holds a shared lease first; an image task of n images asks for n."""
    store = RecordingStore(max_capacity=10, initial_capacity=10)
    async with contextlib.AsyncExitStack() as stack:
        admission, _ = await coordinated_admission(store, stack)
        admission.enqueue(make_job(0))
        admission.enqueue(make_job(1, slots=3))
        async with admitting(admission) as receive:
            jobs = [await receive.receive() for _ in range(2)]
            await settled(store, 4)
    assert store.waits == [1, 3]
    assert all(admission.coordination and admission.coordination.holds(j) for j in jobs)


async def test_the_shared_window_decides_not_the_local_one() -> None:
    """With a full store nothing is admitted, though this process holds no slot at all."""
    store = RecordingStore(max_capacity=2, initial_capacity=2)
    other = [await store.acquire("another-process", 1) for _ in range(2)]
    assert all(other)
    async with contextlib.AsyncExitStack() as stack:
        admission, _ = await coordinated_admission(store, stack)
        admission.enqueue(make_job(0))
        async with admitting(admission) as receive:
            for _ in range(20):
                await anyio.lowlevel.checkpoint()
            with pytest.raises(anyio.WouldBlock):
                receive.receive_nowait()
            assert other[0] is not None
            await store.release(other[0])
            job = await receive.receive()
    assert job.key == "k0"


async def test_a_1303_returns_the_lease_and_shrinks_the_window_for_everybody() -> None:
    """on_limited gets the refused lease; the job queues again without one."""
    store = RecordingStore(max_capacity=8, initial_capacity=8)
    async with contextlib.AsyncExitStack() as stack:
        admission, _ = await coordinated_admission(store, stack)
        admission.enqueue(make_job(0))
        async with admitting(admission) as receive:
            job = await receive.receive()
            assert admission.coordination is not None
            admission.no_slot(
                job, ConcurrencyLimitedError("busy", http_status=429), sent=0.0, retry_after=None
            )
            admission.create_done()
            again = await receive.receive()  # a fresh lease for the second try
            await settled(store, 1)
    assert again is job
    assert len(store.refused) == 1
    assert store.refused[0] is not None
    assert store.waits == [1, 1]
    assert await store.capacity() < 8


async def test_the_lease_is_kept_across_a_1302_and_the_pause_is_shared() -> None:
    """A 1302 re-queues the job with its lease (no second wait) and pauses the store."""
    store = RecordingStore(max_capacity=4, initial_capacity=4)
    async with contextlib.AsyncExitStack() as stack:
        admission, _ = await coordinated_admission(store, stack)
        admission.enqueue(make_job(0))
        async with admitting(admission) as receive:
            job = await receive.receive()
            admission.rate_refused(job, RateLimitedError("slow down", http_status=429), 3.0)
            admission.create_done()
            admission.pacing.not_before = 0.0  # the local backoff is not under test
            again = await receive.receive()
            while not store.pauses:
                await anyio.lowlevel.checkpoint()
    assert again is job
    assert store.waits == [1]
    assert store.pauses == [3.0]
    assert await store.paused_for() > 0
    assert await store.held() == 1


async def test_an_ended_task_gives_its_lease_back_and_shares_its_duration() -> None:
    """Release frees the shared slot; a clean end records the task's life under its kind."""
    store = RecordingStore(max_capacity=4, initial_capacity=4)
    async with contextlib.AsyncExitStack() as stack:
        admission, _ = await coordinated_admission(store, stack)
        admission.enqueue(make_job(0))
        async with admitting(admission) as receive:
            job = await receive.receive()
            await settled(store, 1)
            admission.confirm(job)
            admission.create_done()
            job.created_at = 0.0
            job.lower = 1.0
            job.task = Task(id="t0", endpoint="text2video", status=TaskStatus.SUCCEED)
            admission.release(job, confirmed=True)
            admission.settle(job, 1.0, completed=True)
            await settled(store, 0)
            while not await store.durations(kind_key(job.kind)):
                await anyio.lowlevel.checkpoint()


async def test_a_resumed_task_registers_a_lease_at_once() -> None:
    """A task created by an earlier run holds a shared slot without waiting in the queue."""
    store = RecordingStore(max_capacity=1, initial_capacity=1)
    taken = await store.acquire("another-process", 1)
    assert taken is not None
    async with contextlib.AsyncExitStack() as stack:
        admission, _ = await coordinated_admission(store, stack)
        async with admitting(admission):
            admission.hold_resumed(make_job(0, slots=2))
            await settled(store, 3)
    assert store.waits == []


async def test_a_halt_ends_a_wait_for_a_lease_and_takes_nothing() -> None:
    """While the store is full, stopping admissions ends the queued job not_started."""
    store = RecordingStore(max_capacity=1, initial_capacity=1)
    assert await store.acquire("another-process", 1) is not None
    async with contextlib.AsyncExitStack() as stack:
        admission, results = await coordinated_admission(store, stack)
        job = make_job(0)
        results.add_job(job)
        admission.enqueue(job)
        async with admitting(admission):
            while not store.waits:
                await anyio.lowlevel.checkpoint()
            admission.halt(NotStartedError("stopped", reason="stopped"))
            while job.result is None:
                await anyio.lowlevel.checkpoint()
    assert job.result.status == "not_started"
    assert admission.running_slots == 0
    assert await store.held() == 1


async def test_shared_durations_seed_a_fresh_planner_before_its_first_create() -> None:
    """A new process's planner knows a kind's lives from other processes' tasks."""
    store = InProcessSlotStore(max_capacity=4)
    job = make_job(0)
    for seconds in (90.0, 100.0, 110.0):
        await store.record_duration(kind_key(job.kind), seconds)
    planner = PollPlanner(CONFIG.poll)
    assert planner.median(job.kind) is None
    coordination = Coordination(store, planner=planner)
    assert await coordination.take(job)
    median = planner.median(job.kind)
    assert median is not None
    assert 90.0 < median < 110.0


async def test_a_bad_coordinate_value_is_refused() -> None:
    """Neither a URL nor a store: a TypeError at entry, before anything is sent."""
    async with (
        run_fake_gateway(FakeConfig(time_scale=SCALE)) as fake,
        fake.session(**fast_session_options(SCALE)) as session,
    ):
        with pytest.raises(TypeError, match="coordinate"):
            async with session.batch(coordinate=42):
                pass
        assert fake.stats()["create_requests"] == 0


# --- whole batches ----------------------------------------------------------------------


async def test_batches_sharing_a_store_never_meet_a_1303() -> None:
    """Three batches of one account, each allowed the whole quota: no refusal, no overlap."""
    store = InProcessSlotStore(max_capacity=10)
    async with fake_with_sessions(3, max_running=10) as (fake, sessions):
        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                for n, session in enumerate(sessions):
                    tg.start_soon(
                        functools.partial(run_batch, session, f"b{n}", 20, coordinate=store)
                    )
        stats = fake.stats()
    assert stats["creates"] == 60
    assert stats["concurrency_limited"] == 0
    assert stats["duplicate_external_ids"] == 0
    assert stats["max_running_observed"] <= 10
    assert await store.held() == 0


async def test_image_tasks_count_their_images_against_the_shared_quota() -> None:
    """Two batches of 4-image tasks on a quota of 10 slots: never refused, never over."""
    store = RecordingStore(max_capacity=10)

    async def images(session: KlingSession, tag: str) -> None:
        async with session.batch(max_running=10, coordinate=store) as batch:
            batch.submit_all(
                [(f"{tag}-{i}", ImageGenerationRequest(prompt=f"{tag} {i}", n=4)) for i in range(6)]
            )
            assert [r.status async for r in batch] == ["succeed"] * 6

    async with fake_with_sessions(2, max_running=10) as (fake, sessions):
        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                for n, session in enumerate(sessions):
                    tg.start_soon(images, session, f"i{n}")
        stats = fake.stats()
    assert set(store.waits) == {4}
    assert stats["concurrency_limited"] == 0
    assert stats["max_slots_observed"] <= 10


async def test_a_store_that_stays_unreachable_halts_admissions_clearly() -> None:
    """Past max_outage, queued jobs end not_started naming the store; nothing is created."""
    store = RedisSlotStore(
        f"redis://:hunter2@127.0.0.1:{closed_port()}/0",
        account_key="acct",
        max_outage=0.2,
        connect_timeout=0.2,
    )
    try:
        async with (
            run_fake_gateway(FakeConfig(time_scale=SCALE)) as fake,
            fake.session(**fast_session_options(SCALE)) as session,
        ):
            with anyio.fail_after(GUARD):
                async with session.batch(coordinate=store) as batch:
                    batch.submit_all([(f"k{i}", TextToVideoRequest(prompt="x")) for i in range(3)])
                    results = [r async for r in batch]
            assert fake.stats()["create_requests"] == 0
    finally:
        await store.aclose()
    assert {r.status for r in results} == {"not_started"}
    halted = batch.summary().halted
    assert halted is not None
    assert "127.0.0.1" in halted
    assert "hunter2" not in halted


async def test_an_unreachable_url_fails_at_entry_without_its_password() -> None:
    """coordinate='redis://...' that does not answer: the error names the host, not the secret."""
    url = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    async with (
        run_fake_gateway(FakeConfig(time_scale=SCALE)) as fake,
        fake.session(**fast_session_options(SCALE)) as session,
    ):
        with pytest.raises(CoordinationUnavailableError) as caught:
            async with session.batch(coordinate=url):
                pass
        assert fake.stats()["create_requests"] == 0
    error = caught.value
    assert "127.0.0.1" in str(error)
    assert "hunter2" not in str(error)
    assert error.__cause__ is None
    assert "hunter2" not in repr(error.__context__)


async def recounted(url: str, account: str) -> None:
    """Skip the recount grace of a just-started Redis (nobody held leases before it)."""
    async with RedisSlotStore(url, account_key=account) as store:
        await store.ping()  # creates the account's state
    client = aioredis.Redis.from_url(url)
    try:
        await client.hset(f"kling:{{{account}}}:state", "recount_until", 0)
    finally:
        await client.aclose()


@needs_redis
async def test_batches_coordinated_through_redis_share_the_quota(redis: RedisServer) -> None:
    """Two batches given the Redis URL: no 1303, every job created once, no lease left."""
    async with fake_with_sessions(2, max_running=10) as (fake, sessions):
        account = account_key_of(sessions[0].config)
        await recounted(redis.url, account)
        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as tg:
                for n, session in enumerate(sessions):
                    run = functools.partial(run_batch, session, f"r{n}", 25, coordinate=redis.url)
                    tg.start_soon(run)
        stats = fake.stats()
    assert stats["creates"] == 50
    assert stats["concurrency_limited"] == 0
    assert stats["duplicate_external_ids"] == 0
    async with RedisSlotStore(redis.url, account_key=account) as check:
        assert await check.held() == 0
    client = aioredis.Redis.from_url(redis.url)
    try:
        keys = [key async for key in client.scan_iter(match=f"kling:{{{account}}}:durations:*")]
        assert keys  # the tasks' lives are there for the next process
        assert await client.llen(keys[0]) > 0
    finally:
        await client.aclose()


def test_the_options_repr_never_shows_the_store_url() -> None:
    """BatchOptions(coordinate=URL) logs safely: the URL (and its password) stays out of repr."""
    options = BatchOptions(coordinate="redis://:hunter2@10.0.0.1:6379/0")
    assert "hunter2" not in repr(options)
    assert "10.0.0.1" not in repr(options)
