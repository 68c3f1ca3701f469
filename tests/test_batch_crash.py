"""Crash and resume: a child process running a batch is SIGKILLed, then the batch is re-run."""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

import anyio
import pytest

from kling_async._journal import JobState, Journal
from kling_async.testing import FakeConfig, run_fake_gateway

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

JOBS = 100

#: The child: one batch of JOBS jobs with a journal and downloads. argv: fake URL,
#: journal, output dir, kill-on event kind ("" for none), kill at the Nth such event.
CHILD = r"""
import asyncio, json, os, signal, sys
from kling_async import ClientConfig, ImageGenerationRequest, KlingSession, TextToVideoRequest
from kling_async.batch import Batch
from kling_async.testing._pytest_plugin import fast_session_options

JOBS = int(sys.argv[6])
url, journal, out, kill_kind, kill_at = sys.argv[1:6]
seen = {}

def hook(event):
    kind = event.kind.value
    seen[kind] = seen.get(kind, 0) + 1
    if kind == kill_kind and seen[kind] == int(kill_at):
        os.kill(os.getpid(), signal.SIGKILL)

def jobs():
    for i in range(JOBS):
        if i % 10 == 9:
            yield f"img-{i}", ImageGenerationRequest(prompt=f"a dog {i}", n=2)
        else:
            yield f"vid-{i}", TextToVideoRequest(prompt=f"a cat {i}")

async def main():
    config = ClientConfig(
        api_key="test-key", endpoint_path="test-endpoint", base_url=url, turbo_base_url=url,
        **fast_session_options(),
    )
    async with KlingSession(config=config) as session:
        async with Batch(
            session, max_running=8, journal=journal, download_dir=out, on_event=hook
        ) as batch:
            batch.submit_all(jobs())
            statuses = {}
            resumed = 0
            async for result in batch:
                statuses[result.status] = statuses.get(result.status, 0) + 1
                resumed += result.resumed
    print(json.dumps({"statuses": statuses, "resumed": resumed}))

asyncio.run(main())
"""


async def run_child(
    script: Path, args: list[str], log: Path, kill_after: float | None = None
) -> tuple[int | None, str]:
    """Run the child; SIGKILL it after ``kill_after`` seconds if it is still running."""
    with log.open("ab") as err:
        async with await anyio.open_process(
            [sys.executable, str(script), *args], stdout=-1, stderr=err
        ) as proc:
            assert proc.stdout is not None
            output = b""
            with anyio.move_on_after(kill_after if kill_after is not None else 120.0):
                async for chunk in proc.stdout:
                    output += chunk
            if proc.returncode is None and kill_after is not None:
                proc.kill()
            await proc.wait()
            return proc.returncode, output.decode()


async def test_sigkill_at_random_moments_then_resume_creates_each_task_once(
    tmp_path: Path,
) -> None:
    """Killed mid-create, mid-download and at random times: re-runs finish with 100 creates."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    journal, out, log = tmp_path / "batch.db", tmp_path / "out", tmp_path / "child.log"
    rng = random.Random(20240607)
    plan: list[tuple[str, int, float | None]] = [
        ("created", rng.randint(3, 12), None),  # other creates are in flight: mid-create
        ("downloaded", rng.randint(2, 8), None),  # other downloads are in flight
        ("created", rng.randint(15, 30), None),
        ("", 0, rng.uniform(0.8, 1.6)),  # timed kills land anywhere
        ("downloaded", rng.randint(10, 25), None),
        ("", 0, rng.uniform(0.8, 1.6)),
    ]
    config = FakeConfig(time_scale=0.002, latency=0.005, seed=7)
    async with run_fake_gateway(config) as fake:
        codes = []
        mid_create = mid_download = 0
        for kind, nth, after in plan:
            code, _ = await run_child(
                script, [fake.url, str(journal), str(out), kind, str(nth), str(JOBS)], log, after
            )
            codes.append(code)
            # What the kill interrupted, as the journal shows it.
            reader = Journal(journal)
            entries = list(reader.entries())
            reader.close()
            mid_create += any(e.state is JobState.CREATING for e in entries)
            mid_download += any(e.state is JobState.SUCCEED and not e.downloaded for e in entries)
        code, output = await run_child(
            script, [fake.url, str(journal), str(out), "", "0", str(JOBS)], log
        )
        stats = fake.stats()
    assert codes[:3] == [-9, -9, -9], log.read_text()[-3000:]
    assert code == 0, log.read_text()[-3000:]
    assert mid_create >= 1
    assert mid_download >= 1
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["statuses"] == {"succeed": JOBS}
    assert summary["resumed"] > 0
    assert stats["creates"] == JOBS
    assert stats["duplicate_external_ids"] == 0
    reader = Journal(journal)
    entries = list(reader.entries())
    reader.close()
    assert len(entries) == JOBS
    assert all(e.state is JobState.SUCCEED and e.downloaded for e in entries)
    files = [f for e in entries for f in e.files]
    assert len(files) == 90 + 10 * 2
    for f in files:
        assert f.path.is_file()
        assert f.path.stat().st_size == f.size
        assert hashlib.sha256(f.path.read_bytes()).hexdigest() == f.sha256
