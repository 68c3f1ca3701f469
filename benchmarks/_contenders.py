"""What a user would write without the SDK: bare aiohttp + ``json``, as in the vendor docs.

These contenders speak the wire format by hand (bodies from the seed examples) so
that the comparison with the SDK is side by side on the same fake gateway.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import jwt

TERMINAL = frozenset({"succeed", "failed", "succeeded"})
RETRYABLE_CODES = frozenset({1302, 1303})

T2V_PATH = "videos/text2video"
TURBO_T2V_PATH = "videos/text-to-video/kling-3.0-turbo"
IMAGE_PATH = "images/generations"
#: The gateway's multi-task query (turbo tasks have no per-task path there).
TASKS_PATH = "tasks"

#: Job kinds the benchmark contenders know: 5 s and 10 s classic text-to-video
#: clips, turbo text-to-video (5 s 720p) and one-image generations.
KINDS = ("t2v5", "t2v10", "turbo", "image")


def t2v_body(index: int, *, callback_url: str | None = None, duration: str = "5") -> dict[str, Any]:
    """The body of one text-to-video job (5 s std: the fake's median life, unscaled)."""
    body: dict[str, Any] = {
        "model_name": "kling-v2-6",
        "prompt": f"A lighthouse on a cliff at dusk, waves crashing, shot {index}",
        "mode": "std",
        "aspect_ratio": "16:9",
        "duration": duration,
    }
    if callback_url:
        body["callback_url"] = callback_url
    return body


def turbo_body(index: int) -> dict[str, Any]:
    """The body of one turbo text-to-video job (seed 002's example, 5 s 720p)."""
    return {
        "prompt": f"A lighthouse on a cliff at dusk, waves crashing, shot {index}",
        "settings": {"resolution": "720p", "aspect_ratio": "16:9", "duration": 5},
        "options": {},
    }


def image_body(index: int) -> dict[str, Any]:
    """The body of one image generation (one 1k image)."""
    return {
        "model_name": "kling-v2-1",
        "prompt": f"A lighthouse on a cliff at dusk, watercolour, plate {index}",
        "n": 1,
        "resolution": "1k",
        "aspect_ratio": "16:9",
    }


def job_request(kind: str, index: int) -> tuple[str, dict[str, Any]]:
    """Create path (under the API root) and body of one job of ``kind`` (see :data:`KINDS`)."""
    if kind == "t2v5":
        return T2V_PATH, t2v_body(index)
    if kind == "t2v10":
        return T2V_PATH, t2v_body(index, duration="10")
    if kind == "turbo":
        return TURBO_T2V_PATH, turbo_body(index)
    if kind == "image":
        return IMAGE_PATH, image_body(index)
    raise ValueError(f"unknown job kind {kind!r}")


class Api:
    """Hand-written URLs and headers for one fake gateway."""

    def __init__(self, url: str, api_key: str, endpoint_path: str) -> None:
        self.root = f"{url}/v1/ai/{endpoint_path}/kling/"
        self.headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
        }

    def request_headers(self) -> dict[str, str] | None:
        """Per-request headers beyond the session's (none: the key never changes)."""
        return None


class KlingApi:
    """Kling's own API as its documentation shows: ``/v1/...`` paths and a JWT.

    The token is signed with PyJWT from the access/secret pair (HS256, ``iss`` the
    access key, ``exp`` 30 minutes ahead, ``nbf`` 5 s back) and signed afresh when
    it has less than 5 minutes left, as Kling's example code does.

    Args:
        url: The host.
        access_key: The access key.
        secret_key: The secret key.
        clock: Unix seconds as the server counts them (a time-scaled fake runs
            its token clock fast: pass ``kling_async._auth.scaled_clock(factor)``).
    """

    def __init__(
        self, url: str, access_key: str, secret_key: str, *, clock: Callable[[], float]
    ) -> None:
        self.root = f"{url}/v1/"
        self.headers = {"Content-Type": "application/json"}
        self._access = access_key
        self._secret = secret_key
        self._clock = clock
        self._token = ""
        self._expires = 0.0

    def request_headers(self) -> dict[str, str] | None:
        """The ``Authorization`` header with a token valid for a while yet."""
        now = self._clock()
        if now > self._expires - 300:
            self._expires = now + 1800
            claims = {"iss": self._access, "exp": int(self._expires), "nbf": int(now - 5)}
            self._token = jwt.encode(claims, self._secret, algorithm="HS256")
        return {"Authorization": f"Bearer {self._token}"}


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


def _terminal_of(payload: dict[str, Any], task_id: str, turbo: bool) -> bool | None:
    """Whether a query answer shows the task ended (``None``: the answer was no use)."""
    if payload.get("code") != 0:
        return None
    data = payload.get("data")
    if not turbo:
        return isinstance(data, dict) and data.get("task_status") in TERMINAL
    if not isinstance(data, list):
        return None
    for item in data:
        if isinstance(item, dict) and item.get("id") == task_id:
            return item.get("status") in TERMINAL
    return None  # not visible yet


async def loop_batch(
    api: Api | KlingApi,
    kinds: Sequence[str],
    *,
    quota: int,
    poll_interval: float,
    refuse_sleep: float,
) -> dict[str, Any]:
    """``asyncio.gather`` + ``asyncio.Semaphore(quota)`` + create + fixed-interval polling.

    One job per item of ``kinds`` (see :data:`KINDS`). Classic tasks are polled by
    their per-task query; a turbo task by the multi-task query with its one id (the
    gateway has no per-task turbo path). A create refused with 1302/1303 (a slot
    frees on the server a moment after it is noticed here, or the other way round)
    is retried after ``refuse_sleep``.

    Returns:
        ``started`` / ``finished`` (monotonic), ``noticed`` (task id → monotonic
        time the terminal status was seen), ``refused`` creates, ``errors``.
    """
    sem = asyncio.Semaphore(quota)
    noticed: dict[str, float] = {}
    counters = {"refused": 0, "errors": 0}

    async def one(http: aiohttp.ClientSession, index: int, kind: str) -> None:
        path, body = job_request(kind, index)
        turbo = kind == "turbo"
        data = json.dumps(body)
        async with sem:
            while True:
                async with http.post(
                    api.root + path, data=data, headers=api.request_headers()
                ) as resp:
                    payload = json.loads(await resp.read())
                if payload.get("code") == 0:
                    break
                if payload.get("code") in RETRYABLE_CODES:
                    counters["refused"] += 1
                    await asyncio.sleep(refuse_sleep)
                    continue
                counters["errors"] += 1
                return
            created = payload["data"]
            task_id = str(created["id"] if turbo else created["task_id"])
            query = (
                f"{api.root}{TASKS_PATH}?task_ids={task_id}"
                if turbo
                else f"{api.root}{path}/{task_id}"
            )
            while True:
                # As users write it: sleep, then ask (the round trip adds to the period).
                await asyncio.sleep(poll_interval)
                async with http.get(query, headers=api.request_headers()) as resp:
                    payload = json.loads(await resp.read())
                if _terminal_of(payload, task_id, turbo):
                    noticed[task_id] = time.monotonic()
                    return

    async with aiohttp.ClientSession(headers=api.headers) as http:
        started = time.monotonic()
        await asyncio.gather(*(one(http, i, kind) for i, kind in enumerate(kinds)))
        finished = time.monotonic()
    return {"started": started, "finished": finished, "noticed": noticed, **counters}


async def naive_batch(
    api: Api,
    jobs: int,
    *,
    quota: int,
    poll_interval: float,
    refuse_sleep: float,
) -> dict[str, Any]:
    """:func:`loop_batch` of ``jobs`` 5 s text-to-video jobs (the batch scenario's contender)."""
    return await loop_batch(
        api, ["t2v5"] * jobs, quota=quota, poll_interval=poll_interval, refuse_sleep=refuse_sleep
    )
