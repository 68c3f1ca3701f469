"""The intake stage: submissions become jobs, checked against the journal, then routed.

A job gets its key (given, or ``job-N``), its endpoint, its deterministic
``external_task_id`` (from the batch id and the key, unless the request carries
one) and its row in the journal before anything is sent. What the journal
already knows about the key decides where it goes next:

- new, pending or not started: to admission (a create);
- created in an earlier run: to the watcher (followed, never created again);
- a create that may have landed (``creating``, ``unknown``, a retryable error
  before any task id): to admission, looked up by external id before any create;
- ended: straight to the results (or to the fetch stage for outputs not saved yet).

Sources given to :meth:`Intake.add_source` are read lazily by the feeder, only as
admission wants more queued jobs, so 100,000 requests are never held at once.
With ``max_buffered_results``, new jobs are also held here (not handed to
admission) while that many results wait to be read: backpressure.

The intake knows only the jobs in flight. With a journal file, an ended job's key
is forgotten (the journal remembers it: the same key submitted again gets its
recorded result back), so a batch kept open for days does not grow; without
one, the keys of ended jobs are kept to refuse a second submission.

It also resumes: :meth:`Intake.resume_unfinished` takes up every job the journal
holds as created but not finished (or ended with outputs not saved yet) without
its being submitted again, and looks up by external id the jobs whose create was
sent but never confirmed. It never creates anything: a job whose create did not
reach the gateway ends ``not_started`` (reason ``resume``) and keeps its row, so
submitting it again looks it up first, then creates it.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

import anyio
import anyio.lowlevel

from .._converter import parse_task, request_from_payload, to_payload
from .._endpoints import callback_url_of, endpoint_for, endpoint_for_request, external_id_of
from .._errors import KlingError, NotFoundError, TaskFailedError
from .._journal import JobState, JournalEntry, fingerprint
from .._schedule import kind_of
from .._task import Task
from ._admission import Admission
from ._fetch import Fetch, recorded_file
from ._job import Job, Phase
from ._ports import JournalPort, NullJournal, SessionPort, monotonic_of
from ._results import Results
from ._values import NotStartedError, RecordedJobError, Submission
from ._wake import Wake
from ._watch import Watch

__all__ = ["Intake", "derive_external_id"]

logger = logging.getLogger("kling_async")


def derive_external_id(batch_id: str, key: str) -> str:
    """The external id of a job: stable for a batch id and key, unique across them.

    Args:
        batch_id: The batch's id.
        key: The job's key.

    Returns:
        ``kb-`` and 24 hex digits.
    """
    digest = hashlib.sha256(f"{batch_id}\x00{key}".encode()).hexdigest()[:24]
    return f"kb-{digest}"


def _recorded_task(job: Job, raw: Mapping[str, Any] | None) -> Task | None:
    """The task a journal row recorded, or ``None`` (none, or no longer readable)."""
    if raw is None:
        return None
    try:
        return parse_task(job.endpoint, raw)
    except Exception as exc:  # a row this version cannot read: look at the gateway instead
        logger.warning("recorded task of job %r unreadable (%s)", job.key, type(exc).__name__)
        return None


#: Journal states a resume looks at (each row is then judged by :func:`_unfinished`).
_RESUMABLE = (
    JobState.CREATED,
    JobState.CREATING,
    JobState.UNKNOWN,
    JobState.SUCCEED,
    JobState.ERROR,
)


def _unfinished(entry: JournalEntry, *, downloads: bool) -> bool:
    """Whether a journal row is a job created (or maybe created) and not finished."""
    if entry.state in (JobState.CREATED, JobState.CREATING, JobState.UNKNOWN):
        return True
    if entry.state is JobState.SUCCEED:
        return downloads and not entry.downloaded
    # An error after its task existed that a re-run retries (a failed download, a
    # task that could not be followed): followed or fetched again.
    return entry.state is JobState.ERROR and entry.retryable and entry.task_id is not None


def _job_of(entry: JournalEntry, *, callbacks: bool) -> Job | None:
    """A job rebuilt from its journal row (its request as recorded), or ``None``."""
    payload = entry.request or {}
    try:
        endpoint = endpoint_for(entry.endpoint)
        request = request_from_payload(endpoint.request_type, payload)
    except Exception as exc:  # a row this version cannot read: left for a resubmission
        logger.warning(
            "job %r cannot be resumed from the journal (%s); submit it again",
            entry.key,
            type(exc).__name__,
        )
        return None
    job = Job(
        entry.key,
        request,
        endpoint,
        entry.external_task_id,
        kind_of(endpoint.name, payload),
        endpoint.slots(payload),
        callbacks=callbacks,
    )
    job.entry = entry
    return job


async def _find(session: SessionPort, job: Job, admission: Admission) -> Task | Exception:
    """The task carrying the job's external id, or why it could not be had."""
    try:
        return await session.get(
            job.endpoint, external_task_id=job.external_id, limiter=admission.limiter
        )
    except Exception as exc:  # judged by the caller
        return exc


def _never_sent(job: Job) -> NotStartedError:
    return NotStartedError(
        f"job {job.key!r} was resumed but no task carries its external id: its create "
        "never reached the gateway (submit it again to create it)",
        reason="resume",
    )


def _split(item: Any) -> tuple[str | None, Any]:
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return item[0], item[1]
    return None, item


class Intake:
    """Keys, external ids, journal rows, and the lazy feeder.

    Args:
        batch_id: The batch's id (seeds external ids).
        journal: The journal (a null one without a file).
        callbacks: Whether tasks are created with the batch's callback URL.
        admission: Takes jobs to create.
        watch: Takes tasks created in an earlier run.
        fetch: Takes ended tasks whose outputs are not saved yet (``None``: no downloads).
        results: Takes jobs that ended in an earlier run.
        session: Looks up, on a resume, creates an earlier run never saw answered.
        durable: Whether the journal is a file (ended jobs' keys may be forgotten).
        max_buffered: Results waiting to be read past which new jobs are held
            here (``None``: no bound).
    """

    def __init__(
        self,
        *,
        batch_id: str,
        journal: JournalPort,
        callbacks: bool,
        admission: Admission,
        watch: Watch,
        fetch: Fetch | None,
        results: Results,
        session: SessionPort | None = None,
        durable: bool = False,
        max_buffered: int | None = None,
    ) -> None:
        self.batch_id = batch_id
        self._journal = journal
        self._callbacks = callbacks
        self._admission = admission
        self._watch = watch
        self._fetch = fetch
        self._results = results
        self._session = session
        self._max_buffered = max_buffered
        self._sources: deque[Iterator[Submission] | AsyncIterator[Submission]] = deque()
        self._live: dict[str, Job] = {}  # jobs in flight, by key
        # Keys of ended jobs, kept only without a journal file (which remembers them).
        self._ended: set[str] | None = None if durable else set()
        self._adoptable: set[str] = set()  # resumed keys a submission may claim
        self._held: deque[Job] = deque()  # new jobs held back by the results bound
        self._auto_key = itertools.count()
        self.wake = Wake()
        results.on_finish = self._forget
        results.queue.on_taken = self.on_room

    def live(self, key: str) -> Job | None:
        """The job in flight under ``key``, or ``None``."""
        return self._live.get(key)

    def _taken(self, key: str) -> bool:
        return key in self._live or (self._ended is not None and key in self._ended)

    def _forget(self, job: Job) -> None:
        """A job ended: the intake keeps no record of it (beyond its key, without a journal)."""
        if self._live.get(job.key) is job:
            del self._live[job.key]
        self._adoptable.discard(job.key)
        if self._ended is not None:
            self._ended.add(job.key)

    # --- submissions --------------------------------------------------------------------

    def submit(self, key: str | None, request: Any) -> Job:
        """Turn one submission into a job and route it.

        Args:
            key: The job's key, or ``None`` for ``job-N``.
            request: The request model.

        Returns:
            The job.
        """
        if key is not None and key in self._adoptable:
            return self._adopt(key, request)
        job = self._intake(key, request)
        self._dispatch(job)
        return job

    def _adopt(self, key: str, request: Any) -> Job:
        """A submission of a job the batch resumed on its own: the same job, once."""
        endpoint = endpoint_for_request(request)
        self._journal.check(key, endpoint.name, fingerprint(endpoint.name, to_payload(request)))
        self._adoptable.discard(key)
        job = self._live[key]
        job.request = request
        return job

    def add_source(self, items: Iterable[Submission] | AsyncIterable[Submission]) -> None:
        """Add many submissions, read lazily (a list is checked against the journal first).

        Args:
            items: Requests or ``(key, request)`` pairs.
        """
        if isinstance(items, (list, tuple)):
            self._precheck(items)
        if isinstance(items, AsyncIterable):
            self._sources.append(aiter(items))
        else:
            self._sources.append(iter(items))
        self._results.open_sources += 1
        self.wake.set()

    def _precheck(self, items: Iterable[Any]) -> None:
        """Refuse a list with reused keys before anything is sent."""
        seen: set[str] = set()
        # Without a journal no key can clash with an earlier run: the check costs
        # nothing, and the fingerprints it needs are not computed (200 of them held
        # the first create back by about 40 ms).
        journaled = not isinstance(self._journal, NullJournal)
        for item in items:
            key, request = _split(item)
            endpoint = endpoint_for_request(request)
            if not endpoint.is_task:
                raise TypeError(f"{endpoint.name} creates no task; it cannot run in a batch")
            if key is None:
                continue
            if key in seen or (self._taken(key) and key not in self._adoptable):
                raise ValueError(f"job key {key!r} is submitted twice")
            seen.add(key)
            if journaled:
                self._journal.check(
                    key, endpoint.name, fingerprint(endpoint.name, to_payload(request))
                )

    def _intake(self, key: str | None, request: Any) -> Job:
        """Turn a submission into a job, checked against the journal (no request sent)."""
        if key is None:
            key = f"job-{next(self._auto_key)}"
            while self._taken(key):
                key = f"job-{next(self._auto_key)}"
        elif self._taken(key):
            raise ValueError(f"job key {key!r} is submitted twice")
        endpoint = endpoint_for_request(request)
        if not endpoint.is_task:
            raise TypeError(f"{endpoint.name} creates no task; it cannot run in a batch")
        payload = to_payload(request)
        external_id = external_id_of(request) or derive_external_id(self.batch_id, key)
        job = Job(
            key,
            request,
            endpoint,
            external_id,
            kind_of(endpoint.name, payload),
            endpoint.slots(payload),
            callbacks=self._callbacks and callback_url_of(request) is None,
        )
        job.entry = self._journal.record(
            key,
            endpoint=endpoint.name,
            fingerprint=fingerprint(endpoint.name, payload),
            external_task_id=external_id,
            request=payload,
        )
        if job.entry is not None:
            job.external_id = job.entry.external_task_id
        self._live[key] = job
        self._results.add_job(job)
        return job

    def _dispatch(self, job: Job) -> None:
        """Route a new job by what the journal knows about it."""
        entry = job.entry
        if entry is None or entry.state in (JobState.PENDING, JobState.NOT_STARTED):
            self._queue(job)
            return
        task = _recorded_task(job, entry.task)
        if task is not None and task.is_terminal:
            # Ended in an earlier run: no request, except downloads still missing.
            job.task = task
            if entry.units:
                self._admission.book_resumed(entry.units)
                self._results.units += entry.units
            if task.succeeded and self._fetch is not None and not entry.downloaded:
                self._fetch.submit(job)
                return
            if entry.state is JobState.ERROR and not entry.retryable:
                error = RecordedJobError(
                    entry.message or "error", error_type=entry.error_type or ""
                )
                self._results.finish(job, "error", task, error, resumed=True)
            elif task.succeeded:
                files = tuple(recorded_file(f) for f in entry.files)
                self._results.finish(job, "succeed", task, None, files, resumed=True)
            else:
                self._results.finish(job, "failed", task, TaskFailedError(task), resumed=True)
            return
        if entry.state is JobState.ERROR and not entry.retryable:
            error = RecordedJobError(entry.message or "error", error_type=entry.error_type or "")
            self._results.finish(job, "error", task, error, resumed=True)
            return
        if entry.task_id:
            # Created in an earlier run: follow it, never create it again.
            self._watch.resume(job, entry)
            return
        # 'creating', 'unknown' (or a retryable error before any task id): the create
        # may have landed. Look it up by external id before anything else.
        job.may_exist = True
        job.unclear_since = time.monotonic()
        job.last_sent = monotonic_of(entry.updated_wall, now=job.unclear_since)
        self._admission.enqueue(job, first=True)

    # --- resuming -----------------------------------------------------------------------

    def resume_unfinished(self) -> list[Job]:
        """Take up every job the journal holds as created (or maybe created) and not finished.

        Jobs in flight in this batch are left alone. A job whose task id is known is
        followed to its end, or has its outputs fetched; the others (a create sent
        but never seen answered) wait for :meth:`look_up`. A key taken up here may
        still be submitted: the submission gets this job's handle.

        Returns:
            Every job taken up (pass them to :meth:`look_up`).
        """
        taken: list[Job] = []
        downloads = self._fetch is not None
        for key in self._journal.keys_in(_RESUMABLE):
            entry = None if self._taken(key) else self._journal.get(key)
            if entry is None or not _unfinished(entry, downloads=downloads):
                continue
            job = _job_of(entry, callbacks=self._callbacks)
            if job is None:
                continue
            self._live[key] = job
            self._adoptable.add(key)
            self._results.add_job(job)
            taken.append(job)
            if entry.task_id is None:
                job.phase = Phase.CREATING  # neither queued (cancellable) nor watched
            else:
                self._dispatch(job)
        if taken:
            logger.info("%d unfinished jobs resumed from the journal", len(taken))
        return taken

    async def look_up(self, jobs: list[Job]) -> None:
        """Find the tasks of resumed jobs whose create an earlier run never saw answered.

        A task found is journaled ``created`` and followed; a job whose external id
        names no task ends ``not_started`` (reason ``resume``) and keeps its row, so
        submitting it again looks it up first, then creates it. Nothing is created.

        Args:
            jobs: From :meth:`resume_unfinished` (those with a task are skipped).
        """
        assert self._session is not None  # noqa: S101  (wired by the batch)
        for job in jobs:
            if job.phase is not Phase.CREATING or job.task is not None:
                continue
            task = await _find(self._session, job, self._admission)
            if isinstance(task, NotFoundError):
                self._results.finish(job, "not_started", None, _never_sent(job))
                continue
            if isinstance(task, Exception):  # the gateway could not say: the row stays as is
                logger.warning("lookup of resumed job %r failed (%s)", job.key, type(task).__name__)
                self._results.finish(job, "error", None, task)
                continue
            self._journal.mark_created(
                job.key, task_id=task.id, status=task.raw_status or task.status.value
            )
            self._admission.hold_resumed(job)
            self._watch.follow(job, task, clean=False)
            self._results.check_done()

    # --- the feeder ---------------------------------------------------------------------

    def _room(self) -> bool:
        """Whether fewer results than the bound wait to be read."""
        bound = self._max_buffered
        return bound is None or len(self._results.queue) < bound

    def _queue(self, job: Job) -> None:
        """Hand a new job to admission (under a results bound, as admission wants more)."""
        if self._max_buffered is None:
            self._admission.enqueue(job)
            return
        self._held.append(job)
        self.on_room()

    def on_room(self) -> None:
        """Admission may take more, a result was read, or admissions stopped: feed again.

        Under a results bound, held jobs go to admission only as it wants more
        (free slots and a small lookahead), and only while fewer results than the
        bound wait to be read; once admissions stop, all of them (to end
        ``not_started``).
        """
        admission = self._admission
        while self._held and (
            admission.halted is not None
            or (self._room() and len(admission.queue) < admission.wanted())
        ):
            admission.enqueue(self._held.popleft())
        self.wake.set()

    def cancel(self, job: Job) -> bool:
        """Withdraw a job nothing has been sent for (see :meth:`JobHandle.cancel`).

        Args:
            job: The job.

        Returns:
            Whether it was withdrawn (``False``: sent, maybe sent, or ended).
        """
        if job.phase is not Phase.QUEUED or job.may_exist or job.result is not None:
            return False
        if job in self._held:
            self._held.remove(job)
        elif job in self._admission.queue:
            self._admission.queue.remove(job)
        else:
            return False
        job.cancelled = True
        self._journal.mark_not_started(job.key, message="cancelled before it was sent")
        error = NotStartedError("cancelled before it was sent", reason="cancelled")
        self._results.finish(job, "not_started", None, error)
        self._admission.poke()
        self.wake.set()
        return True

    def stop_reading(self) -> None:
        """Read no more items from the sources (a drain).

        What the sources still hold was never recorded: submitting it again later
        is a fresh submission.
        """
        self._results.open_sources -= len(self._sources)
        self._sources.clear()
        self.wake.set()
        self._results.check_done()

    def _end_source(self, source: Iterator[Submission] | AsyncIterator[Submission]) -> None:
        if self._sources and self._sources[0] is source:  # not dropped by a drain meanwhile
            self._sources.popleft()
            self._results.open_sources -= 1
        self._results.check_done()

    async def feed_loop(self) -> None:
        """Read the sources, one item at a time, while admission wants more jobs."""
        fed = 0
        while not self._results.finished():
            if (
                not self._sources
                or self._held
                or not self._room()
                or len(self._admission.queue) >= self._admission.wanted()
            ):
                await self.wake.wait()
                continue
            source = self._sources[0]
            try:
                if isinstance(source, AsyncIterator):
                    item = await source.__anext__()
                else:
                    item = next(source)
            except (StopIteration, StopAsyncIteration):
                self._end_source(source)
                continue
            self._feed_one(item)
            fed += 1
            if fed % 64 == 0:
                # Items finished in an earlier run need no slot: let others run too.
                await anyio.lowlevel.checkpoint()

    def _feed_one(self, item: Any) -> None:
        key, request = _split(item)
        if key is not None and key in self._adoptable:
            try:  # resumed on its own already: its one result comes from that job
                self._adopt(key, request)
            except (KlingError, TypeError, ValueError) as exc:
                self._results.refuse_item(key, request, exc)
            return
        try:
            job = self._intake(key, request)
        except (KlingError, TypeError, ValueError) as exc:
            # A bad item of a lazy source: report it as a result, send nothing.
            self._results.refuse_item(key, request, exc)
            return
        self._dispatch(job)
