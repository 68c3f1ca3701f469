"""The admission stage: which queued job may be created now.

It owns the queue of jobs waiting for a slot, the AIMD window
(:class:`~kling_async._schedule.AdmissionWindow`), the budget, the request-rate
limiter every request of the batch shares, the circuit breaker on refused
creates, and the slot probe:

- a job leaves the queue only while the window and the budget allow; it goes to
  the create stage through a zero-buffer stream, so admission never runs ahead of
  the create workers;
- a 1303 puts the job back at the front and shrinks the window, and tells the
  watcher that none of its tasks had ended when it was sent (a refusal is
  evidence, whoever watches those tasks); a 1302/429 pauses every request;
- the prober watches, while work waits and every slot is held, how many slots
  the running tasks have probably freed unnoticed (the watcher's estimate); past a
  threshold it lets one create through. The gateway accepts it only into a freed
  slot;
- whatever happens, no more than ``max_refusals_per_second`` refused creates in a
  second: past that, admissions pause (a hard ceiling, not a tuning knob);
- with ``coordinate=`` a shared slot store's lease gates every create too, and the
  shared window replaces the local one (see :mod:`._coordinate`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .._config import RetryPolicy
from .._schedule import AdmissionWindow, Budget
from ..coordination import CoordinationError
from ._coordinate import Coordination, open_coordination
from ._handoff import Outbox
from ._job import Job, Phase
from ._pacing import Pacing
from ._ports import JournalPort, RunningView
from ._probe import SlotProbe
from ._results import Results
from ._values import EventKind, NotStartedError
from ._wake import Wake

__all__ = ["Admission"]

logger = logging.getLogger("kling_async")

#: Queued jobs kept ready beyond the free slots (the feeder's lookahead).
_LOOKAHEAD = 8

#: What each halting reason says is wrong, and the setting to fix (``None``: no setting).
HALTS: dict[str, tuple[str, str | None]] = {
    "key": ("the API key was refused", "KLING_API_KEY"),
    "route": (
        "the endpoint path or base URL is wrong",
        "KLING_ENDPOINT_PATH / KLING_BASE_URL",
    ),
    "connect": ("the gateway cannot be reached", "KLING_BASE_URL"),
    "account": ("the account cannot take paid work (arrears or resource pack)", None),
    "coordination": ("the coordination store cannot be reached", "--coordinate / KLING_COORDINATE"),
}


def _answer_of(error: BaseException) -> str:
    """What the gateway answered, without anything secret: class, HTTP status, code."""
    parts = [type(error).__name__]
    status = getattr(error, "http_status", None)
    code = getattr(error, "code", None)
    if isinstance(status, int) and status:
        parts.append(f"HTTP {status}")
    if isinstance(code, int):
        parts.append(f"code {code}")
    return ", ".join(parts)


def halt_reason(error: BaseException, reason: str) -> NotStartedError:
    """Why admissions stop when a setting or the account is wrong, naming what to fix.

    Args:
        error: What showed it.
        reason: ``key``, ``route``, ``connect`` or ``account``.

    Returns:
        The error every job not started carries.
    """
    what, setting = HALTS.get(reason, ("a setting is wrong", None))
    fix = f"; check {setting}" if setting else ""
    return NotStartedError(
        f"admissions stopped: {what} ({_answer_of(error)}){fix}", reason=reason, setting=setting
    )


def coordination_halt(error: CoordinationError) -> NotStartedError:
    """Why admissions stop when the shared slot store cannot be used (its URL, redacted).

    Args:
        error: What the store raised.

    Returns:
        The error every job not started carries.
    """
    setting = HALTS["coordination"][1]
    return NotStartedError(f"admissions stopped: {error}", reason="coordination", setting=setting)


class Admission:
    """Queue, window, budget, request rate and probing: the gate in front of creates.

    Args:
        max_running: The user's cap on slots.
        probe_slots: Probe past ``max_running`` (see :class:`BatchOptions`;
            ``None``: until a probe shows the account has more slots).
        max_units: The budget cap.
        max_requests_per_second: The shared request-rate limit.
        max_refusals_per_second: The circuit breaker's ceiling.
        retry: The session's retry policy (backoff bounds).
        probe_threshold: Expected freed slots at which a probe goes out.
        rng: Jitter source.
        journal: Where ``pending`` and ``not_started`` transitions go.
        results: Where jobs that are never started end.
        running: The watcher's view of the running tasks.
        on_capacity: Called when the queue may take more jobs (wakes the feeder).
        clock: Seconds of this machine per second of the gateway's clock
            (:attr:`ClientConfig.time_factor`): the breaker and the prober count
            the gateway's seconds.
    """

    def __init__(
        self,
        *,
        max_running: int,
        probe_slots: bool | None,
        max_units: float | None,
        max_requests_per_second: float | None,
        max_refusals_per_second: float,
        retry: RetryPolicy,
        probe_threshold: float,
        rng: random.Random,
        journal: JournalPort,
        results: Results,
        running: RunningView,
        on_capacity: Callable[[], None],
        clock: float = 1.0,
    ) -> None:
        self.max_running = max_running
        self.window = AdmissionWindow(max_running)
        self.budget = Budget(max_units)
        self.pacing = Pacing(
            max_requests_per_second=max_requests_per_second,
            max_refusals_per_second=max_refusals_per_second / clock,
            retry=retry,
            rng=rng,
        )
        self.limiter = self.pacing.limiter
        self._journal = journal
        self._results = results
        self._running = running
        self._on_capacity = on_capacity
        self.queue: deque[Job] = deque()
        self.halted: NotStartedError | None = None
        self.running_slots = 0  # admitted (creating or created) and not ended
        self.confirmed_slots = 0  # created and not ended
        self.creates_in_flight = 0
        self.wake = Wake()
        self.probe = SlotProbe(self, running, results, probe_slots, probe_threshold, clock)
        #: Sends a probing create when running tasks have probably freed a slot unnoticed.
        self.probe_loop = self.probe.loop
        #: The shared slot store's link, when the batch coordinates (see :meth:`coordinate`).
        self.coordination: Coordination | None = None
        #: A 1303 came while the batch held no more than ``max_running``: the
        #: gateway's quota is at or below it (probes past it are sound).
        self.quota_seen = False
        # Figures.
        self.limited_1303 = 0
        self.max_running_seen = 0

    async def coordinate(self, spec: Any, **wiring: Any) -> None:
        """Share slots, window, pauses and durations through a store, before the loops start.

        ``spec`` and ``wiring`` are :func:`._coordinate.open_coordination`'s (so are its errors).
        """
        self.coordination = await open_coordination(spec, max_running=self.max_running, **wiring)
        if self.coordination is not None:
            self.pacing.on_throttled = self.coordination.pause

    # --- the queue ----------------------------------------------------------------------

    def wanted(self) -> int:
        """How many queued jobs the feeder should keep ready.

        Returns:
            Free slots plus a small lookahead.
        """
        return max(0, self.window.limit - self.running_slots) + _LOOKAHEAD

    def enqueue(self, job: Job, *, first: bool = False) -> None:
        """Queue a job for creation (or end it at once when admissions stopped).

        Args:
            job: The job.
            first: Put it at the front (a create of an earlier run that may have
                landed: looked up before anything else).
        """
        if self.halted is not None:
            self._not_started(job)
            return
        self._results.emit(EventKind.QUEUED, job)
        if first:
            self.queue.appendleft(job)
        else:
            self.queue.append(job)
        self.poke()

    def requeue(self, job: Job, error: BaseException, *, throttled: bool) -> None:
        """Put a job refused before anything was created back at the front.

        Args:
            job: The job.
            error: The refusal.
            throttled: 1302/1303 (a ``throttled`` event) rather than a retry.
        """
        if job.probing:
            self._running.audit.dropped(job)
        job.probing = False
        self._release_slots(job, confirmed=False)  # a shared lease is kept for the retry
        if job.reserved_set:
            self.unreserve(job, 0.0)
        job.phase = Phase.QUEUED
        if not job.may_exist:
            self._journal.mark_pending(job.key)
        self._results.emit(
            EventKind.THROTTLED if throttled else EventKind.RETRIED, job, error=error
        )
        if self.halted is not None:
            self._not_started(job)
            return
        self.queue.appendleft(job)

    def _not_started(self, job: Job) -> None:
        assert self.halted is not None  # noqa: S101  (callers check)
        if self.coordination is not None:
            self.coordination.free(job)
        if not job.may_exist:
            # A job whose earlier create may have landed keeps its journal row
            # ('creating' / 'unknown'): the next run looks it up before anything else.
            self._journal.mark_not_started(job.key, message=str(self.halted))
        self._results.finish(job, "not_started", None, self.halted)

    def poke(self) -> None:
        """Something changed: the admission loop and the prober look again."""
        self.wake.set()
        self.probe.wake.set()

    # --- slots and units ------------------------------------------------------------------

    def reserve(self, job: Job, *, force: bool = False) -> bool:
        """Reserve the job's estimated units (see :func:`reserve_units`)."""
        return reserve_units(self.budget, job, force=force)

    def unreserve(self, job: Job, actual: float) -> None:
        """Release the job's reservation, booking ``actual`` units charged."""
        unreserve_units(self.budget, job, actual)

    def hold_resumed(self, job: Job) -> None:
        """A task created in an earlier run is followed again: it holds its slots.

        Args:
            job: The job.
        """
        self.reserve(job, force=True)
        self.running_slots += job.slots
        self.confirmed_slots += job.slots
        self.max_running_seen = max(self.max_running_seen, self.confirmed_slots)
        if self.coordination is not None:
            self.coordination.hold(job)

    def reopen(self, job: Job, booked: float) -> None:
        """A task booked as ended is running after all (an early callback).

        Args:
            job: The job: it holds its slots again.
            booked: Units its supposed end booked, taken back.
        """
        self.budget.spent = max(0.0, self.budget.spent - booked)
        self.hold_resumed(job)

    def confirm(self, job: Job) -> None:
        """The job's create was accepted (or its task found): its slots are held for sure.

        Args:
            job: The job.
        """
        if job.probing:
            self._running.audit.landed(job)
            self._running.probe_landed()
            self.probe.landed()
            self.probe.freed()
        job.probing = False
        self.window.on_accepted()
        if self.coordination is not None:
            self.coordination.accepted(job)
        self.confirmed_slots += job.slots
        self.max_running_seen = max(self.max_running_seen, self.confirmed_slots)
        self.poke()

    def release(self, job: Job, *, confirmed: bool) -> None:
        """The job holds no slot any more.

        Args:
            job: The job.
            confirmed: Whether its slots were confirmed (its task existed).
        """
        if self.coordination is not None:
            self.coordination.free(job)
        self._release_slots(job, confirmed=confirmed)

    def _release_slots(self, job: Job, *, confirmed: bool) -> None:
        self.running_slots -= job.slots
        if confirmed:
            self.confirmed_slots -= job.slots
            self.probe.freed()
        self.poke()
        self._on_capacity()

    def settle(self, job: Job, units: float, *, completed: bool) -> None:
        """Book what an ended task cost, and let the window grow on a clean end.

        Args:
            job: The job.
            units: Units charged.
            completed: It ended without failing.
        """
        if completed:
            self.window.on_completed(job.slots)
            if self.coordination is not None:
                self.coordination.learned(job)
        self.unreserve(job, units)
        if completed and units > 0:
            self.budget.learn(job.kind, units, job.slots)

    def book_resumed(self, units: float) -> None:
        """Units charged in an earlier run count against the budget.

        Args:
            units: Units.
        """
        self.budget.spent += units

    # --- refusals -----------------------------------------------------------------------

    def no_slot(
        self, job: Job, error: BaseException, *, sent: float, retry_after: float | None
    ) -> None:
        """A 1303: nothing was created; no slot of the account was free at ``sent``.

        Args:
            job: The refused job (goes back to the front of the queue).
            error: The refusal.
            sent: When the create was sent (monotonic).
            retry_after: The server's hint, if any.
        """
        self.limited_1303 += 1
        if job.probing:
            self.probe.refused()
        # What held the account's slots when it left, less the ends seen since.
        held = min(job.held_at_admit, self.confirmed_slots)
        self.requeue(job, error, throttled=True)
        self.window.on_limited(held)
        if self.coordination is not None:
            # Other processes' tasks hold slots too: nothing is learned about ours.
            self.coordination.limited(job)
        else:
            self.quota_seen = self.quota_seen or held <= self.max_running
            if held <= self.window.limit:
                self._running.none_ended_by(sent)
            else:
                # Held past the window: some tasks believed running had ended (their
                # slots taken by accepted probes), which is not known yet. No slot
                # was free at ``sent`` all the same: the probes' credit of freed
                # slots restarts there (polls keep their times).
                self._running.none_more_ended_by(sent)
        if self.confirmed_slots == 0:
            # Someone else holds the account's slots: nothing of ours will free one.
            self.pacing.pause(self.window.consecutive_limited, retry_after)
        self.pacing.refused()

    def rate_refused(self, job: Job, error: BaseException, retry_after: float | None) -> None:
        """A create refused with 1302/429: nothing was created; pause, then try again.

        Args:
            job: The job (back to the front of the queue).
            error: The refusal.
            retry_after: The server's hint, if any.
        """
        self.pacing.throttled(retry_after)
        self.requeue(job, error, throttled=True)
        self.pacing.refused()

    # --- stopping -------------------------------------------------------------------------

    def halt(self, reason: NotStartedError) -> None:
        """Admit nothing more: queued and future jobs end ``not_started``.

        Args:
            reason: Why (the first reason wins).
        """
        if self.halted is None:
            self.halted = reason
            logger.warning("batch stops admitting jobs: %s", reason)
        if self.coordination is not None:
            self.coordination.interrupt()
        self.poke()
        self._on_capacity()

    def halt_for(self, error: BaseException, *, reason: str) -> None:
        """A setting or the account is wrong for every job: stop admitting at once.

        Args:
            error: What showed it.
            reason: ``key``, ``route``, ``connect`` or ``account``.
        """
        self.halt(halt_reason(error, reason))

    def drain_not_started(self) -> None:
        """End every queued job ``not_started`` (after a halt)."""
        while self.queue:
            self._not_started(self.queue.popleft())
        # Lazy sources are still consumed (into not_started results): none is lost.
        self._on_capacity()

    # --- the loops ----------------------------------------------------------------------

    async def admit_loop(self, creates: Outbox[Job]) -> None:
        """Hand queued jobs to the create workers while window and budget allow.

        Args:
            creates: The create stage's input.
        """
        shared = self.coordination
        async with creates, shared.running() if shared else contextlib.nullcontext():
            while not self._results.finished():
                job = self._next_admissible()
                if job is None:
                    now = time.monotonic()
                    timeout = self.pacing.not_before - now if now < self.pacing.not_before else None
                    await self.wake.wait(timeout)
                    continue
                if shared is None:
                    await creates.send(job)
                elif await _leased(self, shared, job):
                    if self.halted is not None:
                        # Stopped while this job waited for its lease: send nothing.
                        shared.free(job)
                        _requeue(self, job)
                        continue
                    await creates.send(job)

    def _next_admissible(self) -> Job | None:
        """Take the job at the front if it may be created now (slots held for it)."""
        if self.halted is not None:
            self.drain_not_started()
            return None
        if not self.queue or time.monotonic() < self.pacing.not_before:
            return None
        job = self.queue[0]
        if self.coordination is None:
            fits = self.window.can_admit(self.running_slots, job.slots)
        else:  # the shared window decides; this process keeps its own cap
            fits = self.running_slots == 0 or self.running_slots + job.slots <= self.max_running
        probing = self.probe.go and not fits
        if not (fits or probing):
            return None
        self.probe.go = False
        if not self.reserve(job):
            if self.running_slots == 0:
                self.halt(
                    NotStartedError("max_units would be exceeded; job not started", reason="budget")
                )
            return None
        self.queue.popleft()
        self.running_slots += job.slots
        job.phase = Phase.CREATING
        job.probing = probing
        job.held_at_admit = self.confirmed_slots
        if probing and self.confirmed_slots + job.slots > self.window.limit:
            # Past the window with tasks known to exist (not creates in doubt, which
            # may hold no slot): if it lands, one of them has most likely ended
            # (past the cap: must have, or the account has more slots).
            past_cap = self.confirmed_slots + job.slots > self.max_running
            self._running.audit.sent(job, time.monotonic(), past_cap=past_cap)
        self.creates_in_flight += 1
        self._on_capacity()
        return job

    def create_begun(self) -> None:
        """A job in doubt goes back to a create worker for its next lookup."""
        self.creates_in_flight += 1

    def create_done(self) -> None:
        """A create worker finished with a job (whatever the outcome)."""
        self.creates_in_flight -= 1
        self.poke()


def reserve_units(budget: Budget, job: Job, *, force: bool = False) -> bool:
    """Reserve a job's estimated units against the budget.

    Args:
        budget: The batch's budget.
        job: The job.
        force: Reserve even past the cap (a task that exists already).

    Returns:
        Whether the units are reserved.
    """
    if job.reserved_set:
        return True
    estimate = budget.estimate(job.kind, job.slots)
    if not budget.try_reserve(estimate):
        if not force:
            return False
        if estimate is None:
            budget.unknown += 1
        else:
            budget.reserved += estimate
    job.reserved = estimate
    job.reserved_set = True
    return True


def unreserve_units(budget: Budget, job: Job, actual: float) -> None:
    """Release a job's reservation, booking ``actual`` units.

    Args:
        budget: The batch's budget.
        job: The job.
        actual: Units charged.
    """
    if job.reserved_set:
        budget.settle(job.reserved, actual)
        job.reserved_set = False
    else:
        budget.spent += max(0.0, actual)


async def _leased(admission: Admission, shared: Coordination, job: Job) -> bool:
    """Wait for the job's shared lease; without one, the job goes back to the queue."""
    try:
        if await shared.take(job):
            return True
    except CoordinationError as exc:  # unreachable past max_outage, closed, refused
        admission.halt(coordination_halt(exc))
    _requeue(admission, job)
    return False


def _requeue(admission: Admission, job: Job) -> None:
    """Put a job taken for a create back at the front, its local slots given back."""
    admission.running_slots -= job.slots
    admission.creates_in_flight -= 1
    if job.reserved_set:
        admission.unreserve(job, 0.0)
    job.phase = Phase.QUEUED
    admission.queue.appendleft(job)
