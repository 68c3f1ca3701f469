"""The admission stage alone: window, refusals, breaker, budget, probes and halts, no gateway."""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream

from kling_async import ConcurrencyLimitedError, TextToVideoRequest
from kling_async._config import RetryPolicy
from kling_async._endpoints import endpoint_for
from kling_async._schedule import kind_of
from kling_async.batch import NotStartedError
from kling_async.batch._admission import Admission
from kling_async.batch._job import Job, Phase
from kling_async.batch._pacing import RefusalBreaker
from kling_async.batch._ports import NullJournal
from kling_async.batch._probe import ProbeAudit
from kling_async.batch._results import Results
from kling_async.batch._sums import FreedSlots

GUARD = 10.0  # seconds; turns a hang into a failure, never a timing check


class FakeRunning:
    """The watcher's view, scripted: how many slots have probably freed unnoticed."""

    def __init__(self) -> None:
        self.expected = 0.0
        self.running = 0
        self.none_ended: list[float] = []
        self.none_more_ended: list[float] = []
        self.jobs: set[Job] = set()
        self.audit = ProbeAudit(self.jobs)
        self.landed = 0
        self.restart_rate = 0.0
        self.sums = 0

    def expected_freed(self, now: float) -> FreedSlots:
        self.sums += 1
        return FreedSlots(self.expected, 0.0, self.restart_rate)

    def none_ended_by(self, sent: float) -> None:
        self.none_ended.append(sent)

    def none_more_ended_by(self, sent: float) -> None:
        self.none_more_ended.append(sent)

    def running_count(self) -> int:
        return self.running

    def probe_landed(self) -> None:
        self.landed += 1


def make_job(i: int, *, slots: int = 1) -> Job:
    request = TextToVideoRequest(prompt=f"clip {i}")
    endpoint = endpoint_for("text2video")
    return Job(f"k{i}", request, endpoint, f"ext-{i}", kind_of("text2video", {}), slots)


def make_admission(
    running: FakeRunning | None = None,
    *,
    max_running: int = 2,
    max_units: float | None = None,
    probe_slots: bool | None = False,
    refusals: float = 100.0,
) -> tuple[Admission, Results]:
    admission: Admission | None = None

    def halt(reason: NotStartedError) -> None:
        assert admission is not None
        admission.halt(reason)

    results = Results(on_event=None, fail_fast=False, halt=halt)
    results.open = True
    admission = Admission(
        max_running=max_running,
        probe_slots=probe_slots,
        max_units=max_units,
        max_requests_per_second=None,
        max_refusals_per_second=refusals,
        retry=RetryPolicy(initial_delay=0.0, max_delay=0.0),
        probe_threshold=0.5,
        rng=random.Random(0),
        journal=NullJournal("b"),
        results=results,
        running=running or FakeRunning(),
        on_capacity=lambda: None,
    )
    return admission, results


async def take(receive: MemoryObjectReceiveStream[Job], count: int) -> list[Job]:
    """Receive ``count`` admitted jobs."""
    return [await receive.receive() for _ in range(count)]


async def nothing_more(receive: MemoryObjectReceiveStream[Job]) -> bool:
    """Whether no job is admitted while the loop gets a chance to run."""
    for _ in range(20):
        await anyio.lowlevel.checkpoint()
    try:
        receive.receive_nowait()
    except anyio.WouldBlock:
        return True
    return False


@contextlib.asynccontextmanager
async def running_loops(
    admission: Admission, *, probe: bool = False
) -> AsyncIterator[MemoryObjectReceiveStream[Job]]:
    """Run the admission loop (and the prober) for the block; yield the create stream."""
    send, receive = anyio.create_memory_object_stream[Job](0)
    with receive, anyio.fail_after(GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(admission.admit_loop, send)
            if probe:
                tg.start_soon(admission.probe_loop)
            yield receive
            tg.cancel_scope.cancel()


async def test_the_window_admits_up_to_max_running_and_refills_on_release() -> None:
    """Two slots: two jobs go to create, the third waits until a slot is released."""
    admission, _ = make_admission(max_running=2)
    jobs = [make_job(i) for i in range(3)]
    for job in jobs:
        admission.enqueue(job)
    async with running_loops(admission) as receive:
        first = await take(receive, 2)
        assert await nothing_more(receive)
        admission.release(first[0], confirmed=False)
        admission.create_done()
        third = await take(receive, 1)
    assert [j.key for j in [*first, *third]] == ["k0", "k1", "k2"]
    assert all(j.phase is Phase.CREATING for j in first)
    assert admission.running_slots == 2


async def test_a_1303_requeues_at_the_front_shrinks_the_window_and_is_evidence() -> None:
    """No slot: the job goes back first, the window drops to what runs, the watcher learns."""
    running = FakeRunning()
    admission, _ = make_admission(running, max_running=4)
    job, other = make_job(0), make_job(1)
    admission.enqueue(other)
    admission.running_slots += 1  # as admission does when it hands a job out
    admission.confirmed_slots = 0
    job.phase = Phase.CREATING
    admission.no_slot(
        job, ConcurrencyLimitedError("busy", http_status=429), sent=5.0, retry_after=None
    )
    assert list(admission.queue) == [job, other]
    assert job.phase is Phase.QUEUED
    assert admission.window.limited
    assert admission.window.limit == 1
    assert running.none_ended == [5.0]
    assert admission.limited_1303 == 1


def test_the_refusal_breaker_caps_refusals_per_second() -> None:
    """Five refusals in a second trip the breaker until the oldest leaves the span."""
    breaker = RefusalBreaker(5)
    assert [breaker.refused(t) for t in (0.0, 0.1, 0.2, 0.3)] == [0.0, 0.1, 0.2, 0.3]
    assert breaker.refused(0.4) == pytest.approx(1.0)
    assert breaker.trips == 1
    assert breaker.refused(1.5) == 1.5  # the span has emptied


def test_the_breaker_tells_when_refusals_fall_under_a_share_of_its_ceiling() -> None:
    """Half of a ceiling of 10: room while under 5 in the last second, else when one leaves."""
    breaker = RefusalBreaker(10)
    for t in (0.0, 0.1, 0.2, 0.3):
        breaker.refused(t)
    assert breaker.room_at(0.35, 0.5) == 0.35
    breaker.refused(0.4)
    assert breaker.room_at(0.45, 0.5) == pytest.approx(1.0)  # when the first leaves
    breaker.refused(0.5)
    assert breaker.room_at(0.55, 0.5) == pytest.approx(1.1)  # two must leave
    assert breaker.room_at(1.15, 0.5) == 1.15
    assert breaker.trips == 0


async def test_probes_keep_under_a_share_of_the_breakers_ceiling() -> None:
    """Refusals at 80 % of the ceiling: the probe waits for room instead of tripping it."""
    from kling_async.batch._probe import _BREAKER_SHARE

    assert _BREAKER_SHARE == 0.8
    running, admission = probing_admission(True, 4)
    async with running_loops(admission, probe=True) as receive:
        await fill(admission, receive, 2)
        running.running, running.expected = 2, 5.0  # a probe is due
        breaker = admission.pacing.breaker
        now = time.monotonic()
        for _ in range(math.ceil(breaker.per_second * _BREAKER_SHARE)):
            breaker.refused(now)
        admission.probe._summed_at = -math.inf
        wait = admission.probe.check()
        assert not admission.probe.go
        assert wait is not None
        assert 0.0 < wait <= 1.0
        assert breaker.trips == 0


def test_a_burst_of_refusals_pauses_admissions() -> None:
    """Past the ceiling, admissions hold for the rest of the second whatever the cause."""
    admission, _ = make_admission(max_running=4, refusals=3)
    error = ConcurrencyLimitedError("busy", http_status=429)
    for i in range(3):
        job = make_job(i)
        admission.running_slots += 1
        admission.no_slot(job, error, sent=0.0, retry_after=None)
    assert admission.pacing.not_before > 0
    assert admission.pacing.breaker.trips == 1


async def test_the_budget_stops_admitting_when_nothing_can_fit() -> None:
    """A cap below a known cost with nothing running: every queued job ends not_started."""
    admission, results = make_admission(max_units=1.0)
    admission.budget.learn(kind_of("text2video", {}), 3.0, 1)
    jobs = [make_job(i) for i in range(3)]
    for job in jobs:
        results.add_job(job)
        admission.enqueue(job)
    async with running_loops(admission):
        while results.counts["not_started"] < 3:
            await anyio.lowlevel.checkpoint()
    assert admission.halted is not None
    assert admission.halted.reason == "budget"
    assert all(j.result is not None and j.result.status == "not_started" for j in jobs)


async def test_a_probe_passes_the_full_window_only_when_slots_probably_freed() -> None:
    """Every slot held: nothing more goes out until the watcher expects a freed slot."""
    running = FakeRunning()
    admission, _ = make_admission(running, max_running=2, probe_slots=True)
    for i in range(4):
        admission.enqueue(make_job(i))
    async with running_loops(admission, probe=True) as receive:
        first = await take(receive, 2)
        for job in first:
            admission.confirm(job)
            admission.create_done()
        running.running = 2
        assert await nothing_more(receive)
        running.expected = 1.0
        admission.poke()
        probe = await take(receive, 1)
    assert probe[0].probing
    assert admission.running_slots == 3


async def fill(admission: Admission, receive: MemoryObjectReceiveStream[Job], n: int) -> None:
    """Admit and confirm ``n`` jobs: every slot of the window held by a running task."""
    for job in await take(receive, n):
        admission.confirm(job)
        admission.create_done()


def probing_admission(probe_slots: bool | None, jobs: int) -> tuple[FakeRunning, Admission]:
    """Two slots, ``jobs`` queued, the watcher scripted."""
    running = FakeRunning()
    admission, _ = make_admission(running, max_running=2, probe_slots=probe_slots)
    for i in range(jobs):
        admission.enqueue(make_job(i))
    return running, admission


async def test_a_prober_that_can_time_nothing_looks_again_after_its_longest_wait() -> None:
    """Every slot held, nothing expected and no rate (tasks too young): a timed recheck.

    Sleeping until the next event instead let tight lives go unprobed for most of
    a wave (the images shape of the benchmark matrix went from 1.034 to 1.084).
    """
    running, admission = probing_admission(True, 4)
    async with running_loops(admission, probe=True) as receive:
        await fill(admission, receive, 2)
        running.running = 2
        running.expected = 0.0
        admission.probe._summed_at = -math.inf  # not within the gap between two sums
        wait = admission.probe.check()
    assert wait is not None
    assert wait > 0


async def test_the_probe_threshold_grows_with_the_fourth_root_of_the_running_count() -> None:
    """0.5 at 10 running: 0.33 at 2, 1.0 at 160 (each probe there saves less idle time)."""
    running, admission = probing_admission(True, 4)
    async with running_loops(admission, probe=True) as receive:
        await fill(admission, receive, 2)
        for count, below, above in ((2, 0.33, 0.34), (160, 0.99, 1.01)):
            running.running = count
            for expected, fires in ((below, False), (above, True)):
                running.expected = expected
                admission.probe._summed_at = -math.inf  # not within the gap between two sums
                admission.probe.go = False
                admission.probe.check()
                assert admission.probe.go is fires, (count, expected)
        admission.probe.go = False


async def test_reaching_the_cap_sends_one_probe_to_learn_whether_it_is_the_quota() -> None:
    """probe_slots=None: one probe at once when the cap is reached; its 1303 proves the quota."""
    running, admission = probing_admission(None, 4)
    async with running_loops(admission, probe=True) as receive:
        await fill(admission, receive, 2)
        running.running = 2
        test = await take(receive, 1)  # nothing expected freed: the quota test alone
        assert test[0].probing
        assert not admission.quota_seen
        assert not admission.probe.refilling()  # not yet proved sound: polls refill
        admission.no_slot(
            test[0], ConcurrencyLimitedError("busy", http_status=429), sent=0.0, retry_after=None
        )
        admission.create_done()
        assert admission.quota_seen  # every later probe may pass the cap
        assert admission.probe.refilling()
        assert await nothing_more(receive)  # and none goes until slots probably freed


async def test_a_1303_past_the_window_restarts_the_probes_credit_never_the_polls() -> None:
    """Held 3 of a quota of 2 after a probe landed: a 1303 says no other task had ended."""
    running = FakeRunning()
    admission, _ = make_admission(running, max_running=2)
    admission.quota_seen = True
    tasks = [make_job(i) for i in range(3)]
    running.jobs.update(tasks[:2])
    probe = tasks[2]
    running.audit.sent(probe, 1.0)
    running.audit.landed(probe)  # one of the first two ended; which is not known
    running.jobs.add(probe)
    admission.confirmed_slots = 3

    def refuse(sent: float) -> None:
        job = make_job(9)
        job.held_at_admit = 3
        job.phase = Phase.CREATING
        admission.running_slots += 1
        admission.no_slot(
            job, ConcurrencyLimitedError("busy", http_status=429), sent=sent, retry_after=None
        )

    refuse(4.0)
    assert running.none_more_ended == [4.0]
    assert running.none_ended == []  # polls are not delayed: one of them did end
    running.audit.ended(tasks[0])  # the end is seen: the landing is explained
    refuse(6.0)
    # Held 3 with no landing left to explain it: a task believed running had ended
    # all the same (its slot taken by the probe). No slot was free at 6.0: the
    # probes' credit restarts (a probe judged by 4.0 went out on stale credit).
    assert running.none_more_ended == [4.0, 6.0]
    assert running.none_ended == []


async def test_a_1303_after_an_end_was_seen_counts_what_still_holds_slots() -> None:
    """Admitted holding 3 of a quota of 2, refused after one end was seen: clean evidence."""
    running = FakeRunning()
    admission, _ = make_admission(running, max_running=2)
    admission.confirmed_slots = 2  # one of the three ended and was seen since
    job = make_job(0)
    job.held_at_admit = 3
    job.phase = Phase.CREATING
    admission.running_slots += 1
    admission.no_slot(
        job, ConcurrencyLimitedError("busy", http_status=429), sent=7.0, retry_after=None
    )
    assert running.none_ended == [7.0]


async def test_an_accepted_probe_is_followed_by_as_many_as_were_expected_freed() -> None:
    """Expected 2.6 freed: the probe lands, two more follow at once, then none."""
    running, admission = probing_admission(True, 8)
    async with running_loops(admission, probe=True) as receive:
        await fill(admission, receive, 2)
        running.running = 2
        assert admission.probe.refilling()  # asked for: probes refill from the start
        assert await nothing_more(receive)
        running.expected = 2.6
        admission.poke()
        first = await take(receive, 1)
        running.expected = 0.0  # an accepted probe restarts the credit
        for _ in range(2):
            admission.confirm(first[0])
            admission.create_done()
            first = await take(receive, 1)
            assert first[0].probing
        admission.confirm(first[0])
        admission.create_done()
        assert await nothing_more(receive)
    assert admission.running_slots == 5


async def test_a_refused_probe_ends_its_burst() -> None:
    """Expected 2.6 freed but the probe gets a 1303: no follow-up probe."""
    running, admission = probing_admission(True, 8)
    async with running_loops(admission, probe=True) as receive:
        await fill(admission, receive, 2)
        running.running = 2
        running.expected = 2.6
        admission.poke()
        probe = await take(receive, 1)
        running.expected = 0.0
        admission.no_slot(
            probe[0], ConcurrencyLimitedError("busy", http_status=429), sent=0.0, retry_after=None
        )
        admission.create_done()
        assert await nothing_more(receive)


async def test_after_a_probes_answer_the_next_sum_waits_for_the_restarted_credit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The answer restarts the credit: no sum until the hazard the firing sum saw could refill it.

    Threshold 0.33 at 2 running, freed slots growing at 2 a second once restarted:
    the prober waits about 0.17 s after the firing sum without summing, then sums
    again. The clock is pinned for the checks, so a slow machine cannot move it.
    """
    running, admission = probing_admission(True, 8)
    probe = admission.probe
    async with running_loops(admission, probe=True) as receive:
        await fill(admission, receive, 2)
        running.running = 2
        running.expected = 1.0
        running.restart_rate = 2.0
        admission.poke()
        sent = await take(receive, 1)
        fired_at = probe._summed_at
        sums = running.sums
        admission.no_slot(
            sent[0], ConcurrencyLimitedError("busy", http_status=429), sent=0.0, retry_after=None
        )
        admission.create_done()
        assert 0.33 / 2.0 <= probe._resume_at - fired_at <= 0.34 / 2.0
        probe._summed_at = -math.inf  # not within the gap between two sums
        with monkeypatch.context() as clock:
            clock.setattr(time, "monotonic", lambda: fired_at + 0.05)
            wait = probe.check()
        assert running.sums == sums  # skipped: the count restarted near zero
        assert wait == pytest.approx(probe._resume_at - fired_at - 0.05)
        with monkeypatch.context() as clock:
            clock.setattr(time, "monotonic", lambda: probe._resume_at)  # that moment has come
            probe.check()
        assert running.sums == sums + 1
        assert probe.go  # the scripted count is still past the threshold: a probe
        probe.go = False


async def test_a_halt_names_the_setting_and_ends_queued_jobs_not_started() -> None:
    """A wrong key: queued and later jobs end not_started, naming KLING_API_KEY."""
    admission, results = make_admission(max_running=1)
    jobs = [make_job(i) for i in range(3)]
    for job in jobs:
        results.add_job(job)
    admission.halt_for(RuntimeError("401"), reason="key")
    async with running_loops(admission) as receive:
        for job in jobs:
            admission.enqueue(job)
        assert await nothing_more(receive)
    assert admission.halted is not None
    assert admission.halted.setting == "KLING_API_KEY"
    assert "KLING_API_KEY" in str(admission.halted)
    assert results.counts["not_started"] == 3


def test_probes_never_refill_when_told_not_to_pass_the_cap() -> None:
    """probe_slots=False: polls alone report freed slots, whatever the gateway said."""
    admission, _ = make_admission(FakeRunning(), max_running=2, probe_slots=False)
    admission.quota_seen = True
    assert not admission.probe.refilling()
