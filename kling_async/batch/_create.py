"""The create stage: send each admitted job's create, and settle what its answer means.

A fixed pool of create workers reads jobs from admission's stream. Each create is
one request (the batch does its own retrying, so it always knows whether an
earlier attempt may have landed). The fate of a failure is decided by
:func:`~kling_async._classify.classify`:

=================  ==========================================================
verdict            what the batch does
=================  ==========================================================
NO_SLOT            back to the front of the queue; the window shrinks
RATE_LIMITED       back to the front of the queue; every request pauses
RETRY              not sent: back to the queue after a backoff (bounded)
UNCLEAR            the task may exist: it keeps its slot and is looked up by
                   external id (see ``_reconcile``) before any new create
EXISTS             the external id is taken after our own send: the task
                   exists and is paid; looked up until found or the deadline
REFUSED            the job ends in error (nothing was created); a 1200/1201
                   on a first send whose id turns out taken names the id
HALT_*             the job ends in error and admissions stop for every job
=================  ==========================================================

Jobs in doubt wait in a time-ordered heap; a small loop hands each back to the
workers when its next lookup is due. A task that is found is adopted as if the
create had answered (but its life is not learned from: its creation moment is
not ours to know). At the deadline the job is journaled ``unknown`` with its
external id; the next run looks up every ``unknown`` row before anything else.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable

import attrs

from .._classify import Verdict, classify
from .._config import RetryPolicy
from .._endpoints import Endpoint, endpoint_for, with_callback_url
from .._errors import ConnectError, CreateOutcomeUnknownError, InvalidRequestError, KlingError
from .._journal import JobState
from .._task import Task
from ._handoff import Inbox, Outbox
from ._job import Job, Phase
from ._pacing import Pacing
from ._ports import AdmissionPort, Follower, JournalPort, SessionPort
from ._reconcile import Step, lookup_delay, next_step
from ._results import Results
from ._values import EventKind, ExternalIdConflictError, NotStartedError
from ._wake import Wake

__all__ = ["Create"]

logger = logging.getLogger("kling_async")

#: Creates refused before they were sent (connection refused) before a job ends retryable.
_MAX_RETRIES = 10

#: A create answered within this many seconds dates its task's creation well enough
#: to learn the task's life from it.
_CLEAN_CREATE_SECONDS = 5.0

#: The setting each halting verdict points at.
HALT_REASONS = {
    Verdict.HALT_KEY: "key",
    Verdict.HALT_ROUTE: "route",
    Verdict.HALT_ACCOUNT: "account",
}


class Create:
    """Create workers, lookups by external id, and the verdict on each failure.

    Args:
        session: Sends creates and lookups.
        retry: The session's retry policy (one create per call is made of it).
        gate: Admission (slots, queue, halts).
        pacing: The batch's request rate and admission pauses.
        watch: Takes every task that exists.
        journal: Where ``creating``, ``created``, ``unknown`` and errors go.
        results: Where jobs end.
        callback_url: The callback URL for an endpoint, when callbacks are on.
        patience: Seconds after a create that may have landed before a clean
            lookup miss allows sending it again.
        deadline: Seconds of doubt before a job is journaled ``unknown``.
        halted: Why admissions stopped (``None`` while they run): after a halt
            nothing is sent, not even a create a clean lookup miss would allow again.
    """

    def __init__(
        self,
        *,
        session: SessionPort,
        retry: RetryPolicy,
        gate: AdmissionPort,
        pacing: Pacing,
        watch: Follower,
        journal: JournalPort,
        results: Results,
        callback_url: Callable[[Endpoint], str] | None,
        patience: float,
        deadline: float,
        halted: Callable[[], NotStartedError | None] = lambda: None,
    ) -> None:
        self._session = session
        # One request per create call: no retries and no waiting inside the session
        # (a single immediate lookup after an unclear answer is all it does).
        self._retry = retry
        self._one_shot = _one_shot(retry)
        self._gate = gate
        self._pacing = pacing
        self._watch = watch
        self._journal = journal
        self._results = results
        self._callback_url = callback_url
        self.patience = patience
        self.deadline = deadline
        self._halted = halted
        self._doubts: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self.wake = Wake()
        self._answered = False  # the gateway answered at least once
        self._unreached = 0  # creates in a row that could not connect
        # Figures.
        self.creates = 0
        self.lookups = 0

    # --- the loops ----------------------------------------------------------------------

    async def worker(self, jobs: Inbox[Job]) -> None:
        """Create (or look up) the jobs handed over, one at a time.

        Args:
            jobs: Admitted jobs, and jobs whose next lookup is due.
        """
        async with jobs:
            async for job in jobs:
                try:
                    await self._attempt(job)
                finally:
                    self._gate.create_done()
                self._results.check_done()

    async def doubt_loop(self, out: Outbox[Job]) -> None:
        """Hand jobs in doubt back to the workers when their next lookup is due.

        Args:
            out: The workers' input (a clone of admission's stream).
        """
        async with out:
            while not self._results.finished():
                now = time.monotonic()
                if not self._doubts or self._doubts[0][0] > now:
                    timeout = self._doubts[0][0] - now if self._doubts else None
                    await self.wake.wait(timeout)
                    continue
                _, _, job = heapq.heappop(self._doubts)
                if job.phase is not Phase.CREATING:
                    continue
                self._gate.create_begun()
                await out.send(job)

    async def recover_unknown(self) -> None:
        """Look up every job an earlier run left ``unknown`` before anything else.

        A task found is recorded as created (its job, when submitted, is followed
        and never created again); a job not found stays ``unknown`` and is looked up
        again when submitted.
        """
        for key in self._journal.keys_in({JobState.UNKNOWN}):
            entry = self._journal.get(key)
            if entry is None:
                continue
            try:
                endpoint = endpoint_for(entry.endpoint)
            except KeyError:
                continue
            self.lookups += 1
            try:
                task = await self._session.get(
                    endpoint,
                    external_task_id=entry.external_task_id,
                    limiter=self._pacing.limiter,
                )
            except Exception as exc:  # a miss or a failure: the job's own lookup decides
                logger.info("job %r still unknown (%s)", key, type(exc).__name__)
                continue
            current = self._journal.get(key)
            if current is not None and current.state is JobState.UNKNOWN:
                logger.info("found the task of unknown job %r: %s", key, task.id)
                self._journal.mark_created(
                    key, task_id=task.id, status=task.raw_status or task.status.value
                )

    # --- one pass of a job ------------------------------------------------------------

    async def _attempt(self, job: Job) -> None:
        if job.may_exist:
            found = await self._lookup(job)
            if isinstance(found, Task):
                self._created(job, found, clean=False)
                return
            step = next_step(
                job,
                found,
                now=time.monotonic(),
                patience=self.patience,
                deadline=self.deadline,
            )
            if step is Step.LATER:
                self._doubt(job)
                return
            if step is Step.GIVE_UP:
                self._give_up(job, found)
                return
        stopped = self._halted()
        if stopped is not None:
            # Admissions stopped after this job was admitted (or while its earlier
            # create was in doubt): send nothing. Admission ends it ``not_started``; a
            # job whose create may have landed keeps its journal row ('creating' /
            # 'unknown'), so the next run looks it up before creating anything.
            self._gate.requeue(job, stopped, throttled=False)
            return
        await self._send(job)

    async def _lookup(self, job: Job) -> Task | Verdict:
        """Look the job's task up by external id: the task, or why it was not found."""
        self.lookups += 1
        job.lookups += 1
        try:
            return await self._session.get(
                job.endpoint, external_task_id=job.external_id, limiter=self._pacing.limiter
            )
        except Exception as exc:  # a miss, or a failure judged below
            verdict = classify(exc, phase="read")
            if verdict is Verdict.RATE_LIMITED:
                self._pacing.throttled(getattr(exc, "retry_after", None))
            elif verdict.halts:
                self._gate.halt_for(exc, reason=HALT_REASONS[verdict])
            elif not isinstance(exc, KlingError):
                logger.warning(
                    "lookup for job %r failed unexpectedly (%s)", job.key, type(exc).__name__
                )
            return verdict

    async def _send(self, job: Job) -> None:
        request = job.request
        if job.callbacks and self._callback_url is not None:
            request = with_callback_url(request, self._callback_url(job.endpoint))
        self._journal.mark_creating(job.key)
        self._watch.expect(job)
        self.creates += 1
        sent = time.monotonic()
        try:
            task = await self._session.create(
                request,
                external_task_id=job.external_id,
                limiter=self._pacing.limiter,
                retry=self._one_shot,
                hold_slot=False,
            )
        except Exception as exc:  # classify decides; one job's failure stays its own
            await self._failed(job, exc, sent=sent)
            return
        self._answered = True
        self._unreached = 0
        # A create answered directly, and quickly, starts the task's life now. One
        # that needed a lookup, took long (the session may have found it after a
        # lost answer) or answers an ended task does not: its life is not learned.
        quick = time.monotonic() - sent <= _CLEAN_CREATE_SECONDS
        self._created(job, task, clean=quick and not job.may_exist and not task.is_terminal)

    async def _failed(self, job: Job, exc: BaseException, *, sent: float) -> None:
        if isinstance(exc, KlingError) and not isinstance(exc, ConnectError):
            self._answered = True
            self._unreached = 0
        sent_before = job.may_exist
        verdict = classify(exc, phase="create", sent_before=sent_before)
        retry_after = getattr(exc, "retry_after", None)
        if verdict is Verdict.NO_SLOT:
            self._gate.no_slot(job, exc, sent=sent, retry_after=retry_after)
        elif verdict is Verdict.RATE_LIMITED:
            self._gate.rate_refused(job, exc, retry_after)
        elif verdict is Verdict.RETRY:
            job.retries += 1
            self._unreached += 1
            if job.retries > _MAX_RETRIES or (
                self._unreached > _MAX_RETRIES and not self._answered
            ):
                self._fail(job, exc, retryable=True)
                if not self._answered:
                    # Never reached at all: the base URL is wrong (or the network is down).
                    self._gate.halt_for(exc, reason="connect")
                return
            self._gate.requeue(job, exc, throttled=False)
            self._pacing.pause(job.retries, None)
        elif verdict.may_exist:
            self._doubt_begins(job, exc, sent=sent, exists=verdict is Verdict.EXISTS)
        elif verdict.halts:
            self._fail(job, exc, retryable=True)
            self._gate.halt_for(exc, reason=HALT_REASONS[verdict])
        elif isinstance(exc, InvalidRequestError):
            await self._refused_body(job, exc)
        else:
            self._fail(job, exc, retryable=False)

    def _doubt_begins(self, job: Job, exc: BaseException, *, sent: float, exists: bool) -> None:
        """The task may exist (or, ``exists``, does): keep the slot, look it up."""
        now = time.monotonic()
        if not isinstance(exc, KlingError):
            logger.warning(
                "create for job %r failed unexpectedly (%s); treated as unclear",
                job.key,
                type(exc).__name__,
            )
        if exists and not job.exists:
            job.exists = True
            job.unclear_since = now  # the deadline runs from the gateway's word
            job.lookups = 0
            logger.warning(
                "the gateway says external_task_id %s of job %r exists; looking it up",
                job.external_id,
                job.key,
            )
        elif not exists:
            job.create_rounds += 1
            job.last_sent = sent
            if not job.may_exist:
                job.unclear_since = now
                job.lookups = 0
        job.may_exist = True
        self._results.emit(EventKind.RETRIED, job, error=exc)
        self._doubt(job)

    def _doubt(self, job: Job) -> None:
        """Plan the job's next lookup (it keeps its slot meanwhile)."""
        job.probing = False
        policy = self._retry
        delay = lookup_delay(job.lookups, interval=policy.reconcile_interval, cap=policy.max_delay)
        heapq.heappush(self._doubts, (time.monotonic() + delay, next(self._seq), job))
        self.wake.set()

    async def _refused_body(self, job: Job, exc: InvalidRequestError) -> None:
        """1200/1201 on a first send: a bad request, or an id someone else holds."""
        found = await self._lookup(job)
        if isinstance(found, Task):
            conflict = ExternalIdConflictError(external_task_id=job.external_id, task_id=found.id)
            self._fail(job, conflict, retryable=False)
            return
        self._fail(job, exc, retryable=False)

    def _give_up(self, job: Job, missed: Verdict) -> None:
        """The deadline passed (or lookups cannot work): journal the job ``unknown``."""
        job.probing = False
        self._gate.release(job, confirmed=False)
        if job.reserved_set:
            self._gate.unreserve(job, job.reserved or 0.0)  # it may be charged
        why = "the gateway says it exists" if job.exists else "its create's outcome is unclear"
        error = CreateOutcomeUnknownError(
            f"job {job.key!r}: {why} and no lookup found it ({missed.value}); a re-run looks "
            f"it up by external_task_id {job.external_id!r} before creating anything",
            external_task_id=job.external_id,
            endpoint=job.endpoint.name,
            attempts=job.create_rounds,
        )
        logger.warning("%s", error)
        self._journal.mark_unknown(job.key, external_task_id=job.external_id, message=str(error))
        self._results.unknown += 1
        self._results.finish(job, "error", None, error)

    def _fail(self, job: Job, exc: BaseException, *, retryable: bool) -> None:
        """End a job whose create was refused or could not be sent.

        ``retryable`` rows are looked up by external id, then created, on resume.
        """
        job.probing = False
        self._gate.release(job, confirmed=False)
        if job.reserved_set:
            self._gate.unreserve(job, 0.0)
        self._journal.mark_error(
            job.key, message=str(exc), error_type=type(exc).__name__, retryable=retryable
        )
        self._results.finish(job, "error", None, exc)

    def _created(self, job: Job, task: Task, *, clean: bool) -> None:
        self._journal.mark_created(
            job.key, task_id=task.id, status=task.raw_status or task.status.value
        )
        job.may_exist = False
        self._gate.confirm(job)
        self._watch.follow(job, task, clean=clean)


def _one_shot(retry: RetryPolicy) -> RetryPolicy:
    """The session's policy cut to one request per create call (the batch retries itself)."""
    return attrs.evolve(retry, max_attempts=1, retry_concurrency_limited=False, reconcile_grace=0.0)
