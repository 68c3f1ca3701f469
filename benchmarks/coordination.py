#!/usr/bin/env python
"""Several ``kling-async batch`` processes on one account: coordinated through Redis or not.

Usage::

    python benchmarks/coordination.py            # 4 processes x 50 jobs, quota 10 (~1.5 min)
    python benchmarks/coordination.py --json     # the same figures as one JSON object
    python benchmarks/coordination.py --quick    # smoke run of a few seconds

One fake gateway (a child process, quota 10 slots, clock 100x fast, lives log-normal
around 100 s) and one ``redis-server`` (loopback, persistence off) serve both
scenarios, one after the other:

- ``uncoordinated``: N ``kling-async batch`` processes, each with ``--max-running 10``,
  each believing the whole quota is its own;
- ``coordinated``: the same with ``--coordinate redis://...``.

For each: 1303 answers, most tasks running at once (the fake's count), makespan
over the lower bound (max(sum of lives / quota, longest life)) measured from the
moment the processes are spawned to the last exit (so process start counts), the
same from the first create, and Redis round trips per task (the server's counts of the
commands the store sends: scripts, pipelines once, reads, the subscription). ``redis-server``
must be installed (Debian: ``apt-get install redis-server``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _fakeproc import start_fake  # noqa: E402
from _measure import lower_bound  # noqa: E402

API_KEY = "bench-key"
ENDPOINT_PATH = "bench-endpoint"
SEED = 20250611
#: The commands the store sends itself, one round trip each. Commands run inside its
#: Lua scripts are counted by the server too, but cost no round trip; in a pipeline
#: (MULTI, RPUSH, LTRIM, EXPIRE, EXEC) the EXEC stands for the one round trip; the
#: connection's set-up (HELLO, CLIENT SETINFO) and this script's INFO are not work.
_ROUND_TRIPS = (
    "evalsha",
    "eval",
    "script|load",
    "exec",
    "lrange",
    "get",
    "set",
    "blpop",
    "subscribe",
    "ping",
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[tuple[str, int]]:
    """A ``redis-server`` on a free loopback port, persistence off; yields (url, port)."""
    import subprocess

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--dir", str(directory), "--logfile", str(directory / "log")]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("redis-server did not start")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0", port
    finally:
        process.terminate()
        process.wait(timeout=10)


async def redis_info(url: str, section: str) -> dict[str, Any]:
    """One ``INFO`` section of the server."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        return dict(await client.info(section))
    finally:
        await client.aclose()


def round_trips(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """Round trips per command between two ``INFO commandstats`` (see ``_ROUND_TRIPS``)."""
    trips: dict[str, int] = {}
    for command in _ROUND_TRIPS:
        name = f"cmdstat_{command}"
        calls = int(after.get(name, {}).get("calls", 0)) - int(before.get(name, {}).get("calls", 0))
        if calls:
            trips[command] = calls
    return trips


def jobs_file(path: Path, tag: str, count: int) -> Path:
    path.write_text(
        "".join(
            json.dumps({"endpoint": "text2video", "prompt": f"{tag} {i}", "key": f"{tag}-{i:03d}"})
            + "\n"
            for i in range(count)
        ),
        encoding="utf-8",
    )
    return path


async def scenario(
    name: str,
    *,
    fake: Any,
    url: str | None,
    workers: int,
    jobs: int,
    quota: int,
    time_scale: float,
    lease_ttl: float,
    directory: Path,
) -> dict[str, Any]:
    """Run ``workers`` CLI processes of ``jobs`` jobs each; return the figures."""
    await fake.reset()
    commands_before = await redis_info(url, "commandstats") if url else {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLING_")}
    base = [sys.executable, "-m", "kling_async", "batch"]
    flags = ["--no-download", "--no-report", "--progress", "off", "--api-key", API_KEY]
    flags += ["--endpoint-path", ENDPOINT_PATH, "--base-url", fake.url]
    flags += ["--time-scale", str(time_scale), "--max-running", str(quota)]
    if url:
        flags += ["--coordinate", url, "--lease-ttl", str(lease_ttl)]
    started = time.monotonic()
    children = []
    for n in range(workers):
        jobs_path = jobs_file(directory / f"{name}-{n}.jsonl", f"{name}{n}", jobs)
        log = (directory / f"{name}-{n}.log").open("wb")
        argv = [*base, str(jobs_path), "--out", str(directory / f"{name}-{n}"), *flags]
        children.append(
            await asyncio.create_subprocess_exec(*argv, env=env, stdout=log, stderr=log)
        )
        log.close()
    codes = [await child.wait() for child in children]
    makespan = time.monotonic() - started
    stats = await fake.stats()
    records = await fake.task_records()
    bound = lower_bound(records, quota)
    first_create = min(float(r["created"]) for r in records) if records else started
    tasks = len(records)
    figures: dict[str, Any] = {
        "scenario": name,
        "exit_codes": codes,
        "tasks": tasks,
        "creates": stats["creates"],
        "duplicate_external_ids": stats["duplicate_external_ids"],
        "concurrency_limited_1303": stats["concurrency_limited"],
        "rate_limited_1302": stats["rate_limited"],
        "max_running_observed": stats["max_running_observed"],
        "makespan_s": round(makespan, 2),
        "lower_bound_s": round(bound, 2),
        "makespan_ratio": round(makespan / bound, 3),
        "process_start_s": round(first_create - started, 2),
        "makespan_ratio_from_first_create": round((makespan - (first_create - started)) / bound, 3),
        "create_requests_per_task": round(stats["create_requests"] / max(tasks, 1), 2),
    }
    if url:
        commands_after = await redis_info(url, "commandstats")
        trips = round_trips(commands_before, commands_after)
        figures["redis_round_trips_per_task"] = round(sum(trips.values()) / max(tasks, 1), 2)
        figures["redis_round_trips"] = trips
    return figures


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    fake_cfg = {
        "api_key": API_KEY,
        "endpoint_path": ENDPOINT_PATH,
        "seed": SEED,
        "video_median": 100.0,
        "video_sigma": 0.25,
        "scale_by_request": False,
        "time_scale": args.time_scale,
        "max_running": args.quota,
    }
    with tempfile.TemporaryDirectory(prefix="kling-coord-") as tmp:
        directory = Path(tmp)
        with redis_server(directory) as (url, _port):
            async with start_fake(fake_cfg, in_process=args.quick) as fake:
                common = {
                    "fake": fake,
                    "workers": args.workers,
                    "jobs": args.jobs,
                    "quota": args.quota,
                    "time_scale": args.time_scale,
                    "lease_ttl": args.lease_ttl,
                    "directory": directory,
                }
                plain = await scenario("uncoordinated", url=None, **common)
                # A just-started Redis holds admissions for half a lease TTL (every
                # process re-registering its leases); the first scenario outlasted it.
                uptime = int((await redis_info(url, "server"))["uptime_in_seconds"])
                await asyncio.sleep(max(0.0, args.lease_ttl / 2 + 1 - uptime))
                shared = await scenario("coordinated", url=url, **common)
    return {
        "workers": args.workers,
        "jobs_per_worker": args.jobs,
        "quota": args.quota,
        "time_scale": args.time_scale,
        "scenarios": [plain, shared],
    }


ROWS = (
    ("exit codes", "exit_codes"),
    ("tasks created (jobs)", "creates"),
    ("duplicate external ids", "duplicate_external_ids"),
    ("1303 answers", "concurrency_limited_1303"),
    ("1302 answers", "rate_limited_1302"),
    ("max running observed", "max_running_observed"),
    ("makespan, s (from spawn)", "makespan_s"),
    ("lower bound, s", "lower_bound_s"),
    ("makespan / lower bound (from spawn)", "makespan_ratio"),
    ("process start to first create, s", "process_start_s"),
    ("makespan / lower bound (from first create)", "makespan_ratio_from_first_create"),
    ("create requests per task", "create_requests_per_task"),
    ("Redis round trips per task", "redis_round_trips_per_task"),
)


def table(result: dict[str, Any]) -> str:
    """The figures as one Markdown table."""
    plain, shared = result["scenarios"]
    lines = [
        f"{result['workers']} processes x {result['jobs_per_worker']} jobs, quota "
        f"{result['quota']}, clock x{1 / result['time_scale']:g}",
        "",
        "| figure | uncoordinated | coordinated (`--coordinate`) |",
        "|---|---|---|",
    ]
    for label, key in ROWS:
        lines.append(f"| {label} | {plain.get(key, '-')} | {shared.get(key, '-')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=50, help="jobs per process")
    parser.add_argument("--quota", type=int, default=10)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--lease-ttl", type=float, default=30.0, help="--lease-ttl of the workers")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="smoke run (2 x 4 jobs)")
    args = parser.parse_args()
    if args.quick:
        args.workers, args.jobs, args.time_scale, args.lease_ttl = 2, 4, 0.002, 2.0
    result = asyncio.run(main_async(args))
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
