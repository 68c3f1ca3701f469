"""When each running task is looked at next: time-ordered polls, one heap per lane.

Classic tasks are queried one by one (lane ``""``); turbo tasks of one endpoint
share a lane, so the tasks due together go out in one batch query, and tasks
due soon ride along in a query that goes out anyway. Nothing here sends or
sleeps: the watcher asks what is due and sends it.
"""

from __future__ import annotations

import heapq
import itertools

from ._job import Job, Phase

__all__ = ["PollQueue"]

#: A due turbo task pulls others of its endpoint forward by up to this share of
#: their own step, so they ride along in the same batch query.
_BATCH_PULL_FORWARD = 1.0

_Entry = tuple[float, int, int, Job]


class PollQueue:
    """The next poll of every running job, by lane.

    A job has at most one live entry: rescheduling bumps its generation, and older
    entries are skipped when they surface.

    Args:
        ids_per_query: Most task ids in one turbo batch query.
    """

    def __init__(self, ids_per_query: int) -> None:
        self.ids_per_query = ids_per_query
        self._heaps: dict[str, list[_Entry]] = {}
        self._seq = itertools.count()

    @staticmethod
    def lane(job: Job) -> str:
        """The lane of a job: its endpoint's name for turbo tasks, ``""`` otherwise.

        Args:
            job: The job.

        Returns:
            The lane.
        """
        return job.endpoint.name if job.endpoint.is_turbo else ""

    def schedule(self, job: Job, due: float) -> None:
        """Poll ``job`` at ``due`` (monotonic), replacing any earlier plan.

        Args:
            job: The job.
            due: When.
        """
        job.gen += 1
        job.due = due
        heap = self._heaps.setdefault(self.lane(job), [])
        heapq.heappush(heap, (due, next(self._seq), job.gen, job))

    @staticmethod
    def _live(entry: _Entry) -> bool:
        _, _, gen, job = entry
        return gen == job.gen and job.phase is Phase.RUNNING

    def next_due(self) -> float | None:
        """The earliest planned poll, or ``None`` when nothing is planned.

        Returns:
            Monotonic seconds or ``None``.
        """
        best: float | None = None
        for heap in self._heaps.values():
            while heap and not self._live(heap[0]):
                heapq.heappop(heap)  # stale
            if heap and (best is None or heap[0][0] < best):
                best = heap[0][0]
        return best

    def take_due(self, now: float) -> list[tuple[str, list[Job]]]:
        """Remove every poll due by ``now``, grouped as they should be sent.

        Args:
            now: Monotonic seconds.

        Returns:
            ``(lane, jobs)`` pairs: one job per pair in the classic lane, up to
            ``ids_per_query`` jobs per pair in a turbo lane.
        """
        groups: list[tuple[str, list[Job]]] = []
        for lane, heap in self._heaps.items():
            if not heap or heap[0][0] > now:
                continue
            due = self._pop_due(heap, now)
            if lane == "":
                groups.extend(("", [job]) for job in due)
                continue
            due.extend(self._pull_forward(heap, now, -len(due) % self.ids_per_query))
            size = self.ids_per_query
            groups.extend((lane, due[i : i + size]) for i in range(0, len(due), size))
        return groups

    def _pop_due(self, heap: list[_Entry], horizon: float) -> list[Job]:
        jobs: list[Job] = []
        while heap and heap[0][0] <= horizon:
            entry = heapq.heappop(heap)
            if self._live(entry):
                job = entry[3]
                job.gen += 1  # consumed: a later callback or poll reschedules
                jobs.append(job)
        return jobs

    def _pull_forward(self, heap: list[_Entry], now: float, room: int) -> list[Job]:
        """Turbo tasks due soon ride along in a batch query that goes out anyway."""
        taken: list[Job] = []
        keep: list[_Entry] = []
        while heap and len(taken) < room:
            entry = heapq.heappop(heap)
            if not self._live(entry):
                continue
            due, job = entry[0], entry[3]
            if due - now <= _BATCH_PULL_FORWARD * max(job.step, 0.0):
                job.gen += 1
                taken.append(job)
            else:
                keep.append(entry)
                if len(keep) >= room:
                    break
        for entry in keep:
            heapq.heappush(heap, entry)
        return taken
