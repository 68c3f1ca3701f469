"""The slot probe: one create past the window when running tasks have probably ended unnoticed.

A task that ends frees its slot on the gateway at once, but the batch only learns
it when it next looks. While work waits and every slot is held, the expected
number of slots freed unnoticed grows (the watcher's estimate, from learned
durations); past a threshold one create goes out anyway. The gateway accepts it
only into a free slot, so an accepted probe fills a freed slot early and a 1303
(which costs nothing) proves none of the tasks had ended yet, so their polls may
wait. This is what keeps the account's slots busy at a small request budget:
one create checks every running task at once, where a status query checks one.
An accepted probe is followed at once by as many more as the estimate counted
freed slots past the first, until one is refused.

Probing past ``max_running`` is only sound when ``max_running`` is the account's
quota. By default (``probe_slots=None``) the batch probes past it and audits each
accepted probe (:class:`ProbeAudit`): a probe accepted while every task that was
running when it left is later seen still running proves the account has more
slots than ``max_running``; the batch then stops probing past it, once and for
all, and says so. At most one task runs past the cap before that is noticed.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from typing import Any, Protocol

from .._schedule import AdmissionWindow
from ._job import Job
from ._pacing import Pacing
from ._results import Results
from ._sums import FreedSlots
from ._wake import Wake

__all__ = ["ProbeAudit", "SlotProbe"]

logger = logging.getLogger("kling_async")

#: Probing needs a sum over running tasks: only for windows up to this size.
PROBE_MAX_RUNNING = 256
#: Longest wait between two probe checks, seconds of the gateway's clock.
_PROBE_MAX_WAIT = 1.0
#: Probes refused in a row (no slot freed or noticed in between) back off once the
#: landings promised to them add up to this many. With right durations a run that
#: long comes about one time in twenty (e^-3); a longer one says they are wrong.
_SURPRISE = 3.0
#: Landings the calibration counts as promised and kept before any probe (a prior
#: weight: the first few probes move the factor little).
_CALIBRATION_PRIOR = 4.0
#: Bounds of the calibration factor.
_CALIBRATION_BOUNDS = (0.25, 2.0)
#: Running tasks at which ``probe_threshold`` applies as given (it scales with the
#: fourth root of the running count).
_THRESHOLD_AT = 10
#: Share of the refusal breaker's ceiling the probes may use: their own 1303s never
#: trip it (it stays a guard against refusals nobody planned, another client's say).
#: At 4,000 jobs a share of 0.5 delayed probes enough to cost makespan (1.048 -> 1.050).
_BREAKER_SHARE = 0.8
#: First back-off step, and the longest, seconds of the gateway's clock.
_BACKOFF_BASE = 0.5
_BACKOFF_MAX = 30.0


class ProbeAudit:
    """Checks that each accepted probe landed in a slot one of the batch's tasks freed.

    Args:
        running: The watcher's set of running jobs (read, never changed).
    """

    def __init__(self, running: set[Job]) -> None:
        self._running = running
        # probe job -> (admitted at, tasks running then not yet seen ended or running
        # after, whether it went past max_running: only those can disprove the cap)
        self._open: dict[Job, tuple[float, set[Job], bool]] = {}
        self._landed: dict[Job, float] = {}  # probe -> when its acceptance came back
        #: Monotonic moment the probes' credit of freed slots counts from, for every
        #: task created before it (an accepted probe's admission, or a refused
        #: probe's send while tasks believed running had ended): one moment for all,
        #: so an answer moves it in O(1) whatever the running count.
        self.credit_since = -math.inf
        #: Whether a probe landed with none of the batch's tasks ended: the account
        #: has more slots than ``max_running``.
        self.disproved = False

    def sent(self, probe: Job, now: float, *, past_cap: bool = True) -> None:
        """A probing create is admitted at ``now``: remember what was running then.

        Args:
            probe: The probing job.
            now: Monotonic seconds.
            past_cap: It goes past ``max_running`` (else only past the window):
                landing with none of those tasks ended then proves the account
                has more slots than ``max_running``; under the cap it only shows
                the window was small.
        """
        witnesses = {job for job in self._running if job.created_at < now}
        self._open[probe] = (now, witnesses, past_cap)

    def dropped(self, probe: Job) -> None:
        """The probe was refused (or never sent): nothing to check.

        Args:
            probe: The probing job.
        """
        self._open.pop(probe, None)
        self._landed.pop(probe, None)

    def landed(self, probe: Job) -> None:
        """The probe was accepted: one of the remembered tasks must have ended.

        Args:
            probe: The probing job.
        """
        entry = self._open.get(probe)
        if entry is None:
            return
        # One of the tasks running then ended (which is unknown): the credit of
        # freed slots restarts from here, as if none had, instead of being spent at once.
        self.credit_since = max(self.credit_since, entry[0])
        # It reached the gateway by now: only a task seen running by a query sent
        # later is cleared of having freed the slot.
        self._landed[probe] = time.monotonic()

    def seen_running(self, job: Job, sent: float) -> None:
        """A query sent at ``sent`` found ``job`` still running.

        Args:
            job: The job.
            sent: Monotonic seconds.
        """
        for probe, landed_at in list(self._landed.items()):
            witnesses = self._open[probe][1]
            if job in witnesses and sent > landed_at:
                witnesses.discard(job)
                self._check(probe)

    def ended(self, job: Job) -> None:
        """``job`` ended (or is no longer watched): it may be the one that freed the slot.

        Args:
            job: The job.
        """
        self._open.pop(job, None)
        self._landed.pop(job, None)
        for probe, (_, witnesses, _) in list(self._open.items()):
            if job in witnesses:
                self.dropped(probe)  # explained: that task's end freed the slot

    def suspects(self) -> set[Job]:
        """Tasks that may have freed an unexplained accepted probe's slot.

        Returns:
            The tasks running when such a probe left and not seen running since it
            landed (one of each probe's is known to have ended).
        """
        out: set[Job] = set()
        for probe in self._landed:
            out |= self._open[probe][1]
        return out

    def suspected(self, job: Job) -> bool:
        """Whether ``job`` is one of :meth:`suspects` (without building the set).

        Args:
            job: The task.

        Returns:
            ``True`` if it may have freed an unexplained accepted probe's slot.
        """
        return any(job in self._open[probe][1] for probe in self._landed)

    def unexplained(self) -> int:
        """Accepted probes whose freed slot no task's seen end explains yet.

        Returns:
            How many tasks believed running are known to have ended (which ones
            is not known).
        """
        return len(self._landed)

    def _check(self, probe: Job) -> None:
        entry = self._open.get(probe)
        if entry is None or entry[1] or probe not in self._landed:
            return
        self.dropped(probe)
        if entry[2] and not self.disproved:
            self.disproved = True
            logger.warning(
                "a probing create was accepted while none of the batch's tasks had ended: "
                "the account has more slots than max_running; no more probes past it "
                "(pass probe_slots=False to never probe past max_running)"
            )


class RunningTasks(Protocol):
    """What the prober asks the watcher."""

    @property
    def audit(self) -> ProbeAudit:
        """The probe audit."""
        ...

    def expected_freed(self, now: float) -> FreedSlots:
        """Slots the running tasks have probably freed unnoticed, and how fast that grows."""
        ...

    def running_count(self) -> int:
        """Tasks being watched."""
        ...


class Gate(Protocol):
    """What the prober reads of admission."""

    halted: Any
    queue: deque[Job]
    creates_in_flight: int
    coordination: Any
    pacing: Pacing
    window: AdmissionWindow
    running_slots: int
    confirmed_slots: int
    max_running: int
    quota_seen: bool
    wake: Wake


class SlotProbe:
    """The slot probe: one create past the window when tasks have probably ended unnoticed.

    Args:
        gate: The admission it serves (its queue, slots, window and pacing).
        running: The watcher's view of the running tasks.
        results: Tells when the batch is finished.
        probe_slots: Probe past ``max_running`` too: ``True`` always, ``False``
            never, ``None`` until a probe shows the account has more slots.
        threshold: Expected freed slots at which a probe goes out with
            :data:`_THRESHOLD_AT` tasks running, scaled by the fourth root of the
            running count (one that lands is followed at once by as many more as
            the estimate counted past one, until one is refused).
        clock: Seconds of this machine per second of the gateway's clock (a
            time-scaled fake runs faster).
    """

    def __init__(
        self,
        gate: Gate,
        running: RunningTasks,
        results: Results,
        probe_slots: bool | None,
        threshold: float,
        clock: float = 1.0,
    ) -> None:
        self._gate = gate
        self._running = running
        self._results = results
        self._past_max = probe_slots
        self._threshold = threshold
        self._max_wait = _PROBE_MAX_WAIT * clock
        self._clock = clock
        self._refused_run = 0  # refusals in a row past the surprise
        self._owed = 0.0  # landings promised to the probes refused in a row
        self._in_flight = 0.0  # freed slots expected when the probe in flight left
        # Landings promised to the probes the sum sent, and landings seen: their
        # ratio corrects the promises (durations learned under other conditions, a
        # gateway that frees slots late) before they are held against refusals. A
        # run of refusals counts once it ends, so it is judged by earlier runs only.
        self._run_promised = 0.0
        self._promised = _CALIBRATION_PRIOR
        self._kept = _CALIBRATION_PRIOR
        self._not_before = 0.0
        self._burst = 0.0  # freed slots the last probe's estimate still owes
        self._quota_tested = False
        self._min_gap = _PROBE_MAX_WAIT * clock / 50  # between two sums over running tasks
        self._summed_at = -math.inf
        # The sum that sent the probe in flight: when, the threshold then, and how
        # fast freed slots would grow once its answer restarts the credit.
        self._fired_sum: tuple[float, float, float] | None = None
        self._resume_at = 0.0  # no sum before then (see _answered)
        #: The admission loop may pass the window once.
        self.go = False
        self.wake = Wake()

    def ceiling(self, slots: int) -> float:
        """Most slots the batch may believe held once a probe of ``slots`` is sent.

        Past ``max_running`` only when probing past it is allowed: without bound
        once the gateway is known to enforce a quota at or below it (a 1303 came
        while the batch held no more than ``max_running``: every accepted probe
        then fills a freed slot), else by one task (``None``, until a probe shows
        the account has more slots).
        """
        gate = self._gate
        if self._past_max is False or self._running.audit.disproved:
            return gate.max_running
        if self._past_max or gate.quota_seen:
            return float("inf")
        return gate.max_running + slots

    def refilling(self) -> bool:
        """Whether probes refill slots freed unnoticed (polls then only report ends).

        Returns:
            ``True`` when probing past the window is allowed and proved sound:
            the gateway enforces a quota at ``max_running`` or below (a 1303 came
            with no more held), or probing past it was asked for.
        """
        gate = self._gate
        return (
            gate.coordination is None
            and self._past_max is not False
            and not self._running.audit.disproved
            and (self._past_max is True or gate.quota_seen)
            and self._running.running_count() <= PROBE_MAX_RUNNING
        )

    def refused(self) -> None:
        """A probe was refused (1303). Past a surprising run of them, probes back off.

        The learned durations decide when to probe and promise each probe a chance
        of landing. Refusals in a row whose promised landings add up past
        :data:`_SURPRISE` are unlikely when the durations are right; past that
        point they are wrong (another client holds the account's slots, lives
        changed), and each refusal doubles the wait before the next probe, so a
        wrong model costs a few requests, not a storm. A fixed count would back
        off in normal runs too: a probe sent at the threshold lands one time in
        six or seven.
        """
        self._burst = 0.0  # none had ended: the estimate was early
        self._answered()
        if self._in_flight > 0.0:
            self._run_promised += -math.expm1(-self._in_flight)
            self._owed += -math.expm1(-self._in_flight * self.calibration)
        self._in_flight = 0.0
        if self._owed < _SURPRISE:
            return
        self._refused_run += 1
        step = min(_BACKOFF_BASE * 2.0 ** (self._refused_run - 1), _BACKOFF_MAX) * self._clock
        self._not_before = time.monotonic() + step

    def landed(self) -> None:
        """A probe was accepted: its promise was kept (counted for the calibration)."""
        self._answered()
        if self._in_flight > 0.0:
            self._promised += -math.expm1(-self._in_flight)
            self._kept += 1.0
        self._in_flight = 0.0

    def _answered(self) -> None:
        """The probe's answer restarted the freed-slot credit: no sum is due for a while.

        Right after the restart the expected count is about zero and grows at the
        running tasks' summed hazard, which the firing sum measured
        (``restart_rate``). The sum just after each answer would find only that,
        so it is skipped: the next one comes when that growth could reach the
        threshold, a moment no later than the one it would have chosen. Events in
        between (tasks seen running or ended) only lower the count. On the
        benchmark's 4,000-job shape (200 running) this left 21,093 sums where
        there were 25,295, for about 13,000 probes; the sums are the prober's
        main cost.
        """
        fired, self._fired_sum = self._fired_sum, None
        if fired is not None:
            at, threshold, restart_rate = fired
            self._resume_at = at + min(threshold / restart_rate, self._max_wait)

    @property
    def calibration(self) -> float:
        """Landings seen per landing promised by the learned durations (bounded)."""
        low, high = _CALIBRATION_BOUNDS
        return min(max(self._kept / self._promised, low), high)

    def freed(self) -> None:
        """A slot freed (a task seen ending, or a probe accepted): probes may go freely."""
        self._refused_run = 0
        self._owed = 0.0
        self._promised += self._run_promised
        self._run_promised = 0.0
        self._not_before = 0.0

    async def loop(self) -> None:
        """Send a probing create whenever running tasks have probably freed a slot unnoticed."""
        while not self._results.finished():
            await self.wake.wait(self.check())

    def check(self) -> float | None:
        """Decide on a probe now; return seconds until the next check (``None``: on wake)."""
        gate = self._gate
        if (
            gate.halted is not None
            or not gate.queue
            or self.go
            or gate.creates_in_flight
            or gate.coordination is not None  # a lease is the only way past the window
            or self._running.running_count() > PROBE_MAX_RUNNING
        ):
            return None
        now = time.monotonic()
        not_before = max(
            gate.pacing.not_before,
            self._not_before,
            gate.pacing.breaker.room_at(now, _BREAKER_SHARE),
        )
        if now < not_before:
            return not_before - now
        job = gate.queue[0]
        if gate.window.can_admit(gate.running_slots, job.slots):
            return None  # the admission loop takes it
        if gate.running_slots + job.slots > self.ceiling(job.slots):
            return None
        if (
            self._past_max is None
            and not gate.quota_seen
            and not self._quota_tested
            and gate.confirmed_slots >= gate.max_running
        ):
            # Once the cap is first reached, one probe at once: a 1303 shows the
            # account's quota is max_running (later probes may go past it, each
            # into a freed slot); an acceptance shows it has more (the audit then
            # stops probing past the cap). Either way the answer is needed before
            # more than one probe can be out past the cap.
            self._quota_tested = True
            self._fire(0.0)  # promises nothing: the durations do not send it
            return None
        if self._burst >= 0.5:
            # The last probe landed and its estimate counted more freed slots:
            # the next one goes at once, until one is refused.
            self._burst -= 1.0
            self._fire(0.0)  # a burst ends at its first refusal: it promises nothing
            return None
        if now < self._resume_at:
            return self._resume_at - now
        if now - self._summed_at < self._min_gap:
            return self._min_gap - (now - self._summed_at)  # events come faster than this
        self._summed_at = now
        expected, rate, restart_rate = self._running.expected_freed(now)
        running = max(self._running.running_count(), 1)
        threshold = self._threshold * math.sqrt(math.sqrt(running / _THRESHOLD_AT))
        if expected >= threshold:
            self._burst = expected - 1.0
            self._fire(expected)
            if restart_rate > 0.0:
                self._fired_sum = (now, threshold, restart_rate)
            return None
        if rate <= 0:
            # Nothing can be timed yet (no duration learned, every task too young to
            # count, or chances too small to register): no event need come before a
            # task ages into the sum, so look again after the longest wait.
            return self._max_wait
        return min(max((threshold - expected) / rate, 1e-3), self._max_wait)

    def _fire(self, expected: float) -> None:
        self._in_flight = expected
        self._fired_sum = None
        self.go = True
        self._gate.wake.set()
