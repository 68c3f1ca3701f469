"""When to look up a create that may have landed, and when to stop (pure: no clock read).

A create whose outcome is unclear (timeout, dropped connection, 5xx, an answer no
parser accepts) may have created a paid task. The gateway finds a task by its
external id only after a lag, so one miss proves nothing. The rules:

- look the task up with growing pauses; adopt it as soon as it is found;
- send the create again only after a miss that comes ``patience`` seconds after the
  last create that may have landed (longer than any plausible lookup lag): a
  gateway is not obliged to refuse a repeated external id, so sending sooner could
  pay twice;
- once the gateway has said the external id is taken (1200/1201 after our own
  send), or every allowed create was unclear, never send again: only look;
- give up after ``deadline`` seconds of doubt: the job is journaled ``unknown``
  with its external id, and the next run looks it up first.
"""

from __future__ import annotations

import enum

from .._classify import Verdict
from ._job import Job

__all__ = ["MAX_CREATE_ROUNDS", "Step", "lookup_delay", "next_step"]

#: Creates of one job whose outcome may be unclear before the batch only looks.
MAX_CREATE_ROUNDS = 5


class Step(enum.Enum):
    """What to do after a lookup that did not find the task."""

    LATER = "later"
    """Look again after a pause."""
    CREATE = "create"
    """The create certainly did not land: send it (again)."""
    GIVE_UP = "give_up"
    """Stop: journal the job ``unknown`` with its external id."""


def next_step(job: Job, missed: Verdict, *, now: float, patience: float, deadline: float) -> Step:
    """Decide what follows a lookup that did not find the job's task.

    Args:
        job: The job (``may_exist``; its ``unclear_since``, ``last_sent``,
            ``exists`` and ``create_rounds`` say what is known).
        missed: How the lookup failed: ``NOT_FOUND`` for a clean miss, else the
            read verdict of its error (a halt ends the doubt at once).
        now: Monotonic seconds.
        patience: Seconds after the last possible landing before a clean miss
            proves the create did not land.
        deadline: Seconds of doubt after which the batch gives up.

    Returns:
        The step.
    """
    if missed.halts or now - job.unclear_since >= deadline:
        return Step.GIVE_UP
    if job.exists or job.create_rounds >= MAX_CREATE_ROUNDS:
        return Step.LATER
    if missed is not Verdict.NOT_FOUND or now - job.last_sent < patience:
        return Step.LATER
    return Step.CREATE


def lookup_delay(lookups: int, *, interval: float, cap: float) -> float:
    """The pause before the next lookup: from ``interval``, growing 1.5x, capped.

    Args:
        lookups: Lookups of this job so far in this doubt.
        interval: The first pause, seconds.
        cap: The longest pause, seconds.

    Returns:
        Seconds.
    """
    return min(max(cap, interval), interval * 1.5 ** max(0, lookups - 1))
