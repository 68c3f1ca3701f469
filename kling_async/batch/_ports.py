"""The narrow interfaces the stages talk through, and the journal's null implementation.

- :class:`SessionPort`: what the batch needs from a session (a
  :class:`~kling_async.KlingSession` satisfies it; tests pass a fake). The batch
  never imports the session module.
- :class:`JournalPort`: the journal transitions the stages write;
  :class:`NullJournal` stands in when no journal file is used, so no stage asks
  whether there is one.
- :class:`SlotLedger` and :class:`RunningView`: the two signals that travel
  against the pipeline's direction (a task ended or was refused: admission's
  business; how many running tasks have probably ended: the watcher's knowledge).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .._backends import Backend
from .._config import ClientConfig, RetryPolicy
from .._download import DownloadedFile
from .._endpoints import Endpoint
from .._journal import JobState, JournalEntry
from .._ratelimit import RateLimiter
from .._task import Task

if TYPE_CHECKING:
    from .._models import Request
    from ._job import Job
    from ._probe import ProbeAudit
    from ._sums import FreedSlots

__all__ = [
    "AdmissionPort",
    "Follower",
    "JournalPort",
    "NullJournal",
    "RunningView",
    "SessionPort",
    "SlotLedger",
    "monotonic_of",
]


class SessionPort(Protocol):
    """What the batch uses of a session."""

    @property
    def config(self) -> ClientConfig:
        """The session's configuration (retry and poll policies)."""
        ...

    @property
    def backend(self) -> Backend:
        """The API the session speaks (ids per query, list query).

        The batch reads it with ``getattr``: a session without it is taken for
        the gateway's.
        """
        ...

    async def create(
        self,
        request: Request,
        *,
        external_task_id: str | None = ...,
        limiter: RateLimiter | None = ...,
        retry: RetryPolicy | None = ...,
        hold_slot: bool = ...,
    ) -> Task:
        """Create a task (see :meth:`KlingSession.create`); the batch admits on its own."""
        ...

    async def get(
        self,
        endpoint: str | Endpoint,
        task_id: str | None = ...,
        /,
        *,
        external_task_id: str | None = ...,
        limiter: RateLimiter | None = ...,
    ) -> Task:
        """Query one task by id or external id."""
        ...

    async def get_many(
        self,
        *,
        task_ids: Sequence[str] = ...,
        external_task_ids: Sequence[str] = ...,
        endpoint: str | Endpoint = ...,
        limiter: RateLimiter | None = ...,
        skip_unreadable: bool = ...,
    ) -> list[Task]:
        """Query many turbo tasks in one request."""
        ...

    async def list_tasks(
        self,
        endpoint: str | Endpoint,
        *,
        page: int = ...,
        page_size: int = ...,
        limiter: RateLimiter | None = ...,
        skip_unreadable: bool = ...,
    ) -> list[Task]:
        """One page of a family's recent tasks, newest first (Kling's own API only)."""
        ...

    async def refresh(self, task: Task, *, limiter: RateLimiter | None = ...) -> Task:
        """Query a task again."""
        ...

    async def download_url(
        self,
        url: str,
        path: str | Path,
        *,
        expected_size: int | None = ...,
        expected_sha256: str | None = ...,
        within: str | Path | None = ...,
    ) -> DownloadedFile:
        """Save one result URL to a file (inside ``within`` when given)."""
        ...


class JournalPort(Protocol):
    """The journal transitions the stages write (see :mod:`kling_async._journal`)."""

    @property
    def batch_id(self) -> str:
        """The batch's id."""
        ...

    def check(self, key: str, endpoint: str, fingerprint: str) -> JournalEntry | None:
        """Refuse a key recorded with another request; return its row when it exists."""
        ...

    def record(
        self,
        key: str,
        *,
        endpoint: str,
        fingerprint: str,
        external_task_id: str,
        request: Mapping[str, Any] | None = ...,
    ) -> JournalEntry | None:
        """Register a job before anything is sent; return its row on a resume."""
        ...

    def mark_pending(self, key: str) -> None:
        """Refused before anything was created: back to waiting."""
        ...

    def mark_creating(self, key: str) -> None:
        """A create is about to be sent."""
        ...

    def mark_created(
        self, key: str, *, task_id: str, status: str, created_wall: float | None = ...
    ) -> None:
        """The task exists."""
        ...

    def mark_terminal(
        self,
        key: str,
        *,
        succeeded: bool,
        task_id: str,
        status: str,
        task: Mapping[str, Any],
        units: float | None,
        message: str | None,
    ) -> None:
        """The task ended."""
        ...

    def mark_error(
        self,
        key: str,
        *,
        message: str,
        error_type: str,
        retryable: bool,
        task: Mapping[str, Any] | None = ...,
    ) -> None:
        """The job ended with an error."""
        ...

    def mark_not_started(self, key: str, *, message: str) -> None:
        """The job was never sent."""
        ...

    def add_file(
        self, key: str, *, index: int, path: Path, url: str, size: int, sha256: str
    ) -> None:
        """One output was saved."""
        ...

    def mark_downloaded(self, key: str) -> None:
        """Every output was saved."""
        ...

    def mark_unknown(self, key: str, *, external_task_id: str, message: str) -> None:
        """The create may have landed but could not be found before the deadline."""
        ...

    def get(self, key: str) -> JournalEntry | None:
        """Read one job's row."""
        ...

    def keys_in(self, states: Iterable[JobState | str]) -> list[str]:
        """The keys of the jobs in any of ``states``."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...


class NullJournal:
    """A journal that remembers nothing: every job is new, every transition is dropped.

    Args:
        batch_id: The batch's id.
    """

    def __init__(self, batch_id: str) -> None:
        self._batch_id = batch_id

    def __repr__(self) -> str:
        return f"NullJournal(batch_id={self._batch_id!r})"

    @property
    def batch_id(self) -> str:
        """The batch's id."""
        return self._batch_id

    def check(self, key: str, endpoint: str, fingerprint: str) -> JournalEntry | None:
        """Every key is new."""
        del key, endpoint, fingerprint
        return None

    def record(
        self,
        key: str,
        *,
        endpoint: str,
        fingerprint: str,
        external_task_id: str,
        request: Mapping[str, Any] | None = None,
    ) -> JournalEntry | None:
        """Nothing to resume."""
        del key, endpoint, fingerprint, external_task_id, request
        return None

    def mark_pending(self, key: str) -> None:
        """Dropped."""

    def mark_creating(self, key: str) -> None:
        """Dropped."""

    def mark_created(
        self, key: str, *, task_id: str, status: str, created_wall: float | None = None
    ) -> None:
        """Dropped."""

    def mark_terminal(
        self,
        key: str,
        *,
        succeeded: bool,
        task_id: str,
        status: str,
        task: Mapping[str, Any],
        units: float | None,
        message: str | None,
    ) -> None:
        """Dropped."""

    def mark_error(
        self,
        key: str,
        *,
        message: str,
        error_type: str,
        retryable: bool,
        task: Mapping[str, Any] | None = None,
    ) -> None:
        """Dropped."""

    def mark_not_started(self, key: str, *, message: str) -> None:
        """Dropped."""

    def add_file(
        self, key: str, *, index: int, path: Path, url: str, size: int, sha256: str
    ) -> None:
        """Dropped."""

    def mark_downloaded(self, key: str) -> None:
        """Dropped."""

    def mark_unknown(self, key: str, *, external_task_id: str, message: str) -> None:
        """Dropped."""

    def get(self, key: str) -> JournalEntry | None:
        """Nothing is recorded."""
        del key
        return None

    def keys_in(self, states: Iterable[JobState | str]) -> list[str]:
        """Nothing is recorded."""
        del states
        return []

    def close(self) -> None:
        """Nothing to release."""


def monotonic_of(wall: float | None, *, now: float | None = None) -> float:
    """Map a Unix time to this process's monotonic clock (never later than now).

    Args:
        wall: Unix time, or ``None`` (now).
        now: ``time.monotonic()`` to map against (default: read it).

    Returns:
        The monotonic instant.
    """
    mono = time.monotonic() if now is None else now
    if wall is None:
        return mono
    return mono - max(0.0, time.time() - wall)


class SlotLedger(Protocol):
    """Admission's side: the stages downstream report slots taken and freed."""

    def hold_resumed(self, job: Job) -> None:
        """A task that exists already (earlier run, or watched again) holds its slots."""
        ...

    def reopen(self, job: Job, booked: float) -> None:
        """A task booked as ended is running after all: hold its slots, unbook its units."""
        ...

    def confirm(self, job: Job) -> None:
        """The job's task exists: its slots are held for sure."""
        ...

    def release(self, job: Job, *, confirmed: bool) -> None:
        """The job holds no slot any more (ended, or never created)."""
        ...

    def settle(self, job: Job, units: float, *, completed: bool) -> None:
        """Book what the job's task cost; ``completed``: it ended cleanly."""
        ...

    def halt_for(self, error: BaseException, *, reason: str) -> None:
        """A setting or the account is wrong: admit nothing more."""
        ...


class RunningView(Protocol):
    """The watcher's side: what admission may ask about the tasks running."""

    @property
    def audit(self) -> ProbeAudit:
        """Checks that accepted probes landed in slots the batch's own tasks freed."""
        ...

    def expected_freed(self, now: float) -> FreedSlots:
        """Slots the running tasks have probably freed unnoticed, and how fast that grows."""
        ...

    def none_ended_by(self, sent: float) -> None:
        """A 1303 answered at ``sent``: none of the running tasks had ended then."""
        ...

    def none_more_ended_by(self, sent: float) -> None:
        """A 1303 at ``sent``: no task had ended then beyond those probes proved ended."""
        ...

    def running_count(self) -> int:
        """Tasks being watched."""
        ...

    def probe_landed(self) -> None:
        """A probe was accepted: a task ended unnoticed (list queries look now)."""
        ...


class AdmissionPort(SlotLedger, Protocol):
    """What the create stage tells admission about each create's outcome."""

    def requeue(self, job: Job, error: BaseException, *, throttled: bool) -> None:
        """Nothing was created: the job goes back to the front of the queue."""
        ...

    def no_slot(
        self, job: Job, error: BaseException, *, sent: float, retry_after: float | None
    ) -> None:
        """A 1303 at ``sent``."""
        ...

    def rate_refused(self, job: Job, error: BaseException, retry_after: float | None) -> None:
        """A 1302/429 on a create."""
        ...

    def unreserve(self, job: Job, actual: float) -> None:
        """Release the job's budget reservation."""
        ...

    def create_begun(self) -> None:
        """A job in doubt goes back to a create worker."""
        ...

    def create_done(self) -> None:
        """A create worker is done with a job."""
        ...


class Follower(Protocol):
    """The watcher, as the create stage sees it."""

    def expect(self, job: Job) -> None:
        """The job's create is about to be sent (callbacks may beat its answer)."""
        ...

    def follow(self, job: Job, task: Task, *, clean: bool) -> None:
        """Start watching a task that exists."""
        ...
