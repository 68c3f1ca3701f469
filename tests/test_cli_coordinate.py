"""``kling-async batch --coordinate``: several real CLI processes, one account, one Redis.

Each scenario runs four ``kling-async batch`` child processes against one fake
gateway (quota 10, clock 100x fast) and a real ``redis-server`` (persistence off):
the shared quota holds, a worker killed with SIGKILL leaves nothing behind and
resumes without creating anything twice, and Redis stopped mid-run lets no create
through until it is back. Waits are for events (exits, the fake's counters), each
bounded by a guard that only turns a hang into a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from _redis import RedisServer, redis_server_binary, running_redis

from kling_async import ClientConfig
from kling_async import cli as _cli
from kling_async._slots import account_key_of
from kling_async.cli._settings import ENV_COORDINATE, coordination_url
from kling_async.coordination import RedisSlotStore
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway

SCALE = 0.01  # a 100 s video lives about 1 s
QUOTA = 10
WORKERS = 4
JOBS = 15  # per worker
LEASE_TTL = 3.0  # seconds: a killed worker's slots come back this fast
GUARD = 120.0  # seconds; turns a hang into a failure, never a timing check

needs_redis = pytest.mark.skipif(
    redis_server_binary() is None,
    reason="redis-server is not installed (apt-get install redis-server)",
)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def jobs_file(path: Path, tag: str, count: int) -> Path:
    """``count`` text-to-video jobs keyed ``tag-NN``."""
    path.write_text(
        "".join(
            json.dumps({"endpoint": "text2video", "prompt": f"{tag} {i}", "key": f"{tag}-{i:02d}"})
            + "\n"
            for i in range(count)
        ),
        encoding="utf-8",
    )
    return path


def batch_argv(fake: FakeGateway, jobs: Path, out: Path, *extra: str) -> list[str]:
    """``kling-async batch`` arguments pointing at ``fake``."""
    return [
        "batch",
        str(jobs),
        "--out",
        str(out),
        "--no-download",
        "--no-report",
        "--progress",
        "off",
        "--api-key",
        fake.config.api_key,
        "--endpoint-path",
        fake.config.endpoint_path,
        "--base-url",
        str(fake.url).rstrip("/"),
        "--time-scale",
        str(SCALE),
        "--max-running",
        str(QUOTA),
        *extra,
    ]


class Worker:
    """One ``kling-async batch --coordinate`` child process."""

    def __init__(self, fake: FakeGateway, redis: RedisServer, directory: Path, tag: str) -> None:
        self.out = directory / tag
        self.argv = batch_argv(
            fake,
            jobs_file(directory / f"{tag}.jsonl", tag, JOBS),
            self.out,
            "--coordinate",
            redis.url,
            "--lease-ttl",
            str(LEASE_TTL),
        )
        self.log = directory / f"{tag}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KLING_")}
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "kling_async", *self.argv, env=env, stdout=log, stderr=log
            )

    async def wait(self) -> int:
        assert self.process is not None
        return await self.process.wait()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def created(self) -> int:
        """Tasks this worker's journal records as created (read-only, beside the writer)."""
        journal = self.out / "journal.sqlite"
        if not journal.exists():
            return 0
        try:
            with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
                row = db.execute("SELECT COUNT(*) FROM jobs WHERE task_id IS NOT NULL").fetchone()
        except sqlite3.Error:
            return 0  # not written yet
        return int(row[0])

    def results(self) -> list[dict[str, Any]]:
        lines = (self.out / "results.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server this test may stop and start again."""
    with running_redis(tmp_path) as server:
        yield server


@pytest.fixture
async def fake() -> AsyncIterator[FakeGateway]:
    """The fake gateway: quota 10 slots, clock 100x fast."""
    async with run_fake_gateway(FakeConfig(time_scale=SCALE, max_running=QUOTA)) as gateway:
        yield gateway


async def until(check: Any, *, within: float = GUARD) -> None:
    """Wait until ``check()`` is true (a guard against hanging, not a timing check)."""
    with anyio.fail_after(within):
        while not check():  # noqa: ASYNC110  (other processes change what is checked)
            await anyio.sleep(0.05)


async def held_slots(redis: RedisServer, fake: FakeGateway) -> int:
    """Slots the account holds in Redis now."""
    config = ClientConfig(api_key=fake.config.api_key, endpoint_path=fake.config.endpoint_path)
    async with RedisSlotStore(redis.url, account_key=account_key_of(config)) as store:
        return await store.held()


def assert_shared_quota_held(fake: FakeGateway) -> dict[str, Any]:
    """Every job created exactly once, never past the quota, a handful of 1303 at most."""
    stats = fake.stats()
    assert stats["creates"] == WORKERS * JOBS
    assert stats["duplicate_external_ids"] == 0
    assert stats["max_running_observed"] <= QUOTA
    assert stats["concurrency_limited"] <= 8
    return stats


# --- settings ---------------------------------------------------------------------------


def test_the_flag_wins_over_the_environment_and_an_empty_flag_turns_it_off() -> None:
    """--coordinate, else KLING_COORDINATE; --coordinate '' keeps the slots local."""
    env = {ENV_COORDINATE: "redis://env:6379/0"}
    assert coordination_url(argparse.Namespace(coordinate=None), env) == "redis://env:6379/0"
    flag = argparse.Namespace(coordinate="redis://flag:6379/1")
    assert coordination_url(flag, env) == "redis://flag:6379/1"
    assert coordination_url(argparse.Namespace(coordinate=""), env) is None
    assert coordination_url(argparse.Namespace(coordinate=None), {}) is None


@pytest.mark.parametrize("source", ["flag", "environment"])
async def test_an_unreachable_store_exits_2_with_one_line_and_no_password(
    source: str,
    fake: FakeGateway,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis down at start: exit 2, one line naming the URL with its password hidden."""
    url = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    extra: list[str] = []
    if source == "flag":
        extra = ["--coordinate", url]
    else:
        monkeypatch.setenv(ENV_COORDINATE, url)
    argv = batch_argv(fake, jobs_file(tmp_path / "jobs.jsonl", "a", 3), tmp_path / "out", *extra)
    code = await _cli.amain(argv)
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "127.0.0.1" in lines[0]
    assert "***" in lines[0]
    assert "hunter2" not in err
    assert fake.stats()["create_requests"] == 0


# --- many processes ---------------------------------------------------------------------


@needs_redis
async def test_four_processes_share_one_quota(
    fake: FakeGateway, redis: RedisServer, tmp_path: Path
) -> None:
    """Four coordinated CLI runs on a quota of 10: no overcommit, each job created once."""
    workers = [Worker(fake, redis, tmp_path, f"w{n}") for n in range(WORKERS)]
    for worker in workers:
        await worker.start()
    with anyio.fail_after(GUARD):
        codes = [await worker.wait() for worker in workers]
    assert codes == [0] * WORKERS, [w.output()[-2000:] for w in workers]
    assert_shared_quota_held(fake)
    assert await held_slots(redis, fake) == 0


@needs_redis
async def test_a_killed_worker_frees_its_slots_and_resumes_without_paying_twice(
    fake: FakeGateway, redis: RedisServer, tmp_path: Path
) -> None:
    """SIGKILL a worker mid-run: its leases expire, the rest finish, a rerun pays nothing twice."""
    workers = [Worker(fake, redis, tmp_path, f"w{n}") for n in range(WORKERS)]
    victim, others = workers[0], workers[1:]
    for worker in workers:
        await worker.start()
    await until(lambda: victim.created() >= 3 and fake.stats()["creates"] >= 20)
    victim.kill()
    assert await victim.wait() == -signal.SIGKILL
    with anyio.fail_after(GUARD):
        codes = [await worker.wait() for worker in others]
    assert codes == [0] * len(others), [w.output()[-2000:] for w in others]
    # Nobody releases the victim's leases: only their TTL can have freed them.
    with anyio.fail_after(GUARD):
        while await held_slots(redis, fake) != 0:  # noqa: ASYNC110  (expiry on Redis's clock)
            await anyio.sleep(0.1)
    await victim.start()
    with anyio.fail_after(GUARD):
        assert await victim.wait() == 0, victim.output()[-2000:]
    assert_shared_quota_held(fake)
    # The victim had created tasks before it died; 60 creates in all means its rerun
    # followed them from its journal instead of creating them again.
    assert {r["status"] for r in victim.results()} == {"succeed"}


@needs_redis
async def test_redis_lost_mid_run_lets_no_create_through_until_it_is_back(
    fake: FakeGateway, redis: RedisServer, tmp_path: Path
) -> None:
    """Redis stopped: tasks are still followed, no create goes out; started again: all complete."""
    workers = [Worker(fake, redis, tmp_path, f"w{n}") for n in range(WORKERS)]
    for worker in workers:
        await worker.start()
    await until(lambda: fake.stats()["creates"] >= 15)
    redis.stop()
    before = fake.stats()["create_requests"]
    # Every task created so far ends on the gateway and is seen ending by its worker:
    # from then on an uncoordinated client would be free to create more.
    await until(lambda: fake.stats()["running"] == 0)
    await until(lambda: all(r["first_terminal_seen_at"] is not None for r in fake.task_records()))
    during = fake.stats()["create_requests"] - before
    # At most the creates whose lease was granted just before the stop (one per worker).
    assert during <= WORKERS
    assert all(w.process is not None and w.process.returncode is None for w in workers)
    redis.start()
    with anyio.fail_after(GUARD):
        codes = [await worker.wait() for worker in workers]
    assert codes == [0] * WORKERS, [w.output()[-2000:] for w in workers]
    assert_shared_quota_held(fake)
