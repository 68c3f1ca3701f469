"""Ctrl-C twice while creates are in flight: exit 130, counts that add up, a clean log."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from kling_async.testing import FakeConfig, run_fake_gateway

#: Summary rows counting jobs, and the ones whose task the server created.
COUNT_LABELS = (
    "Succeeded",
    "Failed",
    "Errors",
    "Not started",
    "Left running on the server",
    "Interrupted while creating",
)
CREATED_LABELS = ("Succeeded", "Failed", "Left running on the server")


def summary_rows(text: str) -> dict[str, str]:
    """The ``label   value`` rows of the last plain summary table in ``text``."""
    rows: dict[str, str] = {}
    for line in text.split("kling-async batch\n")[-1].splitlines()[1:]:
        label, sep, value = line.rpartition("   ")
        if not sep or not label.strip():
            break
        rows[label.strip()] = value.strip()
    return rows


async def run_child(args: list[str], env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    """Start ``python -m kling_async ARGS`` with its output in ``log``."""
    with log.open("ab") as handle:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kling_async", *args, env=env, stdout=handle, stderr=handle
        )


async def test_second_ctrl_c_during_creates_keeps_counts_and_journal_right(tmp_path: Path) -> None:
    """Two SIGINTs while slow creates are in flight: 130, the summary adds up, re-run pays once."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        "".join(
            json.dumps({"endpoint": "text2video", "prompt": f"p{i}", "key": f"clip-{i:02d}"}) + "\n"
            for i in range(60)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    log = tmp_path / "child.log"
    async with run_fake_gateway(FakeConfig(time_scale=0.005, latency=0.2)) as fake:
        env = dict(os.environ)
        env.update(
            KLING_API_KEY=fake.config.api_key,
            KLING_ENDPOINT_PATH=fake.config.endpoint_path,
            KLING_BASE_URL=fake.url,
            KLING_TURBO_BASE_URL=fake.url,
        )
        args = ["batch", str(jobs), "--out", str(out), "--max-running", "20"]
        args += ["--time-scale", "0.005", "--progress-interval", "0.1"]
        proc = await run_child(args, env, log)
        try:
            for _ in range(6000):  # a generous guard, not a timing check
                if fake.stats()["creates"] >= 10 or proc.returncode is not None:
                    break
                await asyncio.sleep(0.01)
            proc.send_signal(signal.SIGINT)
            await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        creates = fake.stats()["creates"]
        printed = log.read_text(encoding="utf-8")
        results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        again = await (await run_child(args, env, log)).wait()
        stats = fake.stats()
    assert code == 130, printed
    rows = summary_rows(printed)
    assert rows["Jobs"] == "60"
    assert sum(int(rows.get(label, "0")) for label in COUNT_LABELS) == 60
    created = sum(int(rows.get(label, "0")) for label in CREATED_LABELS)
    cut_off = int(rows.get("Interrupted while creating", "0"))
    # Every task known to exist is counted; a create cut off mid-way may or may not have landed.
    assert created <= creates <= created + cut_off
    assert sum(1 for r in results if r["task_id"]) == created
    statuses = Counter(r["status"] for r in results)
    assert statuses["not_started"] == int(rows.get("Not started", "0"))
    assert "\x1b" not in printed
    assert "\r" not in printed
    assert again == 0, log.read_text(encoding="utf-8")
    assert stats["creates"] == 60
    assert stats["duplicate_external_ids"] == 0
