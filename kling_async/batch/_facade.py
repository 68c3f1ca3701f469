"""The batch scheduler: fan out many generations under the account's limits, lose nothing.

::

    async with session.batch(max_running=10, journal="run.db", download_dir="out") as batch:
        batch.submit_all((f"clip-{i}", request) for i, request in enumerate(requests))
        async for result in batch:          # completion order
            print(result.key, result.status, result.files)

How it is built (one ``async with`` owns one anyio task group; no task per job):

- a *feeder* pulls submissions lazily (lists, iterables, async iterables) only as
  capacity frees, so 100,000 requests are never materialised at once;
- an *admission* loop hands jobs to a small pool of create workers while the AIMD
  window (:class:`~kling_async._schedule.AdmissionWindow`) and the budget allow.
  A 1303 puts the job back at the front and shrinks the window; a 1302/429 pauses
  every request of the batch through one shared :class:`RateLimiter`;
- a *prober* watches, while work waits and every slot is held, how many slots
  the running tasks have probably freed unnoticed (from the learned durations);
  past a threshold it lets one create through. The gateway accepts it only into
  a freed slot; a 1303 proves none of the tasks ended, so their polls can wait;
- one *poller* keeps a time-ordered heap of next-poll times per lane (classic
  tasks, and one lane per turbo endpoint so due turbo tasks share one batch query)
  and hands due polls to a pool of poll workers; schedules are learned per task
  kind (:class:`~kling_async._schedule.PollPlanner`);
- a callback receiver, when given, turns callbacks into immediate refreshes (or,
  for verified terminal callbacks carrying the result, into results at once);
  polling then only reconciles, at a slow rate;
- finished outputs go to a pool of download workers before the result is yielded;
- every transition is committed to the SQLite journal first, so a crash at any
  moment can be resumed by running the same batch again.

Results come out of ``async for`` (they are buffered, so not iterating is fine);
leaving the block waits for every job; an exception or cancellation inside it
stops everything cleanly (created tasks stay recorded in the journal).
"""

from __future__ import annotations

import enum
import hashlib
import heapq
import itertools
import logging
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Generator, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Union

import anyio
import anyio.lowlevel
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._backoff import backoff_delay, is_testing
from .._callbacks import CallbackEvent, CallbackReceiver
from .._config import PollPolicy, RetryPolicy
from .._converter import parse_task, to_payload
from .._download import DownloadedFile, file_sha256
from .._endpoints import (
    Endpoint,
    callback_url_of,
    endpoint_for,
    endpoint_for_request,
    external_id_of,
    with_callback_url,
)
from .._errors import (
    AccountError,
    APIError,
    AuthenticationError,
    ConcurrencyLimitedError,
    ConfigurationError,
    ContentPolicyError,
    CreateOutcomeUnknownError,
    DownloadError,
    InvalidRequestError,
    KlingError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    TaskFailedError,
    TransportError,
    URLExpiredError,
    ValidationError,
    WaitTimeoutError,
)
from .._journal import (
    JobState,
    Journal,
    JournalEntry,
    JournalFile,
    fingerprint,
)
from .._ratelimit import RateLimiter
from .._schedule import (
    AdmissionWindow,
    Budget,
    Kind,
    PollPlanner,
    ScheduleTuning,
    kind_of,
    observed_duration,
)
from .._task import Task, TaskStatus

if TYPE_CHECKING:
    from .._models import Request
    from .._session import KlingSession

__all__ = [
    "Batch",
    "BatchSummary",
    "Event",
    "EventKind",
    "JobCancelledError",
    "JobHandle",
    "JobResult",
    "NotStartedError",
    "RecordedJobError",
]

logger = logging.getLogger("kling_async")

#: What a job ended as.
JobStatus = Literal["succeed", "failed", "error", "not_started"]

#: A submission: a request, or a ``(key, request)`` pair.
Submission = Union["Request", tuple[str, "Request"]]

_CREATE_WORKERS = 16
_POLL_WORKERS = 32
#: A due turbo task pulls others of its endpoint forward by up to this share of
#: their own step, so they ride along in the same batch query.
_BATCH_PULL_FORWARD = 1.0
_MAX_CREATE_ROUNDS = 5
_MAX_NOT_FOUND = 20
_LOOKAHEAD = 8
#: Probing needs a sum over running tasks: only for windows up to this size.
_PROBE_MAX_RUNNING = 256
#: Longest wait between two probe checks, seconds.
_PROBE_MAX_WAIT = 1.0


class NotStartedError(KlingError):
    """The job was never sent: the budget ran out, or admissions stopped.

    Attributes:
        reason: ``budget``, ``fail_fast``, ``account`` (an authentication or
            account error made every further create pointless), or the reason
            given to :meth:`Batch.stop_admitting`.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class JobCancelledError(KlingError):
    """The batch stopped (cancelled or failed) before this job ended.

    A task already created keeps running on the server; with a journal, running
    the batch again picks it up without creating it again.
    """


class RecordedJobError(KlingError):
    """An error recorded by an earlier run of the batch (read back from the journal).

    Attributes:
        error_type: Class name of the original error.
    """

    def __init__(self, message: str, *, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class EventKind(str, enum.Enum):
    """What happened to a job."""

    QUEUED = "queued"
    CREATED = "created"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRIED = "retried"
    THROTTLED = "throttled"
    DOWNLOADED = "downloaded"
    NOT_STARTED = "not_started"


@attrs.frozen(kw_only=True)
class Event:
    """One progress event, passed to ``on_event``.

    Attributes:
        kind: What happened.
        key: The job's key.
        time: ``time.monotonic()`` when it happened.
        task_id: The task's id, once known.
        status: The task's status, once known.
        error: The error, for ``failed`` (job errors), ``retried`` and ``throttled``.
        detail: A short human-readable note (a file path, a reason...).
    """

    kind: EventKind
    key: str
    time: float
    task_id: str | None = None
    status: str | None = None
    error: BaseException | None = None
    detail: str = ""


@attrs.frozen(kw_only=True)
class JobResult:
    """How one job ended.

    Attributes:
        key: The job's key.
        request: The request as submitted.
        task: The terminal task (``None`` when none was created or found).
        error: Why the job is not a success (:class:`TaskFailedError` for a failed
            task, :class:`NotStartedError`, a refusal, a download error...).
        files: Downloaded outputs, in :attr:`Task.files` order.
        status: ``succeed``, ``failed`` (the task failed), ``error`` (no usable
            result: refused, or lost to an error) or ``not_started``.
        resumed: Whether the result was read back from the journal of an earlier run.
    """

    key: str
    request: Request = attrs.field(repr=False)
    task: Task | None
    error: BaseException | None
    files: tuple[DownloadedFile, ...] = ()
    status: JobStatus
    resumed: bool = False

    @property
    def ok(self) -> bool:
        """Whether the task succeeded (and its outputs were saved, if asked)."""
        return self.status == "succeed"


@attrs.frozen(kw_only=True)
class BatchSummary:
    """Figures of a batch so far.

    Attributes:
        jobs: Jobs ended.
        succeeded: Jobs whose task succeeded.
        failed: Jobs whose task failed.
        errors: Jobs that ended with an error.
        not_started: Jobs never sent.
        resumed: Jobs read back as finished from the journal.
        units: Units charged by tasks that ended (earlier runs included).
        creates: Create calls made (refused ones included).
        status_requests: Status queries made (single and batch).
        lookups: Look-ups by external id (resume, unclear creates).
        downloads: Files fetched (skipped ones excluded).
        tasks_polled: Tasks this run followed to their end.
        polls_per_task: Status queries per task followed.
        concurrency_limited: Creates refused with 1303.
        rate_limited: Requests refused with 1302/429 that reached the batch.
        max_running: Most slots held at once.
        latency_p50: Median seconds from creation to noticing the end.
        latency_p90: 90th percentile of that.
        latency_p95: 95th percentile of that.
        latency_p99: 99th percentile of that.
        wall_time: Seconds since the batch opened.
    """

    jobs: int
    succeeded: int
    failed: int
    errors: int
    not_started: int
    resumed: int
    units: float
    creates: int
    status_requests: int
    lookups: int
    downloads: int
    tasks_polled: int
    polls_per_task: float
    concurrency_limited: int
    rate_limited: int
    max_running: int
    latency_p50: float | None
    latency_p90: float | None
    latency_p95: float | None
    latency_p99: float | None
    wall_time: float


class _Phase(enum.Enum):
    QUEUED = 0
    CREATING = 1
    RUNNING = 2
    DOWNLOADING = 3
    DONE = 4


class _Job:
    """What the batch keeps per job (small: 10,000 in flight must stay cheap)."""

    __slots__ = (
        "callbacks",
        "clean",
        "create_rounds",
        "created_at",
        "due",
        "endpoint",
        "entry",
        "external_id",
        "gen",
        "key",
        "kind",
        "lower",
        "needs_lookup",
        "not_found",
        "phase",
        "poll_errors",
        "polls",
        "postponed",
        "request",
        "reserved",
        "reserved_set",
        "result",
        "running_seen",
        "slots",
        "step",
        "task",
        "waiter",
    )

    def __init__(
        self,
        key: str,
        request: Request,
        endpoint: Endpoint,
        external_id: str,
        kind: Kind,
        slots: int,
    ) -> None:
        self.key = key
        self.request = request
        self.endpoint = endpoint
        self.external_id = external_id
        self.kind = kind
        self.slots = slots
        self.phase = _Phase.QUEUED
        self.task: Task | None = None
        self.entry: JournalEntry | None = None
        self.created_at = 0.0
        self.lower = 0.0
        self.step = 0.0
        self.polls = 0
        self.gen = 0
        self.not_found = 0
        self.poll_errors = 0
        self.postponed = False
        self.due = 0.0
        self.create_rounds = 0
        self.needs_lookup = False
        self.callbacks = False
        self.clean = True
        self.running_seen = False
        self.reserved: float | None = None
        self.reserved_set = False
        self.result: JobResult | None = None
        self.waiter: anyio.Event | None = None


class JobHandle:
    """A submitted job: await it for its terminal :class:`Task`.

    ``await handle`` returns the succeeded task, or raises the job's error
    (:class:`TaskFailedError` when the task failed). :meth:`wait` returns the
    whole :class:`JobResult` instead.
    """

    __slots__ = ("_job",)

    def __init__(self, job: _Job) -> None:
        self._job = job

    def __repr__(self) -> str:
        return f"JobHandle(key={self._job.key!r}, done={self.done()})"

    @property
    def key(self) -> str:
        """The job's key."""
        return self._job.key

    def done(self) -> bool:
        """Whether the job has ended.

        Returns:
            ``True`` once a result exists.
        """
        return self._job.result is not None

    def result(self) -> JobResult:
        """The job's result.

        Returns:
            The result.

        Raises:
            RuntimeError: The job has not ended yet.
        """
        if self._job.result is None:
            raise RuntimeError(f"job {self._job.key!r} has not ended yet")
        return self._job.result

    async def wait(self) -> JobResult:
        """Wait until the job ends.

        Returns:
            The result (never raises for the job's own failure).
        """
        job = self._job
        if job.result is None:
            if job.waiter is None:
                job.waiter = anyio.Event()
            await job.waiter.wait()
        assert job.result is not None  # noqa: S101  (set before the waiter fires)
        return job.result

    async def _task(self) -> Task:
        result = await self.wait()
        if result.status == "succeed" and result.task is not None:
            return result.task
        if result.error is not None:
            raise result.error
        raise JobCancelledError(f"job {result.key!r} ended without a task")  # pragma: no cover

    def __await__(self) -> Generator[Any, None, Task]:
        return self._task().__await__()


class _Wake:
    """A reusable wake-up signal for one waiter; a ``set`` while nobody waits is kept."""

    __slots__ = ("_event", "_flag")

    def __init__(self) -> None:
        self._flag = False
        self._event: anyio.Event | None = None

    def set(self) -> None:
        self._flag = True
        if self._event is not None:
            self._event.set()

    async def wait(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not self._flag:
            event = self._event = anyio.Event()
            if timeout is None:
                await event.wait()
            else:
                with anyio.move_on_after(max(0.0, timeout)):
                    await event.wait()
        self._flag = False
        self._event = None


class _Results:
    """Finished results waiting to be read by ``async for`` (unbounded, never blocks)."""

    def __init__(self) -> None:
        self.items: deque[JobResult] = deque()
        self.wake = _Wake()

    def put(self, result: JobResult) -> None:
        self.items.append(result)
        self.wake.set()


class _ResultIterator:
    """``async for`` over a batch: yields results until no job is outstanding."""

    def __init__(self, batch: Batch) -> None:
        self._batch = batch

    def __aiter__(self) -> _ResultIterator:
        return self

    async def __anext__(self) -> JobResult:
        results = self._batch._results
        while True:
            if results.items:
                return results.items.popleft()
            if self._batch._idle() or not self._batch._open:
                raise StopAsyncIteration
            await results.wake.wait()


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def _server_duration(task: Task) -> float | None:
    if task.created_at is None or task.updated_at is None:
        return None
    seconds = (task.updated_at - task.created_at).total_seconds()
    return seconds if seconds > 0 else None


class Batch:
    """Run many generations as one async context manager. Open it with ``session.batch()``.

    Args:
        session: The session to send every request through (not closed by the batch).
        max_running: Most concurrency slots to hold at once (a video task takes 1,
            an image task ``n``). Set it to your account's quota; when unsure, set it
            higher: 1303 answers shrink the effective window to what the account
            really allows.
        max_requests_per_second: Rate limit shared by every request the batch makes
            (creates, polls, batch queries, look-ups); ``None`` for none. 1302/429
            answers pause it in any case.
        journal: SQLite file recording every job (resume by running the same batch
            with the same journal); ``None`` for none.
        batch_id: Names the batch inside the journal and seeds the deterministic
            ``external_task_id`` of each job. Default: the id already in the
            journal, else a random one.
        download_dir: Download every output there before its result is yielded.
        max_download_concurrency: Jobs downloading at once.
        max_units: Stop admitting jobs when spent plus in-flight units would exceed
            this; the rest end ``not_started``.
        callbacks: A :class:`CallbackReceiver` (serving, or mounted in your app with
            its ``public_url`` set): tasks are created with its URL and a callback
            triggers an immediate refresh; polling only reconciles.
        fail_fast: After the first failed or errored job, admit nothing more (the
            rest end ``not_started``; tasks already running are still followed).
        on_event: Called with each :class:`Event` (progress bars, metrics). It must
            not block; exceptions it raises are logged and ignored.
        poll: Polling priors, used until a kind of task has finished once
            (default: the session's poll policy). ``timeout`` bounds how long one
            task is followed.
        reconcile_interval: With callbacks, poll each task every this many seconds
            (default: learned from finished tasks, well after their expected end).
        schedule: Knobs of the learned poll schedule (advanced).
        probe_slots: Also probe past ``max_running``. When every slot is held, work
            is waiting and the batch's tasks have probably ended unnoticed (per
            the learned durations), one create is sent anyway: the gateway
            accepts it only if a slot is free, and a 1303 tells the batch that
            none of its tasks has ended yet (so their polls can wait). Turn it on
            when ``max_running`` is your account's quota, which the gateway then
            enforces exactly; leave it off when ``max_running`` is deliberately
            below your quota. (Below ``max_running``, after a 1303 showed the
            real quota, the batch probes this way in any case.)
        max_ids_per_query: Most task ids in one turbo batch query (the gateway
            documents no limit; lower it if long query strings are refused).
        seed: Seed of the jitter (repeatable schedules in tests and benchmarks).

    Raises:
        ValueError: An option is out of range.
    """

    def __init__(
        self,
        session: KlingSession,
        *,
        max_running: int = 10,
        max_requests_per_second: float | None = None,
        journal: str | Path | None = None,
        batch_id: str | None = None,
        download_dir: str | Path | None = None,
        max_download_concurrency: int = 4,
        max_units: float | None = None,
        callbacks: CallbackReceiver | None = None,
        fail_fast: bool = False,
        on_event: Callable[[Event], object] | None = None,
        poll: PollPolicy | None = None,
        reconcile_interval: float | None = None,
        schedule: ScheduleTuning | None = None,
        probe_slots: bool = False,
        max_ids_per_query: int = 100,
        seed: int | None = None,
    ) -> None:
        if max_running < 1:
            raise ValueError("max_running must be >= 1")
        if max_requests_per_second is not None and max_requests_per_second <= 0:
            raise ValueError("max_requests_per_second must be > 0 (or None)")
        if max_download_concurrency < 1:
            raise ValueError("max_download_concurrency must be >= 1")
        if max_units is not None and max_units < 0:
            raise ValueError("max_units must be >= 0 (or None)")
        if reconcile_interval is not None and reconcile_interval <= 0:
            raise ValueError("reconcile_interval must be > 0 (or None)")
        if max_ids_per_query < 1:
            raise ValueError("max_ids_per_query must be >= 1")
        self._session = session
        self.max_running = max_running
        self._journal_path = None if journal is None else Path(journal)
        self._batch_id = batch_id
        self._download_dir = None if download_dir is None else Path(download_dir)
        self._max_downloads = max_download_concurrency
        self._callbacks = callbacks
        self._fail_fast = fail_fast
        self._on_event = on_event
        self._reconcile_interval = reconcile_interval
        self._rng = random.Random(seed)
        self._poll_policy = poll or session.config.poll
        self._planner = PollPlanner(self._poll_policy, schedule, rng=self._rng)
        self._window = AdmissionWindow(max_running)
        self._probe_slots = probe_slots
        self._ids_per_query = max_ids_per_query
        self._probe_go = False  # the admission loop may pass the window once
        self._probe_job: _Job | None = None
        self._creates_in_flight = 0
        self._running: set[_Job] = set()
        self._budget = Budget(max_units)
        self._limiter = RateLimiter(max_requests_per_second or math.inf)
        self._create_retry: RetryPolicy = attrs.evolve(
            session.config.retry, retry_concurrency_limited=False
        )
        self._journal: Journal | None = None
        self._results = _Results()
        self._open = False
        self._entered = False
        self._closing = False
        self._halted: NotStartedError | None = None
        # Jobs
        self._queue: deque[_Job] = deque()
        self._sources: deque[Iterator[Submission] | AsyncIterator[Submission]] = deque()
        self._keys: set[str] = set()
        self._auto_key = itertools.count()
        self._outstanding = 0
        self._running_slots = 0  # admitted (creating or created) and not ended
        self._confirmed_slots = 0  # created and not ended
        self._by_task_id: dict[str, _Job] = {}
        self._by_external_id: dict[str, _Job] = {}
        self._unfinished: set[_Job] = set()
        # Polling: one heap per lane ("" = single queries; endpoint name = batch queries)
        self._heaps: dict[str, list[tuple[float, int, int, _Job]]] = {}
        self._heap_seq = itertools.count()
        self._admit_not_before = 0.0
        # Wake-ups
        self._admit_wake = _Wake()
        self._probe_wake = _Wake()
        self._feed_wake = _Wake()
        self._poll_wake = _Wake()
        self._done: anyio.Event | None = None  # created on enter
        self._unsubscribe: Callable[[], None] | None = None
        # Streams (created on enter)
        self._create_send: MemoryObjectSendStream[_Job] | None = None
        self._poll_send: MemoryObjectSendStream[tuple[str, list[_Job]]] | None = None
        self._download_send: MemoryObjectSendStream[_Job] | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        # Figures
        self._started = time.monotonic()
        self._counts = {"succeed": 0, "failed": 0, "error": 0, "not_started": 0}
        self._resumed = 0
        self._units = 0.0
        self._creates = 0
        self._status_requests = 0
        self._lookups = 0
        self._downloads = 0
        self._tasks_polled = 0
        self._polls_of_followed = 0
        self._limited_1303 = 0
        self._limited_1302 = 0
        self._max_running_seen = 0
        self._latencies: list[float] = []

    def __repr__(self) -> str:
        return (
            f"Batch(max_running={self.max_running}, outstanding={self._outstanding}, "
            f"journal={None if self._journal_path is None else str(self._journal_path)!r})"
        )

    # --- public API -----------------------------------------------------------------

    @property
    def batch_id(self) -> str | None:
        """The batch id (known once the block is entered when a journal picks it)."""
        return self._batch_id

    @property
    def journal(self) -> Journal | None:
        """The open journal, inside the block (``None`` without one)."""
        return self._journal

    async def __aenter__(self) -> Batch:
        if self._entered:
            raise RuntimeError("a Batch can be entered only once")
        self._entered = True
        if self._callbacks is not None and self._callbacks.url is None:
            raise ConfigurationError(
                "the callback receiver has no URL: serve it (async with receiver.serve()) "
                "or give it the public_url under which your app mounts it"
            )
        if self._journal_path is not None:
            self._journal = Journal(self._journal_path, batch_id=self._batch_id)
            self._batch_id = self._journal.batch_id
        elif self._batch_id is None:
            self._batch_id = f"{self._rng.getrandbits(64):016x}"
        self._started = time.monotonic()
        create_send, create_recv = anyio.create_memory_object_stream[_Job](0)
        poll_send, poll_recv = anyio.create_memory_object_stream[tuple[str, list[_Job]]](0)
        dl_send, dl_recv = anyio.create_memory_object_stream[_Job](math.inf)
        self._create_send, self._poll_send, self._download_send = create_send, poll_send, dl_send
        self._done = anyio.Event()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._open = True
        try:
            tg.start_soon(self._feed_loop)
            tg.start_soon(self._admit_loop)
            tg.start_soon(self._poll_loop)
            tg.start_soon(self._probe_loop)
            for _ in range(_CREATE_WORKERS):
                tg.start_soon(self._create_worker, create_recv.clone())
            for _ in range(_POLL_WORKERS):
                tg.start_soon(self._poll_worker, poll_recv.clone())
            if self._download_dir is not None:
                for _ in range(self._max_downloads):
                    tg.start_soon(self._download_worker, dl_recv.clone())
        finally:
            create_recv.close()
            poll_recv.close()
            dl_recv.close()
        if self._callbacks is not None:
            self._unsubscribe = self._callbacks.subscribe(self._on_callback)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None  # noqa: S101  (entered)
        tg = self._tg
        try:
            if exc is None:
                self._closing = True
                self._check_done()
            else:
                tg.cancel_scope.cancel()
            try:
                return await tg.__aexit__(exc_type, exc, tb)
            except BaseException as raised:
                # The task group wraps the block's own exception in a group; give the
                # caller back exactly what their code raised.
                if exc is not None and _only(raised, exc):
                    return False
                raise
        finally:
            self._open = False
            self._close_streams()
            if self._unsubscribe is not None:
                self._unsubscribe()
            self._abandon_unfinished()
            if self._journal is not None:
                self._journal.close()
            self._results.wake.set()

    def submit(self, request: Request, *, key: str | None = None) -> JobHandle:
        """Add one job.

        Args:
            request: The request model.
            key: A stable id for the job (default ``job-N`` in submission order).
                With a journal, the key is what a re-run recognises.

        Returns:
            A handle: ``await handle`` for the task, ``await handle.wait()`` for
            the result.

        Raises:
            RuntimeError: The batch is not open.
            ValueError: The key was already submitted to this batch.
            JournalMismatchError: The journal holds this key with a different
                request (nothing was sent).
            TypeError: ``request`` is not a task-creating request model.
        """
        self._require_open()
        job = self._intake(key, request)
        self._dispatch(job)
        return JobHandle(job)

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
        self._require_open()
        if isinstance(items, (list, tuple)):
            self._precheck(items)
        if isinstance(items, AsyncIterable):
            self._sources.append(aiter(items))
        else:
            self._sources.append(iter(items))
        self._feed_wake.set()

    def __aiter__(self) -> AsyncIterator[JobResult]:
        return _ResultIterator(self)

    def stop_admitting(self, reason: str = "stopped") -> None:
        """Create nothing more: jobs not yet sent end ``not_started``.

        Tasks already created are still followed to their end (they are paid
        for), and their outputs downloaded. Use it for a graceful stop (a first
        Ctrl-C); cancel the block for an immediate one.

        Args:
            reason: Recorded as :attr:`NotStartedError.reason`.
        """
        self._halt(NotStartedError(f"admissions stopped ({reason})", reason=reason))

    def summary(self) -> BatchSummary:
        """Counts, units, requests and latencies so far.

        Returns:
            The summary.
        """
        latencies = sorted(self._latencies)
        done = sum(self._counts.values())
        return BatchSummary(
            jobs=done,
            succeeded=self._counts["succeed"],
            failed=self._counts["failed"],
            errors=self._counts["error"],
            not_started=self._counts["not_started"],
            resumed=self._resumed,
            units=self._units,
            creates=self._creates,
            status_requests=self._status_requests,
            lookups=self._lookups,
            downloads=self._downloads,
            tasks_polled=self._tasks_polled,
            polls_per_task=(self._polls_of_followed / self._tasks_polled)
            if self._tasks_polled
            else 0.0,
            concurrency_limited=self._limited_1303,
            rate_limited=self._limited_1302,
            max_running=self._max_running_seen,
            latency_p50=_percentile(latencies, 0.50),
            latency_p90=_percentile(latencies, 0.90),
            latency_p95=_percentile(latencies, 0.95),
            latency_p99=_percentile(latencies, 0.99),
            wall_time=time.monotonic() - self._started,
        )

    # --- intake -----------------------------------------------------------------------

    def _require_open(self) -> None:
        if not self._open or self._finished():
            raise RuntimeError("submit inside `async with session.batch(...) as batch:`")

    def _split(self, item: Any) -> tuple[str | None, Any]:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            return item[0], item[1]
        return None, item

    def _precheck(self, items: Iterable[Any]) -> None:
        """Refuse a list with reused keys before anything is sent."""
        seen: set[str] = set()
        for item in items:
            key, request = self._split(item)
            endpoint = endpoint_for_request(request)
            if not endpoint.is_task:
                raise TypeError(f"{endpoint.name} creates no task; it cannot run in a batch")
            if key is None:
                continue
            if key in seen or key in self._keys:
                raise ValueError(f"job key {key!r} is submitted twice")
            seen.add(key)
            if self._journal is not None:
                self._journal.check(
                    key, endpoint.name, fingerprint(endpoint.name, to_payload(request))
                )

    def _derive_external_id(self, key: str) -> str:
        digest = hashlib.sha256(f"{self._batch_id}\x00{key}".encode()).hexdigest()[:24]
        return f"kb-{digest}"

    def _intake(self, key: str | None, request: Any) -> _Job:
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
        external_id = external_id_of(request) or self._derive_external_id(key)
        job = _Job(
            key,
            request,
            endpoint,
            external_id,
            kind_of(endpoint.name, payload),
            endpoint.slots(payload),
        )
        if self._journal is not None:
            job.entry = self._journal.record(
                key,
                endpoint=endpoint.name,
                fingerprint=fingerprint(endpoint.name, payload),
                external_task_id=external_id,
                request=payload,
            )
            if job.entry is not None:
                job.external_id = job.entry.external_task_id
        job.callbacks = self._callbacks is not None and callback_url_of(request) is None
        self._keys.add(key)
        self._outstanding += 1
        self._unfinished.add(job)
        return job

    def _dispatch(self, job: _Job) -> None:
        """Route a new job by what the journal knows about it."""
        entry = job.entry
        if entry is None or entry.state in (JobState.PENDING, JobState.NOT_STARTED):
            self._enqueue(job)
            return
        task = parse_task(job.endpoint, entry.task) if entry.task is not None else None
        if task is not None and task.is_terminal:
            # Ended in an earlier run: no request, except downloads still missing.
            job.task = task
            if entry.units:
                self._budget.spent += entry.units
                self._units += entry.units
            if task.succeeded and self._download_dir is not None and not entry.downloaded:
                job.phase = _Phase.DOWNLOADING
                self._send_download(job)
                return
            self._resumed += 1
            if entry.state is JobState.ERROR and not entry.retryable:
                error = RecordedJobError(
                    entry.message or "error", error_type=entry.error_type or ""
                )
                self._finish(job, "error", task, error, resumed=True)
            elif task.succeeded:
                files = tuple(_recorded_file(f) for f in entry.files)
                self._finish(job, "succeed", task, None, files, resumed=True)
            else:
                self._finish(job, "failed", task, TaskFailedError(task), resumed=True)
            return
        if entry.state is JobState.ERROR and not entry.retryable:
            self._resumed += 1
            error = RecordedJobError(entry.message or "error", error_type=entry.error_type or "")
            self._finish(job, "error", task, error, resumed=True)
            return
        if entry.task_id:
            # Created in an earlier run: follow it, never create it again.
            job.phase = _Phase.RUNNING
            job.clean = False  # created in an earlier run: no sample to learn from
            created_wall = entry.created_wall or entry.updated_wall
            job.created_at = time.monotonic() - max(0.0, time.time() - created_wall)
            job.task = Task(
                id=entry.task_id, endpoint=job.endpoint.name, status=TaskStatus.SUBMITTED
            )
            self._reserve(job, force=True)
            self._hold_slots(job, confirmed=True)
            self._running.add(job)
            self._track(job)
            self._tasks_polled += 1
            self._schedule(job, due=time.monotonic())
            return
        # 'creating' (or a retryable error before any task id): the create may have
        # landed. Look it up by external id before creating.
        job.needs_lookup = True
        self._enqueue(job)

    def _enqueue(self, job: _Job) -> None:
        if self._halted is not None:
            self._not_started(job)
            return
        self._emit(EventKind.QUEUED, job)
        self._queue.append(job)
        self._wake_admission()

    def _not_started(self, job: _Job) -> None:
        assert self._halted is not None  # noqa: S101
        if self._journal is not None:
            self._journal.mark_not_started(job.key, message=str(self._halted))
        self._finish(job, "not_started", None, self._halted)

    # --- the feeder ---------------------------------------------------------------------

    def _wanted(self) -> int:
        """How many queued jobs the feeder keeps ready."""
        free = max(0, self._window.limit - self._running_slots)
        return free + _LOOKAHEAD

    async def _feed_loop(self) -> None:
        fed = 0
        while True:
            if self._finished():
                return
            if not self._sources or len(self._queue) >= self._wanted():
                await self._feed_wake.wait()
                continue
            source = self._sources[0]
            try:
                if isinstance(source, AsyncIterator):
                    item = await source.__anext__()
                else:
                    item = next(source)
            except (StopIteration, StopAsyncIteration):
                self._sources.popleft()
                self._check_done()
                continue
            self._feed_one(item)
            fed += 1
            if fed % 64 == 0:
                # Items finished in an earlier run need no slot: let others run too.
                await anyio.lowlevel.checkpoint()

    def _feed_one(self, item: Any) -> None:
        key, request = self._split(item)
        try:
            job = self._intake(key, request)
        except (KlingError, TypeError, ValueError) as exc:
            # A bad item of a lazy source: report it as a result, send nothing.
            logger.warning("batch item %r refused: %s", key, exc)
            self._counts["error"] += 1
            self._results.put(
                JobResult(
                    key=key or "<invalid item>",
                    request=request,
                    task=None,
                    error=exc,
                    status="error",
                )
            )
            return
        self._dispatch(job)

    # --- admission ----------------------------------------------------------------------

    async def _admit_loop(self) -> None:
        assert self._create_send is not None  # noqa: S101
        while True:
            if self._finished():
                return
            if self._halted is not None:
                self._drain_not_started()
                await self._admit_wake.wait()
                continue
            if not self._queue:
                await self._admit_wake.wait()
                continue
            now = time.monotonic()
            if now < self._admit_not_before:
                await self._admit_wake.wait(self._admit_not_before - now)
                continue
            job = self._queue[0]
            probing = self._probe_go and not self._window.can_admit(self._running_slots, job.slots)
            if not (probing or self._window.can_admit(self._running_slots, job.slots)):
                await self._admit_wake.wait()
                continue
            self._probe_go = False
            if not self._reserve(job):
                if self._running_slots == 0:
                    self._halt(
                        NotStartedError(
                            "max_units would be exceeded; job not started", reason="budget"
                        )
                    )
                    continue
                await self._admit_wake.wait()
                continue
            self._queue.popleft()
            self._hold_slots(job, confirmed=False)
            job.phase = _Phase.CREATING
            self._creates_in_flight += 1
            self._probe_job = job if probing else None
            self._feed_wake.set()
            await self._create_send.send(job)

    def _wake_admission(self) -> None:
        self._admit_wake.set()
        self._probe_wake.set()

    # --- probing for slots freed unnoticed -------------------------------------------

    async def _probe_loop(self) -> None:
        """Send a probing create when running tasks have probably freed a slot unnoticed.

        A task that ended frees its slot at once on the server, but the batch only
        learns it at that task's next poll. While work waits and every slot is
        held, the expected number of slots freed unnoticed grows; past
        ``probe_threshold`` one create goes out anyway. Accepted, it fills the freed
        slot early; refused (1303), it proves none of the tasks ended yet.
        """
        while True:
            if self._finished():
                return
            await self._probe_wake.wait(self._probe_check())

    def _probe_check(self) -> float | None:
        """Decide on a probe now; return seconds until the next check (``None``: on wake)."""
        if (
            self._halted is not None
            or not self._queue
            or self._probe_go
            or self._creates_in_flight
            or len(self._running) > _PROBE_MAX_RUNNING
        ):
            return None
        now = time.monotonic()
        if now < self._admit_not_before:
            return self._admit_not_before - now
        job = self._queue[0]
        if self._window.can_admit(self._running_slots, job.slots):
            return None  # the admission loop takes it
        ceiling = self.max_running + (job.slots if self._probe_slots else 0)
        if self._running_slots + job.slots > ceiling:
            return None
        expected, rate = 0.0, 0.0
        for other in self._running:
            p, r = self._planner.ended_probability(other.kind, other.lower, now - other.created_at)
            expected += p * other.slots
            rate += r * other.slots
        # Slots already taken by earlier successful probes are spoken for.
        expected -= max(0, self._confirmed_slots - self._window.limit)
        threshold = self._planner.tuning.probe_threshold
        if expected >= threshold:
            self._probe_go = True
            self._admit_wake.set()
            return None
        if rate <= 0:
            return None  # nothing learned yet: completions and polls will wake us
        return min(max((threshold - expected) / rate, 1e-3), _PROBE_MAX_WAIT)

    def _none_ended_by(self, sent: float) -> None:
        """A 1303 at ``sent`` with only our tasks in the slots: none had ended then.

        Each running task's lower bound moves up, and its next poll may wait for
        one more step (once per poll, so a wrong inference costs one step at most).
        """
        now = time.monotonic()
        for job in self._running:
            if job.callbacks or sent <= job.created_at:
                continue
            job.lower = max(job.lower, sent - job.created_at)
            if job.postponed:
                continue
            target = job.created_at + self._planner.next_poll(
                job.kind, job.lower, job.polls, batched=job.endpoint.is_turbo
            )
            if target > job.due > now:
                job.postponed = True
                self._schedule(job, due=min(target, job.due + job.step))

    def _reserve(self, job: _Job, *, force: bool = False) -> bool:
        if job.reserved_set:
            return True
        estimate = self._budget.estimate(job.kind, job.slots)
        if not self._budget.try_reserve(estimate):
            if not force:
                return False
            if estimate is None:
                self._budget.unknown += 1
            else:
                self._budget.reserved += estimate
        job.reserved = estimate
        job.reserved_set = True
        return True

    def _unreserve(self, job: _Job, actual: float) -> None:
        if job.reserved_set:
            self._budget.settle(job.reserved, actual)
            job.reserved_set = False
        else:
            self._budget.spent += max(0.0, actual)

    def _hold_slots(self, job: _Job, *, confirmed: bool) -> None:
        if not confirmed:
            self._running_slots += job.slots
            return
        if job.phase is not _Phase.CREATING:
            self._running_slots += job.slots  # resumed: never went through admission
        self._confirmed_slots += job.slots
        self._max_running_seen = max(self._max_running_seen, self._confirmed_slots)

    def _release_slots(self, job: _Job, *, confirmed: bool) -> None:
        self._running_slots -= job.slots
        if confirmed:
            self._confirmed_slots -= job.slots
        self._wake_admission()
        self._feed_wake.set()

    def _halt(self, reason: NotStartedError) -> None:
        if self._halted is None:
            self._halted = reason
            logger.warning("batch stops admitting jobs: %s", reason)
        self._wake_admission()
        self._feed_wake.set()

    def _drain_not_started(self) -> None:
        while self._queue:
            self._not_started(self._queue.popleft())
        # Lazy sources are still consumed (into not_started results): none is lost.
        self._feed_wake.set()

    # --- creating -----------------------------------------------------------------------

    async def _create_worker(self, jobs: MemoryObjectReceiveStream[_Job]) -> None:
        async with jobs:
            async for job in jobs:
                try:
                    await self._create(job)
                finally:
                    self._creates_in_flight -= 1
                    self._wake_admission()
                self._check_done()

    async def _lookup(self, job: _Job, *, since: float | None) -> Task | None:
        """Find a task whose create may have landed; ``None`` when it did not.

        Args:
            job: The job.
            since: Seconds since its create may have reached the server, when that
                could be recent: a task stays invisible to look-ups for a moment
                (lookup lag), so a miss within the grace period is checked again.
                ``None`` when the session's own reconciliation already waited.
        """
        for attempt in range(2):
            self._lookups += 1
            try:
                return await self._session.get(
                    job.endpoint, external_task_id=job.external_id, limiter=self._limiter
                )
            except NotFoundError:
                grace = self._session.config.retry.reconcile_grace
                if attempt or since is None or since >= grace:
                    return None
                await anyio.sleep(grace - since)
        return None  # pragma: no cover

    async def _create(self, job: _Job) -> None:
        journal = self._journal
        request = job.request
        if job.callbacks:
            assert self._callbacks is not None  # noqa: S101
            request = with_callback_url(request, self._callbacks.callback_url_for(job.endpoint))
        try:
            task: Task | None = None
            sent = time.monotonic()
            if job.needs_lookup:
                since = None
                if job.entry is not None and not job.create_rounds:
                    since = time.time() - job.entry.updated_wall  # resumed 'creating' row
                task = await self._lookup(job, since=since)
                job.clean = task is None  # found: created at an unknown moment
            if task is None:
                if journal is not None:
                    journal.mark_creating(job.key)
                self._creates += 1
                sent = time.monotonic()
                task = await self._session.create(
                    request,
                    external_task_id=job.external_id,
                    limiter=self._limiter,
                    retry=self._create_retry,
                )
        except ConcurrencyLimitedError as exc:
            self._limited_1303 += 1
            self._back_to_queue(job, exc, needs_lookup=False)
            self._window.on_limited(self._confirmed_slots)
            if self._confirmed_slots <= self._window.limit:
                self._none_ended_by(sent)
            if self._confirmed_slots == 0:
                # Someone else holds the account's slots: nothing of ours will free one.
                self._pause_admissions(self._window.consecutive_limited, exc.retry_after)
            return
        except RateLimitedError as exc:
            self._limited_1302 += 1
            self._back_to_queue(job, exc, needs_lookup=False)
            self._limiter.pause(self._server_delay(exc.retry_after))
            return
        except InvalidRequestError as exc:
            # Refused body. After an unclear earlier attempt (inside the session's
            # retries) the refusal may be for the now-duplicate external id: one
            # look-up tells a landed task from a truly invalid request.
            try:
                task = await self._lookup(job, since=None)
            except KlingError:
                task = None
            if task is None:
                self._fail_unsent(job, exc, retryable=False)
                return
            job.clean = False
        except (ValidationError, ContentPolicyError, PermissionDeniedError) as exc:
            self._fail_unsent(job, exc, retryable=False)
            return
        except (AuthenticationError, AccountError) as exc:
            self._fail_unsent(job, exc, retryable=True)
            self._halt(
                NotStartedError(f"admissions stopped: {type(exc).__name__}", reason="account")
            )
            return
        except (CreateOutcomeUnknownError, TransportError, APIError) as exc:
            # Unclear (or server-side) failure: the task may exist. Look it up
            # before any new create; give up after a few rounds (resume retries).
            job.create_rounds += 1
            if job.create_rounds >= _MAX_CREATE_ROUNDS:
                self._fail_unsent(job, exc, retryable=True)
                return
            self._back_to_queue(job, exc, needs_lookup=True)
            self._pause_admissions(job.create_rounds, None)
            return
        self._on_created(job, task)

    def _retry_delay(self, attempt: int) -> float:
        policy = self._session.config.retry
        return backoff_delay(
            attempt,
            initial=policy.initial_delay,
            maximum=policy.max_delay,
            multiplier=policy.multiplier,
            rng=self._rng,
        )

    def _server_delay(self, retry_after: float | None) -> float:
        """How long to pause on a 1302/429: ``Retry-After`` when given (0 in tests)."""
        if is_testing():
            return 0.0
        return retry_after if retry_after is not None else self._retry_delay(1)

    def _pause_admissions(self, attempt: int, retry_after: float | None) -> None:
        delay = max(self._retry_delay(attempt), self._server_delay(retry_after))
        self._admit_not_before = max(self._admit_not_before, time.monotonic() + delay)

    def _back_to_queue(self, job: _Job, exc: BaseException, *, needs_lookup: bool) -> None:
        if job is self._probe_job:
            self._probe_job = None
        self._release_slots(job, confirmed=False)
        if job.reserved_set:
            self._unreserve(job, 0.0)
        job.phase = _Phase.QUEUED
        job.needs_lookup = job.needs_lookup or needs_lookup
        if self._journal is not None and not job.needs_lookup:
            self._journal.mark_pending(job.key)
        kind = (
            EventKind.THROTTLED
            if isinstance(exc, (ConcurrencyLimitedError, RateLimitedError))
            else EventKind.RETRIED
        )
        self._emit(kind, job, error=exc)
        self._queue.appendleft(job)

    def _fail_unsent(self, job: _Job, exc: BaseException, *, retryable: bool) -> None:
        """End a job whose create was refused or could not be settled.

        ``retryable`` rows are looked up by external id, then created, on resume.
        """
        if job is self._probe_job:
            self._probe_job = None
        self._release_slots(job, confirmed=False)
        if job.reserved_set:
            self._unreserve(job, 0.0)
        if self._journal is not None:
            self._journal.mark_error(
                job.key, message=str(exc), error_type=type(exc).__name__, retryable=retryable
            )
        self._finish(job, "error", None, exc)

    def _on_created(self, job: _Job, task: Task) -> None:
        now = time.monotonic()
        if job is self._probe_job:
            self._probe_job = None
        job.task = task
        job.created_at = now
        job.phase = _Phase.RUNNING
        if self._journal is not None:
            self._journal.mark_created(
                job.key, task_id=task.id, status=task.raw_status or task.status.value
            )
        self._window.on_accepted()
        self._confirmed_slots += job.slots
        self._max_running_seen = max(self._max_running_seen, self._confirmed_slots)
        self._tasks_polled += 1
        self._running.add(job)
        self._track(job)
        self._emit(EventKind.CREATED, job)
        self._wake_admission()
        if task.is_terminal:
            self._on_terminal(job, task, noticed=now)
            return
        self._schedule_next(job, now)

    def _track(self, job: _Job) -> None:
        """Index a job for callbacks (by task id and external id)."""
        if not job.callbacks:
            return
        if job.task is not None and job.task.id:
            self._by_task_id[job.task.id] = job
        self._by_external_id[job.external_id] = job

    def _untrack(self, job: _Job) -> None:
        if job.task is not None:
            self._by_task_id.pop(job.task.id, None)
        self._by_external_id.pop(job.external_id, None)

    # --- polling ------------------------------------------------------------------------

    def _lane(self, job: _Job) -> str:
        return job.endpoint.name if job.endpoint.is_turbo else ""

    def _schedule(self, job: _Job, *, due: float) -> None:
        job.gen += 1
        job.due = due
        heap = self._heaps.setdefault(self._lane(job), [])
        heapq.heappush(heap, (due, next(self._heap_seq), job.gen, job))
        self._poll_wake.set()

    def _schedule_next(self, job: _Job, now: float) -> None:
        elapsed = now - job.created_at
        target = self._planner.next_poll(
            job.kind,
            elapsed,
            job.polls,
            batched=job.endpoint.is_turbo,
            callbacks=job.callbacks,
            reconcile_interval=self._reconcile_interval,
        )
        job.step = target - elapsed
        self._schedule(job, due=job.created_at + target)

    def _pop_due(self, heap: list[tuple[float, int, int, _Job]], horizon: float) -> list[_Job]:
        jobs: list[_Job] = []
        while heap and heap[0][0] <= horizon:
            _, _, gen, job = heapq.heappop(heap)
            if gen == job.gen and job.phase is _Phase.RUNNING:
                job.gen += 1  # consumed: a later callback or poll reschedules
                jobs.append(job)
        return jobs

    def _next_due(self) -> float | None:
        best: float | None = None
        for heap in self._heaps.values():
            while heap and (heap[0][2] != heap[0][3].gen or heap[0][3].phase is not _Phase.RUNNING):
                heapq.heappop(heap)  # stale
            if heap and (best is None or heap[0][0] < best):
                best = heap[0][0]
        return best

    async def _poll_loop(self) -> None:
        assert self._poll_send is not None  # noqa: S101
        while True:
            if self._finished():
                return
            due = self._next_due()
            now = time.monotonic()
            if due is None or due > now:
                await self._poll_wake.wait(None if due is None else due - now)
                continue
            for lane, heap in list(self._heaps.items()):
                if not heap or heap[0][0] > now:
                    continue
                if lane == "":
                    for job in self._pop_due(heap, now):
                        await self._poll_send.send(("", [job]))
                    continue
                group = self._pop_due(heap, now)
                group.extend(self._pull_forward(heap, now, -len(group) % self._ids_per_query))
                for start in range(0, len(group), self._ids_per_query):
                    await self._poll_send.send((lane, group[start : start + self._ids_per_query]))

    def _pull_forward(
        self, heap: list[tuple[float, int, int, _Job]], now: float, room: int
    ) -> list[_Job]:
        """Turbo tasks due soon ride along in a batch query that goes out anyway."""
        taken: list[_Job] = []
        keep: list[tuple[float, int, int, _Job]] = []
        while heap and len(taken) < room:
            entry = heapq.heappop(heap)
            due, _, gen, job = entry
            if gen != job.gen or job.phase is not _Phase.RUNNING:
                continue
            if due - now <= _BATCH_PULL_FORWARD * max(job.step, 0.0):
                job.gen += 1
                taken.append(job)
            else:
                keep.append(entry)
                if len(keep) >= room:
                    break
        for entry in keep:
            heapq.heappush(heap, entry)
        return taken

    async def _poll_worker(self, items: MemoryObjectReceiveStream[tuple[str, list[_Job]]]) -> None:
        async with items:
            async for lane, jobs in items:
                if lane == "":
                    await self._poll_one(jobs[0])
                else:
                    await self._poll_many(endpoint_for(lane), jobs)
                self._check_done()

    async def _poll_one(self, job: _Job) -> None:
        assert job.task is not None  # noqa: S101
        sent = time.monotonic()
        self._status_requests += 1
        try:
            task = await self._session.get(job.endpoint, job.task.id, limiter=self._limiter)
        except KlingError as exc:
            self._poll_failed(job, exc)
            return
        self._on_status(job, task, sent)

    async def _poll_many(self, endpoint: Endpoint, jobs: list[_Job]) -> None:
        sent = time.monotonic()
        self._status_requests += 1
        ids = [job.task.id for job in jobs if job.task is not None]
        try:
            tasks = await self._session.get_many(
                task_ids=ids, endpoint=endpoint, limiter=self._limiter
            )
        except KlingError as exc:
            for job in jobs:
                self._poll_failed(job, exc)
            return
        found = {task.id: task for task in tasks}
        for job in jobs:
            assert job.task is not None  # noqa: S101
            task = found.get(job.task.id)
            if task is None:
                self._poll_failed(job, NotFoundError("task not in batch answer", http_status=200))
            else:
                self._on_status(job, task, sent)

    def _poll_failed(self, job: _Job, exc: KlingError) -> None:
        if job.phase is not _Phase.RUNNING:
            return
        now = time.monotonic()
        if isinstance(exc, RateLimitedError):
            self._limited_1302 += 1
            self._limiter.pause(self._server_delay(exc.retry_after))
        fatal = isinstance(exc, (AuthenticationError, AccountError, PermissionDeniedError))
        if isinstance(exc, NotFoundError):
            job.not_found += 1
            fatal = job.not_found > _MAX_NOT_FOUND
        else:
            job.poll_errors += 1
        timed_out = now - job.created_at > self._poll_policy.timeout
        if fatal or timed_out:
            error: KlingError = exc
            if timed_out and not fatal and job.task is not None:
                error = WaitTimeoutError(job.task, self._poll_policy.timeout)
            self._end_running(job, now)
            self._unreserve(job, job.reserved or 0.0)  # it may be charged: assume so
            if self._journal is not None:
                self._journal.mark_error(
                    job.key, message=str(error), error_type=type(error).__name__, retryable=True
                )
            self._finish(job, "error", job.task, error)
            return
        self._emit(EventKind.RETRIED, job, error=exc)
        attempt = job.not_found + job.poll_errors
        delay = max(self._retry_delay(attempt), self._poll_policy.interval * 0.1)
        job.step = max(job.step, delay)
        self._schedule(job, due=now + min(delay, self._poll_policy.max_interval))

    def _on_status(self, job: _Job, task: Task, sent: float) -> None:
        if job.phase is not _Phase.RUNNING:
            return
        job.polls += 1
        self._polls_of_followed += 1
        job.not_found = 0
        job.postponed = False
        now = time.monotonic()
        if task.external_id is None:
            task = attrs.evolve(task, external_id=job.external_id)
        job.task = task
        if task.is_terminal:
            self._on_terminal(job, task, noticed=now)
            return
        job.lower = max(job.lower, sent - job.created_at)
        if task.status is TaskStatus.PROCESSING and not job.running_seen:
            job.running_seen = True
            self._emit(EventKind.RUNNING, job)
        self._schedule_next(job, now)

    def _end_running(self, job: _Job, now: float) -> None:
        """Free a task's slots (it ended, or we stop following it)."""
        del now
        job.gen += 1
        self._running.discard(job)
        self._untrack(job)
        self._release_slots(job, confirmed=True)

    def _on_terminal(self, job: _Job, task: Task, *, noticed: float, exact: bool = False) -> None:
        job.task = task
        elapsed = max(noticed - job.created_at, 1e-6)
        self._end_running(job, noticed)
        if not task.failed:
            self._window.on_completed(job.slots)
        if job.clean:
            if task.succeeded:
                lower = elapsed if exact else job.lower
                server = _server_duration(task)
                self._planner.observe(job.kind, observed_duration(lower, elapsed, server))
            self._latencies.append(elapsed)
        units = task.units or 0.0
        self._unreserve(job, units)
        self._units += units
        if task.succeeded and units > 0:
            self._budget.learn(job.kind, units, job.slots)
        self._journal_terminal(job.key, task)
        if task.succeeded:
            self._emit(EventKind.SUCCEEDED, job)
            if self._download_dir is not None and task.files:
                job.phase = _Phase.DOWNLOADING
                self._send_download(job)
                return
            self._finish(job, "succeed", task, None)
        else:
            error = TaskFailedError(task)
            self._emit(EventKind.FAILED, job, error=error)
            self._finish(job, "failed", task, error)

    # --- callbacks ----------------------------------------------------------------------

    def _on_callback(self, event: CallbackEvent) -> None:
        hint = event.task
        job = self._by_task_id.get(hint.id) if hint.id else None
        if job is None and hint.external_id:
            job = self._by_external_id.get(hint.external_id)
        if job is None or job.phase is not _Phase.RUNNING:
            return
        if not hint.is_terminal:
            if hint.status is TaskStatus.PROCESSING and not job.running_seen:
                job.running_seen = True
                self._emit(EventKind.RUNNING, job)
            return
        task = parse_task(job.endpoint, hint.raw)
        if event.verified and (task.failed or task.files) and task.id:
            # Signed by the gateway and carrying the result: as good as a query.
            if task.external_id is None:
                task = attrs.evolve(task, external_id=job.external_id)
            self._on_terminal(job, task, noticed=time.monotonic(), exact=True)
            self._check_done()
            return
        # Unsigned (or incomplete): a hint to look now.
        self._schedule(job, due=time.monotonic())

    # --- downloads ----------------------------------------------------------------------

    def _send_download(self, job: _Job) -> None:
        assert self._download_send is not None  # noqa: S101
        self._download_send.send_nowait(job)

    async def _download_worker(self, jobs: MemoryObjectReceiveStream[_Job]) -> None:
        async with jobs:
            async for job in jobs:
                await self._download_job(job)
                self._check_done()

    async def _download_job(self, job: _Job) -> None:
        assert job.task is not None  # noqa: S101
        assert self._download_dir is not None  # noqa: S101
        try:
            files = await self._download_files(job)
        except (DownloadError, TransportError, APIError, OSError) as exc:
            if self._journal is not None:
                self._journal.mark_error(
                    job.key,
                    message=str(exc),
                    error_type=type(exc).__name__,
                    retryable=True,
                    task=job.task.raw,
                )
            self._finish(job, "error", job.task, exc)
            return
        if self._journal is not None:
            self._journal.mark_downloaded(job.key)
        self._finish(job, "succeed", job.task, None, files)

    async def _download_files(self, job: _Job) -> tuple[DownloadedFile, ...]:
        assert job.task is not None  # noqa: S101
        assert self._download_dir is not None  # noqa: S101
        recorded: dict[int, JournalFile] = {}
        if job.entry is not None:
            recorded = {f.index: f for f in job.entry.files}
        refreshed = False
        saved: list[DownloadedFile] = []
        index = 0
        while index < len(job.task.files):
            output = job.task.files[index]
            path = self._download_dir / output.name
            known = recorded.get(index)
            if known is not None and await anyio.to_thread.run_sync(_intact, path, known):
                saved.append(_recorded_file(known, path=path))
                index += 1
                continue
            try:
                file = await self._session.download_url(
                    output.url, path, expected_sha256=known.sha256 if known else None
                )
            except URLExpiredError:
                if refreshed:
                    raise
                refreshed = True
                self._status_requests += 1
                fresh = await self._session.refresh(job.task, limiter=self._limiter)
                job.task = fresh
                self._journal_terminal(job.key, fresh)
                self._emit(EventKind.RETRIED, job, detail="result URL expired; refreshed")
                continue
            if not file.skipped:
                self._downloads += 1
            if self._journal is not None:
                self._journal.add_file(
                    job.key,
                    index=index,
                    path=file.path,
                    url=file.url,
                    size=file.size,
                    sha256=file.sha256,
                )
            self._emit(EventKind.DOWNLOADED, job, detail=str(file.path))
            saved.append(file)
            index += 1
        return tuple(saved)

    # --- ending jobs --------------------------------------------------------------------

    def _finish(
        self,
        job: _Job,
        status: JobStatus,
        task: Task | None,
        error: BaseException | None,
        files: tuple[DownloadedFile, ...] = (),
        *,
        resumed: bool = False,
    ) -> None:
        """Hand a job's result out (the journal already holds its end state)."""
        if job.phase is _Phase.DONE:
            return
        job.phase = _Phase.DONE
        result = JobResult(
            key=job.key,
            request=job.request,
            task=task,
            error=error,
            files=files,
            status=status,
            resumed=resumed,
        )
        job.result = result
        job.entry = None
        self._counts[status] += 1
        self._unfinished.discard(job)
        self._outstanding -= 1
        if status == "not_started":
            self._emit(EventKind.NOT_STARTED, job, error=error)
        elif status == "error" and not resumed:
            self._emit(EventKind.FAILED, job, error=error)
        if job.waiter is not None:
            job.waiter.set()
        self._results.put(result)
        if status in ("failed", "error") and self._fail_fast and not resumed:
            self._halt(NotStartedError("fail_fast: an earlier job failed", reason="fail_fast"))
        self._feed_wake.set()
        self._check_done()

    def _idle(self) -> bool:
        return self._outstanding == 0 and not self._sources

    def _finished(self) -> bool:
        return self._done is not None and self._done.is_set()

    def _check_done(self) -> None:
        if self._idle():
            self._results.wake.set()
            if self._closing and self._done is not None and not self._done.is_set():
                self._done.set()
                self._close_streams()
                self._wake_admission()
                self._feed_wake.set()
                self._poll_wake.set()

    def _close_streams(self) -> None:
        for stream in (self._create_send, self._poll_send, self._download_send):
            if stream is not None:
                stream.close()

    def _abandon_unfinished(self) -> None:
        """After a cancellation: settle every handle so nobody waits forever."""
        for job in list(self._unfinished):
            if job.phase is _Phase.DONE:
                continue
            job.phase = _Phase.DONE
            error = JobCancelledError(
                f"the batch stopped before job {job.key!r} ended"
                + ("; its task keeps running on the server" if job.task is not None else "")
            )
            job.result = JobResult(
                key=job.key, request=job.request, task=job.task, error=error, status="error"
            )
            if job.waiter is not None:
                job.waiter.set()
        self._unfinished.clear()

    def _emit(
        self,
        kind: EventKind,
        job: _Job,
        *,
        error: BaseException | None = None,
        detail: str = "",
    ) -> None:
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

    def _journal_terminal(self, key: str, task: Task) -> None:
        """Record a terminal task (and its outputs) in the journal, if there is one."""
        if self._journal is not None:
            self._journal.mark_terminal(
                key,
                succeeded=task.succeeded,
                task_id=task.id,
                status=task.raw_status or task.status.value,
                task=task.raw,
                units=task.units,
                message=task.message,
            )


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


def _intact(path: Path, known: JournalFile) -> bool:
    """Whether ``path`` holds exactly the recorded file (no request needed)."""
    try:
        if not path.is_file() or path.stat().st_size != known.size:
            return False
    except OSError:
        return False
    return file_sha256(path) == known.sha256


def _recorded_file(known: JournalFile, *, path: Path | None = None) -> DownloadedFile:
    return DownloadedFile(
        path=path or known.path, url=known.url, size=known.size, sha256=known.sha256, skipped=True
    )
