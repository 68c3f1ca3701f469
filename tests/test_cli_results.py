"""results.jsonl with every field, and a summary that names the jobs that did not succeed."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kling_async import cli as _cli
from kling_async.cli._results import NAMED_LIMIT, named_lines
from kling_async.cli.demo import run_demo
from kling_async.testing import FakeConfig, run_fake_gateway

FIELDS = {
    "key",
    "line",
    "endpoint",
    "prompt",
    "status",
    "task_id",
    "external_task_id",
    "files",
    "outputs",
    "units",
    "error_type",
    "error_code",
    "error",
    "created_at",
    "finished_at",
    "resumed",
    "attempt",
}


def read_results(out: Path) -> list[dict[str, Any]]:
    """The lines of results.jsonl."""
    text = (out / "results.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def check_record(record: dict[str, Any], out: Path) -> None:
    """Every field is there, finished jobs have times, files (relative to out) check out."""
    assert set(record) == FIELDS
    if record["status"] in ("succeed", "failed"):
        assert record["task_id"]
        assert record["external_task_id"]
        assert datetime.fromisoformat(record["created_at"])
        assert datetime.fromisoformat(record["finished_at"])
        assert isinstance(record["units"], (int, float))
    for saved in record["files"]:
        assert not Path(saved["path"]).is_absolute()
        data = (out / saved["path"]).read_bytes()
        assert saved["size"] == len(data)
        assert saved["sha256"] == hashlib.sha256(data).hexdigest()


async def test_a_quarter_failing_names_every_failed_key_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With 25 % of tasks failing: exit 1, each failed key and reason printed, fields all there."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        "".join(
            json.dumps({"endpoint": "text2video", "prompt": f"clip {i}", "key": f"clip-{i:02d}"})
            + "\n"
            for i in range(24)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    async with run_fake_gateway(FakeConfig(time_scale=0.002, fail_rate=0.25, seed=5)) as fake:
        code = await _cli.amain(
            [
                "batch",
                str(jobs),
                "--out",
                str(out),
                "--progress",
                "off",
                "--time-scale",
                "0.002",
                "--api-key",
                fake.config.api_key,
                "--endpoint-path",
                fake.config.endpoint_path,
                "--base-url",
                fake.url,
            ]
        )
        stats = fake.stats()
    printed = capsys.readouterr().out
    records = read_results(out)
    failed = [r for r in records if r["status"] == "failed"]
    assert code == 1
    assert 0 < len(failed) <= NAMED_LIMIT
    assert len(failed) == stats["tasks_by_status"].get("failed", 0)
    for record in records:
        check_record(record, out)
    lines = printed.splitlines()
    for record in failed:
        assert record["error_type"] == "TaskFailedError"
        named = [line for line in lines if line.split()[:2] == [record["key"], "failed"]]
        assert len(named) == 1, record["key"]
        assert record["error"] in named[0]
    assert f"Not succeeded ({len(failed)} of 24):" in printed
    assert f"Details of every job: {out / 'results.jsonl'}" in printed
    assert all(r["files"] for r in records if r["status"] == "succeed")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert all(r["key"] in page for r in records)
    assert f"{out / 'report.html'}" in printed


async def test_report_command_rewrites_the_page_and_needs_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """report OUT writes OUT/report.html from results.jsonl; without results it exits 2."""
    out = tmp_path / "out"
    out.mkdir()
    row = {"key": "fox", "status": "failed", "prompt": "A fox <b>in</b> snow", "files": []}
    (out / "results.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    assert await _cli.amain(["report", str(out), "--title", "Foxes"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "report.html")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "fox" in page
    assert "Foxes" in page
    assert "<b>in</b>" not in page  # prompts are escaped
    empty = tmp_path / "empty"
    empty.mkdir()
    assert await _cli.amain(["report", str(empty)]) == 2
    assert "no results" in capsys.readouterr().err


def test_only_the_first_twenty_are_named_then_a_count() -> None:
    """25 jobs that did not succeed: 20 lines, then 'and 5 more'; successes are not named."""
    records = [
        {
            "key": f"k{i}",
            "status": "failed" if i % 2 else "succeed",
            "error_type": "TaskFailedError",
            "error_code": None,
            "error": f"reason {i}\nsecond line",
            "task_id": str(i),
        }
        for i in range(50)
    ]
    lines = named_lines(records)
    assert len(lines) == NAMED_LIMIT + 1
    assert lines[0].split()[:3] == ["k1", "failed", "TaskFailedError:"]
    assert lines[0].endswith("reason 1 second line")
    assert lines[-1] == "  and 5 more"
    assert named_lines([r for r in records if r["status"] == "succeed"]) == []


def test_codes_of_gateway_errors_are_shown_beside_the_class() -> None:
    """A refused create shows its class and numeric code, then the message."""
    record = {
        "key": "poster",
        "status": "error",
        "error_type": "ContentPolicyError",
        "error_code": 1301,
        "error": "content safety",
        "task_id": None,
    }
    assert named_lines([record]) == [
        "  poster  error        ContentPolicyError 1301: content safety"
    ]


async def test_the_demo_writes_the_same_results_file(tmp_path: Path) -> None:
    """The demo writes results.jsonl with the batch command's fields, one line per job."""
    out = tmp_path / "demo"
    stream = io.StringIO()
    code = await run_demo(jobs=4, out=out, time_scale=0.002, progress="off", stream=stream)
    records = read_results(out)
    assert code == 0
    assert [r["key"] for r in records] == ["t2v-001", "i2v-001", "img-001", "sfx-001"]
    for record in records:
        check_record(record, out)
        assert record["status"] == "succeed"
        assert record["files"]
        assert record["prompt"]
    assert (out / "report.html").resolve().as_uri() in stream.getvalue()
    assert str(out / "results.jsonl") in stream.getvalue()
