"""The queries of the watch stage: one loop hands due polls to a fixed pool of workers.

Each worker sends one classic query, one turbo batch query for many tasks, or
(on a backend with a list query) one page of a family's recent tasks for many
classic tasks, and reports each answer to the watcher. A listed task the page
does not show (older than the page reaches, or still inside the lookup lag) is
queried on its own in the same turn. A failed query is decided here, through
:func:`~kling_async._classify.classify`: a 1302 pauses every request of the batch;
"not found" is tolerated for a while (a new task can stay invisible to queries for
the gateway's lookup lag: at least the lookup patience, and 20 answers); a wrong key or route, or a
refusal, gives the task up (it stays journaled, so a re-run follows it again);
anything else is retried with backoff. An exception that is not the SDK's own (a
bug, or an answer no parser expected) is retried a bounded number of times, then
the task is given up: it never escapes into the task group.

A list or batch query is a saving, never a condition for the tasks it covers: a
task object of the wrong shape in its answer is left out (that task is then
queried as a missing one), and when the query itself is refused (its route
missing, its size too large, its key not allowed), its answers stay garbled, or its
pages keep missing most of the tasks seen before (a page shorter than asked, another
order), the family goes back to single queries (a batch query, the only query of a turbo task,
carries fewer ids instead). Only a single query's failure speaks for its task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from .._classify import Verdict, classify
from .._config import PollPolicy
from .._endpoints import Endpoint, endpoint_for
from .._errors import (
    KlingError,
    NotFoundError,
    ProtocolError,
    ServerError,
    TransportError,
    WaitTimeoutError,
)
from .._task import EARLY_SUCCESS_CHECKS, Task, early_success
from ._handoff import Inbox, Outbox
from ._job import Job, Phase
from ._lanes import PollQueue, listed_family
from ._pacing import Pacing
from ._ports import SessionPort
from ._results import Results
from ._values import EventKind
from ._wake import Wake

__all__ = ["PollItem", "Poller"]

logger = logging.getLogger("kling_async")

#: "Not found" answers in a row before a created task is given up (lookup lag, then gone).
_MAX_NOT_FOUND = 20
#: Unexpected failures (not an SDK error) of one task's queries before it is given up.
_MAX_UNEXPECTED = 20
#: The first pause before asking again, as a share of the poll policy's interval
#: (doubling each time: 1, 2 and 4 s with the default 5 s interval).
_EMPTY_PAUSE = 0.2
#: Garbled answers in a row before a family's list query is given up.
_MAX_GARBLED_PAGES = 3
#: Pages in a row missing most of the tasks answered before (a page capped below the
#: size asked, or another order) before a family's list query is given up.
_MAX_BLIND_PAGES = 3

PollItem = tuple[str, list[Job]]

_HALT_REASONS = {
    Verdict.HALT_KEY: "key",
    Verdict.HALT_ROUTE: "route",
    Verdict.HALT_ACCOUNT: "account",
}


class Watcher(Protocol):
    """What the poller reports to the watcher."""

    def on_status(self, job: Job, task: Task, sent: float) -> None:
        """A query answered."""
        ...

    def give_up(self, job: Job, error: BaseException) -> None:
        """Stop following the task."""
        ...

    def retry_at(self, job: Job, due: float) -> None:
        """Look again at ``due``."""
        ...


class Poller:
    """The poll loop and its workers.

    Args:
        session: Sends the queries.
        polls: The plan of due polls.
        wake: Set when the plan changes.
        poll: Polling priors (retry cap, per-task timeout).
        pacing: The batch's request rate and backoffs.
        watcher: Takes every answer.
        results: Knows when the batch is done; takes events.
        lag_tolerance: Seconds after creation during which "not found" is expected
            (the lookup patience).
        halt: Called with the error and reason when a query shows a setting is
            wrong (``key``, ``route``, ``account``): admissions stop.
    """

    def __init__(
        self,
        *,
        session: SessionPort,
        polls: PollQueue,
        wake: Wake,
        poll: PollPolicy,
        pacing: Pacing,
        watcher: Watcher,
        results: Results,
        lag_tolerance: float = 0.0,
        halt: Callable[[BaseException, str], None] | None = None,
    ) -> None:
        self._session = session
        self._polls = polls
        self._wake = wake
        self._policy = poll
        self._pacing = pacing
        self._watcher = watcher
        self._results = results
        self._lag_tolerance = lag_tolerance
        self._halt = halt
        #: Status queries sent (single, batch and list).
        self.status_requests = 0
        #: List queries sent (part of ``status_requests``).
        self.list_requests = 0
        self._garbled: dict[str, int] = {}  # garbled list answers in a row, by family
        self._blind: dict[str, int] = {}  # list pages in a row missing most known tasks
        self._empty_warned = False

    async def loop(self, out: Outbox[PollItem]) -> None:
        """Hand due polls to the poll workers, in time order.

        Args:
            out: The poll workers' input.
        """
        async with out:
            while not self._results.finished():
                due = self._polls.next_due()
                now = time.monotonic()
                if due is None or due > now:
                    await self._wake.wait(None if due is None else due - now)
                    continue
                for item in self._polls.take_due(now):
                    await out.send(item)

    async def worker(self, items: Inbox[PollItem]) -> None:
        """Send the polls handed over, one at a time.

        Args:
            items: Due polls.
        """
        async with items:
            async for lane, jobs in items:
                family = listed_family(lane)
                if lane == "":
                    await self._poll_one(jobs[0])
                elif family is not None:
                    await self._poll_listed(endpoint_for(family), jobs)
                else:
                    await self._poll_many(endpoint_for(lane), jobs)
                self._results.check_done()

    async def _poll_one(self, job: Job) -> None:
        assert job.task is not None  # noqa: S101  (running jobs have a task)
        sent = time.monotonic()
        self.status_requests += 1
        try:
            task = await self._session.get(job.endpoint, job.task.id, limiter=self._pacing.limiter)
        except Exception as exc:  # one task's failure stays that task's
            self._failed(job, exc)
            return
        self._answered(job, task, sent)

    def _answered(self, job: Job, task: Task, sent: float) -> None:
        """Report an answer; one the watcher cannot digest is that task's failure only.

        A "succeeded" answer without a single output (a server that marks the task
        done a moment before it stores the result, or a list page of summaries) is
        asked again, by a single query, ``EARLY_SUCCESS_CHECKS`` times with a
        growing pause before it is taken as it is: a paid result is never dropped
        for an answer that came too early.
        """
        job.verify = False
        if early_success(task):
            if job.empty_answers < EARLY_SUCCESS_CHECKS:
                job.empty_answers += 1
                job.verify = True
                pause = self._policy.interval * _EMPTY_PAUSE * 2.0 ** (job.empty_answers - 1)
                self._watcher.retry_at(job, time.monotonic() + pause)
                return
            if not self._empty_warned:
                self._empty_warned = True
                logger.warning(
                    "task %s succeeded without any output (asked %d more times); "
                    "further ones are logged at debug level",
                    task.id,
                    EARLY_SUCCESS_CHECKS,
                )
            else:
                logger.debug("task %s succeeded without any output", task.id)
        try:
            self._watcher.on_status(job, task, sent)
        except Exception as exc:  # an answer no stage expected: never the batch's end
            logger.warning("answer for task %s not understood (%s)", task.id, type(exc).__name__)
            self._failed(job, exc)

    async def _poll_many(self, endpoint: Endpoint, jobs: list[Job]) -> None:
        sent = time.monotonic()
        self.status_requests += 1
        ids = [job.task.id for job in jobs if job.task is not None]
        try:
            tasks = await self._session.get_many(
                task_ids=ids,
                endpoint=endpoint,
                limiter=self._pacing.limiter,
                skip_unreadable=True,
            )
        except Exception as exc:  # one query's failure stays its tasks'
            if len(jobs) > 1 and classify(exc, phase="read") is Verdict.REFUSED:
                self._shrink_batch(jobs, exc)
                return
            for job in jobs:
                self._failed(job, exc)
            return
        found = {task.id: task for task in tasks}
        for job in jobs:
            assert job.task is not None  # noqa: S101
            task = found.get(job.task.id)
            if task is None:
                self._failed(job, NotFoundError("task not in batch answer", http_status=200))
            else:
                self._answered(job, task, sent)

    async def _poll_listed(self, endpoint: Endpoint, jobs: list[Job]) -> None:
        """One page of the family's recent tasks answers every job it shows.

        The page holds other tasks too (the account's, newest first) and may miss
        the newest (lookup lag) and the oldest (past the page): those jobs are
        queried one by one. A failed list query is decided by :meth:`_list_failed`;
        pages that miss most tasks answered before, :data:`_MAX_BLIND_PAGES` in a
        row, show the family is better watched by single queries.
        """
        family = endpoint.name
        sent = time.monotonic()
        self.status_requests += 1
        self.list_requests += 1
        try:
            listed = await self._session.list_tasks(
                endpoint,
                page=1,
                page_size=self._polls.list_page_size,
                limiter=self._pacing.limiter,
                skip_unreadable=True,
            )
        except Exception as exc:  # the query's failure, not its tasks'
            self._list_failed(family, jobs, exc)
            return
        self._garbled.pop(family, None)
        found = {task.id: task for task in listed}
        missed: list[Job] = []
        known = lost = 0  # jobs answered before, and those of them the page misses
        for job in jobs:
            assert job.task is not None  # noqa: S101
            known += job.polls > 0
            task = found.get(job.task.id)
            if task is None:
                missed.append(job)
                lost += job.polls > 0
            else:
                self._answered(job, task, sent)
        if known and 2 * lost > known:
            blind = self._blind[family] = self._blind.get(family, 0) + 1
            if blind >= _MAX_BLIND_PAGES:
                self._unlist(family, "shows too few of the batch's tasks", [])
        else:
            self._blind.pop(family, None)
        for job in missed:
            if job.phase is Phase.RUNNING:
                await self._poll_one(job)

    def _list_failed(self, family: str, jobs: list[Job], exc: BaseException) -> None:
        """A list query failed: retry its tasks, or watch the family by single queries.

        A failure of the moment (the network, a 5xx, a rate limit) is retried as
        each task's, with backoff. A refusal of any kind (4xx, a wrong route or
        key for this query) or :data:`_MAX_GARBLED_PAGES` answers in a row that
        are not as documented (undecodable, an unknown code) say the gateway does
        not list as documented: its tasks are queried one by one from now on,
        starting at once.
        """
        verdict = classify(exc, phase="read")
        moment = verdict is Verdict.RATE_LIMITED or isinstance(exc, ServerError)
        moment = moment or (isinstance(exc, TransportError) and not isinstance(exc, ProtocolError))
        if not moment and verdict is Verdict.RETRY:  # an answer not as documented
            garbled = self._garbled[family] = self._garbled.get(family, 0) + 1
            moment = garbled < _MAX_GARBLED_PAGES
        if moment:
            for job in jobs:
                self._failed(job, exc)
            return
        self._unlist(family, f"failed ({type(exc).__name__})", jobs)

    def _unlist(self, family: str, why: str, jobs: list[Job]) -> None:
        """Watch ``family`` by single queries from now on: ``jobs`` at once, the rest as planned."""
        self._garbled.pop(family, None)
        self._blind.pop(family, None)
        logger.warning("the list query of %s %s; its tasks are queried one by one", family, why)
        now = time.monotonic()
        planned = {job: job.due for job in self._polls.unlist(family)}
        planned.update(dict.fromkeys(jobs, now))
        for job, due in planned.items():
            if job.phase is Phase.RUNNING:
                self._watcher.retry_at(job, due)

    def _shrink_batch(self, jobs: list[Job], exc: BaseException) -> None:
        """A batch query of several ids was refused: later ones carry half as many."""
        size = max(1, len(jobs) // 2)
        if size < self._polls.ids_per_query:
            self._polls.ids_per_query = size
            logger.warning(
                "a batch query of %d task ids was refused (%s); queries now carry at most %d",
                len(jobs),
                type(exc).__name__,
                size,
            )
        now = time.monotonic()
        for job in jobs:
            if job.phase is Phase.RUNNING:
                self._watcher.retry_at(job, now)

    def _failed(self, job: Job, exc: BaseException) -> None:
        if job.phase is not Phase.RUNNING:
            return
        now = time.monotonic()
        verdict = classify(exc, phase="read")
        if verdict is Verdict.RATE_LIMITED:
            self._pacing.throttled(getattr(exc, "retry_after", None))
        fatal = verdict.halts or verdict is Verdict.REFUSED
        if verdict.halts and self._halt is not None:
            self._halt(exc, _HALT_REASONS[verdict])
        if verdict is Verdict.NOT_FOUND:
            job.not_found += 1
            fatal = job.not_found > _MAX_NOT_FOUND and now - job.created_at > self._lag_tolerance
        else:
            job.poll_errors += 1
            if not isinstance(exc, KlingError):
                job.unexpected += 1
                logger.warning(
                    "query of task %s failed unexpectedly (%s); retrying",
                    job.task.id if job.task is not None else "?",
                    type(exc).__name__,
                )
                fatal = job.unexpected > _MAX_UNEXPECTED
        timed_out = now - job.created_at > self._policy.timeout
        if fatal or timed_out:
            error: BaseException = exc
            if timed_out and not fatal and job.task is not None:
                error = WaitTimeoutError(job.task, self._policy.timeout)
            self._watcher.give_up(job, error)
            return
        self._results.emit(EventKind.RETRIED, job, error=exc)
        attempt = job.not_found + job.poll_errors
        delay = max(self._pacing.retry_delay(attempt), self._policy.interval * 0.1)
        job.step = max(job.step, delay)
        self._watcher.retry_at(job, now + min(delay, self._policy.max_interval))
