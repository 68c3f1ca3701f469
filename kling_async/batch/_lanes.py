"""When each running task is looked at next: time-ordered polls, one heap per lane.

Classic tasks are queried one by one (lane ``""``); turbo tasks of one endpoint
share a lane, so the tasks due together go out in one batch query, and tasks
due soon ride along in a query that goes out anyway. On a backend with a list
query (Kling's own API), classic tasks of one family share a lane too
(``list:<family>``): one page of the family's recent tasks answers them all.
Nothing here sends or sleeps: the watcher asks what is due and sends it.
"""

from __future__ import annotations

import heapq
import itertools

from ._job import Job, Phase

__all__ = ["LIST_LANE_PREFIX", "PollQueue", "listed_family"]

#: Lanes of classic tasks watched through a family's list query start with this.
LIST_LANE_PREFIX = "list:"

#: A due turbo task pulls others of its endpoint forward by up to this share of
#: their own step, so they ride along in the same batch query.
_BATCH_PULL_FORWARD = 1.0

#: A turbo-lane poll waits for a batch query planned up to this share of its step later.
_BATCH_SNAP = 1.0

#: A list-lane poll waits for a page planned up to this share of its step later.
_LIST_SNAP = 1.0

_Entry = tuple[float, int, int, Job]


class PollQueue:
    """The next poll of every running job, by lane.

    A job has at most one live entry: rescheduling bumps its generation, and older
    entries are skipped when they surface.

    Args:
        ids_per_query: Most task ids in one turbo batch query.
        listed: Classic families whose tasks are watched by list query (empty:
            every classic task is queried on its own, as on the gateway).
        list_page_size: Most tasks one list query reports (one page).
    """

    def __init__(
        self,
        ids_per_query: int,
        *,
        listed: frozenset[str] = frozenset(),
        list_page_size: int = 1,
    ) -> None:
        if ids_per_query < 1 or list_page_size < 1:
            raise ValueError("ids_per_query and list_page_size must be at least 1")
        self.ids_per_query = ids_per_query
        self.listed = listed
        self.list_page_size = list_page_size
        self._heaps: dict[str, list[_Entry]] = {}
        self._seq = itertools.count()

    def lane(self, job: Job) -> str:
        """The lane of a job.

        Args:
            job: The job.

        Returns:
            Its endpoint's name for turbo tasks, ``list:<family>`` for classic
            tasks of a listed family (unless the job's next poll must be a single
            query: ``job.verify``), ``""`` for the rest.
        """
        name = job.endpoint.name
        if job.endpoint.is_turbo:
            return name
        return LIST_LANE_PREFIX + name if name in self.listed and not job.verify else ""

    def listed_lane(self, job: Job) -> bool:
        """Whether the job is watched by its family's list query.

        Args:
            job: The job.

        Returns:
            ``True`` in a list lane.
        """
        return not job.endpoint.is_turbo and job.endpoint.name in self.listed

    def batched(self, job: Job) -> bool:
        """Whether the job is planned on the dense grid of cheap batch-query polls.

        Only turbo tasks are: a list lane answers every running task of its
        family at each query, so its tasks keep the sparse classic grid (the
        dense one would only send more pages for the same answers).

        Args:
            job: The job.

        Returns:
            ``True`` in a turbo lane.
        """
        return job.endpoint.is_turbo

    def schedule(self, job: Job, due: float) -> None:
        """Poll ``job`` at ``due`` (monotonic), replacing any earlier plan.

        In a list or turbo lane, a poll planned a little before another one of
        its lane waits for it (up to :data:`_LIST_SNAP` or :data:`_BATCH_SNAP`
        of the job's step): that page or batch query answers both, so one
        request goes out instead of two.

        Args:
            job: The job.
            due: When.
        """
        lane = self.lane(job)
        heap = self._heaps.setdefault(lane, [])
        if lane and job.step > 0:
            share = _LIST_SNAP if lane.startswith(LIST_LANE_PREFIX) else _BATCH_SNAP
            due = self._snap(heap, due, due + share * job.step)
        job.gen += 1
        job.due = due
        heapq.heappush(heap, (due, next(self._seq), job.gen, job))

    def unlist(self, family: str) -> list[Job]:
        """Stop watching ``family`` by list query: its tasks go back to single queries.

        Args:
            family: A listed family's name.

        Returns:
            The running jobs its list lane held (their polls are dropped: the
            caller plans them again).
        """
        self.listed = self.listed - {family}
        heap = self._heaps.pop(LIST_LANE_PREFIX + family, [])
        return [entry[3] for entry in heap if self._live(entry)]

    def _snap(self, heap: list[_Entry], due: float, latest: float) -> float:
        """The earliest live poll of ``heap`` in ``[due, latest]``, else ``due``."""
        best = due
        for entry in heap:
            if due <= entry[0] <= latest and self._live(entry) and (best == due or entry[0] < best):
                best = entry[0]
        return best

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
            ``ids_per_query`` jobs per pair in a turbo lane, up to
            ``list_page_size`` jobs per pair in a list lane.
        """
        groups: list[tuple[str, list[Job]]] = []
        for lane, heap in self._heaps.items():
            if not heap or heap[0][0] > now:
                continue
            due = self._pop_due(heap, now)
            if lane == "":
                groups.extend(("", [job]) for job in due)
                continue
            if lane.startswith(LIST_LANE_PREFIX):
                # One page shows the whole family: every running task of it rides along.
                size = self.list_page_size
                due.extend(self._pop_due(heap, float("inf"), limit=size - len(due)))
            else:
                size = self.ids_per_query
                due.extend(self._pull_forward(heap, now, -len(due) % size))
            groups.extend((lane, due[i : i + size]) for i in range(0, len(due), size))
        return groups

    def _pop_due(self, heap: list[_Entry], horizon: float, limit: int | None = None) -> list[Job]:
        jobs: list[Job] = []
        while heap and heap[0][0] <= horizon and (limit is None or len(jobs) < limit):
            entry = heapq.heappop(heap)
            if self._live(entry):
                job = entry[3]
                job.gen += 1  # consumed: a later callback or poll reschedules
                jobs.append(job)
        return jobs

    def _pull_forward(self, heap: list[_Entry], now: float, room: int) -> list[Job]:
        """Tasks due soon ride along in a batch or list query that goes out anyway."""
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


def listed_family(lane: str) -> str | None:
    """The family a list lane watches, or ``None`` for any other lane.

    Args:
        lane: A lane from :meth:`PollQueue.take_due`.

    Returns:
        The family's name, or ``None``.
    """
    return lane[len(LIST_LANE_PREFIX) :] if lane.startswith(LIST_LANE_PREFIX) else None
