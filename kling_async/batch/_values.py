"""What a batch hands out: results, events, the summary, and the errors of its jobs.

These are plain frozen values; every stage of the batch builds them, none keeps
behaviour in them.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Literal, Union

import attrs

from .._download import DownloadedFile
from .._errors import KlingError
from .._task import Task

if TYPE_CHECKING:
    from .._models import Request

__all__ = [
    "BatchSummary",
    "Event",
    "EventKind",
    "ExternalIdConflictError",
    "JobCancelledError",
    "JobResult",
    "JobStatus",
    "NotStartedError",
    "RecordedJobError",
    "Submission",
]

#: What a job ended as.
JobStatus = Literal["succeed", "failed", "error", "not_started"]

#: A submission: a request, or a ``(key, request)`` pair.
Submission = Union["Request", tuple[str, "Request"]]


class NotStartedError(KlingError):
    """The job was never sent: the budget ran out, or admissions stopped.

    Attributes:
        reason: ``budget``, ``fail_fast``, ``key`` (the API key was refused),
            ``route`` (the endpoint path or base URL is wrong), ``connect`` (the
            gateway cannot be reached), ``account`` (the account cannot take paid
            work), ``cancelled`` (:meth:`JobHandle.cancel`), ``resume`` (a job
            resumed from the journal whose create never reached the gateway), or
            the reason given to :meth:`Batch.stop_admitting`.
        setting: For ``key``, ``route`` and ``connect``, the setting to fix
            (``KLING_API_KEY``, ``KLING_ENDPOINT_PATH / KLING_BASE_URL``,
            ``KLING_BASE_URL``); ``None`` otherwise.
    """

    def __init__(self, message: str, *, reason: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.setting = setting


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


class ExternalIdConflictError(KlingError):
    """The gateway already holds a task with this job's external id, and this batch never sent it.

    The batch does not adopt a task it did not create (it may be another request's);
    nothing more is sent for the job.

    Attributes:
        external_task_id: The contested external id.
        task_id: The id of the task that holds it, when a lookup found it.
    """

    def __init__(self, *, external_task_id: str, task_id: str | None) -> None:
        held = f" by task {task_id}" if task_id else ""
        super().__init__(
            f"external_task_id {external_task_id!r} is already taken{held}, and this batch "
            "never sent it; not adopted (use another key or batch_id, or look the task up)"
        )
        self.external_task_id = external_task_id
        self.task_id = task_id


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
        external_task_id: The external id the job's create carries (``None`` only
            for an item refused before it became a job), so a task can always be
            looked up on the gateway.
    """

    key: str
    request: Request = attrs.field(repr=False)
    task: Task | None
    error: BaseException | None
    files: tuple[DownloadedFile, ...] = ()
    status: JobStatus
    resumed: bool = False
    external_task_id: str | None = None

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
        max_running: Most slots held at once, as the batch counts them (a probe
            that fills a slot whose task ended unnoticed counts both for a moment).
        latency_p50: Median seconds from creation to noticing the end.
        latency_p90: 90th percentile of that.
        latency_p95: 95th percentile of that.
        latency_p99: 99th percentile of that.
        wall_time: Seconds since the batch opened.
        halted: Why admissions stopped for every job when a setting or the
            account is wrong (the message names the setting to fix), ``None``
            otherwise (a budget, fail-fast or user stop is not a halt).
        unknown: Jobs whose create may have landed but could not be found before
            the reconcile deadline (journaled ``unknown``; the next run looks them
            up first).
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
    halted: str | None = None
    unknown: int = 0


def empty_summary() -> BatchSummary:
    """The figures of a batch that has not started: every count zero.

    Returns:
        The summary.
    """
    return BatchSummary(
        jobs=0,
        succeeded=0,
        failed=0,
        errors=0,
        not_started=0,
        resumed=0,
        units=0.0,
        creates=0,
        status_requests=0,
        lookups=0,
        downloads=0,
        tasks_polled=0,
        polls_per_task=0.0,
        concurrency_limited=0,
        rate_limited=0,
        max_running=0,
        latency_p50=None,
        latency_p90=None,
        latency_p95=None,
        latency_p99=None,
        wall_time=0.0,
    )
