"""What a user would write without the SDK: bare aiohttp + ``json``, as in the vendor docs.

These contenders speak the wire format by hand (bodies from the seed examples) so
that the comparison with the SDK is side by side on the same fake gateway.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp

TERMINAL = frozenset({"succeed", "failed", "succeeded"})
RETRYABLE_CODES = frozenset({1302, 1303})

T2V_PATH = "videos/text2video"
TURBO_T2V_PATH = "videos/text-to-video/kling-3.0-turbo"


def t2v_body(index: int, *, callback_url: str | None = None) -> dict[str, Any]:
    """The body of one text-to-video job (5 s std: the fake's median life, unscaled)."""
    body: dict[str, Any] = {
        "model_name": "kling-v2-6",
        "prompt": f"A lighthouse on a cliff at dusk, waves crashing, shot {index}",
        "mode": "std",
        "aspect_ratio": "16:9",
        "duration": "5",
    }
    if callback_url:
        body["callback_url"] = callback_url
    return body


class Api:
    """Hand-written URLs and headers for one fake gateway."""

    def __init__(self, url: str, api_key: str, endpoint_path: str) -> None:
        self.root = f"{url}/v1/ai/{endpoint_path}/kling/"
        self.headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
        }


async def bare_lifecycles(
    api: Api, n: int, *, concurrency: int, http: aiohttp.ClientSession
) -> int:
    """``n`` create→get lifecycles with bare aiohttp and ``json.loads``.

    The create body carries an ``external_task_id`` as the SDK's does, so both
    sides send the same two requests.

    Returns:
        How many lifecycles ended with a task in hand.
    """
    create_url = api.root + T2V_PATH
    done = 0
    queue = iter(range(n))

    async def worker() -> None:
        nonlocal done
        for i in queue:
            body = t2v_body(i)
            body["external_task_id"] = f"bare-{uuid.uuid4().hex}"
            async with http.post(create_url, data=json.dumps(body)) as resp:
                payload = json.loads(await resp.read())
            if payload.get("code") != 0:
                raise RuntimeError(f"create refused: {payload.get('code')}")
            task_id = payload["data"]["task_id"]
            async with http.get(f"{create_url}/{task_id}") as resp:
                payload = json.loads(await resp.read())
            if payload.get("code") == 0 and payload["data"]["task_id"] == task_id:
                done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def naive_batch(
    api: Api,
    jobs: int,
    *,
    quota: int,
    poll_interval: float,
    refuse_sleep: float,
) -> dict[str, Any]:
    """``asyncio.gather`` + ``asyncio.Semaphore(quota)`` + create + fixed-interval polling.

    A create refused with 1302/1303 (a slot frees on the server a moment after
    it is noticed here, or the other way round) is retried after ``refuse_sleep``.

    Returns:
        ``started`` / ``finished`` (monotonic), ``noticed`` (task id → monotonic
        time the terminal status was seen), ``refused`` creates, ``errors``.
    """
    sem = asyncio.Semaphore(quota)
    create_url = api.root + T2V_PATH
    noticed: dict[str, float] = {}
    counters = {"refused": 0, "errors": 0}

    async def one(http: aiohttp.ClientSession, index: int) -> None:
        async with sem:
            while True:
                async with http.post(create_url, data=json.dumps(t2v_body(index))) as resp:
                    payload = json.loads(await resp.read())
                if payload.get("code") == 0:
                    break
                if payload.get("code") in RETRYABLE_CODES:
                    counters["refused"] += 1
                    await asyncio.sleep(refuse_sleep)
                    continue
                counters["errors"] += 1
                return
            task_id = payload["data"]["task_id"]
            while True:
                # As users write it: sleep, then ask (the round trip adds to the period).
                await asyncio.sleep(poll_interval)
                async with http.get(f"{create_url}/{task_id}") as resp:
                    payload = json.loads(await resp.read())
                if payload.get("code") != 0:
                    continue
                if payload["data"]["task_status"] in TERMINAL:
                    noticed[task_id] = time.monotonic()
                    return

    async with aiohttp.ClientSession(headers=api.headers) as http:
        started = time.monotonic()
        await asyncio.gather(*(one(http, i) for i in range(jobs)))
        finished = time.monotonic()
    return {"started": started, "finished": finished, "noticed": noticed, **counters}
