"""The schedule matrix of the benchmarks runs every shape end to end and judges its targets.

The quick run checks shape and completeness only (every job created and finished by
both contenders, every figure finite); targets are judged on hand-made tables, never
on a timed run.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
RUN = BENCH / "run.py"

FIGURES = (
    "makespan_ratio",
    "status_requests_per_task",
    "requests_per_task",
    "p95_lag_ratio",
    "refused_per_task",
    "cpu_ms_per_request",
)


@pytest.fixture(scope="module")
def matrix_module() -> Iterator[Any]:
    """``benchmarks/matrix.py`` imported as the runner imports it."""
    sys.path.insert(0, str(BENCH))
    try:
        import matrix

        yield matrix
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """The JSON report of one quick run of the matrix alone."""
    return quick_run("matrix")


def quick_run(only: str) -> dict[str, Any]:
    """The JSON report of ``run.py --quick --json --only <only>``."""
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--json", "--only", only],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_every_shape_runs_both_contenders(report: dict[str, Any], matrix_module: Any) -> None:
    """Each shape reports both contenders (and its extra ones) with every figure finite."""
    assert list(report["matrix"]) == list(matrix_module.shape_names())
    extras = {shape.name: set(shape.extra) for shape in matrix_module.FULL}
    assert extras["official"] == {"sdk_callbacks"}
    for name, data in report["matrix"].items():
        assert set(data["contenders"]) == {"loop_5s", "sdk", *extras[name]}, name
        for contender, figures in data["contenders"].items():
            for key in FIGURES:
                assert _finite(figures[key]), (name, contender, key, figures.get(key))


def test_every_job_completes(report: dict[str, Any]) -> None:
    """Both contenders create and finish every job of every shape (no refused body, no error)."""
    for name, data in report["matrix"].items():
        jobs = data["shape"]["jobs"]
        loop, sdk = data["contenders"]["loop_5s"], data["contenders"]["sdk"]
        assert loop["errors"] == 0, name
        assert sdk["failures"] == 0, name
        for contender in (loop, sdk):
            assert contender["tasks_created"] == jobs, name
            assert contender["unnoticed_tasks"] == 0, name


def test_official_shape_uses_list_queries(report: dict[str, Any]) -> None:
    """On Kling's own routes the SDK's status requests (list queries included) are counted."""
    sdk = report["matrix"]["official"]["contenders"]["sdk"]
    assert sdk["status_requests"] > 0
    assert sdk["status_requests"] == sdk["sdk_status_requests"]


def test_official_shape_bounds_any_client_with_callbacks(report: dict[str, Any]) -> None:
    """``sdk_callbacks`` finishes every job, told of each end by a verified callback."""
    data = report["matrix"]["official"]
    told = data["contenders"]["sdk_callbacks"]
    assert told["failures"] == 0
    assert told["tasks_created"] == data["shape"]["jobs"]
    assert told["unnoticed_tasks"] == 0
    assert told["callbacks_received"] >= data["shape"]["jobs"]  # one terminal callback each
    assert told["callbacks_rejected"] == 0


def test_targets_are_reported_per_shape(report: dict[str, Any]) -> None:
    """Every shape carries its target rows, each with a pass/fail verdict."""
    for name, data in report["matrix"].items():
        assert data["targets"], name
        for row in data["targets"]:
            assert isinstance(row["met"], bool)
            assert row["target"].startswith("sdk ")


def test_travel_shapes_run_on_their_own(matrix_module: Any) -> None:
    """``--only matrix:travel`` runs every travel shape (and no issue shape) to the end."""
    results = quick_run("matrix:travel")["matrix"]
    assert list(results) == list(matrix_module.travel_names())
    for name, data in results.items():
        assert [row["target"] for row in data["targets"]] == [
            "sdk makespan <= loop's + 0.01",
            "sdk status/task <= loop's / 2",
            "sdk requests/task <= loop's / 2",
        ], name
        for contender in ("loop_5s", "sdk"):
            figures = data["contenders"][contender]
            assert figures["tasks_created"] == data["shape"]["jobs"], (name, contender)
            assert figures["unnoticed_tasks"] == 0, (name, contender)


def test_travel_shapes_differ_from_every_issue_shape(matrix_module: Any) -> None:
    """Each travel shape is its own gateway: no two shapes share a name or a setting."""
    shapes = (*matrix_module.FULL, *matrix_module.TRAVEL)
    assert len({shape.name for shape in shapes}) == len(shapes)
    settings = [
        (
            shape.jobs,
            shape.quota,
            shape.time_scale,
            shape.mix,
            shape.backend,
            sorted(shape.fake.items()),
        )
        for shape in shapes
    ]
    assert len({repr(s) for s in settings}) == len(settings)


def test_shape_names_choose_shapes(matrix_module: Any) -> None:
    """No name: the issue's shapes; ``travel``: every travel shape; an unknown name is refused."""
    import _shapes

    assert [s.name for s in _shapes.by_name([])] == list(matrix_module.shape_names())
    chosen = [s.name for s in _shapes.by_name(["travel", "base"])]
    assert chosen == ["base", *matrix_module.travel_names()]
    with pytest.raises(KeyError, match="no shape named nope"):
        _shapes.by_name(["nope"])


def _table(sdk: dict[str, float], loop: dict[str, float]) -> dict[str, dict[str, float]]:
    return {"sdk": sdk, "loop_5s": loop}


def test_base_targets(matrix_module: Any) -> None:
    """The base targets compare makespan with the loop's and status requests with a third."""
    loop = {"makespan_ratio": 1.05, "status_requests_per_task": 21.0}
    good = {"makespan_ratio": 1.03, "status_requests_per_task": 6.9, "p95_lag_ratio": 0.08}
    rows = matrix_module.judge("base", _table(good, loop))
    assert [r["met"] for r in rows] == [True, True, True, True]
    bad = dict(good, makespan_ratio=1.045, status_requests_per_task=7.2, p95_lag_ratio=0.2)
    assert [r["met"] for r in matrix_module.judge("base", _table(bad, loop))] == [
        True,
        False,
        False,
        False,
    ]


def test_other_shape_targets(matrix_module: Any) -> None:
    """Other shapes allow 0.01 more makespan than the loop at half its status requests."""
    loop = {"makespan_ratio": 1.10, "status_requests_per_task": 10.0, "requests_per_task": 11.0}
    good = {"makespan_ratio": 1.109, "status_requests_per_task": 5.0, "requests_per_task": 5.5}
    rows = matrix_module.judge("other", _table(good, loop))
    assert len(rows) == 3
    assert all(r["met"] for r in rows)
    bad = {"makespan_ratio": 1.111, "status_requests_per_task": 5.1, "requests_per_task": 5.6}
    rows = matrix_module.judge("other", _table(bad, loop))
    assert not any(r["met"] for r in rows)


def test_large_targets_compare_cpu(matrix_module: Any) -> None:
    """The large shape judges the SDK's CPU per request against 1.5 times the loop's."""
    loop = {"cpu_ms_per_request": 0.4}
    sdk = {"makespan_ratio": 1.04, "status_requests_per_task": 6.0, "cpu_ms_per_request": 0.61}
    rows = {r["target"]: r["met"] for r in matrix_module.judge("large", _table(sdk, loop))}
    assert rows["sdk makespan <= 1.05"]
    assert rows["sdk status/task <= 7"]
    assert rows["sdk CPU/request <= 1.5 x loop's"] is False


def test_missing_figure_fails_its_target(matrix_module: Any) -> None:
    """A target whose figure is missing is reported unmet, never passed silently."""
    rows = matrix_module.judge("official", _table({}, {}))
    assert rows
    assert not any(r["met"] for r in rows)


def test_render_marks_pass_and_fail(matrix_module: Any) -> None:
    """The text table has one row per contender and marks each target pass or FAIL."""
    data = {
        "shape": {"summary": "s", "jobs": 2, "quota": 1, "time_scale": 0.01},
        "seconds": 1.0,
        "contenders": {"loop_5s": {"makespan_ratio": 1.1}, "sdk": {"makespan_ratio": 1.0}},
        "targets": [
            {"target": "sdk a", "measured": 1.0, "limit": 2.0, "met": True},
            {"target": "sdk b", "measured": 3.0, "limit": 2.0, "met": False},
        ],
    }
    text = matrix_module.render({"base": data})
    assert "| loop_5s | 1.100 |" in text
    assert "| sdk | 1.000 |" in text
    assert "pass  sdk a" in text
    assert "FAIL  sdk b" in text


def test_loop_signs_kling_tokens_and_renews_them(matrix_module: Any) -> None:
    """The loop's Kling client signs an HS256 token as documented and renews it near expiry."""
    from _contenders import KlingApi

    now = [1_700_000_000.0]
    api = KlingApi("http://127.0.0.1:1", "ak", "sk" * 20, clock=lambda: now[0])
    first = api.request_headers()
    assert first is not None
    token = first["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, "sk" * 20, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["iss"] == "ak"
    assert claims["exp"] == 1_700_001_800
    assert claims["nbf"] == 1_699_999_995
    assert jwt.get_unverified_header(token)["typ"] == "JWT"
    now[0] += 1000
    assert api.request_headers() == first
    now[0] += 600  # under 5 minutes left: a new token
    renewed = api.request_headers()
    assert renewed is not None
    assert renewed != first
