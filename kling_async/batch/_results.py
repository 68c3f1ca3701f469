"""The results stage: ended jobs become :class:`JobResult` values, events and figures.

It is the end of the pipeline: every other stage hands a job here when it ends.
It owns the counts, the progress hook, the queue ``async for`` reads, and knows
when the batch has nothing left to do.

Several readers may iterate one batch at the same time. Each result goes to
exactly one of them: readers waiting for a result are served in the order they
started waiting, and each sees the end when the batch has no job left.

Nothing here outlives its delivery: a result leaves the queue when a reader takes
it, and the batch keeps no record of an ended job (the journal has it), so a batch
kept open for days holds only the jobs in flight and the results not yet read.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio

from .. import _telemetry
from .._download import DownloadedFile
from .._task import Task
from ._job import Job, Phase
from ._values import (
    Event,
    EventKind,
    JobCancelledError,
    JobResult,
    JobStatus,
    NotStartedError,
)

__all__ = ["LatencySample", "ResultIterator", "ResultQueue", "Results", "percentile"]

#: Latencies kept for the summary's percentiles (a uniform sample beyond that).
LATENCY_SAMPLE = 4096

logger = logging.getLogger("kling_async")


class _Reader:
    __slots__ = ("event", "item")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.item: JobResult | None = None


class ResultQueue:
    """Results waiting for readers (unbounded: producers never block).

    Readers that wait are served first come, first served; a reader cancelled while
    waiting gives its result back to the next one.
    """

    def __init__(self) -> None:
        self._items: deque[JobResult] = deque()
        self._readers: deque[_Reader] = deque()
        #: Called whenever a reader takes a result (frees room under a bound).
        self.on_taken: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def _taken(self, result: JobResult) -> JobResult:
        if self.on_taken is not None:
            self.on_taken()
        return result

    def put(self, result: JobResult) -> None:
        """Hand a result to the longest-waiting reader, or keep it for the next one.

        Args:
            result: The result.
        """
        self._items.append(result)
        self._serve()

    def _serve(self) -> None:
        while self._items and self._readers:
            reader = self._readers.popleft()
            reader.item = self._items.popleft()
            reader.event.set()

    def wake_all(self) -> None:
        """Wake every waiting reader so each checks whether the batch has ended."""
        while self._readers:
            self._readers.popleft().event.set()

    async def get(self, ended: Callable[[], bool]) -> JobResult | None:
        """The next result, or ``None`` once ``ended()`` holds and none is left.

        Args:
            ended: Whether no more results can come.

        Returns:
            A result, or ``None`` at the end.
        """
        while True:
            if self._items and not self._readers:
                return self._taken(self._items.popleft())
            if not self._items and ended():
                return None
            reader = _Reader()
            self._readers.append(reader)
            self._serve()
            try:
                await reader.event.wait()
            except BaseException:
                if reader.item is not None:
                    self._items.appendleft(reader.item)
                elif reader in self._readers:
                    self._readers.remove(reader)
                self._serve()
                raise
            if reader.item is not None:
                return self._taken(reader.item)


class Results:
    """Where jobs end: results, counts, events, and the batch's idle/done state.

    Args:
        on_event: The user's progress hook, or ``None``.
        fail_fast: Stop admissions after the first failed or errored job.
        halt: Called with the reason to stop admissions (wired to admission).
    """

    def __init__(
        self,
        *,
        on_event: Callable[[Event], object] | None,
        fail_fast: bool,
        halt: Callable[[NotStartedError], None],
    ) -> None:
        self._on_event = on_event
        self._fail_fast = fail_fast
        self._halt = halt
        self.queue = ResultQueue()
        self.counts: dict[str, int] = {"succeed": 0, "failed": 0, "error": 0, "not_started": 0}
        self.resumed = 0
        self.units = 0.0
        self.unknown = 0
        self.outstanding = 0
        self.open_sources = 0
        self.open = False
        self.closing = False
        self.done = anyio.Event()
        self.unfinished: set[Job] = set()
        self._on_done: list[Callable[[], None]] = []
        self._idle_waiters: list[anyio.Event] = []
        #: Called with each job as it ends (the intake forgets it).
        self.on_finish: Callable[[Job], None] | None = None

    # --- the batch's state ------------------------------------------------------------

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when the block is closing and no job is left.

        Args:
            callback: What to run (close streams, wake loops).
        """
        self._on_done.append(callback)

    def add_job(self, job: Job) -> None:
        """A job entered the batch.

        Args:
            job: The job.
        """
        self.outstanding += 1
        self.unfinished.add(job)

    def idle(self) -> bool:
        """Whether no job is outstanding and no source has items left.

        Returns:
            ``True`` when idle.
        """
        return self.outstanding == 0 and self.open_sources == 0

    def finished(self) -> bool:
        """Whether the batch is done for good (closing and idle).

        Returns:
            ``True`` once done.
        """
        return self.done.is_set()

    def ended(self) -> bool:
        """Whether a reader has nothing more to wait for.

        Returns:
            ``True`` when idle or closed.
        """
        return self.idle() or not self.open

    async def wait_idle(self) -> None:
        """Wait until no job is outstanding and no source has items left."""
        while not self.idle():
            event = anyio.Event()
            self._idle_waiters.append(event)
            await event.wait()

    def check_done(self) -> None:
        """Wake readers when idle; mark the batch done when it is also closing."""
        if not self.idle():
            return
        self.queue.wake_all()
        waiters, self._idle_waiters = self._idle_waiters, []
        for event in waiters:
            event.set()
        if self.closing and not self.done.is_set():
            self.done.set()
            for callback in self._on_done:
                callback()

    # --- ending jobs --------------------------------------------------------------------

    def finish(
        self,
        job: Job,
        status: JobStatus,
        task: Task | None,
        error: BaseException | None,
        files: tuple[DownloadedFile, ...] = (),
        *,
        resumed: bool = False,
    ) -> None:
        """Hand a job's result out (the journal already holds its end state).

        Args:
            job: The job.
            status: How it ended.
            task: Its terminal task, if any.
            error: Why it is not a success, if so.
            files: Its downloaded outputs.
            resumed: Whether it was read back from the journal.
        """
        if job.phase is Phase.DONE:
            return
        job.phase = Phase.DONE
        result = JobResult(
            key=job.key,
            request=job.request,
            task=task,
            error=error,
            files=files,
            status=status,
            resumed=resumed,
            external_task_id=job.external_id,
        )
        job.result = result
        job.entry = None
        if job.created_at:
            # One span per job that reached the gateway: from its create to its result.
            _telemetry.record_span(
                "kling.job",
                seconds=time.monotonic() - job.created_at,
                **{"kling.endpoint": job.endpoint.name, "kling.status": status},
            )
        self.counts[status] += 1
        if resumed:
            self.resumed += 1
        self.unfinished.discard(job)
        self.outstanding -= 1
        if self.on_finish is not None:
            self.on_finish(job)
        if status == "not_started":
            self.emit(EventKind.NOT_STARTED, job, error=error)
        elif status == "error" and not resumed:
            self.emit(EventKind.FAILED, job, error=error)
        if job.waiter is not None:
            job.waiter.set()
        self.queue.put(result)
        if status in ("failed", "error") and self._fail_fast and not resumed:
            self._halt(NotStartedError("fail_fast: an earlier job failed", reason="fail_fast"))
        self.check_done()

    def refuse_item(self, key: str | None, request: Any, error: BaseException) -> None:
        """Report an item of a lazy source that never became a job (nothing was sent).

        Args:
            key: Its key, if it had one.
            request: What was given in place of a request.
            error: Why it was refused.
        """
        logger.warning("batch item %r refused: %s", key, error)
        self.counts["error"] += 1
        self.queue.put(
            JobResult(
                key=key or "<invalid item>", request=request, task=None, error=error, status="error"
            )
        )

    def abandon_unfinished(self) -> None:
        """After a cancellation: settle every handle so nobody waits forever."""
        for job in list(self.unfinished):
            if job.phase is Phase.DONE:
                continue
            job.phase = Phase.DONE
            error = JobCancelledError(
                f"the batch stopped before job {job.key!r} ended"
                + ("; its task keeps running on the server" if job.task is not None else "")
            )
            job.result = JobResult(
                key=job.key,
                request=job.request,
                task=job.task,
                error=error,
                status="error",
                external_task_id=job.external_id,
            )
            if job.waiter is not None:
                job.waiter.set()
        self.unfinished.clear()

    # --- events -------------------------------------------------------------------------

    def emit(
        self,
        kind: EventKind,
        job: Job,
        *,
        error: BaseException | None = None,
        detail: str = "",
    ) -> None:
        """Tell the progress hook what happened (its failures are logged and ignored).

        Args:
            kind: What happened.
            job: To which job.
            error: The error, when one is the news.
            detail: A short note.
        """
        hook = self._on_event
        if hook is None:
            return
        task = job.task
        event = Event(
            kind=kind,
            key=job.key,
            time=time.monotonic(),
            task_id=task.id if task is not None and task.id else None,
            status=task.status.value if task is not None else None,
            error=error,
            detail=detail,
        )
        try:
            hook(event)
        except Exception:
            logger.exception("on_event hook raised for %s of job %r; ignored", kind.value, job.key)


class LatencySample(list[float]):
    """Latencies for the summary's percentiles: all up to a bound, then a uniform sample.

    Past the bound, reservoir sampling keeps each latency seen with equal
    probability, so a batch open for a million jobs keeps a few thousand floats.

    Args:
        rng: Chooses which values the sample keeps.
        size: The most values kept.
    """

    def __init__(self, rng: random.Random, size: int = LATENCY_SAMPLE) -> None:
        super().__init__()
        self._rng = rng
        self._size = size
        self.seen = 0

    def append(self, value: float) -> None:
        """Count ``value`` in, keeping it with the probability reservoir sampling gives.

        Args:
            value: Seconds.
        """
        self.seen += 1
        if len(self) < self._size:
            super().append(value)
            return
        slot = self._rng.randrange(self.seen)
        if slot < self._size:
            self[slot] = value


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The ``q`` quantile of sorted values (nearest rank), ``None`` when there are none.

    Args:
        sorted_values: Values in ascending order.
        q: The quantile, in ``[0, 1]``.

    Returns:
        The value, or ``None``.
    """
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


class ResultIterator:
    """``async for`` over a batch: yields results until no job is outstanding.

    Args:
        results: The batch's results stage.
    """

    def __init__(self, results: Results) -> None:
        self._results = results

    def __aiter__(self) -> ResultIterator:
        return self

    async def __anext__(self) -> JobResult:
        result = await self._results.queue.get(self._results.ended)
        if result is None:
            raise StopAsyncIteration
        return result
