"""The batch: many generations fanned out under one account's limits.

A :class:`Batch` is opened with :meth:`kling_async.KlingSession.batch`; this package holds
its stages (intake, admission, create, watch, fetch, results) and the facade that wires them.
"""

from __future__ import annotations

from ._facade import (
    Batch,
    BatchSummary,
    Event,
    EventKind,
    JobCancelledError,
    JobHandle,
    JobResult,
    NotStartedError,
    RecordedJobError,
)

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
