"""One output folder, one run; a damaged or missing journal is refused before anything is sent.

Every run here is a real ``python -m kling_async batch`` process against the fake.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest

from kling_async import cli as _cli
from kling_async._journal import Journal
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway


def write_jobs(path: Path, count: int) -> Path:
    """``count`` text-to-video lines keyed ``clip-NN``."""
    path.write_text(
        "".join(
            json.dumps({"endpoint": "text2video", "key": f"clip-{i:02d}", "prompt": f"fox {i}"})
            + "\n"
            for i in range(count)
        ),
        encoding="utf-8",
    )
    return path


def child_env(fake: FakeGateway) -> dict[str, str]:
    """The environment of a CLI process that talks to ``fake``."""
    env = dict(os.environ)
    env.update(
        KLING_API_KEY=fake.config.api_key,
        KLING_ENDPOINT_PATH=fake.config.endpoint_path,
        KLING_BASE_URL=fake.url,
        KLING_TURBO_BASE_URL=fake.url,
    )
    return env


async def start(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    """Start ``python -m kling_async ARGS`` with its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kling_async",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def batch_args(jobs: Path, out: Path) -> list[str]:
    """A quiet batch command line (connection settings come from the environment)."""
    return [
        "batch",
        str(jobs),
        "--out",
        str(out),
        "--progress",
        "off",
        "--no-download",
        "--no-report",
        "--time-scale",
        "0.01",
        "--max-running",
        "50",
    ]


async def test_two_processes_on_one_folder_exactly_one_runs(tmp_path: Path) -> None:
    """Two batch processes started at once on one OUT: one exits 2 naming the other's PID."""
    jobs = write_jobs(tmp_path / "jobs.jsonl", 30)
    out = tmp_path / "out"
    # Real-time task lives (100 s videos): no task ends until the test moves the clock,
    # so the run that holds the journal is still running when the other one tries.
    async with run_fake_gateway(FakeConfig(seed=11)) as fake:
        env = child_env(fake)
        first = await start(batch_args(jobs, out), env)
        second = await start(batch_args(jobs, out), env)
        outputs = {asyncio.ensure_future(proc.communicate()): proc for proc in (first, second)}
        try:
            done, _ = await asyncio.wait(
                outputs,
                return_when=asyncio.FIRST_COMPLETED,
                timeout=120,  # a guard against a hang, not a timing check
            )
            assert len(done) == 1, "neither process gave way, or both did"
            loser_output = next(iter(done))
            loser = outputs.pop(loser_output)
            ((winner_output, winner),) = outputs.items()
            _, err = loser_output.result()
            for _ in range(6000):  # a generous guard: wait for the winner's creates
                if fake.stats()["creates"] >= 30 or winner.returncode is not None:
                    break
                await asyncio.sleep(0.02)
            fake.advance(10_000.0)
            _, winner_err = await asyncio.wait_for(winner_output, timeout=120)
        finally:
            for proc in (first, second):
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        stats = fake.stats()
    message = err.decode()
    assert loser.returncode == 2, message
    assert winner.returncode == 0, winner_err.decode()
    assert "Traceback" not in message
    lines = message.splitlines()
    assert len(lines) == 1
    assert re.search(rf"\bin use by process {winner.pid}\b", lines[0]), lines[0]
    assert stats["creates"] == 30
    assert stats["duplicate_external_ids"] == 0
    rows = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(row)["key"] for row in rows) == [f"clip-{i:02d}" for i in range(30)]


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page = 4096
    data[page : 3 * page] = b"not a b-tree page " * (2 * page // 18) + b"\xff" * (2 * page % 18)
    path.write_bytes(bytes(data))


def _delete(path: Path) -> None:
    path.unlink()


DAMAGE = {
    "emptied": (_empty, "empty (0 bytes)"),
    "truncated": (_truncate, "truncated"),
    "corrupt": (_corrupt, "unusable"),
    "deleted beside results": (_delete, "is missing, but"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
async def test_a_damaged_or_missing_journal_is_refused_before_any_create(
    damage: str, tmp_path: Path
) -> None:
    """Emptied, truncated, corrupt, or deleted with results left: exit 2, one line, 0 creates."""
    jobs = write_jobs(tmp_path / "jobs.jsonl", 4)
    out = tmp_path / "out"
    async with run_fake_gateway(FakeConfig(time_scale=0.002)) as fake:
        connection = ["--base-url", fake.url, "--api-key", fake.config.api_key]
        connection += ["--endpoint-path", fake.config.endpoint_path]
        first = await _cli.amain([*batch_args(jobs, out), "--time-scale", "0.002", *connection])
    assert first == 0
    assert (out / "results.jsonl").is_file()
    spoil, expected = DAMAGE[damage]
    spoil(out / "journal.sqlite")
    results_before = (out / "results.jsonl").read_bytes()

    async with run_fake_gateway(FakeConfig(time_scale=0.002)) as fresh:
        proc = await start(batch_args(jobs, out), child_env(fresh))
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
        stats = fresh.stats()
    message = stderr.decode()
    assert proc.returncode == 2, message
    assert "Traceback" not in message
    assert len(message.splitlines()) == 1, message
    assert expected in message
    assert "Nothing was sent" in message
    assert stats["creates"] == 0
    assert stats["api_requests"] == 0
    assert stdout == b""
    assert (out / "results.jsonl").read_bytes() == results_before  # the evidence is kept


async def test_a_journal_held_in_this_process_is_refused_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch whose journal another Journal object holds exits 2 naming this PID; no create."""
    jobs = write_jobs(tmp_path / "jobs.jsonl", 3)
    out = tmp_path / "out"
    holder = Journal(out / "journal.sqlite")
    try:
        async with run_fake_gateway(FakeConfig(time_scale=0.002)) as fake:
            connection = ["--base-url", fake.url, "--api-key", fake.config.api_key]
            connection += ["--endpoint-path", fake.config.endpoint_path]
            code = await _cli.amain([*batch_args(jobs, out), *connection])
            stats = fake.stats()
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert code == 2
    assert f"in use by process {os.getpid()}" in err
    assert len(err.splitlines()) == 1
    assert stats["api_requests"] == 0
    assert not (out / "results.jsonl").exists()
