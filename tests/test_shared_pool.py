"""One slot pool per session: a batch opened on it takes its share, single calls the rest."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from kling_async import ClientConfig, KlingSession, Task, TextToVideoRequest
from kling_async._slots import CoordinatedSlotPool, SlotPool
from kling_async.batch import JobResult
from kling_async.batch._coordinate import Coordination
from kling_async.batch._job import Job
from kling_async.coordination import InProcessSlotStore, Lease
from kling_async.testing import FakeConfig
from kling_async.testing._pytest_plugin import FakeFactory, fast_session_options

GUARD = 60.0  # seconds; turns a hang into a failure, never a timing check
ENV = {"KLING_API_KEY": "k", "KLING_ENDPOINT_PATH": "p", "KLING_BASE_URL": "http://127.0.0.1:9"}


async def store_of(session: KlingSession) -> InProcessSlotStore:
    """The in-process store behind a session's pool."""
    pool = session.slots
    assert isinstance(pool, CoordinatedSlotPool)
    store = await pool.store()
    assert isinstance(store, InProcessSlotStore)
    return store


async def until_held(store: InProcessSlotStore, held: int) -> None:
    """Let background releases run until the store counts ``held`` slots."""
    with anyio.fail_after(GUARD):
        while await store.held() != held:
            await anyio.lowlevel.checkpoint()


async def test_max_running_backs_the_session_pool_with_an_in_process_store() -> None:
    """max_running set: one shared store sized to it; unset: the unbounded local pool."""
    config = ClientConfig.from_env(ENV, max_running=5)
    async with KlingSession(config=config) as session:
        store = await store_of(session)
        assert store.max_capacity == 5
        assert await store.capacity() == 5  # no slow start: the quota is the user's word
    async with KlingSession(config=ClientConfig.from_env(ENV)) as session:
        assert type(session.slots) is SlotPool
        assert session.slots.limit is None


async def test_a_batch_on_the_session_defaults_to_the_session_store() -> None:
    """session.batch() without coordinate= admits through the session's own store."""
    config = ClientConfig.from_env(ENV, max_running=4)
    async with KlingSession(config=config) as session:
        batch = session.batch(max_running=2)
        assert batch.options.coordinate is session.slots
    async with KlingSession(config=ClientConfig.from_env(ENV)) as session:
        assert session.batch().options.coordinate is None


async def test_a_batch_at_full_quota_and_runs_share_five_slots(
    kling_fake_factory: FakeFactory,
) -> None:
    """A batch at quota 5 plus 20 concurrent run() calls: never over 5, no refusal, all done."""
    runs: list[Task] = []
    results: list[JobResult] = []
    async with kling_fake_factory(FakeConfig(time_scale=0.001, max_running=5)) as fake:
        async with fake.session(max_running=5, **fast_session_options()) as session:

            async def one(i: int) -> None:
                request = TextToVideoRequest(prompt=f"single {i}")
                runs.append(await session.text_to_video.run(request, timeout=GUARD))

            with anyio.fail_after(GUARD):
                async with (
                    session.batch(max_running=5, seed=1) as batch,
                    anyio.create_task_group() as group,
                ):
                    batch.submit_all(
                        [(f"b{i}", TextToVideoRequest(prompt=f"batch {i}")) for i in range(30)]
                    )
                    for i in range(20):
                        group.start_soon(one, i)
                    results.extend([result async for result in batch])
            store = await store_of(session)
            await until_held(store, 0)
            assert session.slots.in_use == 0
        stats = fake.stats()
    assert len(results) == 30
    assert all(result.ok for result in results)
    assert len(runs) == 20
    assert all(task.succeeded for task in runs)
    assert stats["creates"] == 50
    assert stats["max_running_observed"] <= 5
    assert stats["concurrency_limited"] == 0


async def test_a_run_after_a_batch_ends_finds_every_slot_free(
    kling_fake_factory: FakeFactory,
) -> None:
    """The batch's leases go back as its tasks end: afterwards the store holds nothing."""
    async with kling_fake_factory(FakeConfig(time_scale=0.001, max_running=2)) as fake:
        async with fake.session(max_running=2, **fast_session_options()) as session:
            with anyio.fail_after(GUARD):
                async with session.batch(max_running=2) as batch:
                    batch.submit_all([TextToVideoRequest(prompt=f"p{i}") for i in range(6)])
                    assert all([r.ok async for r in batch])
                store = await store_of(session)
                await until_held(store, 0)
                assert await store.queued() == 0
                lease = await store.acquire("probe", 2)  # would be None if any slot were held
                assert lease is not None
                await store.release(lease)
                task = await session.text_to_video.run(TextToVideoRequest(prompt="after"))
        assert fake.stats()["concurrency_limited"] == 0
    assert task.succeeded


async def test_a_batch_that_ends_with_leases_stops_renewing_them() -> None:
    """Leases left when a batch ends are no longer renewed and expire, though others renew."""
    now = [0.0]
    store = InProcessSlotStore(max_capacity=2, initial_capacity=2, clock=lambda: now[0])
    coordination = Coordination(store)
    job = Job("k", TextToVideoRequest(prompt="x"), None, "ext", ("t",), 1)  # type: ignore[arg-type]
    assert await coordination.take(job)
    other: Lease | None = await store.acquire("single-call", 1)
    assert other is not None
    await coordination.let_go()
    now[0] += store.lease_ttl * 0.6
    assert await store.renew_all()  # the session's keeper renews what the store still owns
    now[0] += store.lease_ttl * 0.6
    assert await store.held() == 1  # the batch's lease expired; the single call's did not
    await store.release(other)
    assert await store.held() == 0


async def test_coordinate_false_keeps_a_batch_alone(kling_fake_factory: FakeFactory) -> None:
    """coordinate=False: the batch admits on its own window; the session's store holds nothing."""
    async with (
        kling_fake_factory(FakeConfig(time_scale=0.001, max_running=2)) as fake,
        fake.session(max_running=2, **fast_session_options()) as session,
    ):
        store = await store_of(session)
        with anyio.fail_after(GUARD):
            async with session.batch(max_running=2, coordinate=False) as batch:
                batch.submit_all([TextToVideoRequest(prompt=f"p{i}") for i in range(4)])
                async for result in batch:
                    assert result.ok, result.error
                    assert await store.held() == 0
        assert batch.summary().succeeded == 4


async def test_a_session_with_a_coordination_store_lends_it_to_its_batches() -> None:
    """ClientConfig(coordination=store): a batch opened without coordinate= uses that store."""
    store = InProcessSlotStore(max_capacity=3, initial_capacity=3)
    config = ClientConfig.from_env(ENV, coordination=store, max_running=3)
    async with KlingSession(config=config) as session:
        assert isinstance(session.slots, CoordinatedSlotPool)
        with anyio.fail_after(GUARD):
            async with session.batch(max_running=2) as batch:
                stages = batch._stages
                assert stages is not None
                coordination = stages.admission.coordination
                assert coordination is not None
                assert coordination.store is store
    assert not store.closed  # the caller's store: neither the session nor the batch closes it
