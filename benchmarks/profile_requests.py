"""Client CPU per request: the SDK's request path side by side with bare aiohttp.

Three loops run against one fake gateway in a child process (its CPU is not
ours), each as the SDK and as a hand-written aiohttp + ``json`` loop sending the
same requests:

* ``lifecycle``: create → get of a text-to-video task (the ``overhead`` scenario
  of ``run.py``);
* ``get``: status queries of existing tasks by id (``session.get(endpoint, id)``,
  what a batch's poller sends most);
* ``get_many``: multi-task queries of ten turbo tasks each (``session.get_many``).

Usage::

    .venv/bin/python benchmarks/profile_requests.py            # the table
    .venv/bin/python benchmarks/profile_requests.py --profile get --top 30

``--profile LOOP`` runs that SDK loop once more under :mod:`cProfile` and prints the
functions with the most own time, to see where a request's CPU goes.

``--canned`` leaves the network out: the SDK loops run against a transport that
hands back prepared answers, so the figure is the SDK's own CPU per request (the
part a bare loop does not spend, plus the ``json.loads`` it does), steady enough to
compare two versions of the request path on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import pstats
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _contenders import T2V_PATH, Api, t2v_body  # noqa: E402
from _fakeproc import start_fake  # noqa: E402
from _sdk import sdk_session, t2v_request, turbo_request  # noqa: E402

from kling_async import HTTPRequest, HTTPResponse, KlingSession  # noqa: E402

API_KEY = "bench-key"
ENDPOINT_PATH = "bench-endpoint"
LOOPS = ("lifecycle", "get", "get_many")
#: Ids per multi-task query.
MANY = 10


async def _workers(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> None:
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            await one(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class Loops:
    """The SDK and bare versions of each loop, on one fake."""

    def __init__(self, session: KlingSession, http: aiohttp.ClientSession, api: Api) -> None:
        self.session = session
        self.http = http
        self.api = api
        self.t2v_ids: list[str] = []
        self.turbo_ids: list[str] = []

    async def setup(self, tasks: int) -> None:
        """Create the tasks the query loops ask about."""
        for i in range(tasks):
            self.t2v_ids.append((await self.session.text_to_video.create(t2v_request(i))).id)
        for i in range(tasks):
            task = await self.session.create(turbo_request(i))
            self.turbo_ids.append(task.id)

    async def _bare_json(self, method: str, url: str, body: bytes | None = None) -> Any:
        async with self.http.request(method, url, data=body) as resp:
            payload = json.loads(await resp.read())
        if payload.get("code") != 0:
            raise RuntimeError(f"refused: {payload.get('code')}")
        return payload["data"]

    # -- one unit of each loop; returns requests sent ----------------------------------

    async def sdk_lifecycle(self, i: int) -> None:
        task = await self.session.text_to_video.create(t2v_request(i))
        got = await self.session.text_to_video.get(task.id)
        assert got.id == task.id

    async def bare_lifecycle(self, i: int) -> None:
        body = t2v_body(i)
        body["external_task_id"] = f"bare-{uuid.uuid4().hex}"
        url = self.api.root + T2V_PATH
        data = await self._bare_json("POST", url, json.dumps(body).encode())
        task_id = data["task_id"]
        got = await self._bare_json("GET", f"{url}/{task_id}")
        assert got["task_id"] == task_id

    async def sdk_get(self, i: int) -> None:
        task_id = self.t2v_ids[i % len(self.t2v_ids)]
        got = await self.session.get("text2video", task_id)
        assert got.id == task_id

    async def bare_get(self, i: int) -> None:
        task_id = self.t2v_ids[i % len(self.t2v_ids)]
        got = await self._bare_json("GET", f"{self.api.root}{T2V_PATH}/{task_id}")
        assert got["task_id"] == task_id

    def _many(self, i: int) -> list[str]:
        at = (i * MANY) % max(1, len(self.turbo_ids) - MANY)
        return self.turbo_ids[at : at + MANY]

    async def sdk_get_many(self, i: int) -> None:
        got = await self.session.get_many(task_ids=self._many(i))
        assert len(got) == MANY

    async def bare_get_many(self, i: int) -> None:
        ids = ",".join(self._many(i))
        got = await self._bare_json(
            "GET", f"{self.api.root}tasks?task_ids={ids}&external_task_ids="
        )
        assert len(got) == MANY


#: Requests per unit of each loop.
REQUESTS = {"lifecycle": 2, "get": 1, "get_many": 1}


async def _cpu_of(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    gc.collect()
    start = time.process_time()
    await _workers(n, concurrency, one)
    return time.process_time() - start


async def main(args: argparse.Namespace) -> int:
    config = {
        "api_key": API_KEY,
        "endpoint_path": ENDPOINT_PATH,
        "seed": 1,
        "time_scale": 1.0,
        "latency": 0.0,
        "video_median": 1e6,  # tasks stay in flight: queries see a processing task
        "scale_by_request": False,
    }
    async with start_fake(config) as fake:
        api = Api(fake.url, API_KEY, ENDPOINT_PATH)
        connector = aiohttp.TCPConnector(limit=100)
        async with (
            sdk_session(fake.url, API_KEY, ENDPOINT_PATH, time_scale=1.0) as session,
            aiohttp.ClientSession(headers=api.headers, connector=connector) as http,
        ):
            loops = Loops(session, http, api)
            await loops.setup(args.tasks)
            rows = []
            for name in args.loops:
                sdk = getattr(loops, f"sdk_{name}")
                bare = getattr(loops, f"bare_{name}")
                await _workers(min(100, args.n), args.concurrency, bare)  # warm up
                await _workers(min(100, args.n), args.concurrency, sdk)
                # Alternate the two, round by round, and keep each one's median round:
                # a burst of load from another process spoils one round, not the figure.
                sdk_cpu: list[float] = []
                bare_cpu: list[float] = []
                for _ in range(args.rounds):
                    bare_cpu.append(await _cpu_of(args.n, args.concurrency, bare))
                    sdk_cpu.append(await _cpu_of(args.n, args.concurrency, sdk))
                requests = args.n * REQUESTS[name]
                rows.append(
                    (
                        name,
                        statistics.median(sdk_cpu) * 1e3 / requests,
                        statistics.median(bare_cpu) * 1e3 / requests,
                    )
                )
            if args.profile:
                profiler = cProfile.Profile()
                one = getattr(loops, f"sdk_{args.profile}")
                profiler.enable()
                await _workers(args.n, args.concurrency, one)
                profiler.disable()
    print(f"{'loop':<10} {'sdk ms/req':>10} {'bare ms/req':>11} {'ratio':>6}")
    for name, sdk_ms, bare_ms in rows:
        print(f"{name:<10} {sdk_ms:>10.4f} {bare_ms:>11.4f} {sdk_ms / bare_ms:>6.2f}")
    if args.profile:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue())
    return 0


class CannedTransport:
    """Answers every request at once with a prepared body (no network, no fake)."""

    def __init__(self) -> None:
        processing: dict[str, Any] = {
            "status": "processing",
            "message": "",
            "outputs": [],
            "billing": [],
        }
        many: list[dict[str, Any]] = [
            {"id": str(8_680_000_000_000_000_000 + i), "external_id": f"ka-{i:032x}", **processing}
            for i in range(MANY)
        ]
        for item in many:
            item.update(create_time=1_796_248_830_732, update_time=1_796_248_830_999)
        one = {
            "task_id": "8680000000000000000",
            "task_status": "processing",
            "created_at": 1_796_248_830_732,
            "updated_at": 1_796_248_830_999,
            "task_status_msg": "",
            "task_info": {"external_task_id": "ka-0"},
            "task_result": {},
        }
        created = {**one, "task_status": "submitted", "updated_at": 1_796_248_830_732}
        self.bodies = {
            name: json.dumps(
                {"code": 0, "message": "SUCCEED", "request_id": RID, "data": data}
            ).encode()
            for name, data in (("many", many), ("one", one), ("created", created))
        }
        self.ids = [item["id"] for item in many]

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """The prepared answer for the request's kind."""
        if request.method == "POST":
            body = self.bodies["created"]
        else:
            body = self.bodies["many" if "?" in request.url else "one"]
        return HTTPResponse(status=200, headers=_JSON, body=body)

    def stream(self, url: str, *, timeout: float, follow_redirects: bool = True) -> Any:
        """Not used here."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Nothing to release."""


RID = "9f1c2b7e-0d7e-4a53-9c1b-6d0f3a2e1b11"
_JSON = {"Content-Type": "application/json"}


async def canned(args: argparse.Namespace) -> int:
    """SDK CPU per request against :class:`CannedTransport`, next to ``json.loads`` alone."""
    transport = CannedTransport()
    async with KlingSession(
        api_key=API_KEY,
        endpoint_path=ENDPOINT_PATH,
        base_url="http://127.0.0.1:9",
        transport=transport,
    ) as session:
        ids = transport.ids
        units: dict[str, tuple[Callable[[int], Awaitable[Any]], list[bytes]]] = {
            "lifecycle": (
                lambda i: _canned_lifecycle(session, i),
                [transport.bodies["created"], transport.bodies["one"]],
            ),
            "get": (lambda i: session.get("text2video", ids[0]), [transport.bodies["one"]]),
            "get_many": (lambda i: session.get_many(task_ids=ids), [transport.bodies["many"]]),
        }
        print(f"{'loop':<10} {'sdk us/req':>10} {'json.loads us':>14}")
        for name in args.loops:
            one, bodies = units[name]
            for i in range(200):
                await one(i)
            rounds = []
            for _ in range(args.rounds):
                start = time.process_time()
                for i in range(args.n):
                    await one(i)
                rounds.append((time.process_time() - start) / (args.n * REQUESTS[name]))
            start = time.process_time()
            for _ in range(args.n):
                for body in bodies:
                    json.loads(body)
            loads = (time.process_time() - start) / (args.n * REQUESTS[name])
            print(f"{name:<10} {statistics.median(rounds) * 1e6:>10.1f} {loads * 1e6:>14.1f}")
    return 0


async def _canned_lifecycle(session: KlingSession, i: int) -> None:
    task = await session.text_to_video.create(t2v_request(i))
    await session.text_to_video.get(task.id)


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="units per loop and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=200, help="tasks the queries ask about")
    parser.add_argument("--loops", nargs="+", choices=LOOPS, default=list(LOOPS))
    parser.add_argument("--profile", choices=LOOPS, help="profile this SDK loop")
    parser.add_argument("--sort", default="tottime", help="pstats sort key")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--canned", action="store_true", help="no network: SDK CPU only")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = _parse()
    sys.exit(asyncio.run(canned(arguments) if arguments.canned else main(arguments)))
