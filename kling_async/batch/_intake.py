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

from .._converter import parse_task, to_payload
from .._endpoints import callback_url_of, endpoint_for_request, external_id_of
from .._errors import KlingError, TaskFailedError
from .._journal import JobState, fingerprint
from .._schedule import kind_of
from .._task import Task
from ._admission import Admission
from ._fetch import Fetch, recorded_file
from ._job import Job
from ._ports import JournalPort, monotonic_of
from ._results import Results
from ._values import RecordedJobError, Submission
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
    ) -> None:
        self.batch_id = batch_id
        self._journal = journal
        self._callbacks = callbacks
        self._admission = admission
        self._watch = watch
        self._fetch = fetch
        self._results = results
        self._sources: deque[Iterator[Submission] | AsyncIterator[Submission]] = deque()
        self._keys: set[str] = set()
        self._auto_key = itertools.count()
        self.wake = Wake()

    # --- submissions --------------------------------------------------------------------

    def submit(self, key: str | None, request: Any) -> Job:
        """Turn one submission into a job and route it.

        Args:
            key: The job's key, or ``None`` for ``job-N``.
            request: The request model.

        Returns:
            The job.
        """
        job = self._intake(key, request)
        self._dispatch(job)
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
        for item in items:
            key, request = _split(item)
            endpoint = endpoint_for_request(request)
            if not endpoint.is_task:
                raise TypeError(f"{endpoint.name} creates no task; it cannot run in a batch")
            if key is None:
                continue
            if key in seen or key in self._keys:
                raise ValueError(f"job key {key!r} is submitted twice")
            seen.add(key)
            self._journal.check(key, endpoint.name, fingerprint(endpoint.name, to_payload(request)))

    def _intake(self, key: str | None, request: Any) -> Job:
        """Turn a submission into a job, checked against the journal (no request sent)."""
        if key is None:
            key = f"job-{next(self._auto_key)}"
            while key in self._keys:
                key = f"job-{next(self._auto_key)}"
        elif key in self._keys:
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
        self._keys.add(key)
        self._results.add_job(job)
        return job

    def _dispatch(self, job: Job) -> None:
        """Route a new job by what the journal knows about it."""
        entry = job.entry
        if entry is None or entry.state in (JobState.PENDING, JobState.NOT_STARTED):
            self._admission.enqueue(job)
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

    # --- the feeder ---------------------------------------------------------------------

    async def feed_loop(self) -> None:
        """Read the sources, one item at a time, while admission wants more jobs."""
        fed = 0
        while not self._results.finished():
            if not self._sources or len(self._admission.queue) >= self._admission.wanted():
                await self.wake.wait()
                continue
            source = self._sources[0]
            try:
                if isinstance(source, AsyncIterator):
                    item = await source.__anext__()
                else:
                    item = next(source)
            except (StopIteration, StopAsyncIteration):
                self._sources.popleft()
                self._results.open_sources -= 1
                self._results.check_done()
                continue
            self._feed_one(item)
            fed += 1
            if fed % 64 == 0:
                # Items finished in an earlier run need no slot: let others run too.
                await anyio.lowlevel.checkpoint()

    def _feed_one(self, item: Any) -> None:
        key, request = _split(item)
        try:
            job = self._intake(key, request)
        except (KlingError, TypeError, ValueError) as exc:
            # A bad item of a lazy source: report it as a result, send nothing.
            self._results.refuse_item(key, request, exc)
            return
        self._dispatch(job)
