"""Which job a callback is about: the watcher's index of tasks by id and external id.

A callback may arrive before the create's answer (the gateway stores the task, then
answers), while the task runs, or after the batch saw it end (late or repeated
deliveries). The index answers all three: jobs are known by external id from the
moment their create is sent, by task id once created, and for a bounded while
after they end, so a callback about any of them is claimed (acknowledged) and
only one about a task this batch never had is refused for redelivery.
"""

from __future__ import annotations

from collections import OrderedDict

from .._task import Task
from ._job import Job

__all__ = ["CallbackIndex"]

#: Ended tasks remembered (ids and external ids) to acknowledge late callbacks.
_REMEMBER_ENDED = 20_000


class CallbackIndex:
    """Jobs watched through callbacks, by task id and external id.

    Args:
        remember: How many ended ids to keep acknowledging.
    """

    def __init__(self, remember: int = _REMEMBER_ENDED) -> None:
        self._by_task_id: dict[str, Job] = {}
        self._by_external_id: dict[str, Job] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    def expect(self, job: Job) -> None:
        """The job's create is about to be sent: a callback may beat the answer.

        Args:
            job: The job.
        """
        if job.callbacks:
            self._by_external_id[job.external_id] = job

    def track(self, job: Job) -> None:
        """The job's task exists: index it by task id too.

        Args:
            job: The job.
        """
        if not job.callbacks:
            return
        if job.task is not None and job.task.id:
            self._by_task_id[job.task.id] = job
        self._by_external_id[job.external_id] = job

    def untrack(self, job: Job) -> None:
        """The job ended (or is no longer watched): remember its ids for a while.

        Args:
            job: The job.
        """
        ids = [job.external_id]
        if job.task is not None and job.task.id:
            ids.append(job.task.id)
            self._by_task_id.pop(job.task.id, None)
        self._by_external_id.pop(job.external_id, None)
        if not job.callbacks:
            return
        for ident in ids:
            self._ended[ident] = None
            self._ended.move_to_end(ident)
        while len(self._ended) > self._remember:
            self._ended.popitem(last=False)

    def find(self, hint: Task) -> tuple[Job | None, bool]:
        """The job a callback's task belongs to.

        Args:
            hint: The task as the callback described it.

        Returns:
            ``(job, known)``: the job when it is watched or being created; ``known``
            also holds for a task of this batch that already ended.
        """
        job = self._by_task_id.get(hint.id) if hint.id else None
        if job is None and hint.external_id:
            job = self._by_external_id.get(hint.external_id)
        if job is not None:
            return job, True
        known = (bool(hint.id) and hint.id in self._ended) or (
            bool(hint.external_id) and hint.external_id in self._ended
        )
        return None, known
