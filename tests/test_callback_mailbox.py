"""A callback landing on the wrong worker reaches its owner through the coordination store.

Two "workers" (two sessions, two batches, two receivers on loopback) share one fake
gateway behind a front that sends every callback to the worker that does NOT own
its task. Each batch watches its tasks by callbacks only (its reconciliation poll is
600 s away), so a job ends within the guard only if its callback was handed to its
owner through the store: with the in-process store and with a real ``redis-server``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import attrs
import pytest
from _redis import RedisServer, redis_server_binary, running_redis
from aiohttp import web

from kling_async import TextToVideoRequest
from kling_async._callbacks import CallbackEvent, CallbackReceiver, pack_relay, unpack_relay
from kling_async._webhooks import signed_headers
from kling_async.batch import JobResult
from kling_async.coordination import InProcessSlotStore, SlotStore, open_store
from kling_async.testing import FakeConfig, run_fake_gateway
from kling_async.testing._pytest_plugin import fast_session_options

SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
OTHER_SECRET = "whsec_b3RoZXJzZWNyZXRvdGhlcnNlY3JldG90aGVyc2VjcmU="
SCALE = 0.01  # a 100 s video lives about a second
GUARD = 60.0  # seconds; turns a hang into a failure, never a timing check
JOBS = 6  # per worker

StoreFactory = Callable[[], Awaitable[tuple[SlotStore, SlotStore]]]


@attrs.define
class Outcome:
    """What the front and the workers saw."""

    results: list[list[JobResult]]
    answers: list[int]  # the status each misrouted POST got
    delays: list[float]  # seconds from the front's forward to the owner's subscriber
    receivers: list[CallbackReceiver]
    fake_stats: dict[str, Any]


class Front:
    """A load balancer that sends each callback to the worker not owning its task."""

    def __init__(self) -> None:
        self.owner_of: dict[str, int] = {}  # external id -> worker index
        self.workers: list[str] = []
        self.answers: list[int] = []
        self.forwarded: dict[tuple[str, str], float] = {}
        self._http: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        task = json.loads(body)
        external = (task.get("task_info") or {}).get("external_task_id")
        wrong = 1 - self.owner_of[external]
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower().startswith("webhook-") or k.lower() == "content-type"
        }
        target = f"{self.workers[wrong]}?{request.query_string}"
        self.forwarded[(task["task_id"], task["task_status"])] = time.monotonic()
        assert self._http is not None
        async with self._http.post(target, data=body, headers=headers) as answer:
            await answer.read()
            self.answers.append(answer.status)
            return web.Response(status=answer.status)

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_post("/kling/callback", self.handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = int(runner.addresses[0][1])
        try:
            async with aiohttp.ClientSession() as http:
                self._http = http
                yield f"http://127.0.0.1:{port}/kling/callback"
        finally:
            await runner.cleanup()


async def run_two_workers(stores: tuple[SlotStore, SlotStore]) -> Outcome:
    """Two batches on one fake, every callback misrouted; returns what happened."""
    front = Front()
    fake_config = FakeConfig(time_scale=SCALE, webhook_secret=SECRET)
    received: dict[tuple[str, str], float] = {}
    async with (
        run_fake_gateway(fake_config) as fake,
        front.serve() as front_url,
        contextlib.AsyncExitStack() as stack,
    ):
        receivers = [CallbackReceiver(secret=SECRET, public_url=front_url) for _ in range(2)]
        for index, receiver in enumerate(receivers):
            front.workers.append(await stack.enter_async_context(receiver.serve()))

            def seen(event: CallbackEvent, index: int = index) -> bool:
                owner = front.owner_of.get(event.task.external_id or "")
                if owner == index:
                    received.setdefault((event.task.id, event.task.status.value), time.monotonic())
                return False  # never claims: only the batch decides

            receiver.subscribe(seen)
        results: list[list[JobResult]] = [[], []]

        async def worker(index: int) -> None:
            session = await stack.enter_async_context(fake.session(**fast_session_options(SCALE)))
            async with session.batch(
                max_running=JOBS,
                callbacks=receivers[index],
                coordinate=stores[index],
                reconcile_interval=600.0,
            ) as batch:
                for i in range(JOBS):
                    handle = batch.submit(TextToVideoRequest(prompt=f"w{index} {i}"), key=f"k{i}")
                    front.owner_of[handle.external_task_id] = index
                results[index].extend([result async for result in batch])

        with anyio.fail_after(GUARD):
            async with anyio.create_task_group() as group:
                group.start_soon(worker, 0)
                group.start_soon(worker, 1)
        stats = fake.stats()
    delays = [received[key] - at for key, at in front.forwarded.items() if key in received]
    return Outcome(results, front.answers, delays, receivers, stats)


def check(outcome: Outcome) -> None:
    """Every job ended by its owner; every misrouted callback taken over, none lost."""
    for results in outcome.results:
        assert len(results) == JOBS
        assert all(result.status == "succeed" for result in results)
    handed = sum(r.handed_over for r in outcome.receivers)
    taken = sum(r.taken_over for r in outcome.receivers)
    # Claimed by external id before each create left: even a callback that beats the
    # create's answer finds its owner, so every misrouted POST is handed over.
    assert outcome.answers == [200] * len(outcome.answers)
    assert handed == len(outcome.answers) >= 2 * JOBS  # a 200 only once the store took it
    assert taken == handed  # everything handed over reached its owner
    assert outcome.fake_stats["callbacks_failed"] == 0
    assert len(outcome.delays) == handed  # each seen by its owner's receiver


async def in_process_stores() -> tuple[SlotStore, SlotStore]:
    store = InProcessSlotStore(max_capacity=20, initial_capacity=20)
    return store, store


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port."""
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with running_redis(tmp_path) as server:
        yield server


async def test_misrouted_callbacks_reach_their_owner_in_process() -> None:
    """One in-process store, two batches: every misrouted callback is handed to its owner."""
    stores = await in_process_stores()
    check(await run_two_workers(stores))


async def test_misrouted_callbacks_reach_their_owner_through_redis(redis: RedisServer) -> None:
    """Two Redis connections (two workers), one account: callbacks go through the mailbox."""
    options: dict[str, Any] = {"max_capacity": 20, "initial_capacity": 20, "recount_grace": 0}
    first = await open_store(redis.url, account_key="acct", **options)
    second = await open_store(redis.url, account_key="acct", **options)
    try:
        check(await run_two_workers((first, second)))
    finally:
        await first.aclose()
        await second.aclose()


async def test_without_a_claim_the_callback_is_answered_for_redelivery() -> None:
    """A store that knows no owner: 503 with Retry-After, nothing is handed over."""
    store = InProcessSlotStore()
    receiver = CallbackReceiver(secret=SECRET)
    receiver.subscribe(lambda event: False)  # a batch that does not know the task
    receiver.relay_through(store)
    body = json.dumps({"task_id": "t-x", "task_status": "succeed"}).encode()
    async with receiver.serve() as url, aiohttp.ClientSession() as http:
        headers = signed_headers(SECRET, "m-1", body)
        async with http.post(url, data=body, headers=headers) as answer:
            assert answer.status == 503
            assert answer.headers["Retry-After"] == "5"
    assert receiver.handed_over == 0
    assert receiver.unclaimed == 1


async def test_a_handed_over_body_is_verified_again_by_its_owner() -> None:
    """The owner checks the signature itself: a forged relay is refused, a signed one passes."""
    body = json.dumps({"task_id": "t-1", "task_status": "processing"}).encode()
    owner = CallbackReceiver(secret=SECRET)
    seen: list[CallbackEvent] = []
    owner.subscribe(seen.append)
    forged = pack_relay(signed_headers(OTHER_SECRET, "m-1", body), body, "text2video")
    assert owner.take_over(forged) is False
    assert owner.rejected == 1
    assert seen == []
    genuine = pack_relay(signed_headers(SECRET, "m-2", body), body, "text2video")
    assert owner.take_over(genuine) is True
    assert [event.verified for event in seen] == [True]


async def test_an_unsigned_callback_stays_unverified_after_a_hand_over() -> None:
    """A receiver without a secret relays a hint; its owner (also unsigned) keeps it a hint."""
    body = json.dumps({"task_id": "t-1", "task_status": "succeed"}).encode()
    owner = CallbackReceiver()
    seen: list[CallbackEvent] = []
    owner.subscribe(seen.append)
    assert owner.take_over(pack_relay({}, body, None))
    assert [event.verified for event in seen] == [False]


def test_a_relay_payload_round_trips_byte_for_byte() -> None:
    """The raw body (what the signature covers) and the webhook headers survive the store."""
    body = b'{"task_id": "t-1",\n "task_status": "succeed"}\n'
    headers = {**signed_headers(SECRET, "m-1", body), "Authorization": "Bearer nope"}
    kept, raw, endpoint = unpack_relay(pack_relay(headers, body, "text2video"))
    assert raw == body
    assert endpoint == "text2video"
    assert "Authorization" not in kept
    assert set(kept) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    with pytest.raises(ValueError, match="handed-over"):
        unpack_relay(b"not a relay")
