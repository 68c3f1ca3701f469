"""The batch: many generations fanned out under one account's limits.

A :class:`Batch` is opened with :meth:`kling_async.KlingSession.batch`. Its stages
live one per module (intake, admission, create, watch, fetch, results); the
facade in ``_facade`` wires them under one task group.
"""

from __future__ import annotations

from ._facade import Batch
from ._job import JobHandle
from ._options import BatchOptions
from ._values import (
    BatchSummary,
    Event,
    EventKind,
    ExternalIdConflictError,
    JobCancelledError,
    JobResult,
    NotStartedError,
    RecordedJobError,
)

__all__ = [
    "Batch",
    "BatchOptions",
    "BatchSummary",
    "Event",
    "EventKind",
    "ExternalIdConflictError",
    "JobCancelledError",
    "JobHandle",
    "JobResult",
    "NotStartedError",
    "RecordedJobError",
]
