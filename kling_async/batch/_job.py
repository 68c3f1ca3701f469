"""One job's record as it travels through the stages, and the handle its submitter holds.

The record is the message the stages pass along; each group of fields below
belongs to the stage named beside it, and only that stage writes them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import anyio

from .._endpoints import Endpoint
from .._journal import JournalEntry
from .._schedule import Kind
from .._task import Task
from ._values import JobCancelledError, JobResult

if TYPE_CHECKING:
    from .._models import Request

__all__ = ["Job", "JobHandle", "Phase"]


class Phase(enum.Enum):
    """Where a job is in the pipeline."""

    QUEUED = 0
    CREATING = 1
    RUNNING = 2
    DOWNLOADING = 3
    DONE = 4


class Job:
    """What the batch keeps per job (small: 10,000 in flight must stay cheap)."""

    __slots__ = (
        "callbacks",
        "cancelled",
        "clean",
        "create_rounds",
        "created_at",
        "due",
        "empty_answers",
        "endpoint",
        "entry",
        "exists",
        "external_id",
        "gen",
        "held_at_admit",
        "key",
        "kind",
        "last_sent",
        "lookups",
        "lower",
        "may_exist",
        "not_found",
        "phase",
        "poll_errors",
        "polls",
        "postponed",
        "probing",
        "request",
        "reserved",
        "reserved_set",
        "result",
        "retries",
        "running_seen",
        "seen_gen",
        "seen_lower",
        "seen_surv",
        "slots",
        "step",
        "task",
        "unclear_since",
        "unexpected",
        "verify",
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
        *,
        callbacks: bool = False,
    ) -> None:
        # Identity (intake).
        self.key = key
        self.request = request
        self.endpoint = endpoint
        self.external_id = external_id
        self.kind = kind
        self.slots = slots
        self.callbacks = callbacks
        self.entry: JournalEntry | None = None
        self.phase = Phase.QUEUED
        self.task: Task | None = None
        self.cancelled = False  # its submitter cancelled it before it was sent
        # Admission.
        self.reserved: float | None = None
        self.reserved_set = False
        self.probing = False
        self.held_at_admit = 0  # slots confirmed held when it was admitted (1303 evidence)
        # Create.
        self.may_exist = False  # a create may have landed: look it up before sending again
        self.exists = False  # the gateway said its external id is taken after our own send
        self.unclear_since = 0.0  # monotonic: first create whose outcome is unclear
        self.last_sent = 0.0  # monotonic: latest create that may have landed
        self.create_rounds = 0
        self.lookups = 0  # lookups in the current doubt
        self.retries = 0  # creates refused before they were sent (connection refused)
        # Watch.
        self.created_at = 0.0
        self.lower = 0.0
        # Survival at ``lower`` (the polls' evidence), cached for the likeliest-ended pick.
        self.seen_gen = -1
        self.seen_lower = -1.0
        self.seen_surv = 1.0
        self.step = 0.0
        self.polls = 0
        self.gen = 0
        self.not_found = 0
        self.poll_errors = 0
        self.unexpected = 0
        self.postponed = False
        self.empty_answers = 0  # "succeeded" answers that carried no output yet
        self.verify = False  # next poll: a single query, whatever its lane
        self.due = 0.0
        self.clean = True  # its creation time is known: its life may be learned
        self.running_seen = False
        # Results.
        self.result: JobResult | None = None
        self.waiter: anyio.Event | None = None


class JobHandle:
    """A submitted job: await it for its terminal :class:`Task`.

    ``await handle`` returns the succeeded task, or raises the job's error
    (:class:`TaskFailedError` when the task failed). :meth:`wait` returns the
    whole :class:`JobResult` instead; :meth:`cancel` withdraws a job not sent yet.

    Args:
        job: The batch's record of the job.
        cancel: What withdraws it from the batch's queue (``None``: never possible).
    """

    __slots__ = ("_cancel", "_job")

    def __init__(self, job: Job, cancel: Callable[[Job], bool] | None = None) -> None:
        self._job = job
        self._cancel = cancel

    def __repr__(self) -> str:
        return f"JobHandle(key={self._job.key!r}, done={self.done()})"

    @property
    def key(self) -> str:
        """The job's key."""
        return self._job.key

    @property
    def external_task_id(self) -> str:
        """The external id the job's create carries (known at once, before any request)."""
        return self._job.external_id

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

    def cancel(self) -> bool:
        """Withdraw the job if nothing has been sent for it yet.

        A queued job is removed: it is never created and never paid for, and ends
        ``not_started`` with a :class:`NotStartedError` whose ``reason`` is
        ``cancelled`` (journaled as not started, so running the batch again with
        the same job creates it). Once its create has been sent (or may have been,
        in an earlier run) it is too late: the task is followed to its end as usual.

        Returns:
            ``True`` when the job was withdrawn; ``False`` when it was already sent,
            may have been sent, or has ended.
        """
        if self._cancel is None or self._job.result is not None:
            return False
        return self._cancel(self._job)

    async def wait(self) -> JobResult:
        """Wait until the job ends.

        Returns:
            The result (never raises for the job's own failure).
        """
        job = self._job
        while job.result is None:
            if job.waiter is None:
                job.waiter = anyio.Event()
            await job.waiter.wait()
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
