"""Pure scheduling arithmetic for the batch: learned poll schedules, admission window, budget.

Nothing here sleeps, sends or reads a clock: callers pass elapsed seconds and get
seconds back, so every rule is testable without an event loop.

Polling. Task lives of one *kind* (endpoint, model, mode, duration...) are close to
log-normal. :class:`PollPlanner` learns ``mu`` and ``sigma`` of the log-duration per
kind online from finished tasks and places each task's polls where they pay:

- the first poll at ``exp(mu - early_sigmas * sigma)`` (few tasks end before it);
- then steps ``hazard_gain * sqrt(median / hazard(t))``: sparse while ending is
  unlikely, dense around and after the median, where each second is most likely to
  hold the completion (minimising expected lag plus polls per task);
- every step at most ``max_step`` of the elapsed time, so a completion is noticed
  within that fraction of the task's life (the lag-ratio bound), and at least
  ``min_step`` of it;
- no jitter once learned: tasks are created at different moments, so their polls
  are spread already, and jitter would only buy lag with extra polls;
- past ``tail_sigmas`` the task is an outlier (or stuck): steps grow geometrically
  to the prior's ``max_interval`` cap.

Until a kind has a sample, the planner borrows from a coarser kind (same endpoint
and model, say) with a wider sigma, or falls back to the :class:`PollPolicy` prior:
a late first poll, then geometric growth with jitter to a cap. Jitter only ever
moves polls earlier, never later.

The defaults come from simulating log-normal lives (sigma 0.25): about 5.8 polls
per task, mean lag 5 % and 95th percentile 9 % of the task's life. Per-task
polling cannot do much better at that variance (lag costs polls: a
``hazard_gain`` of 0.1 gives 3.4 % mean lag for about 7.6 polls), which is why
the batch does not rely on polls to find freed slots: while work waits it probes
with a create (see ``batch/_probe.py``), and polls only have to notice each end
in time for its result. An accepted probe proves that one of the tasks running
when it left has ended: the likeliest is polled at once and, while it is found
running, the next likeliest (up to ``landing_search`` polls). Most ends are then
found that way, so a task polled one by one while probes refill its slots starts
later (``refilled_early_sigmas``) and steps wider (``refilled_step_factor``).
Tasks sharing a request (turbo batch queries, Kling's
list pages) step on sparser grids (``batched_max_step``, ``listed_max_step``),
and while nothing waits for a slot every step is capped at ``ending_max_step``:
the last task noticed ends the batch (the last few at ``last_max_step``: one of
them is that task).

Admission. :class:`AdmissionWindow` is AIMD over concurrency slots: slow start up to
``max_running``; on a 1303 the window drops to the slots actually running (the
quota just measured); each clean completion adds back a fraction of a slot, so the
window creeps above the quota now and then and the create that probes it either
lands in a slot freed by a completion not yet noticed, or gets one cheap 1303.
:meth:`PollPlanner.ended_probability` lets the batch probe at the right moment
too: when the running tasks have probably freed a slot that no poll has seen.

Budget. :class:`Budget` keeps spent and reserved units against ``max_units`` with
per-kind estimates learned from finished tasks.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import deque
from collections.abc import Mapping
from typing import Any

import attrs

from ._config import PollPolicy
from ._window import AdmissionWindow, Budget, Kind

__all__ = [
    "AdmissionWindow",
    "Budget",
    "DurationStats",
    "Kind",
    "PollPlanner",
    "ScheduleTuning",
    "kind_of",
    "last_few",
    "observed_duration",
]


_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def kind_of(endpoint_name: str, payload: Mapping[str, Any]) -> Kind:
    """The kind of a request, for learning how long its tasks take.

    Args:
        endpoint_name: The endpoint's name (``text2video``...).
        payload: The request body (wire names).

    Returns:
        ``(endpoint, model_name, mode or resolution, duration, count)``; coarser
        kinds are its prefixes.
    """
    settings = payload.get("settings")
    extra: Mapping[str, Any] = settings if isinstance(settings, Mapping) else {}

    def text(*names: str) -> str:
        for name in names:
            value = payload.get(name, extra.get(name))
            if value is not None and value != "":
                return str(value)
        return ""

    return (
        endpoint_name,
        text("model_name", "model"),
        text("mode", "resolution"),
        text("duration"),
        text("n", "series_amount"),
    )


def observed_duration(
    lower: float, upper: float, server: float | None, *, tolerance: float = 0.05
) -> float:
    """Best estimate of a task's life from what the polls saw.

    The task ended after ``lower`` (the last poll that saw it running was sent
    then) and by ``upper`` (the poll that saw it ended came back then). The
    server's own timestamps are used when they fall inside that bracket.

    Args:
        lower: Seconds from creation to the send time of the last poll that saw the
            task running (0 when none did).
        upper: Seconds from creation to the receipt of the answer showing it ended.
        server: ``updated_at - created_at`` as the server reports it, if known.
        tolerance: Relative slack for the server's figure (clock skew, rounding).

    Returns:
        Seconds, always within ``(0, upper]``.
    """
    upper = max(upper, 1e-6)
    lower = min(max(lower, 0.0), upper)
    slack = tolerance * upper
    if server is not None and lower - slack <= server <= upper + slack and server > 0:
        return min(server, upper)
    if lower <= 0.0:
        # Ended before the first poll: all we know is "by upper". Take the bound;
        # erring long only makes later first polls a little later than ideal.
        return upper
    return 0.5 * (lower + upper)


@attrs.frozen(kw_only=True)
class ScheduleTuning:
    """Knobs of the learned poll schedule (defaults are tuned; see module docs).

    Attributes:
        early_sigmas: First poll this many sigmas before the median.
        max_step: Largest step as a fraction of the elapsed time (bounds lag/life).
        batched_max_step: The same for tasks polled by batch query. A query
            answers every running task of its lane, so the lane is asked at the
            pace of its most pressing task; a wider cap keeps the others from
            setting that pace while they are young.
        batched_early_sigmas: ``early_sigmas`` for tasks polled by batch query.
        listed_max_step: ``max_step`` for tasks watched by list query (one page
            answers every task of a family; an accepted probe also triggers one).
        ending_max_step: ``max_step`` while nothing waits for a slot (the batch's
            last tasks: the last one noticed ends the batch).
        last_max_step: ``max_step`` of the batch's last few running tasks while
            nothing waits (one of them ends the batch: few polls buy a tight end).
        listed_min_step: Smallest step, as a fraction of the learned median, of
            a task watched by list query while probes refill freed slots (its
            polls then only bound how late its end is reported: one page a
            third of a life answers every task of the family).
        min_step: Smallest step as a fraction of the elapsed time.
        refilled_early_sigmas: ``early_sigmas`` of a task polled one by one while
            probes refill freed slots and work waits (each accepted probe starts a
            search for the task that ended, so its own polls may start later).
        refilled_step_factor: Its steps, as a multiple of the capped hazard step,
            in the same case. In the benchmark matrix (session 11's run against
            session 12's, with the landing search): status requests per task 5.80
            to 3.70 at ``base`` and 6.93 to 5.27 at 4,000 jobs; p95 notice lag
            0.091 to 0.050 at ``base``, but 0.101 to 0.269 on ``alt_gateway``,
            whose lives the log-normal fits badly.
        landing_search: Polls, at most, that look for the task an accepted probe
            showed had ended, after the likeliest one was found still running:
            each goes to the likeliest remaining task among those running when
            the probe left and not seen running since (``0``: no search).
        hazard_gain: Scale of the hazard-shaped step (dimensionless).
        tail_sigmas: Beyond this many sigmas past the median a task is an outlier.
        tail_step: Step fraction for outliers (capped by the prior's ``max_interval``).
        prior_sigma: Sigma assumed before samples exist (blended in while a kind
            has fewer than three; from three on, sigma is an upper 80% bound
            from the samples alone, cautious with few and tight with many).
        prior_weight: Pseudo-samples behind ``prior_sigma`` in that blend.
        min_sigma: Floor of the learned sigma.
        coarse_sigma: Extra sigma when borrowing a coarser kind's figures.
        window: Samples the estimate effectively remembers (older ones fade).
        reconcile_sigmas: With callbacks, the first reconciliation poll comes this
            many sigmas after the median.
        reconcile_factor: With callbacks and no samples, prior delays are
            stretched by this factor.
        probe_threshold: Expected number of slots freed by tasks that ended
            unnoticed at which a probing create is sent, for 10 running tasks
            (lower: fuller slots, more 1303 answers). It scales with the fourth
            root of the running count: with many tasks running each probe saves
            less idle time, and ends come often enough that a higher bar costs
            little lag.
        gap_share: A poll may skip ahead to the point where this share of the
            recently finished tasks of the kind that outlived the task's age had
            ended (the learned lives' conditional quantile), when that is later
            than the step above: lives with gaps (two modes, say) are not polled
            through the gap. ``0`` turns it off.
        gap_survivors: Recent lives longer than the task's age needed before
            that quantile is trusted.
        min_delay: Smallest delay between polls of one task, seconds.
    """

    early_sigmas: float = 1.4
    max_step: float = 0.09
    batched_max_step: float = 0.2
    batched_early_sigmas: float = 1.4
    ending_max_step: float = 0.05
    last_max_step: float = 0.01
    listed_max_step: float = 0.25
    listed_min_step: float = 0.3
    min_step: float = 0.02
    refilled_early_sigmas: float = 1.0
    refilled_step_factor: float = 3.5
    landing_search: int = 6
    hazard_gain: float = 0.25
    tail_sigmas: float = 3.0
    tail_step: float = 0.25
    prior_sigma: float = 0.5
    prior_weight: float = 2.0
    min_sigma: float = 0.03
    coarse_sigma: float = 0.2
    window: int = 200
    reconcile_sigmas: float = 3.0
    reconcile_factor: float = 4.0
    probe_threshold: float = 0.11
    gap_share: float = 0.04
    gap_survivors: int = 25
    min_delay: float = 0.001


@attrs.define(slots=True)
class DurationStats:
    """Exponentially weighted mean and variance of log-durations of one kind.

    Attributes:
        count: Samples seen.
        mean: Weighted mean of ``log(seconds)``.
        var: Weighted (population) variance of ``log(seconds)``.
    """

    count: int = 0
    mean: float = 0.0
    var: float = 0.0

    def add(self, seconds: float, window: int) -> None:
        """Fold in one observed duration.

        Args:
            seconds: The duration (> 0).
            window: Effective memory, in samples.
        """
        x = math.log(max(seconds, 1e-6))
        self.count += 1
        alpha = max(1.0 / self.count, 1.0 / max(1, window))
        delta = x - self.mean
        self.mean += alpha * delta
        self.var = (1.0 - alpha) * (self.var + alpha * delta * delta)


def _sigma_upper(sample_var: float, dof: int) -> float:
    """An upper 80% confidence bound on sigma from a sample variance with ``dof`` degrees.

    Wilson-Hilferty's approximation of the chi-square quantile: a handful of
    samples give a cautious (wide) sigma, and it tightens as they accrue, so a
    kind with tight lives is polled tightly within a few tasks.
    """
    h = 2.0 / (9.0 * dof)
    quantile = dof * (1.0 - h - 0.8416 * math.sqrt(h)) ** 3
    return math.sqrt(sample_var * dof / max(quantile, 1e-9))


def _hazard(z: float, sigma: float, t: float) -> float:
    """Hazard rate (1/s) of a log-normal at ``t`` whose standard score is ``z``."""
    survival = 0.5 * math.erfc(z / _SQRT2)
    density = _INV_SQRT_2PI * math.exp(-0.5 * z * z) / (sigma * t)
    return density / max(survival, 1e-300)


class PollPlanner:
    """Learned poll schedules, per task kind.

    Args:
        prior: The poll policy used until a kind has samples (and for caps/jitter).
        tuning: Schedule knobs.
        rng: Random source for jitter.
    """

    def __init__(
        self,
        prior: PollPolicy,
        tuning: ScheduleTuning | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.prior = prior
        self.tuning = tuning or ScheduleTuning()
        self._rng = rng or random.Random()
        self._stats: dict[Kind, DurationStats] = {}
        self._estimates: dict[Kind, tuple[float, float, int] | None] = {}
        # The last ``window`` lives of each kind, in arrival order and sorted.
        self._lives: dict[Kind, tuple[deque[float], list[float]]] = {}
        #: Bumped whenever an estimate may have changed (callers cache on it).
        self.generation = 0

    def observe(self, kind: Kind, seconds: float) -> None:
        """Learn from a finished task of ``kind`` that lived ``seconds``.

        Args:
            kind: From :func:`kind_of`.
            seconds: Its observed life (see :func:`observed_duration`).
        """
        if not (seconds > 0 and math.isfinite(seconds)):
            return
        self._estimates.clear()
        self.generation += 1
        for depth in range(1, len(kind) + 1):
            key = kind[:depth]
            stats = self._stats.get(key)
            if stats is None:
                stats = self._stats[key] = DurationStats()
            stats.add(seconds, self.tuning.window)
        recent = self._lives.get(kind)
        if recent is None:
            recent = self._lives[kind] = (deque(), [])
        arrived, ordered = recent
        arrived.append(seconds)
        bisect.insort(ordered, seconds)
        if len(arrived) > max(1, self.tuning.window):
            del ordered[bisect.bisect_left(ordered, arrived.popleft())]

    def estimate(self, kind: Kind) -> tuple[float, float, int] | None:
        """Log-normal parameters for ``kind``, from the most specific kind with samples.

        Args:
            kind: From :func:`kind_of`.

        Returns:
            ``(mu, sigma, samples)`` or ``None`` when nothing related was seen yet.
        """
        try:
            return self._estimates[kind]  # the sums over running tasks ask often
        except KeyError:
            est = self._estimates[kind] = self._estimate(kind)
            return est

    def _estimate(self, kind: Kind) -> tuple[float, float, int] | None:
        tune = self.tuning
        for depth in range(len(kind), 0, -1):
            stats = self._stats.get(kind[:depth])
            if stats is None or stats.count == 0:
                continue
            n = min(stats.count, tune.window)
            if n >= 3:
                sigma = _sigma_upper(stats.var * n / (n - 1), n - 1)
            else:
                var = (tune.prior_weight * tune.prior_sigma**2 + n * stats.var) / (
                    tune.prior_weight + n
                )
                sigma = math.sqrt(var * (1.0 + 1.0 / n))
            if depth < len(kind):
                sigma += tune.coarse_sigma
            return stats.mean, max(sigma, tune.min_sigma), stats.count
        return None

    def median(self, kind: Kind) -> float | None:
        """Learned median life of ``kind``, seconds (``None`` before any sample).

        Args:
            kind: From :func:`kind_of`.

        Returns:
            Seconds or ``None``.
        """
        est = self.estimate(kind)
        return None if est is None else math.exp(est[0])

    def survival(self, kind: Kind, elapsed: float) -> float:
        """Probability a task of ``kind`` is still running ``elapsed`` seconds in.

        Args:
            kind: The task's kind.
            elapsed: Seconds since it was created.

        Returns:
            ``1.0`` when nothing is learned yet or ``elapsed <= 0``.
        """
        est = self.estimate(kind)
        if est is None or elapsed <= 0:
            return 1.0
        mu, sigma, _ = est
        return 0.5 * math.erfc(((math.log(elapsed) - mu) / sigma) / _SQRT2)

    def ended_probability(self, kind: Kind, lower: float, elapsed: float) -> tuple[float, float]:
        """How likely a task has ended by now, given it was running at ``lower``.

        Args:
            kind: The task's kind.
            lower: Elapsed seconds when it was last known to be running.
            elapsed: Elapsed seconds now.

        Returns:
            ``(probability, rate)``: the conditional probability it has ended, and
            how fast that probability grows (per second). ``(0, 0)`` before the
            kind has samples.
        """
        est = self.estimate(kind)
        if est is None or elapsed <= 0:
            return 0.0, 0.0
        mu, sigma, _ = est
        z_now = (math.log(elapsed) - mu) / sigma
        survive_now = 0.5 * math.erfc(z_now / _SQRT2)
        survive_then = self.survival(kind, lower)
        if survive_then <= 1e-12:
            return 1.0, 0.0
        density = _INV_SQRT_2PI * math.exp(-0.5 * z_now * z_now) / (sigma * elapsed)
        probability = min(1.0, max(0.0, 1.0 - survive_now / survive_then))
        return probability, density / survive_then

    def gap_end(self, kind: Kind, elapsed: float) -> float:
        """Age by which ``gap_share`` of the recent lives longer than ``elapsed`` had ended.

        Args:
            kind: The task's kind (its own lives only, never a coarser kind's).
            elapsed: The task's age, seconds (it is known to be running).

        Returns:
            That age, a little early (``min_step`` of it); ``0.0`` when fewer than
            ``gap_survivors`` recent lives outlast ``elapsed`` or the rule is off.
        """
        tune = self.tuning
        recent = self._lives.get(kind)
        if recent is None or tune.gap_share <= 0:
            return 0.0
        ordered = recent[1]
        first_longer = bisect.bisect_right(ordered, elapsed)
        longer = len(ordered) - first_longer
        if longer < max(1, tune.gap_survivors):
            return 0.0
        skip = min(int(tune.gap_share * longer), longer - 1)  # a share of 1 or more: the longest
        return ordered[first_longer + skip] * (1.0 - tune.min_step)

    def _jitter(self, step: float) -> float:
        spread = min(max(self.prior.jitter, 0.0), 0.9)
        return step * (1.0 - spread * self._rng.random()) if spread else step

    def _prior_next(self, elapsed: float, polls: int, stretch: float) -> float:
        p = self.prior
        first = p.initial_delay * stretch
        if polls == 0 and elapsed < first:
            return first
        step = min(p.interval * p.multiplier ** max(0, polls - 1), p.max_interval) * stretch
        return elapsed + max(self._jitter(step), self.tuning.min_delay)

    def next_poll(
        self,
        kind: Kind,
        elapsed: float,
        polls: int,
        *,
        batched: bool = False,
        callbacks: bool = False,
        reconcile_interval: float | None = None,
        ending: bool = False,
        listed: bool = False,
        refilled: bool = False,
        last: bool = False,
    ) -> float:
        """When to poll a running task next.

        Args:
            kind: The task's kind.
            elapsed: Seconds since it was created.
            polls: Status queries it has had so far.
            batched: It is polled by batch query (polls are cheap: denser grid).
            callbacks: Callbacks report its completion; polls only reconcile.
            reconcile_interval: With callbacks, a fixed reconciliation period.
            ending: Nothing waits for a slot: the batch ends when its last task
                is noticed, so steps are capped at ``ending_max_step``.
            listed: It is watched by list query (steps up to ``listed_max_step``).
            refilled: Probes refill slots freed unnoticed: unless ``ending``, steps
                are at least the policy's ``interval`` (``listed_min_step`` of
                the median for a listed task).
            last: It is one of the batch's last few running tasks: with
                ``ending``, steps are capped at ``last_max_step``.

        Returns:
            Elapsed seconds (since creation) of the next poll, > ``elapsed``.
        """
        tune = self.tuning
        elapsed = max(0.0, elapsed)
        if callbacks and reconcile_interval is not None:
            return elapsed + max(reconcile_interval, tune.min_delay)
        est = self.estimate(kind)
        if est is None:
            return self._prior_next(elapsed, polls, tune.reconcile_factor if callbacks else 1.0)
        mu, sigma, _ = est
        if callbacks:
            first = math.exp(mu + tune.reconcile_sigmas * sigma)
            if elapsed < first:
                return first
            step = min(elapsed * 0.5, max(self.prior.max_interval, 0.1 * elapsed))
            return elapsed + max(step, tune.min_delay)
        early = tune.batched_early_sigmas if batched else tune.early_sigmas
        # Probes refill freed slots and a landed probe's task is searched for at once:
        # a classic task's own polls only bound how late an end missed by the search
        # is reported, so they start later and step wider.
        refill = refilled and not ending and not batched and not listed
        if refill:
            early = tune.refilled_early_sigmas
        first = math.exp(mu - early * sigma)
        if elapsed < first:
            return first
        t = max(elapsed, tune.min_delay)
        z = (math.log(t) - mu) / sigma
        if z >= tune.tail_sigmas:
            step = min(tune.tail_step * t, max(self.prior.max_interval, tune.max_step * t))
            if ending and last:
                step = min(step, tune.last_max_step * t)
        else:
            median = math.exp(mu)
            step = tune.hazard_gain * math.sqrt(median / _hazard(z, sigma, t))
            top = (tune.batched_max_step if batched else tune.max_step) * t
            if listed:
                top = tune.listed_max_step * t
            if ending:
                top = min(top, (tune.last_max_step if last else tune.ending_max_step) * t)
            step = min(max(step, tune.min_step * t), top)
            if refilled and not ending:
                # Probes refill freed slots: a poll only reports an end, so none
                # comes sooner than the policy's interval (the plain loop's pace),
                # and a list page (it answers every task) not within a share of a life.
                floor = tune.listed_min_step * median if listed else self.prior.interval
                step = max(step * tune.refilled_step_factor if refill else step, floor)
            # Where recent lives show a gap (few ended soon after this age), the
            # next poll waits for it to close instead of stepping through it.
            step = max(step, self.gap_end(kind, t) - t)
        return elapsed + max(step, tune.min_delay)


def last_few(max_running: int) -> int:
    """How many of a batch's last running tasks are polled tightly once nothing waits.

    One of them ends the batch. The wider the last wave, the more tasks end close to
    the last one (three at 200 slots, one up to 127), and a batch query's tight
    polls cost the same as a single task's, so the count stays small.

    Args:
        max_running: The batch's cap on running tasks.

    Returns:
        From 1 to 4.
    """
    return min(4, max(1, max_running // 64))
