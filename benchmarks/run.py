#!/usr/bin/env python
"""Benchmarks of kling_async against the embedded fake gateway, side by side with naive code.

Usage::

    python benchmarks/run.py                 # full run (a few minutes), human summary
    python benchmarks/run.py --json          # the same, one JSON object on stdout
    python benchmarks/run.py --quick --json  # smoke run of a few seconds (the test suite)
    python benchmarks/run.py --only batch    # one scenario
    python benchmarks/run.py --only matrix   # the schedule matrix (every shape, ~12 min)
    python benchmarks/run.py --only matrix:base --only matrix:official  # some shapes
    python benchmarks/run.py --only matrix:travel  # 9 gateways never tuned on (~8 min)

Every scenario runs the fake gateway in a child process (its CPU and memory are not
the client's) on loopback, with a compressed clock (the fake's ``time_scale``) and a
fixed seed. Client-side time constants that stand for real seconds (naive polling
intervals, the SDK's poll and retry policies) are compressed by the same factor, so
the run is the real-world scenario played faster. ``--quick`` shrinks every size and
runs the fakes in-process (its figures are not meant to be read). Logs go to stderr;
BENCHMARKS.md has the latest figures and what limits them.

Extra flags: ``--records DIR`` saves the fake's task records of every run (to dig
into a figure), ``--sequential`` runs the batch contenders one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import inspect
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import attrs

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _shapes  # noqa: E402
import matrix  # noqa: E402
from _contenders import Api, bare_lifecycles, naive_batch  # noqa: E402
from _fakeproc import FakeProcess, InProcessFake, start_fake  # noqa: E402
from _measure import (  # noqa: E402
    batch_metrics,
    finite,
    read_status_kb,
    stats_delta,
)
from _sdk import scale_run, sdk_batch, sdk_lifecycles, sdk_session  # noqa: E402

log = logging.getLogger("bench")

SEED = 20250611
API_KEY = "bench-key"
ENDPOINT_PATH = "bench-endpoint"
#: Standard Webhooks secret shared by the fake (signs) and the receiver (verifies).
WEBHOOK_SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1iZW5jaG1hcmstc2VjcmV0LTA="  # noqa: S105
SCENARIOS = ("overhead", "batch", "batch_query", "callbacks", "scale", "fake_server", "matrix")
#: ``--only matrix:<shape>`` runs one shape of the matrix (``--only matrix``: all of
#: issue 14's shapes; ``--only matrix:travel``: the gateways it was never tuned on).
MATRIX_CHOICES = tuple(
    f"matrix:{name}" for name in (*_shapes.shape_names(), "travel", *_shapes.travel_names())
)
CONTENDERS = ("sdk", "sdk_probe", "sdk_overcommitted", "naive_fast", "naive_slow")


@attrs.frozen(kw_only=True)
class Plan:
    """Sizes and clocks of one run."""

    overhead_lifecycles: int = 3000
    overhead_concurrency: int = 8
    overhead_rounds: int = 3
    batch_jobs: int = 500
    batch_quota: int = 10
    # 100 s of task life = 1 s here: a contender takes ~53 s. ``naive_fast``'s
    # 0.5 s is then 5 ms, about the shortest period this 2-core machine sustains
    # for 10 pollers plus the fake (more compression and its round trips, not its
    # interval, set its pace); a 10 % lag is ~100 ms, far above timer granularity.
    batch_time_scale: float = 0.01
    bq_jobs: int = 500
    # Turbo accounts run many tasks at once: 100 slots (five waves of 500 jobs), so
    # one batch query can carry many due tasks. Tasks last ~2 s; 5 % lag = 100 ms.
    bq_quota: int = 100
    bq_time_scale: float = 0.02
    cb_jobs: int = 200
    cb_quota: int = 50
    cb_time_scale: float = 0.02
    scale_tasks: int = 10_000
    # Lives of ~50 s (the shortest of 10,000 ~20 s) outlast the ~16 s it takes to
    # create 10,000 tasks, so all are in flight at once; the SDK's prior first poll
    # (20 s x 0.5 = 10 s after each create) falls inside the measuring window.
    scale_time_scale: float = 0.5
    scale_window_s: float = 8.0
    fake_rps_duration_s: float = 3.0
    fake_rps_concurrency: int = 32
    #: Overlap scenarios and contenders (smoke runs only: figures then interfere).
    parallel: bool = False


FULL = Plan()
QUICK = Plan(
    overhead_lifecycles=60,
    overhead_rounds=1,
    batch_jobs=16,
    batch_quota=4,
    batch_time_scale=0.002,
    bq_jobs=16,
    bq_quota=8,
    bq_time_scale=0.002,
    cb_jobs=8,
    cb_quota=4,
    cb_time_scale=0.002,
    scale_tasks=150,
    scale_time_scale=0.01,
    scale_window_s=0.3,
    fake_rps_duration_s=0.3,
    fake_rps_concurrency=8,
    parallel=True,
)


def fake_config(**overrides: Any) -> dict[str, Any]:
    """FakeConfig keyword arguments for a benchmark fake."""
    cfg: dict[str, Any] = {
        "api_key": API_KEY,
        "endpoint_path": ENDPOINT_PATH,
        "seed": SEED,
        "video_median": 100.0,
        "video_sigma": 0.25,
        "scale_by_request": False,
    }
    cfg.update(overrides)
    return cfg


#: Run fakes in this process (smoke runs: ``--quick``).
IN_PROCESS = False


def fake_gateway(config: dict[str, Any]) -> FakeProcess | InProcessFake:
    """The fake for one run: a child process (its CPU and memory are not ours)."""
    return start_fake(config, in_process=IN_PROCESS)


#: Where to save every task record (``--records DIR``), for digging into a figure.
RECORDS_DIR: Path | None = None


def _save_records(
    name: str, records: list[dict[str, Any]], noticed: dict[str, float] | None
) -> None:
    if RECORDS_DIR is None:
        return
    RECORDS_DIR.mkdir(parents=True, exist_ok=True)
    path = RECORDS_DIR / f"{name}.json"
    path.write_text(json.dumps({"records": records, "noticed": noticed or {}}))
    log.info("records of %s saved to %s", name, path)


_batch_metrics = batch_metrics


# --- scenario 1: overhead ------------------------------------------------------------------


async def scenario_overhead(plan: Plan) -> dict[str, Any]:
    """Client CPU per create→get lifecycle: SDK vs bare aiohttp, zero server latency."""
    n = plan.overhead_lifecycles
    rounds = max(1, plan.overhead_rounds)
    per_round = max(1, n // rounds)
    conc = plan.overhead_concurrency
    async with fake_gateway(fake_config(time_scale=1.0, latency=0.0)) as fake:
        api = Api(fake.url, API_KEY, ENDPOINT_PATH)
        connector = aiohttp.TCPConnector(limit=100)
        async with (
            sdk_session(fake.url, API_KEY, ENDPOINT_PATH, time_scale=1.0) as session,
            aiohttp.ClientSession(headers=api.headers, connector=connector) as http,
        ):
            warm = min(100, per_round)
            await bare_lifecycles(api, warm, concurrency=conc, http=http)
            await sdk_lifecycles(session, warm, concurrency=conc)
            bare_cpu = sdk_cpu = 0.0
            bare_wall = sdk_wall = 0.0
            bare_done = sdk_done = 0
            fake_cpu_bare = fake_cpu_sdk = 0.0
            for _ in range(rounds):
                gc.collect()
                f0, w0, c0 = await fake.cpu_seconds(), time.perf_counter(), time.process_time()
                bare_done += await bare_lifecycles(api, per_round, concurrency=conc, http=http)
                c1, w1 = time.process_time(), time.perf_counter()
                fake_cpu_bare += await fake.cpu_seconds() - f0
                bare_cpu += c1 - c0
                bare_wall += w1 - w0
                gc.collect()
                f0, w0, c0 = await fake.cpu_seconds(), time.perf_counter(), time.process_time()
                sdk_done += await sdk_lifecycles(session, per_round, concurrency=conc)
                c1, w1 = time.process_time(), time.perf_counter()
                fake_cpu_sdk += await fake.cpu_seconds() - f0
                sdk_cpu += c1 - c0
                sdk_wall += w1 - w0
    sdk_ms = sdk_cpu * 1000 / max(1, sdk_done)
    bare_ms = bare_cpu * 1000 / max(1, bare_done)
    return {
        "lifecycles": per_round * rounds,
        "concurrency": conc,
        "sdk_cpu_ms": finite(sdk_ms),
        "bare_cpu_ms": finite(bare_ms),
        "ratio": finite(sdk_ms / bare_ms if bare_ms else math.nan),
        "sdk_wall_ms": finite(sdk_wall * 1000 / max(1, sdk_done)),
        "bare_wall_ms": finite(bare_wall * 1000 / max(1, bare_done)),
        "fake_cpu_ms_sdk": finite(fake_cpu_sdk * 1000 / max(1, sdk_done)),
        "fake_cpu_ms_bare": finite(fake_cpu_bare * 1000 / max(1, bare_done)),
        "sdk_completed": sdk_done,
        "bare_completed": bare_done,
    }


# --- scenario 2: batch ---------------------------------------------------------------------


async def _run_contender(name: str, plan: Plan) -> dict[str, Any]:
    ts = plan.batch_time_scale
    jobs, quota = plan.batch_jobs, plan.batch_quota
    async with fake_gateway(fake_config(time_scale=ts, max_running=quota)) as fake:
        before = await fake.stats()
        extra: dict[str, Any] = {}
        noticed: dict[str, float] | None = None
        if name.startswith("naive"):
            interval = (0.5 if name == "naive_fast" else 5.0) * ts
            api = Api(fake.url, API_KEY, ENDPOINT_PATH)
            res = await naive_batch(
                api, jobs, quota=quota, poll_interval=interval, refuse_sleep=interval
            )
            started, finished, noticed = res["started"], res["finished"], res["noticed"]
            extra = {"poll_interval_s": round(interval, 6), "errors": res["errors"]}
        else:
            # sdk: default options (probe_slots=None: probes past max_running,
            # audited); sdk_probe: probe_slots=True (the quota is max_running: every
            # probe may pass it, the gateway's 1303 keeps the account within quota).
            max_running = 4 * quota if name == "sdk_overcommitted" else quota
            probe = True if name == "sdk_probe" else None
            res = await sdk_batch(
                fake.url,
                API_KEY,
                ENDPOINT_PATH,
                jobs=jobs,
                max_running=max_running,
                time_scale=ts,
                family="text2video",
                seed=SEED,
                probe_slots=probe,
            )
            started, finished, noticed = res["started"], res["finished"], res["noticed"]
            extra = {"max_running": max_running, "probe_slots": probe, **res.get("extra", {})}
        after = await fake.stats()
        records = await fake.task_records()
    _save_records(f"batch-{name}", records, noticed)
    return _batch_metrics(
        jobs=jobs,
        quota=quota,
        started=started,
        finished=finished,
        before=before,
        after=after,
        records=records,
        noticed=noticed,
        extra=extra,
        time_scale=ts,
    )


#: Contenders light enough to share the client's event loop without disturbing each
#: other (a few hundred requests per second together), each with its own fake process.
LIGHT_CONTENDERS = ("sdk", "sdk_probe", "sdk_overcommitted", "naive_slow")
#: Whether to run every contender alone (``--sequential``: slower, for checking).
SEQUENTIAL = False


async def scenario_batch(plan: Plan) -> dict[str, Any]:
    """500 text-to-video jobs under a quota of 10: SDK scheduler vs naive gather+poll.

    The light contenders run side by side (each against its own fake process);
    ``naive_fast`` (thousands of requests per second) runs alone afterwards.
    """
    results: dict[str, dict[str, Any]] = {}

    async def one(name: str) -> None:
        t0 = time.perf_counter()
        results[name] = await _run_contender(name, plan)
        log.info("batch/%s: %s (%.1fs)", name, _brief(results[name]), time.perf_counter() - t0)

    if SEQUENTIAL:
        for name in CONTENDERS:
            await one(name)
    elif plan.parallel:
        await asyncio.gather(*(one(name) for name in CONTENDERS))
    else:
        await asyncio.gather(*(one(name) for name in LIGHT_CONTENDERS))
        for name in CONTENDERS:
            if name not in LIGHT_CONTENDERS:
                await one(name)
    return {name: results[name] for name in CONTENDERS}


# --- scenario 3: batch query ---------------------------------------------------------------


async def scenario_batch_query(plan: Plan) -> dict[str, Any]:
    """500 turbo jobs: status requests per task with the batch task query vs per-task queries."""
    ts, jobs, quota = plan.bq_time_scale, plan.bq_jobs, plan.bq_quota
    modes: dict[str, dict[str, Any]] = {}

    async def one(mode: str, family: str) -> None:
        async with fake_gateway(fake_config(time_scale=ts, max_running=quota)) as fake:
            before = await fake.stats()
            res = await sdk_batch(
                fake.url,
                API_KEY,
                ENDPOINT_PATH,
                jobs=jobs,
                max_running=quota,
                time_scale=ts,
                family=family,
                seed=SEED,
            )
            after = await fake.stats()
            records = await fake.task_records()
        _save_records(f"batch_query-{mode}", records, res["noticed"])
        modes[mode] = _batch_metrics(
            jobs=jobs,
            quota=quota,
            started=res["started"],
            finished=res["finished"],
            before=before,
            after=after,
            records=records,
            noticed=res["noticed"],
            extra={"family": family, **res.get("extra", {})},
            time_scale=ts,
        )
        log.info("batch_query/%s: %s", mode, _brief(modes[mode]))

    # Both are light (a few hundred requests per second at most): side by side,
    # each against its own fake process.
    await asyncio.gather(one("batch_query", "turbo-text2video"), one("per_task", "text2video"))
    main = modes["batch_query"]
    per_task = modes["per_task"]
    return {
        "jobs": jobs,
        "quota": quota,
        "requests_per_task": main["status_requests_per_task"],
        "p95_lag_ratio": main["p95_lag_ratio"],
        "total_requests_per_task": main["requests_per_task"],
        "per_task_requests_per_task": per_task["status_requests_per_task"],
        "per_task_p95_lag_ratio": per_task["p95_lag_ratio"],
        "modes": modes,
    }


# --- scenario 4: callbacks -----------------------------------------------------------------


async def _callbacks_run(plan: Plan, *, signed: bool) -> dict[str, Any]:
    ts, jobs, quota = plan.cb_time_scale, plan.cb_jobs, plan.cb_quota
    secret = WEBHOOK_SECRET if signed else None
    async with fake_gateway(
        fake_config(time_scale=ts, max_running=quota, webhook_secret=secret)
    ) as fake:
        before = await fake.stats()
        res = await sdk_batch(
            fake.url,
            API_KEY,
            ENDPOINT_PATH,
            jobs=jobs,
            max_running=quota,
            time_scale=ts,
            family="text2video",
            callbacks=True,
            callback_secret=secret,
            seed=SEED,
        )
        after = await fake.stats()
        records = await fake.task_records()
    _save_records("callbacks-" + ("signed" if signed else "unsigned"), records, res["noticed"])
    metrics = _batch_metrics(
        jobs=jobs,
        quota=quota,
        started=res["started"],
        finished=res["finished"],
        before=before,
        after=after,
        records=records,
        noticed=res["noticed"],
        extra={
            "callbacks_sent": int(stats_delta(before, after).get("callbacks_sent", 0)),
            **res.get("extra", {}),
        },
        time_scale=ts,
    )
    log.info("callbacks/%s: %s", "signed" if signed else "unsigned", _brief(metrics))
    return metrics


async def scenario_callbacks(plan: Plan) -> dict[str, Any]:
    """200 jobs whose callbacks the fake delivers to the batch's receiver on loopback.

    The headline figures are for signed callbacks (Standard Webhooks, verified by
    the receiver: a verified terminal callback carrying the result is the result);
    ``unsigned`` is the same run without a secret (each callback triggers a query).
    """
    signed, unsigned = await asyncio.gather(
        _callbacks_run(plan, signed=True), _callbacks_run(plan, signed=False)
    )
    return {
        "jobs": plan.cb_jobs,
        "quota": plan.cb_quota,
        "requests_per_task": signed["status_requests_per_task"],
        "p95_lag_ratio": signed["p95_lag_ratio"],
        "total_requests_per_task": signed["requests_per_task"],
        "unsigned_requests_per_task": unsigned["status_requests_per_task"],
        "unsigned_p95_lag_ratio": unsigned["p95_lag_ratio"],
        "signed": signed,
        "unsigned": unsigned,
    }


# --- scenario 5: scale ---------------------------------------------------------------------


async def scenario_scale(plan: Plan) -> dict[str, Any]:
    """10,000 tasks in flight: RSS growth per 1,000 tasks and event-loop lag while polling.

    Runs in a fresh interpreter (see ``_scale_in_child``) so that earlier
    scenarios do not inflate the peak RSS; the fake runs in yet another process.
    """
    n = plan.scale_tasks
    ts = plan.scale_time_scale
    async with fake_gateway(fake_config(time_scale=ts, max_running=2 * n)) as fake:
        fake_stats: dict[str, Any] = {}

        async def on_created() -> None:
            fake_stats.update(await fake.stats())

        gc.collect()
        rss0 = read_status_kb("VmRSS")
        res = await scale_run(
            fake.url,
            API_KEY,
            ENDPOINT_PATH,
            tasks=n,
            time_scale=ts,
            window_s=plan.scale_window_s,
            on_created=on_created,
        )
    peak = res["peak_rss_kb"]
    growth_mb = (peak - rss0) / 1024.0
    return {
        "tasks": n,
        "in_flight_peak": res["in_flight_peak"],
        "fake_running_when_created": fake_stats.get("running"),
        "rss_base_mb": finite(rss0 / 1024.0, 2),
        "rss_peak_mb": finite(peak / 1024.0, 2),
        "rss_mb_per_1k_tasks": finite(growth_mb * 1000.0 / n),
        "loop_lag_p99_ms": finite(res["loop_lag_p99_ms"], 3),
        "loop_lag_p50_ms": finite(res["loop_lag_p50_ms"], 3),
        "loop_lag_max_ms": finite(res["loop_lag_max_ms"], 3),
        "loop_lag_p99_ms_creating": finite(res["loop_lag_p99_ms_creating"], 3),
        "window_s": plan.scale_window_s,
        "status_requests_in_window": res["status_requests_in_window"],
        "status_requests_per_s": finite(res["status_requests_per_s"], 1),
        "ended_in_window": res["ended_in_window"],
        "create_s": finite(res["create_s"], 3),
    }


def _scale_in_child(plan: Plan, quick: bool) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--only", "scale", "--json", "--inline"]
    if quick:
        cmd.append("--quick")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"scale child failed with exit status {proc.returncode}")
    return dict(json.loads(proc.stdout)["scale"])


# --- scenario 6: fake server ---------------------------------------------------------------


async def scenario_fake_server(plan: Plan) -> dict[str, Any]:
    """Requests per second the fake sustains (``benchmarks/fake_server.py``)."""
    import fake_server

    measure: Callable[..., Any] = fake_server.measure_fake_rps
    if inspect.iscoroutinefunction(measure):
        rps = await measure(plan.fake_rps_duration_s, plan.fake_rps_concurrency)
    else:
        loop = asyncio.get_running_loop()
        rps = await loop.run_in_executor(
            None, measure, plan.fake_rps_duration_s, plan.fake_rps_concurrency
        )
    return {
        "requests_per_s": finite(float(rps), 1),
        "duration_s": plan.fake_rps_duration_s,
        "concurrency": plan.fake_rps_concurrency,
    }


# --- targets (issue 5) -----------------------------------------------------------------


def _get(report: dict[str, Any], *path: str) -> Any:
    node: Any = report
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue that this report can judge: limit, figure, met or not."""
    rows: list[dict[str, Any]] = []

    def add(name: str, value: Any, op: str, limit: float) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return
        met = value <= limit if op == "<=" else value >= limit
        rows.append({"target": name, "limit": f"{op} {limit:g}", "measured": value, "met": met})

    add("overhead ratio (SDK CPU / bare CPU)", _get(report, "overhead", "ratio"), "<=", 1.5)
    sdk = _get(report, "batch", "sdk") or {}
    probe = _get(report, "batch", "sdk_probe") or {}
    over = _get(report, "batch", "sdk_overcommitted") or {}
    fast = _get(report, "batch", "naive_fast") or {}
    slow = _get(report, "batch", "naive_slow") or {}
    add("sdk makespan_ratio", sdk.get("makespan_ratio"), "<=", 1.05)
    add("sdk p95_lag_ratio", sdk.get("p95_lag_ratio"), "<=", 0.10)
    add("sdk requests_per_task", sdk.get("requests_per_task"), "<=", 7)
    add("sdk rate_limited (1302)", sdk.get("rate_limited"), "<=", 0)
    add("sdk_probe makespan_ratio", probe.get("makespan_ratio"), "<=", 1.05)
    add("sdk_probe p95_lag_ratio", probe.get("p95_lag_ratio"), "<=", 0.10)
    add("sdk_probe requests_per_task", probe.get("requests_per_task"), "<=", 7)
    add("sdk_probe rate_limited (1302)", probe.get("rate_limited"), "<=", 0)
    add("sdk_overcommitted makespan_ratio", over.get("makespan_ratio"), "<=", 1.08)
    add("sdk_overcommitted requests_per_task", over.get("requests_per_task"), "<=", 8)
    add(
        "batch_query requests_per_task", _get(report, "batch_query", "requests_per_task"), "<=", 0.5
    )
    add("batch_query p95_lag_ratio", _get(report, "batch_query", "p95_lag_ratio"), "<=", 0.05)
    add("callbacks requests_per_task", _get(report, "callbacks", "requests_per_task"), "<=", 1.5)
    add("callbacks p95_lag_ratio", _get(report, "callbacks", "p95_lag_ratio"), "<=", 0.02)
    add("scale rss_mb_per_1k_tasks", _get(report, "scale", "rss_mb_per_1k_tasks"), "<=", 5)
    add("scale loop_lag_p99_ms", _get(report, "scale", "loop_lag_p99_ms"), "<=", 50)
    add("fake_server requests_per_s", _get(report, "fake_server", "requests_per_s"), ">=", 5000)
    sdk_rpt = sdk.get("requests_per_task")
    if sdk_rpt:
        if slow.get("requests_per_task"):
            add(
                "naive_slow / sdk requests per task",
                round(slow["requests_per_task"] / sdk_rpt, 2),
                ">=",
                3,
            )
        if fast.get("requests_per_task"):
            add(
                "naive_fast / sdk requests per task",
                round(fast["requests_per_task"] / sdk_rpt, 2),
                ">=",
                25,
            )
    if sdk.get("makespan_ratio") and slow.get("makespan_ratio"):
        add(
            "sdk makespan_ratio - naive_slow makespan_ratio",
            round(sdk["makespan_ratio"] - slow["makespan_ratio"], 4),
            "<=",
            0,
        )
    return rows


def render_text(report: dict[str, Any]) -> str:
    """A human summary: the batch table and the targets."""
    lines: list[str] = []
    batch = report.get("batch")
    if isinstance(batch, dict):
        cols = (
            "makespan_ratio",
            "requests_per_task",
            "status_requests_per_task",
            "p50_lag_ratio",
            "p95_lag_ratio",
            "concurrency_limited",
            "rate_limited",
        )
        lines.append("batch: " + " | ".join(("contender", *cols)))
        for name, m in batch.items():
            lines.append("  " + " | ".join([name, *(str(m.get(c)) for c in cols)]))
    if isinstance(report.get("matrix"), dict):
        lines.append("")
        lines.append(matrix.render(report["matrix"]))
    for row in report.get("targets", []):
        mark = "met   " if row["met"] else "MISSED"
        lines.append(f"{mark} {row['target']}: {row['measured']} (target {row['limit']})")
    meta = report.get("meta", {})
    lines.append(
        f"total {meta.get('total_seconds')} s on {meta.get('machine', {}).get('cpu_model')}"
    )
    return "\n".join(lines) + "\n"


# --- driver --------------------------------------------------------------------------------


def _brief(m: dict[str, Any]) -> str:
    keys = ("makespan_ratio", "requests_per_task", "p95_lag_ratio", "concurrency_limited")
    return " ".join(f"{k}={m.get(k)}" for k in keys)


def machine() -> dict[str, Any]:
    """Where the figures come from."""
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "aiohttp": aiohttp.__version__,
    }


#: Shapes of the matrix to run (empty: every one); set from ``--only matrix:<shape>``.
MATRIX_SHAPES: list[str] = []


async def scenario_matrix(plan: Plan) -> dict[str, Any]:
    """The schedule matrix (``benchmarks/matrix.py``): loop vs SDK defaults per shape."""
    return await matrix.run_matrix(MATRIX_SHAPES, quick=plan.parallel)


async def run(plan: Plan, only: list[str], quick: bool, inline: bool) -> dict[str, Any]:
    """Run the chosen scenarios and assemble the report."""
    runners: dict[str, Callable[[Plan], Awaitable[dict[str, Any]]]] = {
        "matrix": scenario_matrix,
        "overhead": scenario_overhead,
        "batch": scenario_batch,
        "batch_query": scenario_batch_query,
        "callbacks": scenario_callbacks,
        "scale": scenario_scale,
        "fake_server": scenario_fake_server,
    }
    results: dict[str, Any] = {}
    durations: dict[str, float] = {}

    async def one(name: str) -> None:
        t0 = time.perf_counter()
        log.info("scenario %s ...", name)
        if name == "scale" and not (inline or quick):
            loop = asyncio.get_running_loop()
            results[name] = await loop.run_in_executor(None, _scale_in_child, plan, quick)
        else:
            results[name] = await runners[name](plan)
        durations[name] = round(time.perf_counter() - t0, 2)
        shown = "(tables below)" if name == "matrix" else results[name]
        log.info("scenario %s done in %.1fs: %s", name, durations[name], shown)

    if plan.parallel:
        # Smoke run: figures are meaningless anyway, so overlap everything but the
        # CPU measurement (which must have the process to itself).
        if "overhead" in only:
            await one("overhead")
        await asyncio.gather(*(one(name) for name in only if name != "overhead"))
    else:
        for name in only:
            await one(name)
    report: dict[str, Any] = {name: results[name] for name in only}
    report["meta"] = {
        "machine": machine(),
        "python": sys.version.split()[0],
        "seed": SEED,
        "quick": quick,
        "time_scale": {
            "batch": plan.batch_time_scale,
            "batch_query": plan.bq_time_scale,
            "callbacks": plan.cb_time_scale,
            "scale": plan.scale_time_scale,
            "overhead": 1.0,
        },
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scenario_seconds": durations,
        "command": "python benchmarks/run.py --json" + (" --quick" if quick else ""),
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS + MATRIX_CHOICES,
        help="run this scenario (repeatable); matrix:<shape> runs one shape of the matrix",
    )
    parser.add_argument(
        "--records", metavar="DIR", help="save the fake's task records of each run there"
    )
    parser.add_argument(
        "--sequential", action="store_true", help="run the batch contenders one at a time"
    )
    parser.add_argument("--inline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global IN_PROCESS, RECORDS_DIR, SEQUENTIAL
    SEQUENTIAL = args.sequential
    IN_PROCESS = args.quick
    RECORDS_DIR = Path(args.records) if args.records else None
    matrix.RECORDS_DIR = RECORDS_DIR
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    log.setLevel(logging.INFO)
    plan = QUICK if args.quick else FULL
    only: list[str] = []
    for name in args.only or SCENARIOS:
        if name.startswith("matrix:"):
            MATRIX_SHAPES.append(name.split(":", 1)[1])
            name = "matrix"
        if name not in only:
            only.append(name)
    started = time.perf_counter()
    report = asyncio.run(run(plan, only, args.quick, args.inline))
    report["meta"]["total_seconds"] = round(time.perf_counter() - started, 2)
    given = sys.argv[1:] if argv is None else argv
    report["meta"]["command"] = " ".join(["python benchmarks/run.py", *given])
    report["targets"] = evaluate_targets(report)
    if args.json:
        sys.stdout.write(json.dumps(report, allow_nan=False) + "\n")
    else:
        sys.stdout.write(render_text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
