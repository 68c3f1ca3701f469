"""The batch scheduler against the fake gateway: limits, faults, journal, downloads, exits."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from kling_async import (
    AuthenticationError,
    ConfigurationError,
    ImageGenerationRequest,
    KlingSession,
    PollPolicy,
    TaskFailedError,
    TaskStatus,
    TextToVideoRequest,
    TurboSettings,
    TurboTextToVideoRequest,
    URLExpiredError,
    ValidationError,
)
from kling_async._callbacks import CallbackReceiver
from kling_async._journal import JobState, Journal, JournalMismatchError
from kling_async.batch import (
    Batch,
    Event,
    EventKind,
    ExternalIdConflictError,
    JobCancelledError,
    JobHandle,
    JobResult,
    NotStartedError,
)
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway
from kling_async.testing._pytest_plugin import fast_session_options

SCALE = 0.001  # a 100 s video takes 0.1 s
SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
HANG_GUARD = 60.0  # seconds; only to turn a hang into a failure, never a timing check


def t2v(i: int) -> TextToVideoRequest:
    return TextToVideoRequest(prompt=f"a cat number {i}")


@contextlib.asynccontextmanager
async def fake_and_session(**config: Any) -> AsyncIterator[tuple[FakeGateway, KlingSession]]:
    """A fake gateway with ``config`` and a fast session wired to it."""
    config.setdefault("time_scale", SCALE)
    async with (
        run_fake_gateway(FakeConfig(**config)) as fake,
        fake.session(**fast_session_options()) as session,
    ):
        yield fake, session


async def run_all(batch: Batch, items: Any) -> list[JobResult]:
    batch.submit_all(items)
    return [result async for result in batch]


def journal_states(path: Path, batch_id: str | None = None) -> dict[str, JobState]:
    journal = Journal(path, batch_id=batch_id)
    try:
        return {entry.key: entry.state for entry in journal.entries()}
    finally:
        journal.close()


async def test_results_handles_and_summary() -> None:
    """Each job yields one result with its key; handles await to the Task; the summary adds up."""
    async with fake_and_session() as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            async with Batch(session, max_running=4, seed=1) as batch:
                first = batch.submit(t2v(0), key="first")
                batch.submit_all((f"k{i}", t2v(i)) for i in range(1, 10))
                results = [r async for r in batch]
                task = await first
                whole = await first.wait()
    assert sorted(r.key for r in results) == sorted(["first", *(f"k{i}" for i in range(1, 10))])
    assert all(r.ok and r.task is not None and r.task.succeeded for r in results)
    assert task.status is TaskStatus.SUCCEED
    assert whole.key == "first"
    assert first.done()
    assert first.result() is whole
    summary = batch.summary()
    assert summary.jobs == summary.succeeded == 10
    assert summary.creates == fake.stats()["creates"] == 10
    assert summary.status_requests == fake.stats()["queries"]
    assert summary.tasks_polled == 10
    assert summary.polls_per_task == summary.status_requests / 10
    assert summary.units == pytest.approx(fake.stats()["units_charged"])
    assert summary.latency_p50 is not None
    assert summary.latency_p99 is not None
    assert summary.latency_p50 <= summary.latency_p99


async def test_200_jobs_never_exceed_a_quota_of_8() -> None:
    """Fake quota 8, max_running 8: the fake never sees more than 8 running; all 200 end."""
    async with fake_and_session(max_running=8) as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            async with Batch(session, max_running=8, seed=2) as batch:
                results = await run_all(batch, (t2v(i) for i in range(200)))
        stats = fake.stats()
    assert len(results) == 200
    assert all(r.ok for r in results)
    assert stats["max_running_observed"] <= 8
    assert stats["creates"] == 200
    # Default probing trades cheap 1303s for slots filled early: a few per job at most.
    assert stats["concurrency_limited"] <= 5 * 200
    # The batch's own count may pass 8 for a moment: a probe fills a slot whose
    # task ended unnoticed (the fake's count above is the account's truth).
    assert batch.summary().max_running >= 8


async def test_overcommitted_max_running_loses_nothing() -> None:
    """max_running 32 against a quota of 8: every job finishes, 1303s only cost requests."""
    async with fake_and_session(max_running=8) as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            async with Batch(session, max_running=32, seed=3) as batch:
                results = await run_all(batch, (t2v(i) for i in range(200)))
        stats = fake.stats()
    summary = batch.summary()
    assert len(results) == 200
    assert all(r.ok for r in results)
    assert stats["creates"] == 200
    assert stats["max_running_observed"] <= 8
    assert summary.concurrency_limited == stats["concurrency_limited"]
    assert stats["create_requests"] == 200 + stats["concurrency_limited"]
    # Refusals are slow start's overshoot, the window creeping past the quota, and
    # deliberate probes (which back off after six in a row): a handful per job.
    assert stats["concurrency_limited"] < 10 * 200


async def test_probing_past_max_running_keeps_the_quota_and_loses_nothing() -> None:
    """probe_slots with max_running = quota: probes only land in freed slots; all 200 end."""
    async with fake_and_session(max_running=8) as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            async with Batch(session, max_running=8, probe_slots=True, seed=6) as batch:
                results = await run_all(batch, (t2v(i) for i in range(200)))
        stats = fake.stats()
    assert all(r.ok for r in results)
    assert len(results) == 200
    assert stats["creates"] == 200
    assert stats["max_running_observed"] <= 8
    assert stats["concurrency_limited"] > 0  # probes went out
    assert batch.summary().concurrency_limited == stats["concurrency_limited"]


async def test_faults_never_create_twice_and_every_row_ends_explicit(tmp_path: Path) -> None:
    """Drops after store, 5xx, 429s and lookup lag: creates == jobs, no duplicate external id."""
    mix = {
        "drop_after_store": 2.0,
        "drop_before_store": 1.0,
        "http_500": 1.0,
        "http_503": 1.0,
        "http_504": 1.0,
        "truncated": 1.0,
        "html": 1.0,
        "rate_limit": 1.0,
    }
    journal = tmp_path / "faults.db"
    async with fake_and_session(
        fault_rate=0.12, fault_mix=mix, lookup_lag=0.05, seed=11, max_running=10
    ) as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            async with Batch(session, max_running=10, journal=journal, seed=4) as batch:
                results = await run_all(batch, ((f"job-{i}", t2v(i)) for i in range(60)))
        stats = fake.stats()
    assert stats["faults_injected"] > 10
    assert len(results) == 60
    assert stats["duplicate_external_ids"] == 0
    assert stats["creates"] == 60
    assert sum(r.ok for r in results) == 60
    states = journal_states(journal)
    assert len(states) == 60
    assert set(states.values()) <= {JobState.SUCCEED, JobState.FAILED, JobState.ERROR}


async def test_task_failures_are_results_not_cancellations() -> None:
    """Failed tasks come out as 'failed' results with TaskFailedError; siblings continue."""
    async with (
        fake_and_session(fail_rate=0.5, seed=5) as (fake, session),
        Batch(session, max_running=5) as batch,
    ):
        handle = None
        for i in range(20):
            handle = batch.submit(t2v(i))
        results = [r async for r in batch]
    failed = [r for r in results if r.status == "failed"]
    assert len(results) == 20
    assert failed
    assert len(failed) < 20
    assert all(isinstance(r.error, TaskFailedError) and r.task is not None for r in failed)
    assert all(r.error is None for r in results if r.ok)
    assert handle is not None
    if handle.result().status == "failed":
        with pytest.raises(TaskFailedError):
            await handle
    assert fake.stats()["creates"] == 20


async def test_fail_fast_stops_admitting_after_a_failure() -> None:
    """With fail_fast, jobs not yet started after the first failure end not_started."""
    async with (
        fake_and_session(fail_rate=1.0) as (fake, session),
        Batch(session, max_running=1, fail_fast=True) as batch,
    ):
        results = await run_all(batch, [t2v(i) for i in range(6)])
    statuses = sorted(r.status for r in results)
    assert statuses.count("failed") >= 1
    assert statuses.count("not_started") >= 4
    assert all(
        isinstance(r.error, NotStartedError) and r.error.reason == "fail_fast"
        for r in results
        if r.status == "not_started"
    )
    assert fake.stats()["creates"] == statuses.count("failed")


async def test_budget_stops_admitting_and_reports_not_started(tmp_path: Path) -> None:
    """max_units: nothing is admitted past the cap; the rest end not_started, never lost."""
    journal = tmp_path / "budget.db"
    async with fake_and_session() as (fake, session):  # a std 5 s clip costs 3 units
        async with Batch(session, max_running=3, max_units=10.0, journal=journal) as batch:
            results = await run_all(batch, [t2v(i) for i in range(10)])
        charged = fake.stats()["units_charged"]
    assert len(results) == 10
    done = [r for r in results if r.ok]
    skipped = [r for r in results if r.status == "not_started"]
    assert len(done) == 3
    assert len(skipped) == 7
    assert charged <= 10.0
    assert batch.summary().units == charged
    assert all(isinstance(r.error, NotStartedError) and r.error.reason == "budget" for r in skipped)
    assert sorted(journal_states(journal).values()).count(JobState.NOT_STARTED) == 7


async def test_image_tasks_hold_n_slots() -> None:
    """An image task of n=4 takes 4 slots: a quota of 8 runs two at a time."""
    async with fake_and_session(max_running=8) as (fake, session):
        async with Batch(session, max_running=8) as batch:
            requests = [ImageGenerationRequest(prompt=f"dog {i}", n=4) for i in range(6)]
            results = await run_all(batch, requests)
        stats = fake.stats()
    assert all(r.ok for r in results)
    assert stats["max_slots_observed"] <= 8
    # Refused probes only, no storm: 13 to 31 in 31 runs of this test (the bound was
    # 5 a job, which the spread of timings on a busy machine crossed now and then).
    assert stats["concurrency_limited"] <= 10 * len(requests)


async def test_turbo_tasks_share_batch_queries() -> None:
    """Turbo jobs are polled by the batch task query, many ids per request."""
    request = TurboTextToVideoRequest(prompt="a fox", settings=TurboSettings(duration=5))
    async with fake_and_session() as (fake, session):
        async with Batch(session, max_running=40) as batch:
            results = await run_all(batch, [request] * 40)
        stats = fake.stats()
    assert all(r.ok for r in results)
    assert stats["queries"] == 0
    assert stats["batch_queries"] > 0
    assert stats["batch_query_ids"] > stats["batch_queries"]
    assert batch.summary().status_requests == stats["batch_queries"]


async def test_signed_callbacks_replace_polling() -> None:
    """With a signing receiver, verified terminal callbacks end tasks without queries."""
    receiver = CallbackReceiver(secret=SECRET)
    # Priors saying "first look after about a task's life" (0.2 s here).
    priors = PollPolicy(initial_delay=0.2, interval=0.2, max_interval=1.0)
    async with fake_and_session(webhook_secret=SECRET, time_scale=0.002) as (fake, session):
        async with (
            receiver.serve(),
            Batch(session, max_running=10, callbacks=receiver, poll=priors) as batch,
        ):
            results = await run_all(batch, [t2v(i) for i in range(20)])
        stats = fake.stats()
    assert all(r.ok for r in results)
    assert receiver.received > 0
    assert stats["callbacks_sent"] > 0
    # Reconciliation polls only: far fewer than one per task.
    assert stats["queries"] < 20


async def test_unsigned_callbacks_trigger_one_refresh() -> None:
    """Without a signature a terminal callback is a hint: the task is queried at once."""
    receiver = CallbackReceiver()
    async with fake_and_session(time_scale=0.002) as (fake, session):
        async with receiver.serve(), Batch(session, max_running=10, callbacks=receiver) as batch:
            results = await run_all(batch, [t2v(i) for i in range(10)])
        stats = fake.stats()
    assert all(r.ok for r in results)
    assert stats["callbacks_sent"] > 0
    assert stats["queries"] >= 10


async def test_downloads_happen_before_results_and_are_recorded(tmp_path: Path) -> None:
    """Outputs are saved before their result is yielded; the journal has size and sha256."""
    out = tmp_path / "out"
    journal = tmp_path / "dl.db"
    events: list[Event] = []
    async with (
        fake_and_session() as (_, session),
        Batch(
            session, max_running=4, download_dir=out, journal=journal, on_event=events.append
        ) as batch,
    ):
        batch.submit_all([t2v(i) for i in range(6)])
        async for result in batch:
            assert result.ok
            assert result.files
            for file in result.files:
                assert file.path.is_file()
                assert hashlib.sha256(file.path.read_bytes()).hexdigest() == file.sha256
    store = Journal(journal)
    entries = list(store.entries())
    store.close()
    assert all(e.downloaded and e.files for e in entries)
    assert all(f.path.stat().st_size == f.size for e in entries for f in e.files)
    assert sum(e.kind is EventKind.DOWNLOADED for e in events) == 6
    assert batch.summary().downloads == 6


async def test_an_expired_url_triggers_one_refresh_then_the_download(tmp_path: Path) -> None:
    """URLExpiredError: the task is queried again for fresh URLs and the download retried."""
    async with fake_and_session() as (_, session):
        real = session.download_url
        calls = {"n": 0}

        async def flaky(url: str, path: str | Path, **kw: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 1:
                raise URLExpiredError("expired (test)", http_status=403)
            return await real(url, path, **kw)

        session.download_url = flaky  # type: ignore[method-assign]
        async with Batch(session, max_running=1, download_dir=tmp_path) as batch:
            results = await run_all(batch, [t2v(0)])
    assert results[0].ok
    assert results[0].files[0].path.is_file()
    assert calls["n"] == 2


async def test_a_url_that_stays_expired_ends_the_job_in_error(tmp_path: Path) -> None:
    """When even the refreshed URL is expired, the job ends 'error' with the task kept."""
    journal = tmp_path / "j.db"
    async with (
        fake_and_session(url_ttl=0.0) as (_, session),
        Batch(session, max_running=1, download_dir=tmp_path / "o", journal=journal) as batch,
    ):
        results = await run_all(batch, [("only", t2v(0))])
    assert results[0].status == "error"
    assert isinstance(results[0].error, URLExpiredError)
    assert results[0].task is not None
    assert results[0].task.succeeded
    store = Journal(journal)
    entry = store.get("only")
    store.close()
    assert entry is not None
    assert entry.state is JobState.ERROR
    assert entry.retryable
    assert entry.task is not None


async def test_invalid_requests_fail_alone_before_sending() -> None:
    """A request breaking a documented limit is an error result; nothing is sent for it."""
    async with fake_and_session() as (fake, session):
        async with Batch(session, max_running=2) as batch:
            results = await run_all(batch, [TextToVideoRequest(prompt="x" * 3000), t2v(1)])
        stats = fake.stats()
    by_status = {r.status: r for r in results}
    assert isinstance(by_status["error"].error, ValidationError)
    assert by_status["succeed"].ok
    assert stats["create_requests"] == 1


async def test_authentication_errors_stop_admissions() -> None:
    """A refused key ends the job in error and the rest as not_started (no pointless creates)."""
    async with run_fake_gateway(FakeConfig(time_scale=SCALE)) as fake:
        async with (
            fake.session(api_key="wrong", **fast_session_options()) as session,
            Batch(session, max_running=1) as batch,
        ):
            results = await run_all(batch, [t2v(i) for i in range(5)])
        stats = fake.stats()
    assert [r.status for r in results].count("error") == 1
    assert [r.status for r in results].count("not_started") == 4
    assert isinstance(next(r for r in results if r.status == "error").error, AuthenticationError)
    assert stats["auth_failures"] == 1


async def test_lazy_sources_are_pulled_only_as_capacity_frees() -> None:
    """A generator of 100 requests is not drained ahead of the admission window."""
    pulled = {"n": 0}

    def source() -> Iterator[TextToVideoRequest]:
        for i in range(100):
            pulled["n"] += 1
            yield t2v(i)

    async with fake_and_session() as (_, session), Batch(session, max_running=4) as batch:
        batch.submit_all(source())
        first = await batch.__aiter__().__anext__()
        at_first_result = pulled["n"]
        rest = [r async for r in batch]
    assert first.ok
    assert at_first_result < 40
    assert len(rest) == 99


async def test_async_iterables_and_pairs_are_accepted() -> None:
    """An async generator of (key, request) pairs feeds the batch."""

    async def source() -> AsyncIterator[tuple[str, TextToVideoRequest]]:
        for i in range(5):
            await anyio.lowlevel.checkpoint()
            yield f"a{i}", t2v(i)

    async with fake_and_session() as (_, session), Batch(session, max_running=5) as batch:
        results = await run_all(batch, source())
    assert sorted(r.key for r in results) == [f"a{i}" for i in range(5)]


async def test_bad_items_of_a_lazy_source_become_error_results() -> None:
    """Something that is not a request, inside an iterable, is reported, not raised."""
    async with fake_and_session() as (fake, session), Batch(session, max_running=2) as batch:
        results = await run_all(batch, iter([t2v(0), ("bad", "not a request"), t2v(1)]))
    bad = next(r for r in results if r.key == "bad")
    assert bad.status == "error"
    assert isinstance(bad.error, TypeError)
    assert fake.stats()["creates"] == 2


async def test_duplicate_keys_and_use_outside_the_block_are_refused() -> None:
    """A key submitted twice raises; submit outside the block raises."""
    async with fake_and_session() as (_, session):
        batch = Batch(session, max_running=2)
        with pytest.raises(RuntimeError, match="inside"):
            batch.submit(t2v(0))
        async with batch:
            batch.submit(t2v(0), key="same")
            with pytest.raises(ValueError, match="twice"):
                batch.submit(t2v(1), key="same")
            with pytest.raises(ValueError, match="twice"):
                batch.submit_all([("x", t2v(2)), ("x", t2v(3))])
        with pytest.raises(RuntimeError):
            batch.submit(t2v(4))


async def test_events_trace_each_job() -> None:
    """on_event sees queued, created and succeeded (or failed) for each job, in order."""
    events: list[Event] = []
    async with (
        fake_and_session() as (_, session),
        Batch(session, max_running=3, on_event=events.append) as batch,
    ):
        await run_all(batch, [("e1", t2v(1)), ("e2", t2v(2))])
    for key in ("e1", "e2"):
        kinds = [e.kind for e in events if e.key == key]
        assert kinds[0] is EventKind.QUEUED
        assert kinds.index(EventKind.CREATED) < kinds.index(EventKind.SUCCEEDED)
    assert all(e.task_id for e in events if e.kind is EventKind.SUCCEEDED)


async def test_an_on_event_hook_that_raises_is_ignored() -> None:
    """A broken progress hook never breaks the batch."""

    def hook(_: Event) -> None:
        raise RuntimeError("hook bug")

    async with (
        fake_and_session() as (_, session),
        Batch(session, max_running=2, on_event=hook) as batch,
    ):
        results = await run_all(batch, [t2v(0), t2v(1)])
    assert all(r.ok for r in results)


async def test_a_reused_key_with_another_request_is_refused_before_any_request(
    tmp_path: Path,
) -> None:
    """Same journal, same key, different request: JournalMismatchError, nothing sent."""
    journal = tmp_path / "j.db"
    async with fake_and_session() as (fake, session):
        async with Batch(session, journal=journal) as batch:
            await run_all(batch, [("clip", t2v(1))])
        sent = fake.stats()["api_requests"]
        async with Batch(session, journal=journal) as batch:
            with pytest.raises(JournalMismatchError):
                batch.submit(t2v(2), key="clip")
            with pytest.raises(JournalMismatchError):
                batch.submit_all([("other", t2v(3)), ("clip", t2v(2))])
        assert fake.stats()["api_requests"] == sent


async def test_a_rerun_returns_finished_jobs_from_the_journal(tmp_path: Path) -> None:
    """Running the same batch again sends nothing and yields the recorded results."""
    journal = tmp_path / "j.db"
    out = tmp_path / "out"
    jobs = [(f"c{i}", t2v(i)) for i in range(5)]
    async with fake_and_session() as (fake, session):
        async with Batch(session, journal=journal, download_dir=out) as batch:
            first = await run_all(batch, jobs)
        sent = fake.stats()["requests_total"]
        async with Batch(session, journal=journal, download_dir=out) as batch:
            second = await run_all(batch, jobs)
        assert fake.stats()["requests_total"] == sent
    assert all(r.resumed and r.ok for r in second)
    assert {r.key: r.task.id for r in first if r.task} == {
        r.key: r.task.id for r in second if r.task
    }
    assert {r.key: [f.sha256 for f in r.files] for r in first} == {
        r.key: [f.sha256 for f in r.files] for r in second
    }
    assert batch.summary().resumed == 5


async def test_resume_follows_created_tasks_and_looks_up_unknown_creates(tmp_path: Path) -> None:
    """'created' rows are polled, not re-created; 'creating' rows are looked up first."""
    journal_path = tmp_path / "j.db"
    async with fake_and_session() as (fake, session):
        # Prepare a journal as a crashed run would leave it.
        async with Batch(session, journal=journal_path, batch_id="B") as probe:
            ids = {key: probe._derive_external_id(key) for key in ("made", "landed", "lost")}
        journal = Journal(journal_path, batch_id="B")
        from kling_async._converter import to_payload
        from kling_async._journal import fingerprint

        for key in ids:
            journal.record(
                key,
                endpoint="text2video",
                fingerprint=fingerprint("text2video", to_payload(t2v(1))),
                external_task_id=ids[key],
            )
        made = await session.create(t2v(1), external_task_id=ids["made"])
        journal.mark_creating("made")
        journal.mark_created("made", task_id=made.id, status="submitted")
        await session.create(t2v(1), external_task_id=ids["landed"])
        journal.mark_creating("landed")  # crashed before the answer was recorded
        journal.mark_creating("lost")  # crashed before the create reached the server
        journal.close()
        assert fake.stats()["creates"] == 2
        async with Batch(session, journal=journal_path, batch_id="B") as batch:
            results = await run_all(batch, [(key, t2v(1)) for key in ids])
        stats = fake.stats()
    assert all(r.ok for r in results)
    assert stats["creates"] == 3
    assert stats["duplicate_external_ids"] == 0
    assert batch.summary().lookups >= 2
    assert {r.key: r.task.id for r in results if r.task}["made"] == made.id


async def test_early_break_from_async_for_does_not_hang() -> None:
    """Breaking out of the loop, then leaving the block, waits for the rest and returns."""
    async with fake_and_session() as (fake, session):
        with anyio.fail_after(HANG_GUARD):
            async with Batch(session, max_running=3) as batch:
                batch.submit_all([t2v(i) for i in range(12)])
                async for _ in batch:
                    break
        assert fake.stats()["creates"] == 12
    assert batch.summary().jobs == 12


async def test_an_exception_inside_the_block_cancels_cleanly(tmp_path: Path) -> None:
    """An error in the user's block stops the batch; handles settle; the journal is consistent."""
    journal = tmp_path / "j.db"
    async with fake_and_session(time_scale=0.01) as (_, session):
        handles: list[JobHandle] = []

        async def body() -> None:
            async with Batch(session, max_running=4, journal=journal) as batch:
                handles.extend(batch.submit(t2v(i), key=f"x{i}") for i in range(10))
                await anyio.sleep(0.05)
                _ = 1 / 0

        with anyio.fail_after(HANG_GUARD), pytest.raises(ZeroDivisionError):
            await body()
    states = journal_states(journal)
    assert len(states) == 10
    assert all(
        s is not JobState.SUCCEED or h.done()
        for h, s in zip(handles, states.values(), strict=False)
    )
    unfinished = [h for h in handles if h.result().status == "error"]
    assert unfinished
    with pytest.raises(JobCancelledError):
        await unfinished[0]


async def test_cancellation_mid_batch_leaves_no_connections_and_journal_consistent(
    tmp_path: Path,
) -> None:
    """Cancelled from outside: polling stops, yielded results are journaled, sockets close."""
    journal = tmp_path / "j.db"
    seen: list[JobResult] = []
    async with run_fake_gateway(FakeConfig(time_scale=0.003)) as fake:
        async with fake.session(**fast_session_options()) as session:
            with anyio.move_on_after(HANG_GUARD) as outer:
                async with anyio.create_task_group() as tg:

                    async def consume() -> None:
                        async with Batch(session, max_running=5, journal=journal) as batch:
                            batch.submit_all((f"j{i}", t2v(i)) for i in range(40))
                            async for result in batch:
                                seen.append(result)
                                if len(seen) == 8:
                                    tg.cancel_scope.cancel()

                    tg.start_soon(consume)
            assert not outer.cancelled_caught
        # The session is closed now: every connection it had must be gone.
        server = fake._runner.server if fake._runner is not None else None
        assert server is not None
        for _ in range(100):
            if not server.connections:
                break
            await anyio.sleep(0.01)
        assert server.connections == []
    states = journal_states(journal)
    assert all(states[r.key] is JobState.SUCCEED for r in seen)
    assert set(states.values()) <= {
        JobState.PENDING,
        JobState.CREATING,
        JobState.CREATED,
        JobState.SUCCEED,
    }


async def test_stop_admitting_finishes_in_flight_and_reports_the_rest() -> None:
    """stop_admitting: created tasks are followed to the end, unsent jobs end not_started."""
    async with fake_and_session() as (fake, session), Batch(session, max_running=2) as batch:
        batch.submit_all(t2v(i) for i in range(20))
        first = await batch.__aiter__().__anext__()
        batch.stop_admitting("user")
        rest = [r async for r in batch]
    results = [first, *rest]
    created = fake.stats()["creates"]
    assert len(results) == 20
    assert sum(r.ok for r in results) == created
    skipped = [r for r in results if r.status == "not_started"]
    assert len(skipped) == 20 - created
    assert all(isinstance(r.error, NotStartedError) and r.error.reason == "user" for r in skipped)


async def test_a_1201_on_an_id_this_batch_never_sent_names_the_id_and_adopts_nothing() -> None:
    """A first create answered 1201 (the id is someone else's task): a clear error naming it."""
    async with fake_and_session() as (fake, session):
        batch = Batch(session, batch_id="dup", max_running=1)
        eid = batch._derive_external_id("k")
        landed = await session.create(t2v(0), external_task_id=eid)
        async with batch:
            results = await run_all(batch, [("k", t2v(0))])
        stats = fake.stats()
    error = results[0].error
    assert results[0].status == "error"
    assert isinstance(error, ExternalIdConflictError)
    assert error.external_task_id == eid
    assert error.task_id == landed.id
    assert eid in str(error)
    assert results[0].external_task_id == eid
    assert stats["creates"] == 1
    assert stats["duplicate_external_ids"] == 1


async def test_the_request_rate_limit_covers_every_request() -> None:
    """max_requests_per_second paces creates and polls alike: the fake sees no 1302."""
    async with fake_and_session(max_rps=200, rps_burst=10) as (fake, session):
        async with Batch(session, max_running=10, max_requests_per_second=100) as batch:
            results = await run_all(batch, [t2v(i) for i in range(20)])
        stats = fake.stats()
    assert all(r.ok for r in results)
    assert stats["rate_limited"] == 0
    assert stats["api_requests"] == batch.summary().creates + batch.summary().status_requests


@pytest.mark.usefixtures("no_delays")
async def test_429s_pause_but_never_drop_jobs() -> None:
    """Without a client limit the fake answers 1302s; every job still ends well."""
    async with fake_and_session(max_rps=200, rps_burst=3) as (fake, session):
        async with Batch(session, max_running=20) as batch:
            results = await run_all(batch, [t2v(i) for i in range(30)])
        stats = fake.stats()
    assert stats["rate_limited"] > 0
    assert len(results) == 30
    assert all(r.ok for r in results)
    assert stats["creates"] == 30


async def test_options_out_of_range_and_unserved_receivers_are_refused() -> None:
    """Bad options raise ValueError at once; a receiver without a URL fails on enter."""
    async with fake_and_session() as (_, session):
        for bad in (
            {"max_running": 0},
            {"max_requests_per_second": 0},
            {"max_download_concurrency": 0},
            {"max_units": -1},
            {"reconcile_interval": 0},
            {"max_ids_per_query": 0},
        ):
            with pytest.raises(ValueError, match=next(iter(bad))):
                Batch(session, **bad)
        batch = Batch(session, callbacks=CallbackReceiver())
        with pytest.raises(ConfigurationError, match="no URL"):
            await batch.__aenter__()


async def test_batch_queries_respect_max_ids_per_query() -> None:
    """No turbo batch query carries more ids than max_ids_per_query."""
    request = TurboTextToVideoRequest(prompt="a fox", settings=TurboSettings(duration=5))
    async with fake_and_session() as (fake, session):
        async with Batch(session, max_running=30, max_ids_per_query=4) as batch:
            results = await run_all(batch, [request] * 30)
        stats = fake.stats()
    assert all(r.ok for r in results)
    assert stats["batch_query_ids"] <= 4 * stats["batch_queries"]


async def test_a_fixed_reconcile_interval_bounds_polls_with_callbacks() -> None:
    """With callbacks and reconcile_interval, a task is polled no more than that often."""
    receiver = CallbackReceiver(secret=SECRET)
    async with fake_and_session(webhook_secret=SECRET, time_scale=0.002) as (fake, session):
        async with (
            receiver.serve(),
            Batch(session, max_running=5, callbacks=receiver, reconcile_interval=30.0) as batch,
        ):
            results = await run_all(batch, [t2v(i) for i in range(5)])
        stats = fake.stats()
    assert all(r.ok for r in results)
    assert stats["queries"] == 0
