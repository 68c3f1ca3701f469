"""The fake gateway's state: tasks, indexes, quotas, counters. No I/O, no timers.

Status changes are not scheduled: a task's status is computed from its timestamps
whenever it is read. Counters that depend on status changes (running tasks per
key, tasks by status, units charged) are brought up to date lazily by
:meth:`Store.advance`, which pops a heap of pending transitions in time order:
O(log n) per task, whatever the number of live tasks.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from typing import Any

import attrs

from .._endpoints import ENDPOINTS
from ._config import FakeConfig
from ._tasks import FAILED, PROCESSING, SUBMITTED, SUCCEED, TaskRecord

__all__ = ["FaceSessionRecord", "Store"]

_COUNTERS = (
    "requests_total",
    "api_requests",
    "creates",
    "create_requests",
    "duplicate_external_ids",
    "queries",
    "batch_queries",
    "batch_query_ids",
    "list_queries",
    "list_query_tasks",
    "token_requests",
    "identify_face",
    "not_found",
    "auth_failures",
    "invalid_requests",
    "rate_limited",
    "concurrency_limited",
    "faults_injected",
    "media_requests",
    "media_expired",
    "callbacks_sent",
    "callbacks_failed",
    "callbacks_skipped",
    "client_disconnects",
)


#: RFC 4122 variant nibble for each hex digit (keeps the id a valid UUID4).
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


@attrs.define(kw_only=True)
class FaceSessionRecord:
    """A face session from identify-face, for lip-sync to refer to.

    Attributes:
        session_id: The id handed out.
        key: The key that created it.
        face_ids: Faces found.
        video: ``parent_video`` object of the identified video.
    """

    session_id: str
    key: str
    face_ids: tuple[str, ...]
    video: dict[str, Any]


class Store:
    """Everything the fake remembers, and the figures it reports.

    Args:
        config: The fake's configuration.
        clock: The fake's monotonic clock.
        wall_offset: Add to a clock value to get Unix seconds.
    """

    def __init__(self, config: FakeConfig, clock: Callable[[], float], wall_offset: float) -> None:
        self._config = config
        self._clock = clock
        self.wall_offset = wall_offset
        self._medians = {
            "video": (config.video_median, config.video_sigma),
            "image": (config.image_median, config.image_sigma),
            "audio": (config.audio_median, config.audio_sigma),
        }
        self.reset()

    def reset(self) -> None:
        """Forget every task, session and figure; restart every random sequence."""
        seed = self._config.seed
        self._life_rng = random.Random(f"{seed}-life")
        # Sequences of their own: turning a queue knob on leaves lives and ids as they were.
        self._wait_rng = random.Random(f"{seed}-queue-wait")
        self._share_rng = random.Random(f"{seed}-queue-share")
        self._id_rng = random.Random(f"{seed}-ids")
        # Separate from ids, so error answers do not shift the ids of later tasks.
        self._rid_rng = random.Random(f"{seed}-request-ids")
        self._next = 868_000_000_000_000_000 + self._id_rng.randrange(10**15)
        self.tasks: dict[str, TaskRecord] = {}
        self.by_external: dict[tuple[str, str], TaskRecord] = {}
        #: (account, family name) -> its tasks in creation order (the list query).
        self.by_family: dict[tuple[str, str], list[TaskRecord]] = {}
        #: Digests of the distinct tokens accepted.
        self.tokens: set[str] = set()
        #: Video output id -> (task, index) for identify-face and video-extend.
        self.videos: dict[str, TaskRecord] = {}
        self.sessions: dict[str, FaceSessionRecord] = {}
        self._transitions: list[tuple[float, int, int, TaskRecord]] = []
        self._seq = 0
        self.running: dict[str, int] = {}
        self.running_slots: dict[str, int] = {}
        self.counts: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self.creates_by_family: dict[str, int] = {ep.name: 0 for ep in ENDPOINTS if ep.is_task}
        self.faults_by_kind: dict[str, int] = {}
        self.tasks_by_status: dict[str, int] = dict.fromkeys(
            (SUBMITTED, PROCESSING, SUCCEED, FAILED), 0
        )
        self.units_charged = 0.0
        self.max_running_observed = 0
        self.max_slots_observed = 0

    # --- ids ------------------------------------------------------------------------

    def next_id(self) -> str:
        """A fresh 18-digit id (tasks, outputs, sessions share one sequence)."""
        self._next += 1 + self._id_rng.randrange(7)
        return str(self._next)

    def request_id(self) -> str:
        """A fresh ``request_id``: a seeded, UUID4-shaped string."""
        h = "%032x" % self._rid_rng.getrandbits(128)  # noqa: UP031  (fastest on the hot path)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"

    # --- random draws ---------------------------------------------------------------

    def draw_life(self, kind: str, factor: float) -> float:
        """A task's whole life in real seconds (log-normal, scaled).

        Args:
            kind: ``video``, ``image`` or ``audio``.
            factor: Stretch of the median for this request.

        Returns:
            Seconds.
        """
        median, sigma = self._medians.get(kind, self._medians["video"])
        if not self._config.scale_by_request:
            factor = 1.0
        model = self._config.duration_model
        if model == "lognormal":
            life = median * factor * math.exp(self._life_rng.gauss(0.0, sigma) if sigma else 0.0)
        else:
            life = median * factor * self._unit_life(model, sigma)
        return life * self._config.time_scale

    def _unit_life(self, model: str, sigma: float) -> float:
        """A life of median about 1 drawn from ``model`` (see :data:`DURATION_MODELS`)."""
        rng = self._life_rng
        if model == "gamma":
            if sigma <= 0:
                return 1.0
            shape = 1.0 / (sigma * sigma)
            # Median of a gamma(k, 1) ~ k (3k - 0.8) / (3k + 0.2) (within 1 % for k >= 1).
            median = shape * (3.0 * shape - 0.8) / (3.0 * shape + 0.2)
            return rng.gammavariate(shape, 1.0) / max(median, 1e-9)
        if model == "shifted_exponential":
            tail = sigma
            floor = max(0.0, 1.0 - tail * math.log(2.0))
            if tail <= 0:
                return 1.0
            if floor == 0.0:  # no room for a minimum: a plain exponential of median 1
                tail = 1.0 / math.log(2.0)
            return floor + rng.expovariate(1.0 / tail)
        # bimodal
        spread = self._config.bimodal_spread
        short = rng.random() < self._config.bimodal_share
        centre = 1.0 - spread if short else 1.0 + spread
        return centre * math.exp(rng.gauss(0.0, sigma) if sigma else 0.0)

    def draw_timing(self, kind: str, factor: float) -> tuple[float, float]:
        """When a new task starts processing and when it ends, in seconds after its create.

        The life comes from :meth:`draw_life`; a queue wait (``queue_wait_median``)
        comes before it, and the life's first share (``queue_fraction``, jittered
        per task by ``queue_fraction_jitter``) is still ``submitted``.

        Args:
            kind: ``video``, ``image`` or ``audio``.
            factor: Stretch of the median for this request.

        Returns:
            ``(to_processing, to_end)`` in real seconds (time scale applied).
        """
        life = self.draw_life(kind, factor)
        cfg = self._config
        wait = 0.0
        if cfg.queue_wait_median > 0:
            if cfg.queue_wait_model == "exponential":
                draw = self._wait_rng.expovariate(math.log(2.0) / cfg.queue_wait_median)
            else:
                sigma = cfg.queue_wait_sigma
                draw = cfg.queue_wait_median * math.exp(
                    self._wait_rng.gauss(0.0, sigma) if sigma else 0.0
                )
            wait = draw * cfg.time_scale
        share = cfg.queue_fraction
        if cfg.queue_fraction_jitter > 0:
            jitter = cfg.queue_fraction_jitter
            share = min(1.0, max(0.0, share + self._share_rng.uniform(-jitter, jitter)))
        return wait + life * share, wait + life

    def draw_fails(self) -> bool:
        """Whether a new task will fail (``fail_rate``)."""
        rate = self._config.fail_rate
        return rate > 0 and self._life_rng.random() < rate

    # --- tasks ----------------------------------------------------------------------

    def find(self, key: str, ident: str) -> TaskRecord | None:
        """A task of ``key`` by task id or external task id.

        Args:
            key: The caller's API key.
            ident: Task id or external task id.

        Returns:
            The record, or ``None``.
        """
        rec = self.tasks.get(ident)
        if rec is not None and rec.key == key:
            return rec
        return self.by_external.get((key, ident))

    def add(self, rec: TaskRecord) -> None:
        """Store a new task and count it.

        Args:
            rec: The task.
        """
        self.tasks[rec.task_id] = rec
        self.by_family.setdefault((rec.key, rec.endpoint.name), []).append(rec)
        if rec.external_id is not None:
            self.by_external[(rec.key, rec.external_id)] = rec
        if rec.endpoint.kind == "video":
            for out in rec.output_ids:
                self.videos[out] = rec
        self._seq += 1
        heapq.heappush(self._transitions, (rec.started, self._seq, 1, rec))
        heapq.heappush(self._transitions, (rec.completes, self._seq, 2, rec))
        self.tasks_by_status[SUBMITTED] += 1
        self.counts["creates"] += 1
        self.creates_by_family[rec.endpoint.name] = (
            self.creates_by_family.get(rec.endpoint.name, 0) + 1
        )
        running = self.running.get(rec.key, 0) + 1
        slots = self.running_slots.get(rec.key, 0) + rec.slots
        self.running[rec.key] = running
        self.running_slots[rec.key] = slots
        self.max_running_observed = max(self.max_running_observed, running)
        self.max_slots_observed = max(self.max_slots_observed, slots)

    def advance(self, now: float) -> None:
        """Apply every status change due by ``now`` to the counters.

        Args:
            now: Fake monotonic time.
        """
        heap = self._transitions
        while heap and heap[0][0] <= now:
            _, _, phase, rec = heapq.heappop(heap)
            if phase == 1:
                self.tasks_by_status[SUBMITTED] -= 1
                self.tasks_by_status[PROCESSING] += 1
                continue
            self.tasks_by_status[PROCESSING] -= 1
            if rec.fails:
                self.tasks_by_status[FAILED] += 1
            else:
                self.tasks_by_status[SUCCEED] += 1
                self.units_charged += rec.units
            self.running[rec.key] -= 1
            self.running_slots[rec.key] -= rec.slots

    def listing(self, key: str, family: str) -> list[TaskRecord]:
        """The tasks of one account and family, oldest first (do not modify).

        Args:
            key: The account.
            family: The endpoint name.

        Returns:
            The records.
        """
        return self.by_family.get((key, family), [])

    def note_token(self, digest: str) -> None:
        """Count a request authenticated by a token, and the token among those seen.

        Args:
            digest: A digest of the token.
        """
        self.counts["token_requests"] += 1
        self.tokens.add(digest)

    def count_fault(self, fault: str) -> None:
        """Count one injected fault."""
        self.counts["faults_injected"] += 1
        self.faults_by_kind[fault] = self.faults_by_kind.get(fault, 0) + 1

    # --- reports --------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Every figure, as a JSON-ready dict (see ``FakeGateway.stats``)."""
        self.advance(self._clock())
        out: dict[str, Any] = dict(self.counts)
        out["creates_by_family"] = dict(self.creates_by_family)
        out["faults_by_kind"] = dict(self.faults_by_kind)
        out["tasks_by_status"] = dict(self.tasks_by_status)
        out["tasks_total"] = len(self.tasks)
        out["running"] = sum(self.running.values())
        out["running_slots"] = sum(self.running_slots.values())
        out["max_running_observed"] = self.max_running_observed
        out["max_slots_observed"] = self.max_slots_observed
        out["units_charged"] = round(self.units_charged, 4)
        out["face_sessions"] = len(self.sessions)
        out["tokens_seen"] = len(self.tokens)
        return out

    def records(self) -> list[dict[str, Any]]:
        """One dict per task, in creation order (see ``FakeGateway.task_records``)."""
        now = self._clock()
        return [
            {
                "task_id": rec.task_id,
                "external_task_id": rec.external_id,
                "family": rec.endpoint.name,
                "created": rec.created,
                "started": rec.started,
                "completes_at": rec.completes,
                "duration_s": rec.completes - rec.created,
                "status": rec.status_at(now),
                "first_terminal_seen_at": rec.first_terminal_seen_at,
                "queries": rec.queries,
                "units": rec.units if not rec.fails else 0.0,
                "slots": rec.slots,
            }
            for rec in self.tasks.values()
        ]
