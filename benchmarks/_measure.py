"""Pure metric helpers of the benchmarks: percentiles, lag ratios, bounds, memory, loop lag."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Fake counters that are status requests: single queries, multi-task (batch) queries
#: and list queries (Kling's own API), each counted once per request.
STATUS_KEYS = ("queries", "batch_queries", "list_queries")
REQUEST_KEYS = ("create_requests", *STATUS_KEYS)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def stats_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, float]:
    """Numeric counters of ``after`` minus ``before`` (top level only)."""
    out: dict[str, float] = {}
    for key, value in after.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            prior = before.get(key, 0)
            out[key] = value - (prior if isinstance(prior, (int, float)) else 0)
    return out


def lag_ratios(
    records: Iterable[Mapping[str, Any]],
    noticed: Mapping[str, float] | None = None,
) -> tuple[list[float], int]:
    """Per finished task: (noticed − completed) / duration.

    The moment of noticing is the fake's ``first_terminal_seen_at`` (the first
    query that answered terminal); ``noticed`` (task id → client monotonic time)
    fills in where the fake saw none (a contender that learned it otherwise).

    Returns:
        The ratios, and how many tasks had no moment of noticing at all.
    """
    ratios: list[float] = []
    missing = 0
    for rec in records:
        seen = rec.get("first_terminal_seen_at")
        if seen is None and noticed is not None:
            seen = noticed.get(str(rec.get("task_id")))
        duration = float(rec.get("duration_s") or 0.0)
        if seen is None or duration <= 0:
            missing += 1
            continue
        ratios.append(max(0.0, float(seen) - float(rec["completes_at"])) / duration)
    return ratios, missing


def lower_bound(records: Sequence[Mapping[str, Any]], quota: int) -> float:
    """max(sum of task durations / quota, longest task), from the fake's records."""
    durations = [float(r.get("duration_s") or 0.0) for r in records]
    if not durations:
        return math.nan
    return max(sum(durations) / quota, max(durations))


def zero_lag_makespan(records: Sequence[Mapping[str, Any]], quota: int) -> float:
    """The makespan of a scheduler that sees every end at once and creates instantly.

    The tasks, in the order they were created, go to the slot that frees first
    (each task takes one slot). No contender can beat it with the same lives: it is
    the floor under "makespan / lower bound", which the lower bound alone (total
    work over the quota) does not show when the last wave ends unevenly.

    Returns:
        Seconds (NaN for no records).
    """
    ordered = sorted(records, key=lambda r: float(r.get("created") or 0.0))
    durations = [float(r.get("duration_s") or 0.0) for r in ordered]
    if not durations or quota < 1:
        return math.nan
    slots = [0.0] * quota
    heapq.heapify(slots)
    for duration in durations:
        heapq.heappush(slots, heapq.heappop(slots) + duration)
    return max(slots)


def finite(value: float, ndigits: int = 4) -> float | None:
    """Round a float for the report; ``None`` for NaN / infinity."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), ndigits)


def read_status_kb(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` style field of /proc/self/status, in kB (0 if unknown)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class LoopLagTicker:
    """Measure event-loop lag: a task sleeps ``interval`` and records each oversleep.

    Use ``start()``, then ``mark()`` to begin a window (clears samples), ``stop()``.
    """

    def __init__(self, interval: float = 0.010) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def mark(self) -> None:
        self.samples = []

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, time.perf_counter() - before - self.interval))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def p99_ms(self) -> float:
        return percentile(self.samples, 99) * 1000.0

    def max_ms(self) -> float:
        return max(self.samples, default=math.nan) * 1000.0


def batch_metrics(
    *,
    jobs: int,
    quota: int,
    started: float,
    finished: float,
    before: dict[str, Any],
    after: dict[str, Any],
    records: list[dict[str, Any]],
    noticed: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
    time_scale: float = 1.0,
) -> dict[str, Any]:
    """The figures of one batch run, from the fake's counters and task records.

    Args:
        jobs: Jobs submitted.
        quota: The account's concurrency quota (for the lower bound).
        started: Client monotonic time the batch began.
        finished: Client monotonic time its last result was in hand.
        before: Fake stats before the run.
        after: Fake stats after it.
        records: The fake's task records.
        noticed: Task id -> client monotonic time its end was known (fills in
            tasks the fake never answered terminal for).
        extra: More figures to merge in.
        time_scale: The fake's clock factor (virtual seconds = real / factor).

    Returns:
        Makespan over the lower bound, requests per task, lag ratios and counters.
    """
    delta = stats_delta(before, after)
    gaps = [
        (float(r["first_terminal_seen_at"]) - float(r["created"])) / r["queries"]
        for r in records
        if r.get("first_terminal_seen_at") is not None and r.get("queries")
    ]
    durations = [float(r.get("duration_s") or 0.0) for r in records]
    requests = sum(delta.get(k, 0) for k in REQUEST_KEYS)
    status = sum(delta.get(k, 0) for k in STATUS_KEYS)
    ratios, missing = lag_ratios(records, noticed)
    makespan = finished - started
    bound = lower_bound(records, quota)
    out: dict[str, Any] = {
        "jobs": jobs,
        "tasks_created": int(delta.get("creates", len(records))),
        "makespan_s": finite(makespan),
        "lower_bound_s": finite(bound),
        "makespan_ratio": finite(makespan / bound if bound else math.nan),
        "floor_ratio": finite(zero_lag_makespan(records, quota) / bound if bound else math.nan),
        "requests_per_task": finite(requests / jobs),
        "status_requests_per_task": finite(status / jobs),
        "create_requests_per_task": finite(delta.get("create_requests", 0) / jobs),
        "p50_lag_ratio": finite(percentile(ratios, 50)),
        "p95_lag_ratio": finite(percentile(ratios, 95)),
        "max_lag_ratio": finite(max(ratios, default=math.nan)),
        "unnoticed_tasks": missing,
        "mean_task_s_virtual": finite(sum(durations) / max(1, len(durations)) / time_scale, 2),
        "mean_poll_gap_s_virtual": finite(
            (sum(gaps) / len(gaps) / time_scale) if gaps else math.nan, 3
        ),
        "concurrency_limited": int(delta.get("concurrency_limited", 0)),
        "refused_per_task": finite(delta.get("concurrency_limited", 0) / jobs),
        "requests": int(requests),
        "status_requests": int(status),
        "rate_limited": int(delta.get("rate_limited", 0)),
        # Queries answered 404 (a task not yet visible: the gateway's lookup lag).
        "not_found": int(delta.get("not_found", 0)),
        "max_running_observed": after.get("max_running_observed"),
    }
    if extra:
        out.update(extra)
    return out
