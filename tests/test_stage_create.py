"""The create stage alone, against a scripted session: verdicts and reconcile, no gateway."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from kling_async import (
    AuthenticationError,
    ConcurrencyLimitedError,
    CreateOutcomeUnknownError,
    InvalidRequestError,
    NotFoundError,
    RequestTimeoutError,
    ServerError,
    Task,
    TaskStatus,
    TextToVideoRequest,
)
from kling_async._classify import Verdict
from kling_async._config import ClientConfig, RetryPolicy
from kling_async._endpoints import Endpoint, endpoint_for
from kling_async._ratelimit import RateLimiter
from kling_async._schedule import kind_of
from kling_async.batch import ExternalIdConflictError, NotStartedError
from kling_async.batch._create import Create
from kling_async.batch._job import Job, Phase
from kling_async.batch._pacing import Pacing
from kling_async.batch._ports import NullJournal
from kling_async.batch._reconcile import MAX_CREATE_ROUNDS, Step, next_step
from kling_async.batch._results import Results

GUARD = 10.0  # seconds; turns a hang into a failure, never a timing check


class ScriptedSession:
    """Answers creates from a script; remembers which external ids 'landed'.

    A timeout lands the task (then loses the answer); ``lag`` lookups miss a landed
    task before it becomes visible (the gateway's lookup lag); a 1201 is answered
    for a landed id, as a gateway that refuses duplicates does.
    """

    def __init__(self, creates: Sequence[BaseException | None], *, lag: int = 0) -> None:
        self._creates = list(creates)
        self._lag = lag
        self.landed: dict[str, Task] = {}
        self.create_calls = 0
        self.lookups = 0
        self.config = ClientConfig(
            api_key="k",
            endpoint_path="p",
            retry=RetryPolicy(
                initial_delay=0.0, max_delay=0.001, reconcile_grace=0.0, reconcile_interval=0.001
            ),
        )

    def task(self, external_id: str) -> Task:
        return Task(
            id=f"t-{external_id}",
            endpoint="text2video",
            status=TaskStatus.SUBMITTED,
            external_id=external_id,
        )

    async def create(
        self,
        request: Any,
        *,
        external_task_id: str | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        hold_slot: bool = True,
    ) -> Task:
        """Pop the next scripted outcome: ``None`` creates; an error raises (timeouts land)."""
        assert external_task_id is not None
        assert retry is not None
        assert retry.max_attempts == 1  # the batch retries on its own
        self.create_calls += 1
        if external_task_id in self.landed:
            raise InvalidRequestError("external_task_id exists", http_status=400, code=1201)
        outcome = self._creates.pop(0) if self._creates else None
        if outcome is None or isinstance(outcome, RequestTimeoutError):
            self.landed[external_task_id] = self.task(external_task_id)
        if outcome is not None:
            raise outcome
        return self.landed[external_task_id]

    async def get(
        self,
        endpoint: str | Endpoint,
        task_id: str | None = None,
        /,
        *,
        external_task_id: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> Task:
        self.lookups += 1
        if external_task_id in self.landed:
            if self._lag > 0:
                self._lag -= 1
            else:
                return self.landed[external_task_id]
        raise NotFoundError("no such task", http_status=404, code=1203)

    async def get_many(self, **_: Any) -> list[Task]:
        raise AssertionError("not used by the create stage")

    async def refresh(self, task: Task, *, limiter: RateLimiter | None = None) -> Task:
        raise AssertionError("not used by the create stage")

    async def download_url(self, url: str, path: str | Path, **_: Any) -> Any:
        raise AssertionError("not used by the create stage")


class FakeGate:
    """Admission, as the create stage sees it: records every report."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.requeued: list[Job] = []
        self.halts: list[str] = []

    def hold_resumed(self, job: Job) -> None:
        self.calls.append("hold_resumed")

    def reopen(self, job: Job, booked: float) -> None:
        self.calls.append("reopen")

    def confirm(self, job: Job) -> None:
        self.calls.append("confirm")

    def release(self, job: Job, *, confirmed: bool) -> None:
        self.calls.append("release")

    def settle(self, job: Job, units: float, *, completed: bool) -> None:
        self.calls.append("settle")

    def halt_for(self, error: BaseException, *, reason: str) -> None:
        self.halts.append(reason)

    def requeue(self, job: Job, error: BaseException, *, throttled: bool) -> None:
        job.phase = Phase.QUEUED
        self.requeued.append(job)

    def no_slot(
        self, job: Job, error: BaseException, *, sent: float, retry_after: float | None
    ) -> None:
        self.calls.append("no_slot")

    def rate_refused(self, job: Job, error: BaseException, retry_after: float | None) -> None:
        self.calls.append("rate_refused")

    def unreserve(self, job: Job, actual: float) -> None:
        self.calls.append("unreserve")

    def create_begun(self) -> None:
        self.calls.append("create_begun")

    def create_done(self) -> None:
        self.calls.append("create_done")


class FakeWatch:
    """The watcher, as the create stage sees it: records every task handed over."""

    def __init__(self) -> None:
        self.followed: list[tuple[str, Task, bool]] = []

    def expect(self, job: Job) -> None:
        pass

    def follow(self, job: Job, task: Task, *, clean: bool) -> None:
        job.phase = Phase.RUNNING
        self.followed.append((job.key, task, clean))


def make_job(key: str = "k") -> Job:
    request = TextToVideoRequest(prompt="a cat")
    return Job(key, request, endpoint_for("text2video"), f"ext-{key}", kind_of("t", {}), 1)


def build(
    session: ScriptedSession, *, patience: float = 0.0, deadline: float = 600.0
) -> tuple[Create, FakeGate, FakeWatch, Results]:
    def halt(reason: NotStartedError) -> None:
        raise AssertionError(f"unexpected halt {reason}")

    results = Results(on_event=None, fail_fast=False, halt=halt)
    gate, watch = FakeGate(), FakeWatch()
    pacing = Pacing(
        max_requests_per_second=None,
        max_refusals_per_second=100,
        retry=session.config.retry,
        rng=random.Random(0),
    )
    create = Create(
        session=session,
        retry=session.config.retry,
        gate=gate,
        pacing=pacing,
        watch=watch,
        journal=NullJournal("b"),
        results=results,
        callback_url=None,
        patience=patience,
        deadline=deadline,
    )
    return create, gate, watch, results


async def run(create: Create, *jobs: Job) -> None:
    """Hand jobs to one create worker and wait until it is done with them."""
    send, receive = anyio.create_memory_object_stream[Job](len(jobs))
    with send:
        for job in jobs:
            job.phase = Phase.CREATING
            send.send_nowait(job)
    with anyio.fail_after(GUARD):
        await create.worker(receive)


async def test_an_answered_create_is_followed_as_a_clean_sample() -> None:
    """A create answered directly goes to the watcher, its life learnable."""
    session = ScriptedSession([None])
    create, gate, watch, _ = build(session)
    job = make_job()
    await run(create, job)
    assert session.create_calls == 1
    assert [(k, clean) for k, _, clean in watch.followed] == [("k", True)]
    assert "confirm" in gate.calls


async def settle(create: Create, job: Job, *, passes: int = 50) -> None:
    """Run the job's due lookups (what the doubt loop does) until it leaves doubt."""
    for _ in range(passes):
        if job.phase is not Phase.CREATING or job.result is not None:
            return
        await run(create, job)


async def test_an_unclear_create_keeps_its_slot_and_is_adopted_never_sent_again() -> None:
    """A timeout after the task landed: the job waits in doubt, then is found by external id."""
    session = ScriptedSession([RequestTimeoutError("no answer")])
    create, gate, watch, _ = build(session)
    job = make_job()
    await run(create, job)
    assert job.may_exist
    assert job.phase is Phase.CREATING  # still holds its slot
    assert gate.requeued == []
    await settle(create, job)
    assert session.create_calls == 1
    assert [(k, clean) for k, _, clean in watch.followed] == [("k", False)]


async def test_lookup_lag_never_makes_the_batch_send_twice_within_its_patience() -> None:
    """A landed task invisible for many lookups: looked up until seen, one create in all."""
    session = ScriptedSession([RequestTimeoutError("no answer")], lag=8)
    create, _, watch, _ = build(session, patience=3600.0)
    job = make_job()
    await run(create, job)
    await settle(create, job)
    assert session.create_calls == 1
    assert session.lookups >= 9
    assert [k for k, _, _ in watch.followed] == ["k"]


async def test_a_clean_miss_after_the_patience_sends_the_create_again() -> None:
    """The create never landed (a 5xx before storing it): once patience passed, it is resent."""
    session = ScriptedSession([ServerError("boom", http_status=500, code=5000)])
    create, _, watch, _ = build(session, patience=0.0)
    job = make_job()
    await run(create, job)
    await settle(create, job)
    assert session.create_calls == 2
    assert [(k, clean) for k, _, clean in watch.followed] == [("k", False)]


async def test_a_1201_after_our_own_send_means_it_exists_and_is_looked_up_until_found() -> None:
    """Resent after the patience, answered 1201: the task is paid; lookups go on, no 3rd create."""
    session = ScriptedSession([RequestTimeoutError("no answer")], lag=6)
    create, _, watch, _ = build(session, patience=0.0)
    job = make_job()
    await run(create, job)
    await settle(create, job)
    assert session.create_calls == 2  # the second one was answered 1201
    assert job.exists
    assert [k for k, _, _ in watch.followed] == ["k"]


def test_the_reconcile_steps_follow_patience_existence_and_the_deadline() -> None:
    """Pure rules: wait out the patience, never resend once it exists, give up at the deadline."""
    job = make_job()
    job.may_exist = True
    job.unclear_since = 100.0
    job.last_sent = 100.0
    rules = {"patience": 10.0, "deadline": 600.0}
    miss = Verdict.NOT_FOUND
    assert next_step(job, miss, now=105.0, **rules) is Step.LATER
    assert next_step(job, miss, now=111.0, **rules) is Step.CREATE
    assert next_step(job, Verdict.RETRY, now=111.0, **rules) is Step.LATER  # not a clean miss
    assert next_step(job, Verdict.HALT_KEY, now=101.0, **rules) is Step.GIVE_UP
    job.exists = True
    assert next_step(job, miss, now=111.0, **rules) is Step.LATER
    assert next_step(job, miss, now=700.0, **rules) is Step.GIVE_UP
    job.exists = False
    job.create_rounds = MAX_CREATE_ROUNDS
    assert next_step(job, miss, now=111.0, **rules) is Step.LATER


async def test_past_the_deadline_the_job_is_unknown_with_its_external_id() -> None:
    """Never found before the deadline: an error naming the external id, counted unknown."""
    session = ScriptedSession([RequestTimeoutError("no answer")], lag=10_000)
    create, _, watch, results = build(session, patience=3600.0, deadline=0.05)
    job = make_job()
    results.add_job(job)
    await run(create, job)
    with anyio.fail_after(GUARD):
        while job.result is None:
            await anyio.sleep(0.01)
            await run(create, job)
    assert watch.followed == []
    assert isinstance(job.result.error, CreateOutcomeUnknownError)
    assert job.result.error.external_task_id == job.external_id
    assert job.external_id in str(job.result.error)
    assert results.unknown == 1
    assert session.create_calls == 1


async def test_a_first_send_answered_1201_for_a_foreign_task_names_the_id() -> None:
    """Never sent by this batch, yet taken: ExternalIdConflictError, nothing adopted."""
    session = ScriptedSession([])
    create, _, watch, results = build(session)
    job = make_job()
    session.landed[job.external_id] = session.task(job.external_id)
    results.add_job(job)
    await run(create, job)
    assert watch.followed == []
    assert job.result is not None
    assert isinstance(job.result.error, ExternalIdConflictError)
    assert job.result.error.task_id == f"t-{job.external_id}"


async def test_a_1303_goes_back_to_admission() -> None:
    """No slot: nothing was created, admission is told (and decides what next)."""
    refusal = ConcurrencyLimitedError("busy", http_status=429, code=1303)
    session = ScriptedSession([refusal])
    create, gate, watch, _ = build(session)
    await run(create, make_job())
    assert "no_slot" in gate.calls
    assert watch.followed == []


async def test_a_wrong_key_ends_the_job_and_halts_admissions() -> None:
    """401: the job ends in error and admission halts, naming the key setting."""
    session = ScriptedSession([AuthenticationError("bad key", http_status=401, code=1000)])
    create, gate, _, results = build(session)
    job = make_job()
    results.add_job(job)
    await run(create, job)
    assert gate.halts == ["key"]
    assert job.result is not None
    assert job.result.status == "error"
    assert isinstance(job.result.error, AuthenticationError)


async def test_an_unexpected_exception_is_an_unclear_outcome_not_a_crash() -> None:
    """A foreign exception from the session is reconciled like a dropped connection."""
    session = ScriptedSession([ValueError("parser bug")])
    create, gate, _, _ = build(session)
    job = make_job()
    await run(create, job)
    assert gate.requeued == []
    assert job.may_exist
    assert job.phase is Phase.CREATING
