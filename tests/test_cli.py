"""The ``kling-async`` command: JSONL batches (with resume), single-task commands, config."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kling_async import cli as _cli
from kling_async.cli._jobs import load_jobs
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway

#: Poll fast: the fakes below run their clocks hundreds of times fast.
FAST_POLL = [
    "--poll-initial-delay",
    "0.05",
    "--poll-interval",
    "0.02",
    "--poll-max-interval",
    "0.2",
]


def write_jobs(path: Path, count: int) -> Path:
    """A JSONL file mixing classic video, audio, images and turbo jobs."""
    lines = []
    for i in range(count):
        if i % 4 == 0:
            job: dict[str, Any] = {"endpoint": "videos/text2video", "prompt": f"clip {i}"}
        elif i % 4 == 1:
            job = {"endpoint": "audio/text-to-audio", "prompt": f"sound {i}", "duration": 5}
        elif i % 4 == 2:
            job = {"endpoint": "images/generations", "key": f"img-{i}", "prompt": f"image {i}"}
        else:
            job = {
                "endpoint": "videos/text-to-video/kling-3.0-turbo",
                "prompt": f"turbo {i}",
                "settings": {"duration": 5},
            }
        lines.append(json.dumps(job))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def connection(fake: FakeGateway) -> list[str]:
    """Flags that point the command at a fake."""
    return [
        "--api-key",
        fake.config.api_key,
        "--endpoint-path",
        fake.config.endpoint_path,
        "--base-url",
        fake.url,
    ]


def read_results(out: Path) -> list[dict[str, Any]]:
    """The lines of results.jsonl."""
    text = (out / "results.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


# --- parsing the jobs file ----------------------------------------------------------


def test_load_jobs_reports_every_bad_line_with_its_number() -> None:
    """Malformed JSON, unknown endpoints and fields, broken limits and reused keys all surface."""
    lines = [
        '{"endpoint": "videos/text2video", "prompt": "fine", "key": "a"}',
        '{"endpoint": "videos/text2video", "prompt": ',
        "",
        '{"endpoint": "audio/text-to-audio", "prompt": "rain", "duration": 20}',
        '{"endpoint": "videos/no-such-thing", "prompt": "x"}',
        '{"endpoint": "text2video", "promt": "typo"}',
        '{"endpoint": "videos/text2video", "prompt": "again", "key": "a"}',
        "[1, 2]",
        '{"prompt": "no endpoint"}',
        '{"endpoint": "videos/identify-face", "video_id": "v"}',
    ]
    jobs, problems = load_jobs(lines)
    assert [job.key for job in jobs] == ["a"]
    by_line: dict[int, list[str]] = {}
    for p in problems:
        by_line.setdefault(p.line, []).append(p.field)
    assert by_line == {
        2: ["(line)"],
        4: ["duration"],
        5: ["endpoint"],
        6: ["promt", "prompt"],
        7: ["key"],
        8: ["(line)"],
        9: ["endpoint"],
        10: ["endpoint"],
    }


def test_default_keys_follow_line_numbers_and_aliases_resolve() -> None:
    """Lines without a key get ``line-<n>``; short family names are accepted."""
    jobs, problems = load_jobs(
        ['{"endpoint": "text2video", "prompt": "a"}', "", '{"endpoint": "images", "prompt": "b"}']
    )
    assert problems == []
    assert [(j.key, j.endpoint.path) for j in jobs] == [
        ("line-1", "videos/text2video"),
        ("line-3", "images/generations"),
    ]


# --- batch against a fake -------------------------------------------------------------


async def test_batch_of_200_jobs_succeeds_and_writes_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """200 mixed jobs run to success; results.jsonl has one line per job with files."""
    jobs = write_jobs(tmp_path / "jobs.jsonl", 200)
    out = tmp_path / "out"
    async with run_fake_gateway(FakeConfig(time_scale=0.001, max_running=40)) as fake:
        code = await _cli.amain(
            [
                "batch",
                str(jobs),
                "--out",
                str(out),
                "--max-running",
                "40",
                "--progress",
                "plain",
                *FAST_POLL,
                *connection(fake),
            ]
        )
        stats = fake.stats()
    assert code == 0
    assert stats["creates"] == 200
    results = read_results(out)
    assert [r["line"] for r in results] == list(range(1, 201))
    assert all(r["status"] == "succeed" for r in results)
    assert all(r["task_id"] and r["outputs"] and r["files"] for r in results)
    assert all((out / f["path"]).is_file() for r in results for f in r["files"])
    assert results[2]["key"] == "img-2"
    assert results[0]["key"] == "line-1"
    printed = capsys.readouterr().out
    assert "batch: 200/200 done" in printed
    assert "Succeeded" in printed


async def test_bad_lines_exit_2_name_both_lines_and_send_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed line and a broken limit: exit 2, both line numbers named, no create sent."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        "\n".join(
            [
                '{"endpoint": "videos/text2video", "prompt": "fine"}',
                '{"endpoint": "videos/text2video", "prompt": "unclosed',
                '{"endpoint": "videos/text2video", "prompt": "fine too"}',
                '{"endpoint": "videos/text2video", "prompt": "' + "x" * 2501 + '"}',
            ]
        ),
        encoding="utf-8",
    )
    async with run_fake_gateway(FakeConfig(time_scale=0.001)) as fake:
        code = await _cli.amain(
            ["batch", str(jobs), "--out", str(tmp_path / "out"), *connection(fake)]
        )
        stats = fake.stats()
    err = capsys.readouterr().err
    assert code == 2
    assert f"{jobs}:2: (line): malformed JSON" in err
    assert f"{jobs}:4: prompt:" in err
    assert ":1:" not in err
    assert ":3:" not in err
    assert stats["create_requests"] == 0
    assert not (tmp_path / "out" / "results.jsonl").exists()


async def test_missing_key_is_a_clear_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key anywhere: exit 2 with a message naming the flag and the variable."""
    monkeypatch.delenv("KLING_API_KEY", raising=False)
    monkeypatch.setenv("KLING_ENDPOINT_PATH", "ep")
    jobs = write_jobs(tmp_path / "jobs.jsonl", 2)
    code = await _cli.amain(["batch", str(jobs), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "--api-key" in err
    assert "KLING_API_KEY" in err


async def test_the_key_is_never_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong key makes the command fail without showing the key anywhere."""
    async with run_fake_gateway(FakeConfig(time_scale=0.001)) as fake:
        args = connection(fake)
        args[1] = "sk-very-secret-value"
        code = await _cli.amain(
            ["create", "videos/text2video", "--json", '{"prompt": "a cat"}', *args]
        )
    captured = capsys.readouterr()
    assert code == 2
    assert "AuthenticationError" in captured.err
    assert "sk-very-secret-value" not in captured.out + captured.err


async def test_journal_reused_for_other_jobs_is_refused_before_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Re-running with a key that now means a different request: exit 2, nothing sent."""
    out = tmp_path / "out"
    first = tmp_path / "first.jsonl"
    first.write_text('{"endpoint": "text2video", "prompt": "a", "key": "k"}\n', encoding="utf-8")
    second = tmp_path / "second.jsonl"
    second.write_text('{"endpoint": "text2video", "prompt": "b", "key": "k"}\n', encoding="utf-8")
    async with run_fake_gateway(FakeConfig(time_scale=0.001)) as fake:
        base = ["--out", str(out), "--progress", "off", *FAST_POLL, *connection(fake)]
        assert await _cli.amain(["batch", str(first), *base]) == 0
        assert await _cli.amain(["batch", str(second), *base]) == 2
        stats = fake.stats()
    assert stats["create_requests"] == 1
    assert f"{second}:1: key:" in capsys.readouterr().err


async def test_failed_tasks_exit_1_and_are_recorded(tmp_path: Path) -> None:
    """Some tasks fail on the server: exit 1, each failure has its reason in results.jsonl."""
    jobs = write_jobs(tmp_path / "jobs.jsonl", 12)
    out = tmp_path / "out"
    async with run_fake_gateway(FakeConfig(time_scale=0.001, fail_rate=0.5, seed=3)) as fake:
        code = await _cli.amain(
            [
                "batch",
                str(jobs),
                "--out",
                str(out),
                "--progress",
                "off",
                "--no-download",
                *FAST_POLL,
                *connection(fake),
            ]
        )
    results = read_results(out)
    statuses = Counter(r["status"] for r in results)
    assert code == 1
    assert statuses["failed"] > 0
    assert statuses["failed"] + statuses["succeed"] == 12
    assert all(r["error"] for r in results if r["status"] == "failed")
    assert all(r["files"] == [] for r in results)


async def test_max_units_leaves_the_rest_not_started(tmp_path: Path) -> None:
    """A unit budget stops admissions; jobs never sent are reported as not_started."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        "".join(
            json.dumps({"endpoint": "text2video", "prompt": f"p{i}", "duration": "5"}) + "\n"
            for i in range(10)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    async with run_fake_gateway(FakeConfig(time_scale=0.001)) as fake:
        code = await _cli.amain(
            [
                "batch",
                str(jobs),
                "--out",
                str(out),
                "--progress",
                "off",
                "--max-units",
                "7",
                "--max-running",
                "1",
                *FAST_POLL,
                *connection(fake),
            ]
        )
        stats = fake.stats()
    results = read_results(out)
    statuses = Counter(r["status"] for r in results)
    assert code == 1
    assert statuses["not_started"] > 0
    assert statuses["succeed"] == stats["creates"]
    assert sum(r["units"] or 0 for r in results) <= 7


# --- single-task commands -------------------------------------------------------------


async def test_create_get_wait_download_print_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The single-task commands print JSON a script can read."""
    async with run_fake_gateway(FakeConfig(time_scale=0.001)) as fake:
        conn = connection(fake)
        body = tmp_path / "body.json"
        body.write_text('{"prompt": "a cat", "duration": "5"}', encoding="utf-8")
        ext = "my-id-1"
        created = ["create", "videos/text2video", "--json", f"@{body}", "--external-task-id", ext]
        assert await _cli.amain(created + conn) == 0
        task = json.loads(capsys.readouterr().out)
        assert task["external_task_id"] == ext
        assert task["status"] in ("submitted", "processing")

        assert await _cli.amain(["get", "text2video", ext, "--external", *conn]) == 0
        assert json.loads(capsys.readouterr().out)["task_id"] == task["task_id"]

        waited = ["wait", "text2video", task["task_id"], *FAST_POLL, *conn]
        assert await _cli.amain(waited) == 0
        done = json.loads(capsys.readouterr().out)
        assert done["status"] == "succeed"
        assert done["outputs"][0]["kind"] == "video"

        out = tmp_path / "files"
        assert (
            await _cli.amain(["download", "text2video", task["task_id"], "--out", str(out), *conn])
            == 0
        )
        saved = json.loads(capsys.readouterr().out)["files"]
        assert Path(saved[0]["path"]).read_bytes()[4:8] == b"ftyp"


async def test_create_validates_before_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A body breaking a documented limit exits 2 with the field named; nothing is sent."""
    async with run_fake_gateway(FakeConfig(time_scale=0.001)) as fake:
        code = await _cli.amain(
            [
                "create",
                "audio/text-to-audio",
                "--json",
                '{"prompt": "rain", "duration": 11}',
                *connection(fake),
            ]
        )
        stats = fake.stats()
    assert code == 2
    assert "duration" in capsys.readouterr().err
    assert stats["create_requests"] == 0


def test_python_m_kling_async_shows_help() -> None:
    """``python -m kling_async --help`` lists every subcommand."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "kling_async", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for name in ("demo", "batch", "create", "get", "wait", "download", "fake-server"):
        assert name in done.stdout


# --- subprocesses: SIGKILL, Ctrl-C, fake-server ------------------------------------------


def child_env(fake: FakeGateway) -> dict[str, str]:
    """Environment of a child ``kling-async`` talking to ``fake`` (configured by variables)."""
    env = dict(os.environ)
    env.update(
        KLING_API_KEY=fake.config.api_key,
        KLING_ENDPOINT_PATH=fake.config.endpoint_path,
        KLING_BASE_URL=fake.url,
        KLING_TURBO_BASE_URL=fake.url,
    )
    return env


@asynccontextmanager
async def child(
    args: list[str], env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run ``python -m kling_async ARGS``; make sure it is gone afterwards."""
    with log.open("ab") as handle:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kling_async", *args, env=env, stdout=handle, stderr=handle
        )
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


async def until(condition: Callable[[], bool], proc: asyncio.subprocess.Process) -> None:
    """Wait for ``condition`` while the child runs (a generous guard, not a timing check)."""
    for _ in range(6000):
        if condition() or proc.returncode is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the child made no progress in 60 s")


async def test_sigkill_mid_run_then_rerun_creates_each_task_once(tmp_path: Path) -> None:
    """Killing ``kling-async batch`` with SIGKILL and re-running it pays for nothing twice."""
    jobs = write_jobs(tmp_path / "jobs.jsonl", 200)
    out = tmp_path / "out"
    log = tmp_path / "child.log"
    async with run_fake_gateway(FakeConfig(time_scale=0.005)) as fake:
        env = child_env(fake)
        args = ["batch", str(jobs), "--out", str(out), "--max-running", "40", *FAST_POLL]
        async with child(args, env, log) as proc:
            await until(lambda: fake.stats()["creates"] >= 60, proc)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        assert not (out / "results.jsonl").exists()  # it died before writing results
        async with child(args, env, log) as proc:
            code = await proc.wait()
        stats = fake.stats()
    assert code == 0, log.read_text()
    assert stats["creates"] == 200
    assert stats["duplicate_external_ids"] == 0
    results = read_results(out)
    assert Counter(r["status"] for r in results) == {"succeed": 200}
    assert all((out / f["path"]).is_file() for r in results for f in r["files"])


async def test_first_ctrl_c_stops_admitting_and_finishes_in_flight(tmp_path: Path) -> None:
    """One SIGINT: no new creates, creates in flight settle and are journaled; exit 130."""
    jobs = write_jobs(tmp_path / "jobs.jsonl", 100)
    out = tmp_path / "out"
    log = tmp_path / "child.log"
    async with run_fake_gateway(FakeConfig(time_scale=0.005)) as fake:
        env = child_env(fake)
        args = ["batch", str(jobs), "--out", str(out), "--max-running", "20", *FAST_POLL]
        async with child(args, env, log) as proc:
            await until(lambda: fake.stats()["creates"] >= 25, proc)
            proc.send_signal(signal.SIGINT)
            code = await proc.wait()
        first_creates = fake.stats()["creates"]
        results = read_results(out)
        statuses = Counter(r["status"] for r in results)
        printed = log.read_text()
        # Running it again finishes the rest, creating each missing task once.
        async with child(args, env, log) as proc:
            again = await proc.wait()
        stats = fake.stats()
    assert code == 130, printed
    assert statuses["not_started"] > 0
    # Every task the server created is in results.jsonl with its id: none is lost.
    assert sum(1 for r in results if r["task_id"]) == first_creates
    assert sum(statuses.values()) == 100
    rows = summary_rows(printed)
    assert rows["Jobs"] == "100"
    created = sum(int(rows.get(label, "0")) for label in CREATED_LABELS)
    assert created == first_creates
    assert int(rows.get("Not started", "0")) == statuses["not_started"]
    assert again == 0
    assert stats["creates"] == 100
    assert stats["duplicate_external_ids"] == 0


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGINT, signal.SIGINT], [signal.SIGTERM]],
    ids=["ctrl-c-twice", "sigterm"],
)
async def test_leaving_at_once_keeps_the_journal_consistent(
    tmp_path: Path, signals: list[signal.Signals]
) -> None:
    """Two SIGINTs (or one SIGTERM): exit 130 at once; re-running creates nothing twice."""
    jobs = write_jobs(tmp_path / "jobs.jsonl", 60)
    out = tmp_path / "out"
    log = tmp_path / "child.log"
    async with run_fake_gateway(FakeConfig(time_scale=0.005)) as fake:
        env = child_env(fake)
        args = ["batch", str(jobs), "--out", str(out), "--max-running", "20", *FAST_POLL]
        async with child(args, env, log) as proc:
            await until(lambda: fake.stats()["creates"] >= 10, proc)
            for sig in signals:
                proc.send_signal(sig)
                await asyncio.sleep(0.05)
            code = await proc.wait()
        results = read_results(out)
        async with child(args, env, log) as proc:
            again = await proc.wait()
        stats = fake.stats()
    assert code == 130, log.read_text()
    interrupted = [r for r in results if r["status"] == "error"]
    assert all("run the same command again" in r["error"] for r in interrupted)
    assert again == 0, log.read_text()
    assert stats["creates"] == 60
    assert stats["duplicate_external_ids"] == 0
    assert Counter(r["status"] for r in read_results(out)) == {"succeed": 60}


#: Summary rows that count jobs whose task the server created.
CREATED_LABELS = ("Succeeded", "Failed", "Left running on the server")


def summary_rows(text: str) -> dict[str, str]:
    """The ``label   value`` rows of the last plain summary table in ``text``."""
    tables = text.split("kling-async batch\n")
    rows: dict[str, str] = {}
    for line in tables[-1].splitlines()[1:]:
        label, sep, value = line.rpartition("   ")
        if not sep or not label.strip():
            break
        rows[label.strip()] = value.strip()
    return rows


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_fake_server_subcommand_serves_until_interrupted(tmp_path: Path) -> None:
    """``kling-async fake-server`` answers on its port and stops cleanly on Ctrl-C."""
    port = free_port()
    log = tmp_path / "fake.log"
    args = ["fake-server", "--port", str(port), "--api-key", "KEY", "--endpoint-path", "EP"]
    async with child(args, dict(os.environ), log) as proc, aiohttp.ClientSession() as http:
        stats: dict[str, Any] | None = None
        for _ in range(3000):
            try:
                async with http.get(f"http://127.0.0.1:{port}/__fake__/stats") as response:
                    stats = await response.json()
                    break
            except aiohttp.ClientConnectionError:
                if proc.returncode is not None:
                    break
                await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        code = await proc.wait()
    assert stats is not None, log.read_text()
    assert stats["creates"] == 0
    assert code == 0


async def test_create_refuses_unknown_fields_unless_allowed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unknown field is refused with a hint; --allow-unknown-fields sends it as written."""
    async with run_fake_gateway(FakeConfig(time_scale=0.001)) as fake:
        body = '{"prompt": "rain", "duration": 5, "brand_new": true}'
        refused = await _cli.amain(
            ["create", "audio/text-to-audio", "--json", body, *connection(fake)]
        )
        refused_stats = fake.stats()
        sent = await _cli.amain(
            [
                "create",
                "audio/text-to-audio",
                "--json",
                body,
                "--allow-unknown-fields",
                *connection(fake),
            ]
        )
        stats = fake.stats()
    assert refused == 2
    assert refused_stats["create_requests"] == 0
    assert sent == 0
    assert stats["create_requests"] == 1
    assert "brand_new" in capsys.readouterr().err
