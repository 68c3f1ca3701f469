"""The search for the task an accepted probe showed had ended.

An accepted probe lands in a slot one of the batch's tasks freed: one of the tasks
running when it left has ended, and which one is unknown (the probe audit keeps
them as suspects until each is seen running again or one is seen ended). The
watcher polls the likeliest at once. While the task it polled is found running
and the probe's slot is still unexplained, the next likeliest suspect is polled,
one at a time, up to ``depth`` polls a landing. Only tasks queried one by one are
searched for: a turbo batch query already takes the tasks due soon along, and a
list page answers its whole family. The suspects are ranked once a landing, at the
search's first step (a pass over up to hundreds of them; most landings need no
search); each later step takes the next one still suspected and running. Most
ends are found this way, within a few round trips of the probe, which lets a
task's own polls start later and step wider while probes refill its slot
(``ScheduleTuning``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from .._schedule import PollPlanner
from ._job import Job
from ._probe import ProbeAudit
from ._sums import likeliest_ended_k

__all__ = ["LandingSearch"]


class LandingSearch:
    """Which suspect to poll next after a landed probe's likeliest task was found running.

    Args:
        depth: Polls at most per landing after the first (``0``: no search).
        single: Whether a task is queried on its own (only those are searched for).
    """

    def __init__(self, depth: int, single: Callable[[Job], bool]) -> None:
        self._depth = max(0, depth)
        self._single = single
        self._polled: set[Job] = set()  # tasks whose poll in flight is part of a search
        # The suspects still to try, likeliest first (None: to rank at the next step).
        self._ranked: deque[Job] | None = None
        self._left = 0

    def __repr__(self) -> str:
        return f"LandingSearch(depth={self._depth}, in_flight={len(self._polled)})"

    def started(self, job: Job, unexplained: int) -> None:
        """A probe landed and ``job``, the likeliest task, is polled now.

        Args:
            job: The task polled.
            unexplained: Landed probes no seen end explains yet (the budget grows
                by ``depth`` a landing, up to ``depth`` for each of them).
        """
        if self._depth == 0 or not self._single(job):
            return
        self._polled.add(job)
        self._left = min(self._left + self._depth, self._depth * max(1, unexplained))
        self._ranked = None  # ranked again at the next step, with this landing's suspects

    def next(
        self, job: Job, audit: ProbeAudit, running: set[Job], planner: PollPlanner, now: float
    ) -> Job | None:
        """``job`` was found running: the suspect to poll now, if the search goes on.

        Args:
            job: The task a query just found running.
            audit: The probe audit (its unexplained landings and their suspects).
            running: The tasks being watched.
            planner: The learned durations.
            now: Monotonic seconds.

        Returns:
            The likeliest remaining suspect queried on its own (ranked at the
            first step after the latest landing), or ``None``: ``job`` was not
            searched for, every landing is explained, the budget is spent, no
            ranked suspect is left, or the next one's poll is due already.
        """
        if job not in self._polled:
            return None
        self._polled.discard(job)
        if self._left <= 0 or not audit.unexplained():
            return None
        ranked = self._ranked
        if ranked is None:
            single, polled = self._single, self._polled
            ranked = self._ranked = deque(
                likeliest_ended_k(
                    planner,
                    (s for s in audit.suspects() if s in running and s not in polled and single(s)),
                    now,
                    self._left,  # as many as the budget lets the search poll
                )
            )
        while ranked:
            best = ranked.popleft()
            if best not in running or best in self._polled or not audit.suspected(best):
                continue  # seen running or ended since, or already being polled
            if best.due <= now:
                return None
            self._left -= 1
            self._polled.add(best)
            return best
        return None

    def ended(self, job: Job) -> None:
        """``job`` is no longer watched (its end was seen, or it was given up).

        Args:
            job: The task.
        """
        self._polled.discard(job)
