"""The watch stage: follow every created task until it ends.

The watcher knows the running tasks and plans when to look at each (the
:class:`~kling_async.batch._lanes.PollQueue`); the poller (``_poller``) sends the
queries and reports back. Schedules are learned per task kind by the
:class:`~kling_async._schedule.PollPlanner`, from tasks whose creation moment is
known: a create this process sent and saw answered, or the task's own server
timestamps. A callback receiver, when given, turns callbacks into immediate
looks (or, for verified terminal callbacks carrying the result, into the end at
once); polling then only reconciles, slowly.

When a task ends, its slots go back to admission, its cost to the budget, its
state to the journal, and the job to the fetch stage (outputs to download) or
straight to the results.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import attrs

from .._callbacks import CallbackEvent
from .._config import PollPolicy
from .._converter import parse_task
from .._errors import TaskFailedError
from .._journal import JournalEntry
from .._schedule import PollPlanner, ScheduleTuning, observed_duration
from .._task import Task, TaskStatus
from ._hints import CallbackIndex
from ._job import Job, Phase
from ._lanes import PollQueue
from ._pacing import Pacing
from ._ports import JournalPort, SessionPort, SlotLedger, monotonic_of
from ._probe import ProbeAudit
from ._results import Results
from ._search import LandingSearch
from ._sums import FreedSlots, expected_freed, likeliest_ended
from ._values import EventKind
from ._wake import Wake

__all__ = ["RunningProxy", "Watch"]

logger = logging.getLogger("kling_async")

#: Accepted probes (while work waits) per triggered list page of a family.
_LANDINGS_PER_PAGE = 4


def _poll_queue(session: SessionPort, ids_per_query: int) -> PollQueue:
    """The poll plan for ``session``'s backend.

    A session without a ``backend`` (a test double, an older session) is taken
    for the gateway: no list query, ``ids_per_query`` as given.
    """
    backend = getattr(session, "backend", None)
    if backend is None:
        return PollQueue(ids_per_query)
    cap = min(ids_per_query, backend.max_ids_per_query)
    page = backend.list_page_size
    if not backend.supports_list_query or page is None or not hasattr(session, "list_tasks"):
        return PollQueue(cap)
    listed = frozenset(r.endpoint.name for r in backend.routes if r.list_path is not None)
    return PollQueue(cap, listed=listed, list_page_size=page)


def _journal_terminal(journal: JournalPort, job: Job, task: Task) -> None:
    """Record a task's end in the journal (status as the gateway wrote it)."""
    journal.mark_terminal(
        job.key,
        succeeded=task.succeeded,
        task_id=task.id,
        status=task.raw_status or task.status.value,
        task=task.raw,
        units=task.units,
        message=task.message,
    )


def _server_duration(task: Task) -> float | None:
    if task.created_at is None or task.updated_at is None:
        return None
    seconds = (task.updated_at - task.created_at).total_seconds()
    return seconds if seconds > 0 else None


class Watch:
    """Running tasks, their poll schedule, and the callbacks that shortcut it.

    Args:
        session: Sends the queries.
        poll: Polling priors (and the per-task timeout).
        tuning: Knobs of the learned schedule.
        rng: Jitter source.
        ids_per_query: Most ids in one turbo batch query (capped at the
            session's backend's own limit).
        reconcile_interval: With callbacks, a fixed reconciliation period.
        ledger: Admission (slots, units, request-rate pauses, halts).
        pacing: The batch's request rate and backoffs.
        journal: Where terminal states go.
        results: Where ended jobs go.
        deliver: Called with a succeeded job whose outputs must be fetched
            (``None``: no downloads; the job ends at once).
        waiting: How many jobs wait for a slot (none: the batch's last tasks
            are polled more densely, the last one noticed ends the batch).
        refilled: Whether probes refill slots freed unnoticed (polls then only
            report ends: while jobs wait, a poll keeps the policy's interval and
            a list page ``listed_min_step`` of the median).
        last_few: Last running tasks polled at ``last_max_step`` once none wait.
    """

    def __init__(
        self,
        *,
        session: SessionPort,
        poll: PollPolicy,
        tuning: ScheduleTuning | None,
        rng: random.Random,
        ids_per_query: int,
        reconcile_interval: float | None,
        pacing: Pacing,
        ledger: SlotLedger,
        journal: JournalPort,
        results: Results,
        deliver: Callable[[Job], None] | None,
        waiting: Callable[[], int] = lambda: 1,
        refilled: Callable[[], bool] = lambda: False,
        last_few: int = 1,
    ) -> None:
        self._session = session
        self.poll_policy = poll
        self.planner = PollPlanner(poll, tuning, rng=rng)
        self.polls = _poll_queue(session, ids_per_query)
        self._reconcile_interval = reconcile_interval
        self._ledger = ledger
        self._journal = journal
        self._results = results
        self._deliver = deliver
        self._pacing = pacing
        self._waiting = waiting
        self._refilled, self._last_few = refilled, last_few
        self._landed_unlisted: dict[str, int] = {}  # family -> probes landed since its page
        self._limiter = pacing.limiter
        self.running: set[Job] = set()
        self.audit = ProbeAudit(self.running)
        self.search = LandingSearch(self.planner.tuning.landing_search, self._single)
        self.index = CallbackIndex()
        self.wake = Wake()
        # Figures.
        self.tasks_polled = 0
        self.polls_of_followed = 0
        self.latencies: list[float] = []

    # --- taking tasks in ------------------------------------------------------------------

    def follow(self, job: Job, task: Task, *, clean: bool) -> None:
        """Start watching a task just created (or found by its external id).

        Args:
            job: The job (its slots are confirmed already).
            task: The task as answered.
            clean: Whether ``now`` is its creation moment (a create answered
                directly): only then may its observed life be learned.
        """
        now = time.monotonic()
        job.task = task
        job.created_at = now
        job.clean = clean
        job.phase = Phase.RUNNING
        self.tasks_polled += 1
        self.running.add(job)
        self._track(job)
        self._results.emit(EventKind.CREATED, job)
        if task.is_terminal:
            self._on_terminal(job, task, noticed=now)
            return
        self._schedule_next(job, now)

    def resume(self, job: Job, entry: JournalEntry) -> None:
        """Follow again a task created by an earlier run (never create it again).

        Args:
            job: The job.
            entry: Its journal row (with a task id).
        """
        assert entry.task_id is not None  # noqa: S101  (callers check)
        job.phase = Phase.RUNNING
        job.clean = False  # created in an earlier run: no sample to learn from
        job.created_at = monotonic_of(entry.created_wall or entry.updated_wall)
        job.task = Task(id=entry.task_id, endpoint=job.endpoint.name, status=TaskStatus.SUBMITTED)
        self._ledger.hold_resumed(job)
        self.running.add(job)
        self._track(job)
        self.tasks_polled += 1
        self.polls.schedule(job, time.monotonic())
        self.wake.set()

    def rewatch(self, job: Job, task: Task) -> None:
        """A task taken for ended (an early callback) is not, after all: watch it again.

        What its end booked (units, slots) is taken back, and the journal shows it
        created again, so a crash now resumes following it.

        Args:
            job: The job (its outputs were being fetched).
            task: The task as a fresh query answered it.
        """
        booked = job.task.units or 0.0 if job.task is not None else 0.0
        self._results.units -= booked
        self._ledger.reopen(job, booked)
        self._journal.mark_created(
            job.key, task_id=task.id, status=task.raw_status or task.status.value
        )
        logger.info("task %s has not ended after all; watching it again", task.id)
        now = time.monotonic()
        job.task = task
        job.clean = False
        job.phase = Phase.RUNNING
        self.running.add(job)
        self._track(job)
        if task.is_terminal:
            self._on_terminal(job, task, noticed=now)
            return
        self._schedule(job, now + self.poll_policy.interval)

    # --- what admission may ask -----------------------------------------------------------

    def running_count(self) -> int:
        """Tasks being watched.

        Returns:
            The count.
        """
        return len(self.running)

    def expected_freed(self, now: float) -> FreedSlots:
        """Slots the running tasks have probably freed unnoticed, and how fast that grows.

        Args:
            now: Monotonic seconds.

        Returns:
            The sums (:class:`FreedSlots`). Tasks watched by callbacks count for
            nothing: their ends are reported as they happen.
        """
        return expected_freed(self.planner, self.running, now, self.audit.credit_since)

    def probe_landed(self) -> None:
        """A probe was accepted: one task ended unnoticed. The likeliest is looked at now.

        Its poll goes out at once: a single query, or a turbo batch query (tasks due
        soon ride along), so the end is most often noticed about when its slot was
        refilled. On a backend with a list query a page of the family answers every
        running task of it: while work waits, one page goes out per
        :data:`_LANDINGS_PER_PAGE` landings of the family.
        """
        now = time.monotonic()
        best = likeliest_ended(self.planner, self.running, now)
        if best is None or best.due <= now:
            return
        if self.polls.listed_lane(best) and self._waiting():
            # A page answers the whole family: one per few landings notices them
            # all, while the probes keep the slots full in between.
            name = best.endpoint.name
            self._landed_unlisted[name] = self._landed_unlisted.get(name, 0) + 1
            if self._landed_unlisted[name] < _LANDINGS_PER_PAGE:
                return
            self._landed_unlisted[name] = 0
        self._schedule(best, now)
        self.search.started(best, self.audit.unexplained())

    def none_ended_by(self, sent: float) -> None:
        """A 1303 at ``sent`` with only our tasks in the slots: none had ended then.

        Each running task's lower bound moves up, whoever watches it (a refusal is
        evidence for callback-watched tasks too), and a polled task's next poll may
        wait for half a step more (once per poll, so a wrong inference costs half
        a step at most).

        Args:
            sent: When the refused create was sent (monotonic).
        """
        now = time.monotonic()
        for job in self.running:
            if sent <= job.created_at:
                continue
            job.lower = max(job.lower, sent - job.created_at)
            if job.postponed or job.callbacks:
                continue
            target = job.created_at + self.planner.next_poll(
                job.kind, job.lower, job.polls, batched=self.polls.batched(job)
            )
            if target > job.due > now:
                job.postponed = True
                self._schedule(job, min(target, job.due + 0.5 * job.step))

    def none_more_ended_by(self, sent: float) -> None:
        """A 1303 at ``sent`` while tasks believed running had ended: no slot was free then.

        The freed-slot credit restarts from ``sent``; polls keep their times.

        Args:
            sent: When the refused create was sent (monotonic).
        """
        self.audit.credit_since = max(self.audit.credit_since, sent)

    # --- polling ------------------------------------------------------------------------

    def _single(self, job: Job) -> bool:
        return not (self.polls.batched(job) or self.polls.listed_lane(job))

    def _schedule(self, job: Job, due: float) -> None:
        self.polls.schedule(job, due)
        self.wake.set()

    def _schedule_next(self, job: Job, now: float) -> None:
        elapsed = now - job.created_at
        target = self.planner.next_poll(
            job.kind,
            elapsed,
            job.polls,
            batched=self.polls.batched(job),
            callbacks=job.callbacks,
            reconcile_interval=self._reconcile_interval,
            ending=not self._waiting(),
            last=len(self.running) <= self._last_few,
            listed=self.polls.listed_lane(job),
            refilled=self._refilled(),
        )
        job.step = target - elapsed
        self._schedule(job, job.created_at + target)

    def give_up(self, job: Job, error: BaseException) -> None:
        """Stop following a task (it keeps its journal row: a re-run follows it again).

        Args:
            job: The job.
            error: Why (ends the job's result).
        """
        self._end_running(job)
        self._ledger.settle(job, job.reserved or 0.0, completed=False)  # it may be charged
        self._journal.mark_error(
            job.key, message=str(error), error_type=type(error).__name__, retryable=True
        )
        self._results.finish(job, "error", job.task, error)

    def retry_at(self, job: Job, due: float) -> None:
        """Look at a task again at ``due`` after a failed query.

        Args:
            job: The job.
            due: Monotonic seconds.
        """
        self._schedule(job, due)

    def on_status(self, job: Job, task: Task, sent: float) -> None:
        """A query answered ``task`` (sent at ``sent``): schedule the next look, or end."""
        if job.phase is not Phase.RUNNING:
            return
        job.polls += 1
        self.polls_of_followed += 1
        job.not_found = 0
        job.postponed = False
        now = time.monotonic()
        if task.external_id is None:
            task = attrs.evolve(task, external_id=job.external_id)
        job.task = task
        if task.is_terminal:
            self._on_terminal(job, task, noticed=now)
            return
        job.lower = max(job.lower, sent - job.created_at)
        self.audit.seen_running(job, sent)
        if task.status is TaskStatus.PROCESSING and not job.running_seen:
            job.running_seen = True
            self._results.emit(EventKind.RUNNING, job)
        self._schedule_next(job, now)
        suspect = self.search.next(job, self.audit, self.running, self.planner, now)
        if suspect is not None:
            self._schedule(suspect, now)

    # --- ending -------------------------------------------------------------------------

    def _end_running(self, job: Job) -> None:
        """Free a task's slots (it ended, or we stop following it)."""
        job.gen += 1
        self.running.discard(job)
        self.search.ended(job)
        self.audit.ended(job)
        self._untrack(job)
        self._ledger.release(job, confirmed=True)

    def _on_terminal(self, job: Job, task: Task, *, noticed: float, exact: bool = False) -> None:
        job.task = task
        elapsed = max(noticed - job.created_at, 1e-6)
        self._end_running(job)
        self._learn(job, task, elapsed, exact=exact)
        units = task.units or 0.0
        self._ledger.settle(job, units, completed=not task.failed)
        self._results.units += units
        _journal_terminal(self._journal, job, task)
        if task.succeeded:
            self._results.emit(EventKind.SUCCEEDED, job)
            if self._deliver is not None and task.files:
                job.phase = Phase.DOWNLOADING
                self._deliver(job)
                return
            self._results.finish(job, "succeed", task, None)
        else:
            error = TaskFailedError(task)
            self._results.emit(EventKind.FAILED, job, error=error)
            self._results.finish(job, "failed", task, error)

    def _learn(self, job: Job, task: Task, elapsed: float, *, exact: bool) -> None:
        """Learn a succeeded task's life, only from a creation moment that is known.

        A create this process saw answered starts the clock (``clean``); otherwise
        (found by lookup, resumed, answered already ended) only the task's own
        server timestamps tell its life, and without them nothing is learned:
        measuring from the wrong moment would teach the planner lives of
        microseconds and poison every later schedule.
        """
        server = _server_duration(task)
        if job.clean:
            if task.succeeded:
                lower = elapsed if exact else job.lower
                self.planner.observe(job.kind, observed_duration(lower, elapsed, server))
            self.latencies.append(elapsed)
        elif task.succeeded and server is not None:
            self.planner.observe(job.kind, server)

    # --- callbacks ----------------------------------------------------------------------

    def _track(self, job: Job) -> None:
        self.index.track(job)

    def _untrack(self, job: Job) -> None:
        self.index.untrack(job)

    def expect(self, job: Job) -> None:
        """The job's create is about to be sent: claim callbacks that beat its answer.

        Args:
            job: The job.
        """
        self.index.expect(job)

    def on_callback(self, event: CallbackEvent) -> bool:
        """Act on a callback: a look now, or (verified, with the result) the end at once.

        Args:
            event: The accepted callback.

        Returns:
            Whether the task is one this batch watches.
        """
        hint = event.task
        job, known = self.index.find(hint)
        if job is None or job.phase is not Phase.RUNNING:
            # Ours but not running (being created, downloading, ended): the create's
            # answer or a query settles it. Not ours: refused, so it comes again.
            return known
        if not hint.is_terminal:
            if hint.status is TaskStatus.PROCESSING and not job.running_seen:
                job.running_seen = True
                self._results.emit(EventKind.RUNNING, job)
            return True
        try:
            task = parse_task(job.endpoint, hint.raw)
        except Exception as exc:  # a body nothing parses: query the task instead
            logger.warning("callback for task %s unreadable (%s)", hint.id, type(exc).__name__)
            self._schedule(job, time.monotonic())
            return True
        if event.verified and (task.failed or task.files) and task.id:
            # Signed by the gateway and carrying the result: as good as a query.
            if task.external_id is None:
                task = attrs.evolve(task, external_id=job.external_id)
            self._on_terminal(job, task, noticed=time.monotonic(), exact=True)
            self._results.check_done()
            return True
        # Unsigned (or incomplete): a hint to look now.
        self._schedule(job, time.monotonic())
        return True


class RunningProxy:
    """The watcher's view for admission, which is built before the watcher.

    Args:
        watch: Returns the watcher once it exists.
    """

    def __init__(self, watch: Callable[[], Watch]) -> None:
        self._watch = watch

    def expected_freed(self, now: float) -> FreedSlots:
        """See :meth:`Watch.expected_freed`."""
        return self._watch().expected_freed(now)

    def none_ended_by(self, sent: float) -> None:
        """See :meth:`Watch.none_ended_by`."""
        self._watch().none_ended_by(sent)

    def none_more_ended_by(self, sent: float) -> None:
        """See :meth:`Watch.none_more_ended_by`."""
        self._watch().none_more_ended_by(sent)

    def running_count(self) -> int:
        """See :meth:`Watch.running_count`."""
        return self._watch().running_count()

    def probe_landed(self) -> None:
        """See :meth:`Watch.probe_landed`."""
        self._watch().probe_landed()

    @property
    def audit(self) -> ProbeAudit:
        """See :class:`~kling_async.batch._probe.ProbeAudit`."""
        return self._watch().audit
