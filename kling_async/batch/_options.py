"""Every knob of a batch, in one frozen, typed object."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from .._callbacks import CallbackReceiver
from .._config import PollPolicy
from .._schedule import ScheduleTuning
from ._values import Event

__all__ = ["DEFAULT_RECONCILE_DEADLINE", "BatchOptions"]

#: Seconds a create that may have landed is looked up before the job is journaled ``unknown``.
DEFAULT_RECONCILE_DEADLINE = 600.0
#: Refused creates (1302/1303) per second past which admissions pause (the circuit breaker).
DEFAULT_MAX_REFUSALS_PER_SECOND = 10.0


def _at_least_one(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value!r}")


def _positive_or_none(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be > 0 (or None), got {value!r}")


def _non_negative_or_none(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0 (or None), got {value!r}")


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _path_or_none(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


@attrs.frozen(kw_only=True)
class BatchOptions:
    """How a batch runs. Vary it with :func:`attrs.evolve`; every field is checked on creation.

    Attributes:
        max_running: Most concurrency slots to hold at once (a video task takes 1,
            an image task ``n``). Set it to your account's quota; when unsure, set it
            higher: 1303 answers shrink the effective window to what the account
            really allows.
        max_requests_per_second: Rate limit shared by every request the batch makes
            (creates, polls, batch queries, look-ups); ``None`` for none. 1302/429
            answers pause it in any case.
        journal: SQLite file recording every job (resume by running the same batch
            with the same journal); ``None`` for none.
        batch_id: Names the batch inside the journal and seeds the deterministic
            ``external_task_id`` of each job. Default: the id already in the
            journal, else a random one.
        download_dir: Download every output there before its result is yielded.
        max_download_concurrency: Jobs downloading at once.
        max_units: Stop admitting jobs when spent plus in-flight units would exceed
            this; the rest end ``not_started``.
        callbacks: A :class:`CallbackReceiver` (serving, or mounted in your app with
            its ``public_url`` set): tasks are created with its URL and a callback
            triggers an immediate refresh; polling only reconciles.
        fail_fast: After the first failed or errored job, admit nothing more (the
            rest end ``not_started``; tasks already running are still followed).
        on_event: Called with each :class:`Event` (progress bars, metrics). It must
            not block; exceptions it raises are logged and ignored.
        poll: Polling priors, used until a kind of task has finished once
            (default: the session's poll policy). ``timeout`` bounds how long one
            task is followed.
        reconcile_interval: With callbacks, poll each task every this many seconds
            (default: learned from finished tasks, well after their expected end).
        schedule: Knobs of the learned poll schedule (advanced).
        probe_slots: Probe for slots freed unnoticed. When every slot is held,
            work is waiting and the batch's tasks have probably ended unnoticed
            (per the learned durations), one create is sent anyway: the gateway
            accepts it only into a free slot, and a 1303 (which costs nothing)
            tells the batch that none of its tasks has ended yet, so their polls
            can wait. ``None`` (the default) probes past ``max_running`` until a
            probe is accepted while none of the batch's tasks had ended (the
            account has more slots than ``max_running``: at most one task past
            the cap, then no more probes past it, with a warning); ``True``
            always probes past it (``max_running`` is your account's quota);
            ``False`` never passes ``max_running`` (below it, after a 1303
            showed the real quota, the batch still probes). Callback-watched
            tasks are never probed for: their ends are reported as they happen.
        max_ids_per_query: Most task ids in one turbo batch query (the gateway
            documents no limit; lower it if long query strings are refused).
        seed: Seed of the jitter (repeatable schedules in tests and benchmarks).
        lookup_patience: Seconds a create whose outcome is unclear (timeout,
            dropped connection, 5xx) is looked up by its external id before it may
            be sent again. A new task can stay invisible to look-ups for a while
            (lookup lag); sending the create again sooner could pay twice on a
            gateway that does not refuse a repeated external id. Default: five
            times the session's ``retry.reconcile_grace`` (15 s by default).
        reconcile_deadline: Seconds to keep looking up a create that may have
            landed (the gateway said its external id exists, or every allowed
            create attempt was unclear) before the job is journaled ``unknown``
            with its external id; the next run looks it up before anything else.
        max_refusals_per_second: Circuit breaker: when more creates than this are
            refused (1302/1303) within one second, admissions pause until the rate
            falls back, whatever the cause, so a scheduling bug can never hammer
            the gateway.
        coordinate: Share the account's slots, window, pauses and learned durations
            with other processes: a ``redis://`` URL (needs the ``redis`` extra) or a
            :class:`kling_async.coordination.SlotStore`; ``None`` keeps them in this
            process.
        resume_unfinished: Also watch, download and yield every job the journal
            holds as created but not finished, even when it is not submitted again
            (a web app restarting after SIGTERM).
        max_buffered_results: Most results kept for ``async for`` before the batch
            stops admitting until they are read (backpressure); delivered results are
            released. ``None`` for no bound.

    Raises:
        ValueError: An option is out of range.
    """

    max_running: int = attrs.field(default=10, validator=_at_least_one)
    max_requests_per_second: float | None = attrs.field(default=None, validator=_positive_or_none)
    journal: Path | None = attrs.field(default=None, converter=_path_or_none)
    batch_id: str | None = None
    download_dir: Path | None = attrs.field(default=None, converter=_path_or_none)
    max_download_concurrency: int = attrs.field(default=4, validator=_at_least_one)
    max_units: float | None = attrs.field(default=None, validator=_non_negative_or_none)
    callbacks: CallbackReceiver | None = None
    fail_fast: bool = False
    on_event: Callable[[Event], object] | None = None
    poll: PollPolicy | None = None
    reconcile_interval: float | None = attrs.field(default=None, validator=_positive_or_none)
    schedule: ScheduleTuning | None = None
    probe_slots: bool | None = None
    max_ids_per_query: int = attrs.field(default=100, validator=_at_least_one)
    seed: int | None = None
    lookup_patience: float | None = attrs.field(default=None, validator=_non_negative_or_none)
    reconcile_deadline: float = attrs.field(default=DEFAULT_RECONCILE_DEADLINE, validator=_positive)
    max_refusals_per_second: float = attrs.field(
        default=DEFAULT_MAX_REFUSALS_PER_SECOND, validator=_positive
    )
    coordinate: Any = attrs.field(default=None, repr=False)  # a URL may carry a password
    resume_unfinished: bool = False
    max_buffered_results: int | None = attrs.field(default=None, validator=_positive_or_none)
