"""The benchmark harness runs end to end (``--quick``) and reports every documented figure.

Only the shape of the report is checked: timings on a shared machine are noise, so
no figure is compared with a threshold here (see BENCHMARKS.md for the targets).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"

BATCH_KEYS = (
    "makespan_s",
    "lower_bound_s",
    "makespan_ratio",
    "requests_per_task",
    "status_requests_per_task",
    "p50_lag_ratio",
    "p95_lag_ratio",
    "concurrency_limited",
    "rate_limited",
)
CONTENDERS = ("sdk", "sdk_probe", "sdk_overcommitted", "naive_fast", "naive_slow")


def _finite_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """The JSON object printed by one quick run of the harness."""
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"stdout must hold exactly one JSON line, got {len(lines)}"
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


def test_top_level_keys(report: dict[str, Any]) -> None:
    """The report has one entry per scenario plus the run's metadata."""
    scenarios = ("overhead", "batch", "batch_query", "callbacks", "scale", "fake_server")
    for key in (*scenarios, "matrix", "meta"):
        assert key in report, key


def test_overhead_figures(report: dict[str, Any]) -> None:
    """Overhead reports SDK and bare CPU per lifecycle and their ratio, all finite."""
    overhead = report["overhead"]
    for key in ("sdk_cpu_ms", "bare_cpu_ms", "ratio"):
        assert _finite_number(overhead[key]), (key, overhead[key])


def test_batch_contenders(report: dict[str, Any]) -> None:
    """Every batch contender reports every documented metric as a finite number."""
    batch = report["batch"]
    assert set(CONTENDERS) <= set(batch)
    for name in CONTENDERS:
        for key in BATCH_KEYS:
            assert _finite_number(batch[name][key]), (name, key, batch[name].get(key))


@pytest.mark.parametrize("scenario", ["batch_query", "callbacks"])
def test_polling_scenarios(report: dict[str, Any], scenario: str) -> None:
    """Batch-query and callback scenarios report requests per task and the p95 lag ratio."""
    for key in ("requests_per_task", "p95_lag_ratio"):
        assert _finite_number(report[scenario][key]), (scenario, key)


def test_batch_query_comparison(report: dict[str, Any]) -> None:
    """The batch-query scenario also reports the per-task-query comparison."""
    data = report["batch_query"]
    for key in ("per_task_requests_per_task", "per_task_p95_lag_ratio"):
        assert _finite_number(data[key]), key


def test_scale_figures(report: dict[str, Any]) -> None:
    """Scale reports RSS growth per 1,000 tasks and the loop-lag p99 in ms."""
    for key in ("rss_mb_per_1k_tasks", "loop_lag_p99_ms"):
        assert _finite_number(report["scale"][key]), key


def test_fake_server_figure(report: dict[str, Any]) -> None:
    """The fake-server scenario reports a finite, positive request rate."""
    rps = report["fake_server"]["requests_per_s"]
    assert _finite_number(rps)
    assert rps > 0


def test_meta(report: dict[str, Any]) -> None:
    """The metadata names the machine, Python version, seed, clock and time of the run."""
    meta = report["meta"]
    for key in ("machine", "python", "seed", "time_scale", "timestamp"):
        assert key in meta, key
    assert meta["machine"]["nproc"] >= 1
