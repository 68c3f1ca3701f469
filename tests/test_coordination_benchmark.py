"""The coordination benchmark runs end to end (smoke run; its figures are not read)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _redis import redis_server_binary

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(redis_server_binary() is None, reason="redis-server is not installed")
def test_the_quick_run_reports_both_scenarios_with_every_job_created_once() -> None:
    """--quick --json: two scenarios, every process exits 0, no job created twice."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "coordination.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    plain, shared = result["scenarios"]
    assert [plain["scenario"], shared["scenario"]] == ["uncoordinated", "coordinated"]
    for figures in (plain, shared):
        assert set(figures["exit_codes"]) == {0}
        assert figures["creates"] == result["workers"] * result["jobs_per_worker"]
        assert figures["duplicate_external_ids"] == 0
    assert shared["concurrency_limited_1303"] == 0
    assert shared["redis_round_trips_per_task"] > 0
