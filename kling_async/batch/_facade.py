"""The batch: fan out many generations under the account's limits, lose nothing.

::

    async with session.batch(max_running=10, journal="run.db", download_dir="out") as batch:
        batch.submit_all((f"clip-{i}", request) for i, request in enumerate(requests))
        async for result in batch:          # completion order
            print(result.key, result.status, result.files)

A job travels through six stages, one module each, wired here under one task
group (no task per job)::

    intake ──> admission ──> create ──> watch ──> fetch ──> results
    (_intake)  (_admission)  (_create)  (_watch)  (_fetch)  (_results)

- intake turns submissions into jobs, checks them against the journal and routes
  each by what the journal knows (new, created earlier, ended earlier);
- admission holds queued jobs until the slot window, the budget, the request rate
  and the refusal breaker allow one more create;
- create sends it and settles what a failure means through
  :func:`~kling_async._classify.classify` (look up by external id before any
  second create; adopt a task that exists);
- watch polls (or hears callbacks about) every created task until it ends;
- fetch saves the outputs of succeeded tasks;
- results hands out :class:`JobResult` values, events and figures.

Every transition is committed to the journal first, so a crash at any moment can
be resumed by running the same batch again. Results come out of ``async for``
(buffered, so not iterating is fine; several readers share them, first come first
served); leaving the block waits for every job; an exception or cancellation
inside it stops everything cleanly (created tasks stay recorded in the journal).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._errors import ConfigurationError
from .._journal import Journal
from .._schedule import ScheduleTuning, last_few
from .._task import Task
from ._admission import HALTS, Admission
from ._create import Create
from ._fetch import Fetch
from ._handoff import Handoff
from ._intake import Intake, derive_external_id
from ._job import Job, JobHandle
from ._options import BatchOptions
from ._poller import Poller, PollItem
from ._ports import JournalPort, NullJournal, SessionPort
from ._results import LatencySample, ResultIterator, Results, percentile
from ._values import BatchSummary, JobResult, NotStartedError, Submission, empty_summary
from ._watch import RunningProxy, Watch

if TYPE_CHECKING:
    from .._models import Request

__all__ = ["Batch"]

logger = logging.getLogger("kling_async")

_CREATE_WORKERS = 16
_POLL_WORKERS = 32


def _only(raised: BaseException, original: BaseException) -> bool:
    """Whether ``raised`` holds nothing but ``original`` and cancellations."""
    cancelled = anyio.get_cancelled_exc_class()
    pending: list[BaseException] = [raised]
    while pending:
        error = pending.pop()
        nested = getattr(error, "exceptions", None)
        if isinstance(nested, tuple) and error is not original:
            pending.extend(e for e in nested if isinstance(e, BaseException))
        elif error is not original and not isinstance(error, cancelled):
            return False
    return True


class Batch:
    """Run many generations as one async context manager. Open it with ``session.batch()``.

    Args:
        session: The session to send every request through (not closed by the batch).
        options: How the batch runs (see :class:`BatchOptions`).
        **changes: :class:`BatchOptions` fields to change (``max_running=8``...),
            applied over ``options``.

    Raises:
        ValueError: An option is out of range.
        TypeError: ``changes`` names no option.
    """

    def __init__(
        self, session: SessionPort, options: BatchOptions | None = None, **changes: Any
    ) -> None:
        base = options if options is not None else BatchOptions()
        self.options: BatchOptions = attrs.evolve(base, **changes) if changes else base
        self._session = session
        self._rng = random.Random(self.options.seed)
        self._batch_id = self.options.batch_id
        self._journal: Journal | None = None
        self._entered = False
        self._stack: contextlib.AsyncExitStack | None = None
        self._started = time.monotonic()
        self._results: Results | None = None
        self._stages: _Stages | None = None

    def __repr__(self) -> str:
        outstanding = self._results.outstanding if self._results is not None else 0
        path = self.options.journal
        return (
            f"Batch(max_running={self.max_running}, outstanding={outstanding}, "
            f"journal={None if path is None else str(path)!r})"
        )

    # --- public API -----------------------------------------------------------------

    @property
    def max_running(self) -> int:
        """The most slots held at once (``options.max_running``)."""
        return self.options.max_running

    @property
    def batch_id(self) -> str | None:
        """The batch id (known once the block is entered when a journal picks it)."""
        return self._batch_id

    @property
    def journal(self) -> Journal | None:
        """The open journal, inside the block (``None`` without one)."""
        return self._journal

    @property
    def halted(self) -> NotStartedError | None:
        """Why admissions stopped for every job, or ``None`` while they run."""
        return self._stages.admission.halted if self._stages is not None else None

    def _derive_external_id(self, key: str) -> str:
        return derive_external_id(str(self._batch_id), key)

    async def __aenter__(self) -> Batch:
        if self._entered:
            raise RuntimeError("a Batch can be entered only once")
        self._entered = True
        receiver = self.options.callbacks
        if receiver is not None and receiver.url is None:
            raise ConfigurationError(
                "the callback receiver has no URL: serve it (async with receiver.serve()) "
                "or give it the public_url under which your app mounts it"
            )
        async with contextlib.AsyncExitStack() as stack:
            journal = self._open_journal()
            stack.callback(journal.close)
            stages = self._stages = _Stages(self, journal)
            await stages.admission.coordinate(  # closed after the task group, by the stack
                self.options.coordinate,
                config=self._session.config,
                stack=stack,
                planner=stages.watch.planner,
                callbacks=receiver,
            )
            self._results = stages.results
            self._started = time.monotonic()
            stack.callback(stages.after_close)
            if receiver is not None:
                stack.callback(receiver.subscribe(stages.watch.on_callback))
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.push_async_exit(stages.before_close(tg))
            stages.start(tg)
            if self.options.resume_unfinished:
                tg.start_soon(stages.intake.look_up, stages.intake.resume_unfinished())
            self._stack = stack.pop_all()
        return self

    def _open_journal(self) -> JournalPort:
        path = self.options.journal
        if path is not None:
            self._journal = Journal(path, batch_id=self._batch_id)
            self._batch_id = self._journal.batch_id
            return self._journal
        if self._batch_id is None:
            self._batch_id = f"{self._rng.getrandbits(64):016x}"
        return NullJournal(self._batch_id)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack = self._stack
        assert stack is not None  # noqa: S101  (entered)
        self._stack = None
        try:
            return await stack.__aexit__(exc_type, exc, tb)
        except BaseException as raised:
            # The task group wraps the block's own exception in a group; give the
            # caller back exactly what their code raised.
            if exc is not None and _only(raised, exc):
                return False
            raise

    def _require_open(self) -> _Stages:
        stages = self._stages
        if stages is None or not stages.results.open or stages.results.finished():
            raise RuntimeError("submit inside `async with session.batch(...) as batch:`")
        return stages

    def submit(self, request: Request, *, key: str | None = None) -> JobHandle:
        """Add one job.

        Args:
            request: The request model.
            key: A stable id for the job (default ``job-N`` in submission order).
                With a journal, the key is what a re-run recognises.

        Returns:
            A handle: ``await handle`` for the task, ``await handle.wait()`` for
            the result; its ``external_task_id`` is known at once.

        Raises:
            RuntimeError: The batch is not open.
            ValueError: The key was already submitted to this batch.
            JournalMismatchError: The journal holds this key with a different
                request (nothing was sent).
            TypeError: ``request`` is not a task-creating request model.
        """
        stages = self._require_open()
        return JobHandle(stages.intake.submit(key, request), stages.intake.cancel)

    def job(self, key: str) -> JobHandle | None:
        """The handle of a job in flight in this batch (submitted, or resumed from the journal).

        A web app's status route can answer from it without keeping handles of its
        own. Once a job has ended the batch forgets it; with a journal, its row
        (``batch.journal.get(key)``) says how it ended.

        Args:
            key: The job's key.

        Returns:
            The handle, or ``None`` when no such job is in flight.
        """
        if self._stages is None:
            return None
        intake = self._stages.intake
        found = intake.live(key)
        return None if found is None else JobHandle(found, intake.cancel)

    def submit_all(self, items: Iterable[Submission] | AsyncIterable[Submission]) -> None:
        """Add many jobs, consumed lazily as capacity frees.

        A list is checked against the journal at once (a reused key with a
        different request raises here, before anything is sent); other iterables
        are read only as slots free up, and a bad item there becomes an ``error``
        result.

        Args:
            items: Requests, or ``(key, request)`` pairs: a list, any iterable or
                an async iterable.

        Raises:
            RuntimeError: The batch is not open.
            JournalMismatchError: (lists) A key is in the journal with a
                different request.
            ValueError: (lists) A key appears twice.
            TypeError: (lists) An item is not a task-creating request model.
        """
        self._require_open().intake.add_source(items)

    def __aiter__(self) -> AsyncIterator[JobResult]:
        """Results as jobs end; any number of readers may iterate at once.

        Each result goes to exactly one reader: readers waiting for a result are
        served in the order they started waiting, and every reader stops when the
        batch has no job left (more may be submitted and read afterwards).
        """
        if self._results is None:
            raise RuntimeError("iterate inside `async with session.batch(...) as batch:`")
        return ResultIterator(self._results)

    def stop_admitting(self, reason: str = "stopped") -> None:
        """Create nothing more: jobs not yet sent end ``not_started``.

        Tasks already created are still followed to their end (they are paid
        for), and their outputs downloaded. Use it for a graceful stop (a first
        Ctrl-C), with :meth:`drain` to wait a bounded time; cancel the block for an
        immediate one.

        Args:
            reason: Recorded as :attr:`NotStartedError.reason`.
        """
        if self._stages is not None:
            self._stages.admission.halt(
                NotStartedError(f"admissions stopped ({reason})", reason=reason)
            )

    async def drain(self, timeout: float | None = None) -> int:  # noqa: ASYNC109
        """Stop admitting, then wait for the jobs in flight to end (a graceful shutdown).

        Queued jobs end ``not_started``, journaled so (never created nor paid; created
        when submitted to a later run); lazy sources are read no further. Created
        tasks are followed (keep serving the callback receiver) and their outputs
        fetched until they end or ``timeout`` passes. What still runs then stays
        ``created`` in the journal for the next batch (``resume_unfinished=True``),
        and leaving the ``async with`` block no longer waits for it.

        Args:
            timeout: Seconds to wait at most (``None``: until every job ends).

        Returns:
            Jobs still unfinished (``0``: every job ended).

        Raises:
            RuntimeError: The batch is not open.
        """
        stages = self._stages
        if stages is None or not stages.results.open:
            raise RuntimeError("drain inside `async with session.batch(...) as batch:`")
        self.stop_admitting("draining")
        stages.intake.stop_reading()
        with anyio.move_on_after(timeout):
            await stages.results.wait_idle()
        left = stages.results.outstanding
        if left:
            stages.abandon = True
            logger.warning("batch drained with %d jobs unfinished; they stay in the journal", left)
        return left

    async def resume_unfinished(self) -> int:
        """Watch, download and yield every job the journal holds as created but not finished.

        As ``resume_unfinished=True`` does on opening, after an abrupt end (SIGTERM, a
        crash), without the jobs being submitted again. Nothing is created: existing
        tasks are followed and their outputs fetched; a create never seen answered is
        looked up by external id. Results come out of ``async for`` (the request as
        recorded, base64 replaced by placeholders); submitting such a key again
        returns the same job's handle. Jobs never sent are not resumed: submit them.

        Returns:
            How many jobs were taken up.

        Raises:
            RuntimeError: The batch is not open.
        """
        stages = self._require_open()
        taken = stages.intake.resume_unfinished()
        await stages.intake.look_up(taken)
        return len(taken)

    def summary(self) -> BatchSummary:
        """Counts, units, requests and latencies so far.

        Returns:
            The summary.
        """
        stages = self._stages
        if stages is None:
            return empty_summary()
        results, watch, create = stages.results, stages.watch, stages.create
        admission = stages.admission
        latencies = sorted(watch.latencies)
        polled = watch.tasks_polled
        halted = admission.halted
        return BatchSummary(
            jobs=sum(results.counts.values()),
            succeeded=results.counts["succeed"],
            failed=results.counts["failed"],
            errors=results.counts["error"],
            not_started=results.counts["not_started"],
            resumed=results.resumed,
            units=results.units,
            creates=create.creates,
            status_requests=stages.poller.status_requests + stages.fetch_status_requests(),
            lookups=create.lookups,
            downloads=stages.fetch.downloads if stages.fetch is not None else 0,
            tasks_polled=polled,
            polls_per_task=(watch.polls_of_followed / polled) if polled else 0.0,
            concurrency_limited=admission.limited_1303,
            rate_limited=admission.pacing.limited_1302,
            max_running=admission.max_running_seen,
            latency_p50=percentile(latencies, 0.50),
            latency_p90=percentile(latencies, 0.90),
            latency_p95=percentile(latencies, 0.95),
            latency_p99=percentile(latencies, 0.99),
            wall_time=time.monotonic() - self._started,
            halted=str(halted) if halted is not None and halted.reason in HALTS else None,
            unknown=results.unknown,
        )


class _Stages:
    """The six stages of one open batch, and the streams between them."""

    def __init__(self, batch: Batch, journal: JournalPort) -> None:
        options = batch.options
        session = batch._session
        rng = batch._rng
        config = session.config
        self.results = Results(
            on_event=options.on_event, fail_fast=options.fail_fast, halt=self._halt
        )
        poll = options.poll or config.poll
        self.admission = Admission(
            max_running=options.max_running,
            probe_slots=options.probe_slots,
            max_units=options.max_units,
            max_requests_per_second=options.max_requests_per_second,
            max_refusals_per_second=options.max_refusals_per_second,
            retry=config.retry,
            probe_threshold=(options.schedule or ScheduleTuning()).probe_threshold,
            rng=rng,
            journal=journal,
            results=self.results,
            running=self._running_view(),
            on_capacity=self._wake_intake,
            clock=config.time_factor,
        )
        self.fetch: Fetch | None = None
        if options.download_dir is not None:
            self.fetch = Fetch(
                session=session,
                directory=options.download_dir,
                limiter=self.admission.limiter,
                journal=journal,
                results=self.results,
                rewatch=self._rewatch,
            )
        self.watch = Watch(
            session=session,
            poll=poll,
            tuning=options.schedule,
            rng=rng,
            ids_per_query=options.max_ids_per_query,
            reconcile_interval=options.reconcile_interval,
            pacing=self.admission.pacing,
            ledger=self.admission,
            journal=journal,
            results=self.results,
            deliver=self.fetch.submit if self.fetch is not None else None,
            waiting=lambda: len(self.admission.queue),
            refilled=self.admission.probe.refilling,
            last_few=last_few(options.max_running),
        )
        self.watch.latencies = LatencySample(random.Random(options.seed))
        patience = options.lookup_patience
        if patience is None:
            patience = 5 * config.retry.reconcile_grace
        self.poller = Poller(
            session=session,
            polls=self.watch.polls,
            wake=self.watch.wake,
            poll=poll,
            pacing=self.admission.pacing,
            watcher=self.watch,
            results=self.results,
            lag_tolerance=patience,
            halt=self._halt_for,
        )
        receiver = options.callbacks
        self.create = Create(
            session=session,
            retry=config.retry,
            gate=self.admission,
            pacing=self.admission.pacing,
            watch=self.watch,
            journal=journal,
            results=self.results,
            callback_url=receiver.callback_url_for if receiver is not None else None,
            patience=patience,
            deadline=options.reconcile_deadline,
            halted=lambda: self.admission.halted,
        )
        self.intake = Intake(
            batch_id=str(batch._batch_id),
            journal=journal,
            callbacks=receiver is not None,
            admission=self.admission,
            watch=self.watch,
            fetch=self.fetch,
            results=self.results,
            session=session,
            durable=options.journal is not None,
            max_buffered=options.max_buffered_results,
        )
        self.abandon = False  # a drain timed out: leaving the block does not wait
        self._downloads = options.max_download_concurrency
        self.results.when_done(self._on_done)

    # Late-bound wiring: admission is built before the watcher and the feeder.
    def _running_view(self) -> RunningProxy:
        return RunningProxy(lambda: self.watch)

    def _wake_intake(self) -> None:
        intake = getattr(self, "intake", None)
        if intake is not None:
            intake.on_room()

    def _halt(self, reason: NotStartedError) -> None:
        self.admission.halt(reason)

    def _halt_for(self, error: BaseException, reason: str) -> None:
        self.admission.halt_for(error, reason=reason)

    def _rewatch(self, job: Job, task: Task) -> None:
        self.watch.rewatch(job, task)

    def fetch_status_requests(self) -> int:
        return self.fetch.status_requests if self.fetch is not None else 0

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Start every loop and worker pool under ``tg``."""
        self.results.open = True
        create_send, create_recv = Handoff[Job]().open()
        poll_send, poll_recv = Handoff[PollItem]().open()
        with create_recv, poll_recv:
            tg.start_soon(self.create.recover_unknown)
            tg.start_soon(self.intake.feed_loop)
            tg.start_soon(self.create.doubt_loop, create_send.clone())
            tg.start_soon(self.admission.admit_loop, create_send)
            tg.start_soon(self.admission.probe_loop)
            tg.start_soon(self.poller.loop, poll_send)
            for _ in range(_CREATE_WORKERS):
                tg.start_soon(self.create.worker, create_recv.clone())
            for _ in range(_POLL_WORKERS):
                tg.start_soon(self.poller.worker, poll_recv.clone())
            if self.fetch is not None:
                dl_send: MemoryObjectSendStream[Job]
                dl_recv: MemoryObjectReceiveStream[Job]
                dl_send, dl_recv = anyio.create_memory_object_stream[Job](math.inf)
                self.fetch.open(dl_send)
                with dl_recv:
                    for _ in range(self._downloads):
                        tg.start_soon(self.fetch.worker, dl_recv.clone())

    def before_close(self, tg: anyio.abc.TaskGroup) -> Any:
        """The exit step run before the task group's: wait for every job, or cancel."""

        async def settle(
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> bool:
            del exc_type, tb
            if exc is None and not self.abandon:
                self.results.closing = True
                self.results.check_done()
            else:
                tg.cancel_scope.cancel()
            return False

        return settle

    def _on_done(self) -> None:
        """Every job ended and the block is closing: let every loop and worker end."""
        if self.fetch is not None:
            self.fetch.close()
        self.admission.poke()
        self.intake.wake.set()
        self.watch.wake.set()
        self.create.wake.set()

    def after_close(self) -> None:
        """After the task group: settle every handle, wake every reader."""
        self.results.open = False
        if self.fetch is not None:
            self.fetch.close()
        self.results.abandon_unfinished()
        self.results.queue.wake_all()
