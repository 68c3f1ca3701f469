#!/usr/bin/env python
"""What would move the ``batch`` targets: a small simulation of polling policies at a quota.

Not a benchmark (nothing is sent): a discrete-time model of the ``batch`` scenario
(500 tasks, quota 10, log-normal lives, median 100 s, sigma 0.25) with the
distribution known, comparing

- ``grid``: per-task polling on the scheduler's grid (first poll 1.5 sigma before
  the median, then steps of 10 % of the elapsed time): what ``session.batch`` does
  today once it has learned the distribution. Its figures match the measured
  ``sdk`` contender closely, which cross-checks the harness;
- ``probe θ``: while every slot is held and jobs wait, the per-task polls stop; a
  create is sent whenever the expected number of finished-but-unnoticed tasks
  (sum of each running task's hazard since it was last known running) reaches θ.
  A 1303 answer says "all of them still run" (when the batch is the account's only
  user), so it counts as a poll of every running task for one request; an
  accepted create uses the freed slot at once, then the likeliest candidates are
  polled until the finished task is found. With free slots or an empty queue the
  grid applies.

Usage: ``python benchmarks/probe_sim.py`` (a few seconds; prints one line per policy).
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist
from typing import Any

MU, SIGMA = math.log(100.0), 0.25
_N = NormalDist()


def cdf(t: float) -> float:
    """P(life <= t)."""
    return 0.0 if t <= 0 else _N.cdf((math.log(t) - MU) / SIGMA)


def grid_next(elapsed: float, *, early_sigmas: float = 1.5, ratio: float = 1.1) -> float:
    """Elapsed time of the next per-task poll."""
    first = math.exp(MU - early_sigmas * SIGMA)
    return first if elapsed < first else elapsed * ratio


def hazard_since(task: dict[str, float], now: float) -> float:
    """P(finished by now | known running at ``task['last']``)."""
    survived = 1.0 - cdf(task["last"])
    return (cdf(now - task["c"]) - cdf(task["last"])) / max(survived, 1e-12)


def simulate(theta: float | None, *, seed: int, n: int = 500, quota: int = 10) -> dict[str, Any]:
    """One batch under a policy (``theta=None``: the grid alone)."""
    rng = random.Random(seed)
    life = [math.exp(rng.gauss(MU, SIGMA)) for _ in range(n)]
    bound = max(sum(life) / quota, max(life))
    queue = list(range(n))
    running: dict[int, dict[str, float]] = {}
    lags: list[float] = []
    t, dt, requests, refused, owed = 0.0, 0.1, 0, 0, 0

    def finish(i: int) -> None:
        lags.append((t - running[i]["c"] - life[i]) / life[i])
        del running[i]

    while len(lags) < n:
        while queue and len(running) < quota:
            i = queue.pop(0)
            requests += 1
            running[i] = {"c": t, "next": t + grid_next(0.0), "last": 0.0, "old": 0.0}
        while owed and running:  # an accepted probe: find the task that ended
            candidates = [k for k in running if running[k]["old"]]
            if not candidates:
                owed = 0
                break
            best = max(candidates, key=lambda k: hazard_since(running[k], t))
            requests += 1
            if t - running[best]["c"] >= life[best]:
                finish(best)
                owed -= 1
            else:
                running[best]["last"] = t - running[best]["c"]
        saturated = bool(queue) and len(running) >= quota
        if theta is not None and saturated:
            if sum(hazard_since(task, t) for task in running.values()) >= theta:
                requests += 1
                still = sum(1 for k, task in running.items() if t - task["c"] < life[k])
                if still < quota:
                    for task in running.values():
                        task["old"] = 1.0
                    i = queue.pop(0)
                    running[i] = {"c": t, "next": t + grid_next(0.0), "last": 0.0, "old": 0.0}
                    owed += 1
                else:
                    refused += 1
                    for task in running.values():
                        task["last"] = t - task["c"]
        else:
            for i, task in list(running.items()):
                if t >= task["next"]:
                    requests += 1
                    elapsed = t - task["c"]
                    if elapsed >= life[i]:
                        finish(i)
                    else:
                        task["last"] = elapsed
                        task["next"] = task["c"] + grid_next(elapsed)
        t += dt
    lags.sort()
    return {
        "policy": "grid" if theta is None else f"probe {theta:g}",
        "seed": seed,
        "makespan_ratio": round(t / bound, 4),
        "requests_per_task": round(requests / n, 2),
        "refused_creates": refused,
        "p95_lag_ratio": round(lags[int(0.95 * len(lags))], 4),
        "mean_lag_ratio": round(sum(lags) / len(lags), 4),
    }


def main() -> None:
    for theta in (None, 0.7, 0.5, 0.3):
        for seed in (1, 2):
            print(simulate(theta, seed=seed))


if __name__ == "__main__":
    main()
