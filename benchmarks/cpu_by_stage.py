"""Where a batch's client CPU goes, stage by stage, beside the hand-written loop's.

One matrix shape (default ``large``: 4,000 jobs, quota 200) runs once per
contender against a fake gateway in a child process (its CPU is not counted).
The client runs in this process with every event-loop callback timed (thread
CPU) and charged to its owner: for a task's step, the task's outermost coroutine
(a batch stage such as ``Poller.worker``, ``Create.worker`` or ``SlotProbe.loop``,
or the loop's ``loop_batch.<locals>.one``); for a plain callback, its name
(socket reads, request writes). What no callback spent is the event loop's own
(``select`` and its timers), shown as ``(event loop)``.

Timing every callback adds a little CPU of its own, so the totals run slightly
above an uninstrumented run's; the shares are what the tool is for.

Usage::

    .venv/bin/python benchmarks/cpu_by_stage.py
    .venv/bin/python benchmarks/cpu_by_stage.py --shape base --top 12
    .venv/bin/python benchmarks/cpu_by_stage.py --quick --json   # smoke sizes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from asyncio import events
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matrix
from _fakeproc import start_fake
from _shapes import Shape, by_name, quick

#: The event loop's own CPU: what no callback spent.
LOOP_OWN = "(event loop)"


def _owner(callback: Any) -> str:
    """Who a callback runs for: a task's outermost coroutine, else the callback's name."""
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        frame: Any = task.get_coro()
        while frame is not None:
            code = getattr(frame, "cr_code", None) or getattr(frame, "ag_code", None)
            if code is None:
                break
            name = str(code.co_qualname)
            if name != "TaskHandle._run_coro":  # anyio's wrapper around a task's coroutine
                return name
            frame = getattr(frame, "cr_await", None)
        return "(task)"
    return str(getattr(callback, "__qualname__", type(callback).__name__))


@contextmanager
def _charged(cpu: defaultdict[str, float], calls: defaultdict[str, int]) -> Iterator[None]:
    """Time every event-loop callback run inside the block, charged to its owner."""
    run = events.Handle._run
    clock = time.thread_time

    def timed(handle: events.Handle) -> None:
        owner = _owner(handle._callback)  # type: ignore[attr-defined]
        start = clock()
        try:
            run(handle)
        finally:
            cpu[owner] += clock() - start
            calls[owner] += 1

    setattr(events.Handle, "_run", timed)  # noqa: B010  (a method swapped for the block)
    try:
        yield
    finally:
        setattr(events.Handle, "_run", run)  # noqa: B010


async def measure(shape: Shape, contender: str) -> dict[str, Any]:
    """Run one contender on ``shape`` and charge its client CPU to stages.

    Args:
        shape: The matrix shape.
        contender: ``sdk`` or ``loop_5s``.

    Returns:
        ``cpu_s``, ``requests``, ``jobs`` and ``stages``: owner → CPU seconds,
        with :data:`LOOP_OWN` for the rest.
    """
    cpu: defaultdict[str, float] = defaultdict(float)
    calls: defaultdict[str, int] = defaultdict(int)
    async with start_fake(shape.fake_config(), in_process=False) as fake:
        before = await fake.stats()
        spec = matrix.client_spec(shape, contender, fake.url)
        with _charged(cpu, calls):
            start = time.process_time()
            await matrix.run_client(spec)
            total = time.process_time() - start
        after = await fake.stats()
    stages = dict(cpu)
    stages[LOOP_OWN] = max(0.0, total - sum(cpu.values()))
    return {
        "cpu_s": total,
        "requests": int(after["api_requests"] - before["api_requests"]),
        "jobs": shape.jobs,
        "stages": stages,
        "callbacks": dict(calls),
    }


def render(contender: str, result: dict[str, Any], top: int) -> str:
    """One contender's table: each owner's CPU per request, per task and share."""
    requests = max(1, result["requests"])
    jobs = max(1, result["jobs"])
    total = result["cpu_s"] or 1e-12
    lines = [
        f"{contender}: {result['cpu_s']:.2f} s CPU, {result['requests']} requests, "
        f"{result['cpu_s'] * 1e3 / requests:.4f} ms a request, "
        f"{result['cpu_s'] * 1e3 / jobs:.3f} ms a task",
        f"  {'us/request':>10} {'ms/task':>8} {'share':>6}  owner",
    ]
    ranked = sorted(result["stages"].items(), key=lambda item: item[1], reverse=True)
    for owner, seconds in ranked[:top]:
        lines.append(
            f"  {seconds * 1e6 / requests:10.1f} {seconds * 1e3 / jobs:8.3f} "
            f"{seconds * 100 / total:5.1f}%  {owner}"
        )
    return "\n".join(lines)


async def _main(shape: Shape, contenders: list[str], top: int, as_json: bool) -> None:
    results = {name: await measure(shape, name) for name in contenders}
    if as_json:
        sys.stdout.write(json.dumps({"shape": shape.name, "contenders": results}) + "\n")
        return
    print(f"shape {shape.name}: {shape.jobs} jobs, quota {shape.quota}")
    for name, result in results.items():
        print(render(name, result, top))


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and print the tables (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="large", help="a matrix shape (default: large)")
    parser.add_argument(
        "--contender",
        action="append",
        choices=("sdk", "loop_5s"),
        help="run only this contender (repeatable; default: both)",
    )
    parser.add_argument("--top", type=int, default=15, help="owners shown per contender")
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    try:
        (shape,) = by_name([args.shape])
    except (KeyError, ValueError):
        parser.error(f"no matrix shape is named {args.shape!r}")
    if args.quick:
        shape = quick(shape)
    asyncio.run(_main(shape, args.contender or ["sdk", "loop_5s"], args.top, args.json))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
