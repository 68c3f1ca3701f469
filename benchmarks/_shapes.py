"""The gateway shapes of the schedule matrix: the issue's scenarios and the travel set.

:data:`FULL` holds the shapes ``python benchmarks/run.py --only matrix`` runs, each
judged against issue 14's targets. :data:`TRAVEL` holds gateways the scheduler was
never tuned on (other duration models, shorter and longer lives, other quotas,
lookup lag with latency, queue waits, submitted shares); ``--only matrix:travel``
runs them, judged as "every other shape": makespan within the loop's + 0.01 and
requests within half the loop's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs

SEED = 20250611
API_KEY = "bench-key"
ENDPOINT_PATH = "bench-endpoint"
ACCESS_KEY = "bench-access"
SECRET_KEY = "bench-secret-bench-secret-bench-secret"  # noqa: S105 (a fake's test pair)


@attrs.frozen(kw_only=True)
class Shape:
    """One scenario of the matrix.

    Attributes:
        name: Its name (``--only matrix:<name>``).
        summary: One line for the table's heading.
        jobs: Jobs in the batch.
        quota: The account's concurrency quota, and the batch's ``max_running``.
        time_scale: The fake's clock factor.
        mix: Job kinds cycled over the jobs (``t2v5``, ``t2v10``, ``turbo``, ``image``).
        fake: FakeConfig overrides of this shape.
        backend: ``gateway`` or ``kling`` (Kling's own API routes of the fake).
        targets: Which of issue 14's target sets applies (see :func:`judge`).
        extra: Contenders run on this shape only, after :data:`CONTENDERS`
            (``sdk_callbacks``: the SDK told of every end by a signed callback,
            which bounds what any client can reach on the shape).
    """

    name: str
    summary: str
    jobs: int
    quota: int
    time_scale: float
    mix: tuple[str, ...] = ("t2v5",)
    fake: dict[str, Any] = attrs.field(factory=dict)
    backend: str = "gateway"
    targets: str = "other"
    extra: tuple[str, ...] = ()

    def kinds(self) -> list[str]:
        """The kind of every job, in submission order."""
        return [self.mix[i % len(self.mix)] for i in range(self.jobs)]

    def fake_config(self) -> dict[str, Any]:
        """FakeConfig keyword arguments of this shape's gateway."""
        cfg: dict[str, Any] = {
            "api_key": API_KEY,
            "endpoint_path": ENDPOINT_PATH,
            "key_pairs": [[ACCESS_KEY, SECRET_KEY]],
            "seed": SEED,
            "time_scale": self.time_scale,
            "max_running": self.quota,
            "video_median": 100.0,
            "video_sigma": 0.25,
            "scale_by_request": False,
        }
        cfg.update(self.fake)
        return cfg


# The queue wait of ``queue_wait``: exponential with a mean of 30 % of the median
# life (30 s), so its median is 30 ln 2.
_WAIT_MEDIAN = round(30.0 * math.log(2.0), 3)

#: The full matrix. Clock factors: 0.01 turns a 100 s life into 1 s, so the 5 s
#: loop asks every 50 ms per running task (10 tasks: ~200 requests/s, well within
#: the fake and the client). ``large`` runs 200 at once: at 0.01 the loop would
#: send ~4,000 requests/s, more than client and fake sustain together on 2 cores
#: (the fake alone peaks near 5,000); at 0.05 it sends ~800/s and a 5 % lag is
#: still 250 ms, far above scheduling noise. ``images`` (20 s lives) runs at 0.02
#: so that a 10 % lag (40 ms) stays well above timer granularity.
FULL: tuple[Shape, ...] = (
    Shape(
        name="base",
        summary="200 text-to-video, quota 10, log-normal sigma 0.25",
        jobs=200,
        quota=10,
        time_scale=0.01,
        targets="base",
    ),
    Shape(
        name="half_turbo",
        summary="200 jobs, half classic, half turbo text-to-video",
        jobs=200,
        quota=10,
        time_scale=0.01,
        mix=("t2v5", "turbo"),
        targets="half_turbo",
    ),
    Shape(
        name="large",
        summary="4,000 text-to-video, quota 200",
        jobs=4000,
        quota=200,
        time_scale=0.05,
        targets="large",
    ),
    Shape(
        name="sigma_0.1",
        summary="as base, sigma 0.1",
        jobs=200,
        quota=10,
        time_scale=0.01,
        fake={"video_sigma": 0.1},
    ),
    Shape(
        name="sigma_0.5",
        summary="as base, sigma 0.5",
        jobs=200,
        quota=10,
        time_scale=0.01,
        fake={"video_sigma": 0.5},
    ),
    Shape(
        name="mix_5_10",
        summary="half 5 s, half 10 s clips, lives scaled by the request",
        jobs=200,
        quota=10,
        time_scale=0.01,
        mix=("t2v5", "t2v10"),
        fake={"scale_by_request": True},
    ),
    Shape(
        name="images",
        summary="200 one-image tasks, median 20 s, sigma 0.05",
        jobs=200,
        quota=10,
        time_scale=0.02,
        mix=("image",),
        fake={"image_median": 20.0, "image_sigma": 0.05},
    ),
    Shape(
        name="queue_wait",
        summary="as base plus an exponential queue wait (mean 30 s) holding the slot",
        jobs=200,
        quota=10,
        time_scale=0.01,
        fake={"queue_wait_median": _WAIT_MEDIAN, "queue_wait_model": "exponential"},
    ),
    Shape(
        name="alt_gateway",
        summary=(
            "bimodal lives (45/155 s), per-task submitted share 0.05-0.45, "
            "3 s lookup lag, 0.5 s latency"
        ),
        jobs=200,
        quota=10,
        time_scale=0.01,
        fake={
            "duration_model": "bimodal",
            "bimodal_share": 0.4,
            "bimodal_spread": 0.55,
            "video_sigma": 0.12,
            "queue_fraction": 0.25,
            "queue_fraction_jitter": 0.2,
            "lookup_lag": 3.0,
            "latency": 0.5,
            "scale_delays": True,
        },
    ),
    Shape(
        name="official",
        summary="base on Kling's own API routes (access/secret pair, JWT, list queries)",
        jobs=200,
        quota=10,
        time_scale=0.01,
        backend="kling",
        targets="official",
        extra=("sdk_callbacks",),
    ),
)


def _travel(name: str, summary: str, **changes: Any) -> Shape:
    """A shape of :data:`TRAVEL`: ``base`` with ``changes``, judged as "every other shape"."""
    return attrs.evolve(FULL[0], name=name, summary=summary, targets="other", **changes)


#: Gateways the scheduler was never tuned on, one change (or a few) from ``base``
#: each. Run with ``--only matrix:travel`` (not part of ``--only matrix``).
TRAVEL: tuple[Shape, ...] = (
    _travel(
        "gamma",
        "gamma-distributed lives, sigma 0.3",
        fake={"duration_model": "gamma", "video_sigma": 0.3},
    ),
    _travel(
        "shifted_exp",
        "shifted-exponential lives (a floor plus an exponential tail), sigma 0.3",
        fake={"duration_model": "shifted_exponential", "video_sigma": 0.3},
    ),
    _travel(
        "short_40s", "lives of median 40 s (8 polls of the 5 s loop)", fake={"video_median": 40.0}
    ),
    _travel(
        "long_250s",
        "lives of median 250 s, sigma 0.2",
        time_scale=0.004,
        fake={"video_median": 250.0, "video_sigma": 0.2},
    ),
    _travel("quota_5", "100 jobs, quota 5", jobs=100, quota=5),
    _travel("quota_25", "400 jobs, quota 25", jobs=400, quota=25),
    _travel(
        "lag_latency",
        "sigma 0.3, a new task unseen for 5 s, 0.3 s on every answer",
        fake={"lookup_lag": 5.0, "latency": 0.3, "scale_delays": True, "video_sigma": 0.3},
    ),
    _travel(
        "wait_lognormal",
        "a log-normal queue wait (median 20 s, sigma 1) holding the slot",
        fake={"queue_wait_median": 20.0, "queue_wait_sigma": 1.0},
    ),
    _travel(
        "submitted_share",
        "0.1 to 0.7 of each life spent submitted",
        fake={"queue_fraction": 0.4, "queue_fraction_jitter": 0.3},
    ),
)


def by_name(names: Sequence[str]) -> list[Shape]:
    """The shapes named (``travel`` stands for every shape of :data:`TRAVEL`), in run order.

    Args:
        names: Shape names; empty for every shape of :data:`FULL`.

    Returns:
        The chosen shapes, :data:`FULL` ones first.

    Raises:
        KeyError: A name no shape has.
    """
    if not names:
        return list(FULL)
    wanted = set(names)
    if "travel" in wanted:
        wanted |= {shape.name for shape in TRAVEL}
        wanted.discard("travel")
    known = {shape.name for shape in (*FULL, *TRAVEL)}
    unknown = sorted(wanted - known)
    if unknown:
        raise KeyError(f"no shape named {', '.join(unknown)}")
    return [shape for shape in (*FULL, *TRAVEL) if shape.name in wanted]


def quick(shape: Shape) -> Shape:
    """``shape`` at smoke-test sizes (figures not meant to be read)."""
    big = shape.name == "large"
    return attrs.evolve(shape, jobs=24 if big else 8, quota=8 if big else 4, time_scale=0.002)


def shape_names() -> tuple[str, ...]:
    """Names of the :data:`FULL` shapes, in run order."""
    return tuple(shape.name for shape in FULL)


def travel_names() -> tuple[str, ...]:
    """Names of the :data:`TRAVEL` shapes, in run order."""
    return tuple(shape.name for shape in TRAVEL)
