"""--retry-failed and --rerun-changed: new attempts under new external ids, history kept."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kling_async import cli as _cli
from kling_async._journal import Journal
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway


def write_jobs(path: Path, prompts: dict[str, str]) -> Path:
    """One text-to-video line per ``key: prompt``."""
    path.write_text(
        "".join(
            json.dumps({"endpoint": "text2video", "key": key, "prompt": prompt, "duration": "5"})
            + "\n"
            for key, prompt in prompts.items()
        ),
        encoding="utf-8",
    )
    return path


def argv(jobs: Path, out: Path, fake: FakeGateway, *extra: str) -> list[str]:
    """A quiet, fast batch command line against ``fake``."""
    return [
        "batch",
        str(jobs),
        "--out",
        str(out),
        "--progress",
        "off",
        "--no-report",
        "--time-scale",
        "0.002",
        "--api-key",
        fake.config.api_key,
        "--endpoint-path",
        fake.config.endpoint_path,
        "--base-url",
        fake.url,
        *extra,
    ]


def read_results(out: Path) -> list[dict[str, Any]]:
    """The lines of results.jsonl."""
    text = (out / "results.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


async def test_retry_failed_creates_exactly_the_failed_jobs_again(tmp_path: Path) -> None:
    """With 25 % failing: --retry-failed sends one create per failed job, each a new id."""
    prompts = {f"clip-{i:02d}": f"clip {i}" for i in range(24)}
    jobs = write_jobs(tmp_path / "jobs.jsonl", prompts)
    out = tmp_path / "out"
    async with run_fake_gateway(FakeConfig(time_scale=0.002, fail_rate=0.25, seed=7)) as fake:
        assert await _cli.amain(argv(jobs, out, fake)) == 1
        first = read_results(out)
        failed = {r["key"]: r["external_task_id"] for r in first if r["status"] == "failed"}
        creates = fake.stats()["creates"]
        # Without the flag, a re-run reads every result back and creates nothing.
        assert await _cli.amain(argv(jobs, out, fake)) == 1
        assert fake.stats()["creates"] == creates
        await _cli.amain(argv(jobs, out, fake, "--retry-failed"))
        stats = fake.stats()
    second = {r["key"]: r for r in read_results(out)}
    assert failed
    assert stats["creates"] - creates == len(failed)
    assert stats["duplicate_external_ids"] == 0
    for key, old_id in failed.items():
        assert second[key]["attempt"] == 2
        assert second[key]["external_task_id"] != old_id
        assert second[key]["status"] in ("succeed", "failed")
    assert all(r["attempt"] == 1 for k, r in second.items() if k not in failed)
    journal = Journal(out / "journal.sqlite", read_only=True)
    try:
        history = journal.attempts(next(iter(failed)))
    finally:
        journal.close()
    assert len(history) == 2


async def test_a_changed_line_is_refused_with_its_fields_then_rerun_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An edited prompt: exit 2 naming key, field and both ways out; --rerun-changed runs it."""
    out = tmp_path / "out"
    prompts = {"fox": "a fox", "owl": "an owl", "cat": "a cat"}
    async with run_fake_gateway(FakeConfig(time_scale=0.002)) as fake:
        assert await _cli.amain(argv(write_jobs(tmp_path / "a.jsonl", prompts), out, fake)) == 0
        capsys.readouterr()
        edited = write_jobs(tmp_path / "b.jsonl", {**prompts, "owl": "a snowy owl"})
        refused = await _cli.amain(argv(edited, out, fake))
        err = capsys.readouterr().err
        creates = fake.stats()["creates"]
        rerun = await _cli.amain(argv(edited, out, fake, "--rerun-changed"))
        stats = fake.stats()
    assert refused == 2
    assert f"{edited}:2: key: job 'owl' changed since it ran (prompt)" in err
    assert "new key" in err
    assert "--rerun-changed" in err
    assert creates == 3
    assert rerun == 0
    assert stats["creates"] == 4
    results = {r["key"]: r for r in read_results(out)}
    assert results["owl"]["attempt"] == 2
    assert Counter(r["attempt"] for r in results.values()) == {1: 2, 2: 1}
