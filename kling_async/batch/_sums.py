"""Sums over a batch's running tasks: freed slots expected, and the likeliest ended task.

The prober asks for these many times a second over up to hundreds of running tasks,
so the log-normal terms are inlined here rather than asked of the planner task by
task: each kind's estimate is read once a call (one kind in most batches), tasks too
young to matter are skipped, and each task's survival at its lower bound is cached
on the job until that bound or the estimates change.
"""

from __future__ import annotations

import math

from .._schedule import Kind, PollPlanner
from ._job import Job

__all__ = ["expected_freed", "likeliest_ended"]

#: Tasks younger than this many sigmas below the median life are skipped by the
#: sums over running tasks: each has ended with probability under 3.2e-5.
_YOUNG_Z = -4.0
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

_Estimate = tuple[float, float, float] | None


def _estimate(planner: PollPlanner, kind: Kind) -> _Estimate:
    """``(mu, sigma, youngest age that counts)`` of ``kind``, or ``None`` before samples."""
    raw = planner.estimate(kind)
    return None if raw is None else (raw[0], raw[1], math.exp(raw[0] + _YOUNG_Z * raw[1]))


def expected_freed(planner: PollPlanner, running: set[Job], now: float) -> tuple[float, float]:
    """Slots ``running`` tasks have probably freed unnoticed, and how fast that grows.

    Args:
        planner: The learned durations.
        running: The tasks.
        now: Monotonic seconds.

    Returns:
        ``(expected slots, slots per second)``; callback-watched tasks count for nothing.
    """
    gen = planner.generation
    estimates: dict[Kind, _Estimate] = {}
    last_kind: Kind | None = None
    est: _Estimate = None
    log, erfc, exp = math.log, math.erfc, math.exp
    expected, rate = 0.0, 0.0
    for job in running:
        if job.callbacks:
            continue
        kind = job.kind
        if kind is not last_kind:
            last_kind = kind
            if kind in estimates:
                est = estimates[kind]
            else:
                est = estimates[kind] = _estimate(planner, kind)
        if est is None:
            continue
        elapsed = now - job.created_at
        mu, sigma, young = est
        if elapsed <= young:
            continue  # the prober looks again by itself when nothing can be timed
        lower = job.lower if job.lower >= job.probe_lower else job.probe_lower
        if job.surv_gen != gen or job.surv_lower != lower:
            job.surv_gen, job.surv_lower = gen, lower
            job.surv_then = planner.survival(kind, lower)
        then = job.surv_then
        if then <= 1e-12:
            expected += job.slots
            continue
        z = (log(elapsed) - mu) / sigma
        p = 1.0 - 0.5 * erfc(z * _INV_SQRT2) / then
        if p > 0.0:
            expected += (p if p < 1.0 else 1.0) * job.slots
        rate += _INV_SQRT_2PI * exp(-0.5 * z * z) / (sigma * elapsed * then) * job.slots
    return expected, rate


def likeliest_ended(planner: PollPlanner, running: set[Job], now: float) -> Job | None:
    """The polled task most likely to have ended by ``now``, by the polls' evidence.

    The probes' credit bound is left out: it restarts at each accepted probe, a
    bookkeeping choice rather than evidence about one task (measured: using it
    costs more status requests).

    Args:
        planner: The learned durations.
        running: The tasks.
        now: Monotonic seconds.

    Returns:
        The task, or ``None`` when none has a chance yet.
    """
    gen = planner.generation
    estimates: dict[Kind, _Estimate] = {}
    last_kind: Kind | None = None
    est: _Estimate = None
    log, erfc = math.log, math.erfc
    best: Job | None = None
    best_p = 0.0
    for job in running:
        if job.callbacks:
            continue
        kind = job.kind
        if kind is not last_kind:
            last_kind = kind
            if kind in estimates:
                est = estimates[kind]
            else:
                est = estimates[kind] = _estimate(planner, kind)
        if est is None:
            continue
        elapsed = now - job.created_at
        if elapsed <= 0.0:
            continue
        mu, sigma, _ = est
        lower = job.lower
        if job.seen_gen != gen or job.seen_lower != lower:
            job.seen_gen, job.seen_lower = gen, lower
            job.seen_surv = planner.survival(kind, lower)
        then = job.seen_surv
        if then <= 1e-12:
            p = 1.0
        else:
            p = 1.0 - 0.5 * erfc((log(elapsed) - mu) / sigma * _INV_SQRT2) / then
        if p > best_p:
            best, best_p = job, p
    return best
