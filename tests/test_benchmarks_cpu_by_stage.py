"""The CPU-by-stage tool: callbacks charged to their owners, and a quick run of both contenders."""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
import time
from asyncio import events
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "benchmarks" / "cpu_by_stage.py"


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    sys.path.insert(0, str(TOOL.parent))
    try:
        return importlib.import_module("cpu_by_stage")
    finally:
        sys.path.remove(str(TOOL.parent))


async def busy_stage(seconds: float) -> None:
    """Spends CPU in two steps, with a checkpoint between them."""
    for _ in range(2):
        end = time.thread_time() + seconds / 2
        while time.thread_time() < end:
            pass
        await asyncio.sleep(0)


async def idle_stage() -> None:
    await asyncio.sleep(0.01)


def test_each_callback_is_charged_to_the_coroutine_its_task_runs(tool: ModuleType) -> None:
    """A task's steps count for its outermost coroutine; the patch is undone afterwards."""
    cpu: defaultdict[str, float] = defaultdict(float)
    calls: defaultdict[str, int] = defaultdict(int)
    original = events.Handle._run

    async def main() -> None:
        await asyncio.gather(busy_stage(0.04), idle_stage())

    with tool._charged(cpu, calls):
        asyncio.run(main())
    assert events.Handle._run is original
    assert cpu["busy_stage"] >= 0.035
    assert calls["busy_stage"] >= 3  # its first step, after the checkpoint, and the end
    assert cpu["idle_stage"] < 0.01
    assert calls["idle_stage"] >= 2


def test_a_quick_run_charges_both_contenders_to_their_stages() -> None:
    """Smoke sizes: every figure present, the SDK's stages named, the shares adding up."""
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--quick", "--json", "--shape", "base"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout)
    assert report["shape"] == "base"
    sdk, loop = report["contenders"]["sdk"], report["contenders"]["loop_5s"]
    for result in (sdk, loop):
        assert result["requests"] > 0
        assert result["cpu_s"] > 0
        stages = result["stages"]
        assert stages["(event loop)"] >= 0
        assert sum(stages.values()) == pytest.approx(result["cpu_s"], rel=1e-6)
    assert {"Poller.worker", "Create.worker"} <= set(sdk["stages"])
    assert "loop_batch.<locals>.one" in loop["stages"]
