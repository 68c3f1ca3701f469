"""The run's timeline: how many jobs were running at each moment, as inline SVG."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._format import duration, escape
from ._rows import Job

__all__ = ["running_steps", "timeline_html"]


def running_steps(jobs: Sequence[Job]) -> tuple[list[tuple[float, int]], float]:
    """(seconds from the first start, jobs running from then on) and the run's length.

    A job runs from its created time to its finished time; one without a finished
    time runs to the end of the run. Ends sort before starts at the same instant,
    so back-to-back jobs on one slot count as one.
    """
    spans = [(j.created, j.finished) for j in jobs if j.created is not None]
    if not spans:
        return [], 0.0
    start = min(created for created, _ in spans)
    end = max(max((f or c) for c, f in spans), start)
    events: list[tuple[float, int]] = []
    for created, finished in spans:
        stop = finished if finished is not None and finished >= created else end
        events.append(((created - start).total_seconds(), +1))
        events.append(((stop - start).total_seconds(), -1))
    events.sort(key=lambda event: (event[0], event[1]))
    steps: list[tuple[float, int]] = []
    running = 0
    for at, change in events:
        running += change
        if steps and steps[-1][0] == at:
            steps[-1] = (at, running)
        else:
            steps.append((at, running))
    return steps, (end - start).total_seconds()


def _ticks(limit: float, count: int) -> list[float]:
    """Round tick positions from 0 to about ``limit``."""
    if limit <= 0:
        return [0.0]
    raw = limit / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(limit / step) + 1)]


def timeline_html(jobs: Sequence[Job]) -> str:
    """The SVG chart of jobs running over the run, with a caption (or a sentence if no times)."""
    steps, length = running_steps(jobs)
    if not steps:
        return '<p class="muted">No job in the results has a created time: nothing to draw.</p>'
    peak = max(running for _, running in steps)
    width, height, left, right, top, bottom = 960, 220, 48, 16, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    span = length if length > 0 else 1.0

    def x(seconds: float) -> float:
        return left + plot_w * seconds / span

    def y(running: int) -> float:
        return top + plot_h * (1 - running / max(peak, 1))

    points = [f"M{x(0):.1f},{y(0):.1f}"]
    for at, running in steps:
        points.append(f"H{x(at):.1f}V{y(running):.1f}")
    points.append(f"H{x(span):.1f}V{y(0):.1f}Z")
    grid: list[str] = []
    for value in _ticks(float(peak), 4):
        level = int(value)
        if level != value:
            continue
        grid.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(level):.1f}" '
            f'y2="{y(level):.1f}"/><text class="tick" x="{left - 6}" y="{y(level) + 4:.1f}" '
            f'text-anchor="end">{level}</text>'
        )
    for seconds in _ticks(span, 6):
        grid.append(
            f'<text class="tick" x="{x(seconds):.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{escape(duration(seconds))}</text>'
        )
    caption = (
        f"Jobs running over the run: peak {peak} at once, over {duration(length)} "
        "(from each job's created time to its finished time)."
    )
    return (
        f'<svg id="slot-timeline" role="img" viewBox="0 0 {width} {height}" '
        f'data-peak="{peak}" aria-label="{escape(caption)}"><title>{escape(caption)}</title>'
        f"{''.join(grid)}"
        f'<path class="area" d="{"".join(points)}"/>'
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>'
        f'<text class="label" x="{left}" y="{height - 2}">time since the first job started</text>'
        f'</svg><p class="muted">{escape(caption)}</p>'
    )
