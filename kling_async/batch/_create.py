"""The create stage: send each admitted job's create, and settle what its answer means.

A fixed pool of create workers reads admitted jobs from admission's stream. The
fate of a failed create is decided by :func:`~kling_async._classify.classify`,
never by a ladder of exception classes here:

=================  ==========================================================
verdict            what the batch does
=================  ==========================================================
NO_SLOT            back to the front of the queue; the window shrinks
RATE_LIMITED       back to the front of the queue; every request pauses
UNCLEAR / RETRY    the task may exist: look it up by external id before any
                   new create (a few rounds, then the job ends retryable)
EXISTS             the external id is taken: look it up and adopt the task
REFUSED            the job ends in error (nothing was created)
HALT_*             the job ends in error and admissions stop for every job
=================  ==========================================================
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from .._classify import Verdict, classify
from .._config import RetryPolicy
from .._endpoints import Endpoint, with_callback_url
from .._errors import InvalidRequestError, KlingError, NotFoundError
from .._task import Task
from ._job import Job
from ._pacing import Pacing
from ._ports import AdmissionPort, Follower, JournalPort, SessionPort
from ._results import Results

__all__ = ["Create"]

logger = logging.getLogger("kling_async")

#: Create rounds whose outcome was unclear before a job ends (retryable).
_MAX_CREATE_ROUNDS = 5

#: The setting each halting verdict points at.
HALT_REASONS = {
    Verdict.HALT_KEY: "key",
    Verdict.HALT_ROUTE: "route",
    Verdict.HALT_ACCOUNT: "account",
}


class Create:
    """Create workers, look-ups by external id, and the verdict on each failure.

    Args:
        session: Sends creates and look-ups.
        retry: The retry policy the session applies inside one create.
        gate: Admission (slots, queue, halts).
        pacing: The batch's request rate and admission pauses.
        watch: Takes every task that exists.
        journal: Where ``creating``, ``created`` and errors go.
        results: Where jobs end.
        callback_url: The callback URL for an endpoint, when callbacks are on.
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
    ) -> None:
        self._session = session
        self._retry = retry
        self._gate = gate
        self._pacing = pacing
        self._watch = watch
        self._journal = journal
        self._results = results
        self._callback_url = callback_url
        # Figures.
        self.creates = 0
        self.lookups = 0

    async def worker(self, jobs: MemoryObjectReceiveStream[Job]) -> None:
        """Create the jobs handed over, one at a time.

        Args:
            jobs: Admitted jobs.
        """
        async with jobs:
            async for job in jobs:
                try:
                    await self._create(job)
                finally:
                    self._gate.create_done()
                self._results.check_done()

    async def _lookup(self, job: Job, *, since: float | None) -> Task | None:
        """Find a task whose create may have landed; ``None`` when it did not.

        Args:
            job: The job.
            since: Seconds since its create may have reached the server, when that
                could be recent: a task stays invisible to look-ups for a moment
                (lookup lag), so a miss within the grace period is checked again.
                ``None`` when the session's own reconciliation already waited.
        """
        for attempt in range(2):
            self.lookups += 1
            try:
                return await self._session.get(
                    job.endpoint, external_task_id=job.external_id, limiter=self._pacing.limiter
                )
            except NotFoundError:
                grace = self._session.config.retry.reconcile_grace
                if attempt or since is None or since >= grace:
                    return None
                await anyio.sleep(grace - since)
        return None  # pragma: no cover

    async def _create(self, job: Job) -> None:
        request = job.request
        if job.callbacks and self._callback_url is not None:
            request = with_callback_url(request, self._callback_url(job.endpoint))
        sent = time.monotonic()
        sent_before = job.may_exist
        try:
            task: Task | None = None
            if job.may_exist:
                since = None
                if job.entry is not None and not job.create_rounds:
                    since = time.time() - job.entry.updated_wall  # resumed 'creating' row
                task = await self._lookup(job, since=since)
                job.clean = task is None  # found: created at an unknown moment
            if task is None:
                self._journal.mark_creating(job.key)
                self.creates += 1
                sent = time.monotonic()
                task = await self._session.create(
                    request,
                    external_task_id=job.external_id,
                    limiter=self._pacing.limiter,
                    retry=self._retry,
                    hold_slot=False,
                )
        except Exception as exc:  # classify decides; one job's failure stays its own
            await self._failed(job, exc, sent=sent, sent_before=sent_before)
            return
        self._created(job, task)

    async def _failed(
        self, job: Job, exc: BaseException, *, sent: float, sent_before: bool
    ) -> None:
        verdict = classify(exc, phase="create", sent_before=sent_before)
        retry_after = getattr(exc, "retry_after", None)
        if verdict is Verdict.NO_SLOT:
            self._gate.no_slot(job, exc, sent=sent, retry_after=retry_after)
            return
        if verdict is Verdict.RATE_LIMITED:
            self._gate.rate_refused(job, exc, retry_after)
            return
        if isinstance(exc, InvalidRequestError):
            # Refused body. After an unclear earlier attempt (inside the session's
            # retries) the refusal may be for the now-duplicate external id: one
            # look-up tells a landed task from a truly invalid request.
            try:
                task = await self._lookup(job, since=None)
            except KlingError:
                task = None
            if task is None:
                self._fail(job, exc, retryable=False)
                return
            job.clean = False
            self._created(job, task)
            return
        if verdict is Verdict.REFUSED:
            self._fail(job, exc, retryable=False)
            return
        if verdict.halts:
            self._fail(job, exc, retryable=True)
            self._gate.halt_for(exc, reason=HALT_REASONS[verdict])
            return
        if not isinstance(exc, KlingError):
            logger.warning(
                "create for job %r failed unexpectedly (%s); treated as unclear",
                job.key,
                type(exc).__name__,
            )
        # Unclear (or server-side) failure: the task may exist. Look it up before
        # any new create; give up after a few rounds (resume retries).
        job.create_rounds += 1
        if job.create_rounds >= _MAX_CREATE_ROUNDS:
            self._fail(job, exc, retryable=True)
            return
        job.may_exist = True
        self._gate.requeue(job, exc, throttled=False)
        self._pacing.pause(job.create_rounds, None)

    def _fail(self, job: Job, exc: BaseException, *, retryable: bool) -> None:
        """End a job whose create was refused or could not be settled.

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

    def _created(self, job: Job, task: Task) -> None:
        self._journal.mark_created(
            job.key, task_id=task.id, status=task.raw_status or task.status.value
        )
        self._gate.confirm(job)
        self._watch.follow(job, task, clean=job.clean)
