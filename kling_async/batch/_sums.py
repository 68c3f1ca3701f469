"""Sums over a batch's running tasks: freed slots expected, and the likeliest ended task.

The prober asks for these many times a second over up to hundreds of running tasks,
so the log-normal terms are inlined here rather than asked of the planner task by
task: each kind's estimate is read once a call (one kind in most batches), tasks too
young to matter are skipped. The likeliest-ended pick caches each task's survival
at its lower bound on the job until that bound or the estimates change; the
freed-slot sum cannot (its bound moves with every probe's answer).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from typing import NamedTuple

from .._schedule import Kind, PollPlanner
from ._job import Job

__all__ = ["FreedSlots", "expected_freed", "likeliest_ended", "likeliest_ended_k"]

#: Tasks younger than this many sigmas below the median life are skipped by the
#: sums over running tasks: each has ended with probability under 3.2e-5.
_YOUNG_Z = -4.0
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

#: ``(mu, 1 / (sigma * sqrt 2), 1 / (sigma * sqrt(2 pi)), youngest age that counts)``.
_Terms = tuple[float, float, float, float] | None


def _terms(planner: PollPlanner, kind: Kind) -> _Terms:
    """The constants of ``kind``'s log-normal terms, or ``None`` before samples."""
    raw = planner.estimate(kind)
    if raw is None:
        return None
    mu, sigma = raw[0], raw[1]
    return mu, _INV_SQRT2 / sigma, _INV_SQRT_2PI / sigma, math.exp(mu + _YOUNG_Z * sigma)


class FreedSlots(NamedTuple):
    """Slots the running tasks have probably freed unnoticed.

    Attributes:
        expected: Slots expected freed by now.
        rate: Slots per second that count grows at now.
        restart_rate: Slots per second it would grow at if the credit restarted now
            (each counted task's hazard at its age): how soon a probe could be due
            again once the answer to one sent now restarts it.
    """

    expected: float
    rate: float
    restart_rate: float


def expected_freed(
    planner: PollPlanner, running: set[Job], now: float, credit_since: float = -math.inf
) -> FreedSlots:
    """Slots ``running`` tasks have probably freed unnoticed, and how fast that grows.

    Each task counts the chance it ended since the later of its lower bound (a poll
    saw it running) and ``credit_since`` (the probes' credit restarts there for every
    task created before it). Both survivals are computed afresh: the credit moves at
    every probe's answer, so a cache per task would miss almost every time.

    Args:
        planner: The learned durations.
        running: The tasks.
        now: Monotonic seconds.
        credit_since: Monotonic moment the probes' credit counts from (an accepted
            probe, or a refused one while tasks believed running had ended).

    Returns:
        The sums; callback-watched tasks count for nothing.
    """
    terms: dict[Kind, _Terms] = {}
    last_kind: Kind | None = None
    est: _Terms = None
    log, erfc, exp = math.log, math.erfc, math.exp
    expected, rate, restart = 0.0, 0.0, 0.0
    for job in running:
        if job.callbacks:
            continue
        kind = job.kind
        if kind is not last_kind:
            last_kind = kind
            if kind in terms:
                est = terms[kind]
            else:
                est = terms[kind] = _terms(planner, kind)
        if est is None:
            continue
        created = job.created_at
        elapsed = now - created
        mu, inv, dens, young = est
        if elapsed <= young:
            continue  # the prober looks again by itself when nothing can be timed
        slots = job.slots
        z = (log(elapsed) - mu) * inv
        tail = 0.5 * erfc(z)  # survival at its age
        density = dens * exp(-z * z) / elapsed
        # Its hazard now; far in the tail the survival underflows: the normal
        # hazard tends to its argument there (2 z inv per second of age).
        restart += (density / tail if tail > 1e-300 else 2.0 * z * inv / elapsed) * slots
        lower = job.lower
        if credit_since - created > lower:
            lower = credit_since - created
        if lower > 0.0:
            then = 0.5 * erfc((log(lower) - mu) * inv)
            if then <= 1e-12:
                expected += slots
                continue
        else:
            then = 1.0
        p = 1.0 - tail / then
        if p > 0.0:
            expected += (p if p < 1.0 else 1.0) * slots
        rate += density / then * slots
    return FreedSlots(expected, rate, restart)


def likeliest_ended(planner: PollPlanner, running: Iterable[Job], now: float) -> Job | None:
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
    ranked = likeliest_ended_k(planner, running, now, 1)
    return ranked[0] if ranked else None


def likeliest_ended_k(
    planner: PollPlanner, running: Iterable[Job], now: float, k: int
) -> list[Job]:
    """The ``k`` polled tasks likeliest to have ended by ``now``, likeliest first.

    One pass over the tasks, keeping the ``k`` best in a small heap; between equal
    chances the task met first goes first. The chance is the one
    :func:`likeliest_ended` ranks by.

    Args:
        planner: The learned durations.
        running: The tasks (any iterable; read once).
        now: Monotonic seconds.
        k: How many at most.

    Returns:
        Up to ``k`` tasks with a chance above zero, likeliest first (none when
        ``k`` is not positive).
    """
    if k <= 0:
        return []
    gen = planner.generation
    terms: dict[Kind, _Terms] = {}
    last_kind: Kind | None = None
    est: _Terms = None
    log, erfc = math.log, math.erfc
    push, replace = heapq.heappush, heapq.heapreplace
    best: list[tuple[float, int, Job]] = []  # a min-heap of (chance, -order, job)
    floor = 0.0
    order = 0
    for job in running:
        if job.callbacks:
            continue
        kind = job.kind
        if kind is not last_kind:
            last_kind = kind
            if kind in terms:
                est = terms[kind]
            else:
                est = terms[kind] = _terms(planner, kind)
        if est is None:
            continue
        elapsed = now - job.created_at
        if elapsed <= 0.0:
            continue
        mu, inv, _, _ = est
        lower = job.lower
        if job.seen_gen != gen or job.seen_lower != lower:
            job.seen_gen, job.seen_lower = gen, lower
            job.seen_surv = planner.survival(kind, lower)
        then = job.seen_surv
        p = 1.0 if then <= 1e-12 else 1.0 - 0.5 * erfc((log(elapsed) - mu) * inv) / then
        if p > floor:
            order -= 1
            if len(best) < k:
                push(best, (p, order, job))
                if len(best) == k:
                    floor = best[0][0]
            else:
                replace(best, (p, order, job))
                floor = best[0][0]
    best.sort(reverse=True)
    return [job for _, _, job in best]
