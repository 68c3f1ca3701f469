"""Every script in examples/ runs to the end against the embedded fake gateway (``--fake``).

The web app is also run as a service would be: against a fake gateway this test
hosts (so its figures are read here), stopped with SIGINT and SIGTERM, restarted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.abc
import pytest

from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    """Run ``examples/NAME`` with ``--fake`` in a fresh interpreter; return its stdout."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--fake", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_every_example_has_a_header_and_a_fake_switch() -> None:
    """Each example starts with a docstring that says how to run it, --fake included."""
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == ["batch_clips.py", "pipeline.py", "quickstart.py", "web_app.py"]
    for name in scripts:
        text = (EXAMPLES / name).read_text(encoding="utf-8")
        assert text.startswith('"""'), name
        assert "--fake" in text.split('"""')[1], name


def test_quickstart_creates_waits_and_downloads(tmp_path: Path) -> None:
    """quickstart.py saves one valid MP4."""
    out = run_example("quickstart.py", "a paper boat", "--out", "videos", cwd=tmp_path)
    assert "succeed" in out
    (video,) = (tmp_path / "videos").glob("*.mp4")
    assert video.read_bytes()[4:8] == b"ftyp"


def test_batch_clips_runs_and_resumes_from_the_journal(tmp_path: Path) -> None:
    """batch_clips.py finishes a file of prompts; running it again reads every result back."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"prompt number {i}\n" for i in range(60)), encoding="utf-8")
    first = run_example("batch_clips.py", str(prompts), "--out", "clips", cwd=tmp_path)
    assert "60/60 clips" in first
    assert len(list((tmp_path / "clips").glob("*.mp4"))) == 60
    again = run_example("batch_clips.py", str(prompts), "--out", "clips", cwd=tmp_path)
    assert "60/60 clips" in again
    assert again.count("(from journal)") == 60


def test_web_app_gets_its_result_through_callbacks(tmp_path: Path) -> None:
    """web_app.py serves /generate and /jobs, and its callback receiver hears the fake."""
    out = run_example("web_app.py", "--once", "a lighthouse", "--out", "web", cwd=tmp_path)
    answer = json.loads(out)
    assert answer["status"] == "succeed"
    assert answer["file_bytes"] > 0
    assert answer["callbacks_received"] > 0
    assert answer["file"] == f"/files/{answer['job']}.mp4"
    assert answer["left_in_journal"] == 0


def test_web_app_workers_answer_each_others_jobs(tmp_path: Path) -> None:
    """Two worker processes, one journal each: the job posted to one is answered by the other."""
    out = run_example(
        "web_app.py", "--workers", "2", "--once", "a lighthouse", "--out", "web", cwd=tmp_path
    )
    answer = json.loads(out.strip().splitlines()[-1])
    assert answer["status"] == "succeed"
    assert answer["worker"] == "w1"  # asked of the worker that does not run it
    assert answer["source"] == "gateway"
    assert answer["file_bytes"] > 0
    assert answer["worker_exit_codes"] == [0, 0]
    assert sorted(p.name for p in (tmp_path / "web").glob("journal-*.sqlite")) == [
        "journal-w0.sqlite",
        "journal-w1.sqlite",
    ]


SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
GUARD = 60.0  # seconds; only to turn a hang into a failure, never a timing check
#: Tasks that never end by themselves: the test ends them with fake.advance().
STILL = {"time_scale": 0.01, "video_median": 100_000.0, "video_sigma": 0.0}
END = 2_000.0  # fake-clock seconds: every STILL task has ended, no result URL expired yet


class Worker:
    """examples/web_app.py as a service: on a fake gateway this test hosts, via KLING_*."""

    def __init__(self, fake: FakeGateway, out: Path, *args: str) -> None:
        self.argv = [sys.executable, str(EXAMPLES / "web_app.py"), "--port", "0"]
        self.argv += ["--out", str(out), "--worker-id", "w0", *args]
        self.env = {
            **os.environ,
            "KLING_API_KEY": fake.api_key,
            "KLING_ENDPOINT_PATH": fake.endpoint_path,
            "KLING_BASE_URL": fake.url,
            "KLING_TURBO_BASE_URL": fake.url,
            "KLING_TIME_SCALE": "0.01",
            "KLING_WEBHOOK_SECRET": SECRET,
        }
        self.url = ""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[anyio.abc.Process]:
        async with await anyio.open_process(self.argv, env=self.env) as proc:
            assert proc.stdout is not None
            first = await proc.stdout.receive()
            self.url = first.decode().split("listening on ", 1)[1].split()[0]
            yield proc

    async def stop(self, proc: anyio.abc.Process, signum: int) -> dict[str, Any]:
        """Signal the worker, wait for it to exit 0, and return its shutdown report."""
        proc.send_signal(signum)
        assert proc.stdout is not None
        assert proc.stderr is not None
        output = b"".join([chunk async for chunk in proc.stdout])
        errors = b"".join([chunk async for chunk in proc.stderr]).decode()
        assert await proc.wait() == 0, errors
        assert "Traceback" not in errors, errors
        report: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
        return report


async def post_jobs(url: str, count: int) -> list[str]:
    async with aiohttp.ClientSession() as client:
        jobs = []
        for i in range(count):
            async with client.post(f"{url}/generate", json={"prompt": f"a gull {i}"}) as response:
                assert response.status == 202
                jobs.append((await response.json())["job"])
        return jobs


async def until(condition: Any) -> None:
    """Wait (polling the in-process fake, under the caller's guard) until ``condition()``."""
    while not condition():  # noqa: ASYNC110  (the fake's figures come with no event)
        await anyio.sleep(0.01)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGINT/SIGTERM")
async def test_web_app_sigint_with_25_queued_creates_nothing_more(tmp_path: Path) -> None:
    """Quota 5, 30 requests, SIGINT at 5 created: 0 creates after it, callbacks served, exit 0."""
    config = FakeConfig(max_running=5, webhook_secret=SECRET, **STILL)
    async with run_fake_gateway(config) as fake:
        worker = Worker(fake, tmp_path / "web", "--max-running", "5", "--grace", str(GUARD))
        with anyio.fail_after(GUARD):
            async with worker.running() as proc:
                await post_jobs(worker.url, 30)
                await until(lambda: fake.stats()["creates"] == 5)
                creates_at_signal = fake.stats()["creates"]
                callbacks_at_signal = fake.stats()["callbacks_sent"]
                proc.send_signal(signal.SIGINT)
                fake.advance(END)  # the 5 running tasks end during the drain
                report = await worker.stop(proc, signal.SIGINT)
        stats = fake.stats()
    assert creates_at_signal == 5
    assert stats["creates"] == 5
    assert stats["callbacks_sent"] > callbacks_at_signal  # the callback route kept serving
    assert report["signal"] == "SIGINT"
    assert report["creates"] == 5
    assert report["not_started"] == 25
    assert report["left_in_journal"] == 0
    assert len(list((tmp_path / "web").glob("*.mp4"))) == 5


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGTERM")
async def test_web_app_sigterm_then_restart_answers_and_downloads_every_task(
    tmp_path: Path,
) -> None:
    """SIGTERM with no grace leaves 5 tasks running; the restarted worker downloads all 5."""
    config = FakeConfig(max_running=5, webhook_secret=SECRET, **STILL)
    out = tmp_path / "web"
    async with run_fake_gateway(config) as fake, aiohttp.ClientSession() as client:
        with anyio.fail_after(GUARD):
            first = Worker(fake, out, "--max-running", "5", "--grace", "0")
            async with first.running() as proc:
                jobs = await post_jobs(first.url, 10)
                await until(lambda: fake.stats()["creates"] == 5)
                report = await first.stop(proc, signal.SIGTERM)
            created = {t["external_task_id"] for t in fake.task_records()}
            fake.advance(END)  # they end while no worker runs
            again = Worker(fake, out, "--max-running", "5")
            async with again.running() as proc:
                answers = {}
                for job in jobs:
                    url = f"{again.url}/jobs/{job}"
                    async with client.get(url, params={"wait": "1"}) as response:
                        answers[job] = await response.json()
                files = {}
                for job in created:
                    async with client.get(f"{again.url}{answers[job]['file']}") as response:
                        files[job] = len(await response.read())
                final = await again.stop(proc, signal.SIGINT)
        stats = fake.stats()
    assert report["left_in_journal"] == 5
    assert report["not_started"] == 5
    assert len(created) == 5
    assert stats["creates"] == 5
    assert final["creates"] == 0
    assert {answers[job]["status"] for job in created} == {"succeed"}
    assert all(size > 0 for size in files.values())
    assert {answers[job]["status"] for job in set(jobs) - created} == {"not_started"}


@pytest.mark.parametrize("variant", [[], ["--lip-sync"]], ids=["extend", "lip-sync"])
def test_pipeline_chains_endpoints(tmp_path: Path, variant: list[str]) -> None:
    """pipeline.py goes image → image-to-video → extend (or audio + face → lip-sync)."""
    out = run_example("pipeline.py", "--out", "result", *variant, cwd=tmp_path)
    steps = ["image", "image-to-video"] + (
        ["text-to-audio", "identify-face", "lip-sync"] if variant else ["video-extend"]
    )
    lines = out.splitlines()
    for step, line in zip(steps, lines[: len(steps)], strict=True):
        assert line.startswith(step)
    assert "succeed" in lines[1]
    (video,) = (tmp_path / "result").glob("*.mp4")
    assert video.read_bytes()[4:8] == b"ftyp"
