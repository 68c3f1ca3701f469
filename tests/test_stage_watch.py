"""The watch stage's poll plan and poller alone: lanes, grouping, failures, no gateway."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest

from kling_async import NotFoundError, Task, TaskStatus, TextToVideoRequest
from kling_async._config import PollPolicy, RetryPolicy
from kling_async._endpoints import Endpoint, endpoint_for
from kling_async._ratelimit import RateLimiter
from kling_async._schedule import Kind, ScheduleTuning, kind_of
from kling_async.batch import NotStartedError
from kling_async.batch._job import Job, Phase
from kling_async.batch._lanes import PollQueue
from kling_async.batch._pacing import Pacing
from kling_async.batch._poller import Poller, PollItem
from kling_async.batch._ports import NullJournal
from kling_async.batch._results import Results
from kling_async.batch._sums import likeliest_ended, likeliest_ended_k
from kling_async.batch._wake import Wake
from kling_async.batch._watch import Watch

GUARD = 10.0  # seconds; turns a hang into a failure, never a timing check


def running_job(key: str, endpoint: str = "text2video", *, step: float = 1.0) -> Job:
    job = Job(
        key,
        TextToVideoRequest(prompt=key),
        endpoint_for(endpoint),
        f"ext-{key}",
        kind_of(endpoint, {}),
        1,
    )
    job.phase = Phase.RUNNING
    job.created_at = time.monotonic()
    job.task = Task(id=f"t-{key}", endpoint=endpoint, status=TaskStatus.PROCESSING)
    job.step = step
    return job


def test_classic_polls_go_one_by_one_in_time_order() -> None:
    """Due classic polls come out singly, earliest first; later ones stay planned."""
    queue = PollQueue(ids_per_query=10)
    a, b, c = running_job("a"), running_job("b"), running_job("c")
    queue.schedule(b, 2.0)
    queue.schedule(a, 1.0)
    queue.schedule(c, 9.0)
    assert queue.next_due() == 1.0
    assert queue.take_due(5.0) == [("", [a]), ("", [b])]
    assert queue.next_due() == 9.0


def test_a_reschedule_replaces_the_earlier_plan() -> None:
    """Only a job's latest plan counts; the stale entry never surfaces."""
    queue = PollQueue(ids_per_query=10)
    job = running_job("a")
    queue.schedule(job, 1.0)
    queue.schedule(job, 3.0)
    assert queue.take_due(2.0) == []
    assert queue.next_due() == 3.0


def test_jobs_that_stopped_running_are_dropped() -> None:
    """A job that ended (or is downloading) is never polled."""
    queue = PollQueue(ids_per_query=10)
    job = running_job("a")
    queue.schedule(job, 1.0)
    job.phase = Phase.DOWNLOADING
    assert queue.next_due() is None
    assert queue.take_due(2.0) == []


def test_turbo_polls_share_queries_and_pull_near_ones_forward() -> None:
    """Due turbo tasks ride in one query, joined by those due within a step, capped per query."""
    queue = PollQueue(ids_per_query=3)
    due = [running_job(f"d{i}", "turbo-text2video", step=1.0) for i in range(4)]
    soon = running_job("soon", "turbo-text2video", step=1.0)
    late = running_job("late", "turbo-text2video", step=1.0)
    for job in due:
        queue.schedule(job, 1.0)
    queue.schedule(soon, 1.5)
    queue.schedule(late, 50.0)
    groups = queue.take_due(1.0)
    assert [lane for lane, _ in groups] == ["turbo-text2video", "turbo-text2video"]
    assert [len(jobs) for _, jobs in groups] == [3, 2]
    sent = {job.key for _, jobs in groups for job in jobs}
    assert sent == {"d0", "d1", "d2", "d3", "soon"}
    assert queue.next_due() == 50.0


class FlakySession:
    """Queries that fail as scripted, then answer the task as processing."""

    def __init__(self, failures: list[BaseException]) -> None:
        self._failures = failures
        self.queries = 0

    async def get(
        self,
        endpoint: str | Endpoint,
        task_id: str | None = None,
        /,
        *,
        external_task_id: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> Task:
        self.queries += 1
        if self._failures:
            raise self._failures.pop(0)
        return Task(id=str(task_id), endpoint="text2video", status=TaskStatus.PROCESSING)

    async def create(self, *_: Any, **__: Any) -> Task:
        raise AssertionError("not used")

    async def get_many(self, **_: Any) -> list[Task]:
        raise AssertionError("not used")

    async def refresh(self, task: Task, *, limiter: RateLimiter | None = None) -> Task:
        raise AssertionError("not used")

    async def download_url(self, url: str, path: str | Path, **_: Any) -> Any:
        raise AssertionError("not used")

    @property
    def config(self) -> Any:
        raise AssertionError("not used")


class RecordingWatcher:
    """The watcher, as the poller sees it."""

    def __init__(self) -> None:
        self.answers: list[Task] = []
        self.retries: list[float] = []
        self.given_up: list[BaseException] = []

    def on_status(self, job: Job, task: Task, sent: float) -> None:
        self.answers.append(task)

    def give_up(self, job: Job, error: BaseException) -> None:
        job.phase = Phase.DONE
        self.given_up.append(error)

    def retry_at(self, job: Job, due: float) -> None:
        self.retries.append(due)


def make_poller(session: FlakySession) -> tuple[Poller, RecordingWatcher]:
    def halt(reason: NotStartedError) -> None:
        raise AssertionError("no halt expected")

    watcher = RecordingWatcher()
    poller = Poller(
        session=session,
        polls=PollQueue(10),
        wake=Wake(),
        poll=PollPolicy(initial_delay=0.0, interval=0.01, max_interval=0.01, timeout=60.0),
        pacing=Pacing(
            max_requests_per_second=None,
            max_refusals_per_second=5,
            retry=RetryPolicy(initial_delay=0.0, max_delay=0.0),
            rng=random.Random(0),
        ),
        watcher=watcher,
        results=Results(on_event=None, fail_fast=False, halt=halt),
    )
    return poller, watcher


async def poll_once(poller: Poller, job: Job) -> None:
    send, receive = anyio.create_memory_object_stream[PollItem](1)
    with send:
        send.send_nowait(("", [job]))
    with anyio.fail_after(GUARD):
        await poller.worker(receive)


async def test_a_foreign_exception_in_a_query_is_retried_not_raised() -> None:
    """A bug or hostile answer in one query becomes a retry of that task, never a crash."""
    session = FlakySession([ValueError("unparseable")])
    poller, watcher = make_poller(session)
    job = running_job("a")
    await poll_once(poller, job)
    assert watcher.retries
    assert watcher.given_up == []
    await poll_once(poller, job)
    assert [t.status for t in watcher.answers] == [TaskStatus.PROCESSING]


async def test_not_found_is_tolerated_for_a_while_then_the_task_is_given_up() -> None:
    """Lookup lag: a few 404s are retried; a task that stays missing is given up."""
    session = FlakySession([NotFoundError("gone", http_status=404, code=1203)] * 25)
    poller, watcher = make_poller(session)
    job = running_job("a")
    for _ in range(25):
        if job.phase is not Phase.RUNNING:
            break
        await poll_once(poller, job)
    assert len(watcher.retries) == 20
    assert len(watcher.given_up) == 1
    assert isinstance(watcher.given_up[0], NotFoundError)


class NullLedger:
    """Admission, as the watcher sees it: accepts every report."""

    def hold_resumed(self, job: Job) -> None: ...

    def reopen(self, job: Job, booked: float) -> None: ...

    def confirm(self, job: Job) -> None: ...

    def release(self, job: Job, *, confirmed: bool) -> None: ...

    def settle(self, job: Job, units: float, *, completed: bool) -> None: ...

    def halt_for(self, error: BaseException, *, reason: str) -> None: ...


def make_watch(tuning: ScheduleTuning | None = None) -> tuple[Watch, Results]:
    def halt(reason: NotStartedError) -> None:
        raise AssertionError("no halt expected")

    results = Results(on_event=None, fail_fast=False, halt=halt)
    policy = PollPolicy(initial_delay=1.0, interval=1.0, max_interval=5.0)
    watch = Watch(
        session=FlakySession([]),
        poll=policy,
        tuning=tuning,
        rng=random.Random(0),
        ids_per_query=10,
        reconcile_interval=None,
        pacing=Pacing(
            max_requests_per_second=None,
            max_refusals_per_second=5,
            retry=RetryPolicy(),
            rng=random.Random(0),
        ),
        ledger=NullLedger(),
        journal=NullJournal("b"),
        results=results,
        deliver=None,
    )
    return watch, results


def ended(key: str, *, server_life: float | None) -> Task:
    created = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return Task(
        id=f"t-{key}",
        endpoint="text2video",
        status=TaskStatus.SUCCEED,
        created_at=created if server_life is not None else None,
        updated_at=created + timedelta(seconds=server_life) if server_life is not None else None,
    )


def test_a_task_found_already_ended_teaches_nothing_without_its_own_clock() -> None:
    """Adopted (not created by us) and ended: with no server timestamps, no life is learned."""
    watch, results = make_watch()
    job = running_job("a")
    results.add_job(job)
    watch.follow(job, ended("a", server_life=None), clean=False)
    assert job.result is not None
    assert job.result.ok
    assert watch.planner.estimate(job.kind) is None
    assert watch.latencies == []


def test_a_task_found_already_ended_is_learned_from_its_server_timestamps() -> None:
    """Adopted and ended: its own created/updated times give its true life."""
    watch, results = make_watch()
    job = running_job("a")
    results.add_job(job)
    watch.follow(job, ended("a", server_life=80.0), clean=False)
    estimate = watch.planner.estimate(job.kind)
    assert estimate is not None
    assert math.exp(estimate[0]) == pytest.approx(80.0)


def test_a_task_this_process_created_is_learned_from_its_polls() -> None:
    """A clean create followed to its end: the observed life is learned, latency recorded."""
    watch, results = make_watch()
    job = running_job("a")
    results.add_job(job)
    watch.follow(
        job, Task(id="t-a", endpoint="text2video", status=TaskStatus.SUBMITTED), clean=True
    )
    job.created_at -= 50.0  # as if created 50 s ago
    watch.on_status(job, ended("a", server_life=None), time.monotonic())
    estimate = watch.planner.estimate(job.kind)
    assert estimate is not None
    assert 1.0 < math.exp(estimate[0]) <= 51.0
    assert len(watch.latencies) == 1


def two_kinds_running(
    watch: Watch,
    rng: random.Random,
    count: int,
    oldest: float,
    shape: Callable[[Job, int, float], None],
) -> tuple[list[Kind], list[Job], float]:
    """Two learned kinds (medians 100 s and 40 s) and ``count`` running tasks of both.

    Each task is created up to ``oldest`` seconds ago with a random lower bound, then
    ``shape(job, index, age)`` sets what a test varies.
    """
    kinds = [kind_of("text2video", {}), kind_of("image2video", {})]
    for kind, median in zip(kinds, (100.0, 40.0), strict=True):
        for _ in range(20):
            watch.planner.observe(kind, median * math.exp(rng.gauss(0.0, 0.25)))
    now = time.monotonic()
    jobs = []
    for i in range(count):
        job = running_job(f"j{i}", "text2video" if i % 2 else "image2video")
        job.kind = kinds[i % 2]
        job.created_at = now - rng.uniform(1.0, oldest)
        job.lower = rng.uniform(0.0, now - job.created_at)
        shape(job, i, now - job.created_at)
        watch.running.add(job)
        jobs.append(job)
    return kinds, jobs, now


def test_expected_freed_equals_the_sum_of_each_tasks_ended_probability() -> None:
    """The prober's fast sum agrees with the planner's per-task figure, caches included."""
    watch, _ = make_watch()
    rng = random.Random(3)

    def shape(job: Job, i: int, age: float) -> None:
        job.slots = 1 + i % 2
        job.callbacks = i % 7 == 0

    kinds, jobs, now = two_kinds_running(watch, rng, 30, 200.0, shape)
    # The probes' credit restarts 60 s ago: later than some lower bounds, not all.
    credit = watch.audit.credit_since = now - 60.0

    def reference(at: float) -> tuple[float, float, float]:
        expected = rate = restart = 0.0
        for job in jobs:
            if job.callbacks:
                continue
            age = at - job.created_at
            lower = max(job.lower, credit - job.created_at)
            p, r = watch.planner.ended_probability(job.kind, lower, age)
            expected += p * job.slots
            rate += r * job.slots
            # Restarted now, the count would grow at the task's hazard at its age.
            restart += watch.planner.ended_probability(job.kind, age, age)[1] * job.slots
        return expected, rate, restart

    def check(at: float) -> None:
        # Tasks too young to matter are skipped: each adds under 3.2e-5 a slot.
        assert watch.expected_freed(at) == pytest.approx(reference(at), abs=1e-3)

    for at in (now, now + 5.0):
        check(at)
    jobs[1].lower += 3.0  # a poll saw it running later: the cached survival must follow
    watch.planner.observe(kinds[0], 300.0)  # and so must a new estimate
    check(now + 5.0)
    assert reference(now)[2] > 0.01  # the restart rate is not trivially zero either
    assert reference(now)[0] > 0.5  # the check means something: tasks have likely ended


def test_likeliest_ended_is_the_task_with_the_highest_ended_probability() -> None:
    """The landing poll's pick agrees with the planner's per-task figure, caches included."""
    watch, _ = make_watch()

    def shape(job: Job, i: int, age: float) -> None:
        job.callbacks = i % 9 == 0

    _, jobs, now = two_kinds_running(watch, random.Random(5), 40, 120.0, shape)
    watch.audit.credit_since = now  # the credit bound is not evidence: ignored

    def reference(at: float) -> Job:
        def chance(job: Job) -> float:
            return watch.planner.ended_probability(job.kind, job.lower, at - job.created_at)[0]

        return max((job for job in jobs if not job.callbacks), key=chance)

    for at in (now, now + 3.0):
        assert likeliest_ended(watch.planner, watch.running, at) is reference(at)
    first = reference(now + 3.0)
    first.lower = now + 3.0 - first.created_at  # polled just now: running
    picked = likeliest_ended(watch.planner, watch.running, now + 3.0)
    assert picked is reference(now + 3.0)
    assert picked is not first
    for _ in range(5):  # the picked task's kind turns out to live far longer
        watch.planner.observe(picked.kind, 900.0)
    assert likeliest_ended(watch.planner, watch.running, now + 3.0) is reference(now + 3.0)


def test_the_k_likeliest_ended_come_in_the_order_of_their_chances() -> None:
    """The search's ranking agrees with the planner's per-task figure, and with the pick."""
    watch, _ = make_watch()

    def shape(job: Job, i: int, age: float) -> None:
        job.callbacks = i % 7 == 0

    _, jobs, now = two_kinds_running(watch, random.Random(8), 40, 120.0, shape)
    at = now + 2.0

    def chance(job: Job) -> float:
        return watch.planner.ended_probability(job.kind, job.lower, at - job.created_at)[0]

    expected = sorted((job for job in jobs if not job.callbacks), key=chance, reverse=True)
    expected = [job for job in expected if chance(job) > 0.0]
    assert len(expected) > 8  # the check means something
    for k in (1, 3, 8, 100):
        assert likeliest_ended_k(watch.planner, iter(watch.running), at, k) == expected[:k]
    assert likeliest_ended(watch.planner, watch.running, at) is expected[0]
    assert likeliest_ended_k(watch.planner, [], at, 3) == []
    assert likeliest_ended_k(watch.planner, watch.running, at, 0) == []


def test_refusals_move_the_freed_credit_and_only_clean_ones_delay_polls() -> None:
    """``none_ended_by`` moves lower bounds; ``none_more_ended_by`` only the probes' credit."""
    watch, _ = make_watch()
    now = time.monotonic()
    old, young = running_job("old"), running_job("young")
    old.created_at, young.created_at = now - 50.0, now + 1.0  # young: created after the 1303
    for job in (old, young):
        watch.running.add(job)
    watch.none_more_ended_by(now - 10.0)
    assert watch.audit.credit_since == now - 10.0
    watch.none_more_ended_by(now - 20.0)  # an older refusal answered late: no step back
    assert watch.audit.credit_since == now - 10.0
    assert old.lower == 0.0  # one running task did end: its polls keep their times
    watch.none_ended_by(now - 5.0)
    assert old.lower == pytest.approx(45.0)
    assert young.lower == 0.0


def test_tasks_too_young_to_count_add_nothing_to_the_sum() -> None:
    """Only young tasks run: nothing expected freed and no rate (the prober rechecks on time)."""
    watch, _ = make_watch()
    kind = kind_of("text2video", {})
    for _ in range(20):
        watch.planner.observe(kind, 20.0)  # tight lives: young means under ~80% of 20 s
    now = time.monotonic()
    for i in range(3):
        job = running_job(f"y{i}")
        job.kind = kind
        job.created_at = now - 5.0
        watch.running.add(job)
    assert watch.expected_freed(now) == (0.0, 0.0, 0.0)


def landed_among(
    watch: Watch, ages: list[float], endpoints: list[str] | None = None
) -> tuple[list[Job], float]:
    """Tasks of a learned kind (median 100 s) running for ``ages`` s, then a probe lands.

    Returns:
        The tasks, oldest first (the likeliest to have ended), and the moment.
    """
    rng = random.Random(11)
    kind = kind_of("text2video", {})
    for _ in range(30):
        watch.planner.observe(kind, 100.0 * math.exp(rng.gauss(0.0, 0.25)))
    now = time.monotonic()
    jobs = []
    for i, age in enumerate(ages):
        job = running_job(f"s{i}", endpoints[i] if endpoints else "text2video")
        job.kind = kind  # one learned kind, whatever the lane
        job.created_at = now - age
        watch.running.add(job)
        watch.polls.schedule(job, now + 50.0)  # each task's own next poll: far off
        jobs.append(job)
    probe = running_job("probe")
    watch.audit.sent(probe, now)
    watch.audit.landed(probe)
    watch.probe_landed()
    return jobs, now


def still_running(job: Job) -> Task:
    return Task(
        id=job.task.id if job.task else "t", endpoint="text2video", status=TaskStatus.PROCESSING
    )


def test_a_landed_probe_searches_its_suspects_until_the_ended_one_is_found() -> None:
    """The likeliest is polled at once; found running, the next likeliest is; then no more."""
    watch, results = make_watch()
    jobs, now = landed_among(watch, [130.0, 110.0, 95.0, 20.0])
    for job in jobs:
        results.add_job(job)
    oldest, second, third, young = jobs
    assert oldest.due <= time.monotonic()  # the landing's own pick
    assert second.due > now + 40.0
    watch.on_status(oldest, still_running(oldest), time.monotonic())
    assert second.due <= time.monotonic()  # searched for at once
    assert third.due > now + 40.0
    watch.on_status(second, ended("s1", server_life=None), time.monotonic())
    # The landing is explained: the search stops, the rest keep their own times.
    assert watch.audit.unexplained() == 0
    assert third.due > now + 40.0
    assert young.due > now + 40.0


def test_the_search_stops_at_its_depth_and_without_a_landing() -> None:
    """``landing_search`` bounds the polls a landing adds; ``0`` adds none."""
    watch, _ = make_watch(ScheduleTuning(landing_search=1))
    jobs, now = landed_among(watch, [130.0, 110.0, 95.0])
    oldest, second, third = jobs
    watch.on_status(oldest, still_running(oldest), time.monotonic())
    assert second.due <= time.monotonic()
    watch.on_status(second, still_running(second), time.monotonic())
    assert third.due > now + 40.0  # the one poll of the search is spent
    assert watch.audit.unexplained() == 1  # the ended task is left to its own polls

    off, _ = make_watch(ScheduleTuning(landing_search=0))
    jobs, now = landed_among(off, [130.0, 110.0])
    off.on_status(jobs[0], still_running(jobs[0]), time.monotonic())
    assert jobs[1].due > now + 40.0


def test_a_task_polled_on_its_own_schedule_starts_no_search() -> None:
    """Only a poll the search sent continues it: a routine answer leaves the others alone."""
    watch, _ = make_watch()
    jobs, now = landed_among(watch, [130.0, 110.0, 95.0])
    _, second, third = jobs
    watch.on_status(third, still_running(third), time.monotonic())  # its own routine poll
    assert second.due > now + 40.0


def test_the_search_skips_tasks_a_shared_query_answers() -> None:
    """A turbo suspect is left to its batch query: the search goes to the next single one."""
    watch, _ = make_watch()
    lanes = ["text2video", "turbo-text2video", "text2video"]
    jobs, _ = landed_among(watch, [130.0, 110.0, 95.0], lanes)
    oldest, turbo, single = jobs
    turbo_due = turbo.due
    watch.on_status(oldest, still_running(oldest), time.monotonic())
    assert turbo.due == turbo_due  # likelier than the last one, but not searched
    assert single.due <= time.monotonic()


def test_the_search_skips_a_ranked_suspect_seen_running_since() -> None:
    """Suspects are ranked at the search's first step; one seen running later is passed over."""
    watch, results = make_watch()
    jobs, _ = landed_among(watch, [130.0, 110.0, 95.0, 80.0])
    for job in jobs:
        results.add_job(job)
    oldest, second, third, fourth = jobs
    watch.on_status(oldest, still_running(oldest), time.monotonic())  # ranks the rest
    assert second.due <= time.monotonic()
    watch.on_status(third, still_running(third), time.monotonic())  # its own routine poll
    third_due = third.due
    watch.on_status(second, still_running(second), time.monotonic())
    assert third.due == third_due  # no longer a suspect: not searched for
    assert fourth.due <= time.monotonic()
    assert watch.audit.unexplained() == 1
