"""Task life, units, figures, batch queries and callbacks of the fake gateway."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kling_async._webhooks import verify
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway

PREFIX = "/v1/ai/test-endpoint/kling"
AUTH = {"Authorization": "Bearer test-key"}
T2V = "videos/text2video"
TURBO = "videos/text-to-video/kling-3.0-turbo"
SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="


class Api:
    """Raw JSON calls to one fake."""

    def __init__(self, fake: FakeGateway, http: aiohttp.ClientSession) -> None:
        self.fake = fake
        self.http = http

    async def post(self, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        url = f"{self.fake.url}{PREFIX}/{path}"
        async with self.http.post(url, json=body, headers=AUTH) as response:
            assert response.status == status, await response.text()
            result: dict[str, Any] = await response.json()
            return result

    async def get(self, path: str, status: int = 200) -> dict[str, Any]:
        url = path if path.startswith("http") else f"{self.fake.url}{PREFIX}/{path}"
        async with self.http.get(url, headers=AUTH) as response:
            assert response.status == status, await response.text()
            result: dict[str, Any] = await response.json()
            return result


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def api(http: aiohttp.ClientSession) -> AsyncIterator[Api]:
    # Real-scale lives (minutes): a task changes only when a test moves the clock with
    # advance(), never because a busy machine let real time pass between two steps.
    async with run_fake_gateway(FakeConfig(time_scale=1.0)) as fake:
        yield Api(fake, http)


def _to(fake: FakeGateway, moment: float) -> None:
    """Move the fake's clock to ``moment`` (no-op when it is already past)."""
    fake.advance(max(0.0, moment - fake.now()))


# --- task life ---------------------------------------------------------------------------


async def test_status_goes_submitted_processing_succeed(api: Api) -> None:
    """A task is submitted, then processing, then succeed, as its timestamps say."""
    created = await api.post(T2V, {"prompt": "x", "external_task_id": "life"})
    assert created["data"]["task_status"] == "submitted"
    record = api.fake.task_records()[0]
    assert record["created"] < record["started"] < record["completes_at"]
    assert (await api.get(f"{T2V}/life"))["data"]["task_status"] == "submitted"
    _to(api.fake, (record["started"] + record["completes_at"]) / 2)
    middle = await api.get(f"{T2V}/life")
    assert middle["data"]["task_status"] == "processing"
    assert middle["data"]["updated_at"] > middle["data"]["created_at"]
    _to(api.fake, record["completes_at"])
    done = await api.get(f"{T2V}/{record['task_id']}")
    assert done["data"]["task_status"] == "succeed"
    assert done["data"]["task_info"]["external_task_id"] == "life"
    assert api.fake.stats()["tasks_by_status"] == {
        "submitted": 0,
        "processing": 0,
        "succeed": 1,
        "failed": 0,
    }


async def test_lives_follow_the_configured_distribution(http: aiohttp.ClientSession) -> None:
    """With sigma 0 a life is exactly median x factor x time_scale; the queue is its first tenth."""
    config = FakeConfig(time_scale=0.01, video_sigma=0.0, image_sigma=0.0, audio_sigma=0.0)
    async with run_fake_gateway(config) as fake:
        api = Api(fake, http)
        await api.post(T2V, {"prompt": "x"})
        await api.post(T2V, {"prompt": "x", "mode": "pro", "duration": "10"})
        await api.post("images/generations", {"prompt": "x", "n": 3})
        await api.post("audio/text-to-audio", {"prompt": "x", "duration": 5})
        records = fake.task_records()
    lives = [r["duration_s"] for r in records]
    expected = [1.0, math.sqrt(2) * 1.25, 0.2 * 1.2, 0.15]
    assert lives == pytest.approx(expected)
    first = records[0]
    assert first["started"] - first["created"] == pytest.approx(0.1)


async def test_lives_are_seeded_and_log_normal(http: aiohttp.ClientSession) -> None:
    """Same seed, same lives; their log-median sits near the configured median."""
    runs = []
    for _ in range(2):
        async with run_fake_gateway(time_scale=0.001, seed=3) as fake:
            api = Api(fake, http)
            for _ in range(60):
                await api.post(T2V, {"prompt": "x"})
            runs.append([r["duration_s"] for r in fake.task_records()])
    assert runs[0] == runs[1]
    median = sorted(runs[0])[30]
    assert 0.07 < median < 0.14  # 100 s x 0.001, sigma 0.25


async def test_failed_tasks_carry_a_message_and_no_units(http: aiohttp.ClientSession) -> None:
    """With fail_rate 1 every task fails with a message, "0" units and turbo status failed."""
    async with run_fake_gateway(time_scale=0.001, fail_rate=1.0, fail_message="boom") as fake:
        api = Api(fake, http)
        classic = await api.post(T2V, {"prompt": "x"})
        turbo = await api.post(TURBO, {"prompt": "x"})
        fake.advance(10_000.0)
        done = await api.get(f"{T2V}/{classic['data']['task_id']}")
        batch = await api.get(f"tasks?task_ids={turbo['data']['id']}")
        stats = fake.stats()
    assert done["data"]["task_status"] == "failed"
    assert done["data"]["task_status_msg"] == "boom"
    assert done["data"]["final_unit_deduction"] == "0"
    item = batch["data"][0]
    assert (item["status"], item["message"], item["outputs"], item["billing"]) == (
        "failed",
        "boom",
        [],
        [],
    )
    assert stats["tasks_by_status"]["failed"] == 2
    assert stats["units_charged"] == 0


@pytest.mark.parametrize(
    ("path", "body", "units"),
    [
        (T2V, {"prompt": "x"}, "3"),
        (T2V, {"prompt": "x", "mode": "pro", "sound": "on", "duration": "5"}, "6"),
        (T2V, {"prompt": "x", "mode": "4k", "duration": "10"}, "20"),
        (
            "videos/omni-video",
            {"prompt": "x", "mode": "pro", "duration": 5, "aspect_ratio": "1:1"},
            "5",
        ),
        ("images/generations", {"prompt": "x", "n": "9", "resolution": "2k"}, "4.5"),
        ("images/omni-image", {"prompt": "x", "result_type": "series", "series_amount": 3}, "0.75"),
        ("audio/text-to-audio", {"prompt": "x", "duration": 3}, "0.25"),
        ("videos/avatar/image2video", {"image": "https://e/i.png", "audio_id": "a"}, "3"),
    ],
)
async def test_units_follow_mode_duration_and_count(
    api: Api, path: str, body: dict[str, Any], units: str
) -> None:
    """final_unit_deduction follows the documented rule (pro 5 s with sound: 6, as in seed 000)."""
    created = await api.post(path, body)
    api.fake.advance(10_000.0)
    done = await api.get(f"{path}/{created['data']['task_id']}")
    assert done["data"]["final_unit_deduction"] == units
    assert api.fake.stats()["units_charged"] == float(units)


async def test_turbo_billing_and_outputs(api: Api) -> None:
    """A turbo task reports billing[].amount as a string and a video output."""
    created = await api.post(
        TURBO, {"prompt": "x", "settings": {"resolution": "720p", "duration": 10}}
    )
    api.fake.advance(10_000.0)
    item = (await api.get(f"tasks?task_ids={created['data']['id']}"))["data"][0]
    assert item["billing"] == [{"amount": "6", "charge_type": "unit", "package_type": "video"}]
    assert item["outputs"][0]["type"] == "video"
    assert item["outputs"][0]["duration"] == "10.041"


# --- queries -----------------------------------------------------------------------------------


async def test_batch_query_answers_many_ids_at_once(api: Api) -> None:
    """GET tasks takes task ids and external ids together; unknown and classic ids are absent."""
    first = await api.post(TURBO, {"prompt": "a"})
    second = await api.post(
        "videos/image-to-video/kling-3.0-turbo",
        {
            "contents": [{"type": "first_frame", "url": "https://e/i.png"}],
            "options": {"external_task_id": "ext-2"},
        },
    )
    classic = await api.post(T2V, {"prompt": "c"})
    ids = f"{first['data']['id']},{classic['data']['task_id']},404404"
    reply = await api.get(f"tasks?task_ids={ids}&external_task_ids=ext-2,{first['data']['id']}")
    got = [item["id"] for item in reply["data"]]
    assert got == [first["data"]["id"], second["data"]["id"]]
    assert reply["data"][1]["external_id"] == "ext-2"
    stats = api.fake.stats()
    assert (stats["batch_queries"], stats["batch_query_ids"]) == (1, 5)


async def test_batch_query_needs_an_id(api: Api) -> None:
    """GET tasks without any id is 400/1201."""
    reply = await api.get("tasks?task_ids=&external_task_ids=", status=400)
    assert reply["code"] == 1201


async def test_query_by_task_id_and_external_id_agree(api: Api) -> None:
    """A classic task answers the same under its task id and its external id."""
    created = await api.post("images/generations", {"prompt": "x", "external_task_id": "img-ü.1"})
    api.fake.advance(10_000.0)
    by_id = await api.get(f"images/generations/{created['data']['task_id']}")
    by_external = await api.get("images/generations/img-%C3%BC.1")
    assert by_id["data"] == by_external["data"]
    assert api.fake.task_records()[0]["queries"] == 2


async def test_video_extend_and_lip_sync_refer_to_earlier_outputs(api: Api) -> None:
    """video-extend and lip-sync name their source in task_info.parent_video."""
    video = await api.post(T2V, {"prompt": "x", "duration": "10"})
    api.fake.advance(10_000.0)
    done = await api.get(f"{T2V}/{video['data']['task_id']}")
    source = done["data"]["task_result"]["videos"][0]
    extend = await api.post("videos/video-extend", {"video_id": source["id"]})
    face = await api.post("videos/identify-face", {"video_id": source["id"]})
    assert face["data"]["face_data"][0]["end_time"] == 10041
    choice = {"face_id": "0", "sound_file": "https://e/a.mp3", "sound_start_time": 0,
              "sound_end_time": 12000, "sound_insert_time": 0}  # fmt: skip
    lip = await api.post(
        "videos/advanced-lip-sync",
        {"session_id": face["data"]["session_id"], "face_choose": [choice]},
    )
    api.fake.advance(10_000.0)
    extended = await api.get(f"videos/video-extend/{extend['data']['task_id']}")
    synced = await api.get(f"videos/advanced-lip-sync/{lip['data']['task_id']}")
    assert extended["data"]["task_info"]["parent_video"]["id"] == source["id"]
    assert extended["data"]["task_result"]["videos"][0]["duration"] == "14.541"
    assert synced["data"]["task_info"]["parent_video"]["id"] == source["id"]
    assert synced["data"]["final_unit_deduction"] == "1.5"
    second = await api.post(
        "videos/video-extend", {"video_id": extended["data"]["task_result"]["videos"][0]["id"]}
    )
    assert second["code"] == 0


# --- figures -----------------------------------------------------------------------------------


async def test_stats_count_everything(api: Api) -> None:
    """Every figure counts what happened, in process and over HTTP alike."""
    for family, body in [
        (T2V, {"prompt": "a"}),
        (T2V, {"prompt": "b", "external_task_id": "e"}),
        ("images/generations", {"prompt": "c"}),
        (TURBO, {"prompt": "d"}),
    ]:
        await api.post(family, body)
    await api.post(T2V, {"prompt": "b", "external_task_id": "e"}, status=400)
    await api.get(f"{T2V}/e")
    await api.get(f"{T2V}/nope", status=404)
    await api.get("tasks?task_ids=1")
    stats = api.fake.stats()
    over_http = await api.get(f"{api.fake.url}/__fake__/stats")
    assert over_http == stats
    assert stats["creates"] == 4
    assert stats["create_requests"] == 5
    assert stats["duplicate_external_ids"] == 1
    assert stats["creates_by_family"]["text2video"] == 2
    assert stats["creates_by_family"]["image-generation"] == 1
    assert stats["creates_by_family"]["turbo-text2video"] == 1
    assert (stats["queries"], stats["batch_queries"], stats["not_found"]) == (2, 1, 1)
    assert stats["api_requests"] == 8
    assert stats["max_running_observed"] == 4
    by_status = stats["tasks_by_status"]
    assert by_status["submitted"] + by_status["processing"] + by_status["succeed"] == 4
    for key in (
        "rate_limited",
        "concurrency_limited",
        "faults_injected",
        "units_charged",
        "requests_total",
        "media_requests",
        "callbacks_sent",
    ):
        assert key in stats


async def test_max_running_observed_counts_unfinished_tasks(api: Api) -> None:
    """max_running_observed is the most unfinished tasks at once, not the total."""
    await api.post(T2V, {"prompt": "a"})
    await api.post(T2V, {"prompt": "b"})
    api.fake.advance(10_000.0)
    await api.post(T2V, {"prompt": "c"})
    stats = api.fake.stats()
    assert (stats["creates"], stats["max_running_observed"], stats["running"]) == (3, 2, 1)


async def test_task_records_report_completion_and_first_sighting(api: Api) -> None:
    """task_records gives each task's times; the first terminal answer sets its sighting."""
    created = await api.post(T2V, {"prompt": "x", "external_task_id": "rec"})
    record = api.fake.task_records()[0]
    assert record["task_id"] == created["data"]["task_id"]
    assert record["external_task_id"] == "rec"
    assert record["family"] == "text2video"
    assert record["first_terminal_seen_at"] is None
    assert record["duration_s"] == pytest.approx(record["completes_at"] - record["created"])
    await api.get(f"{T2V}/rec")
    assert api.fake.task_records()[0]["first_terminal_seen_at"] is None
    _to(api.fake, record["completes_at"] + 1.0)
    await api.get(f"{T2V}/rec")
    seen = api.fake.task_records()[0]["first_terminal_seen_at"]
    assert seen is not None
    assert seen >= record["completes_at"]
    await api.get(f"{T2V}/rec")
    again = api.fake.task_records()[0]
    assert (again["first_terminal_seen_at"], again["queries"], again["status"]) == (
        seen,
        3,
        "succeed",
    )
    over_http = await api.get(f"{api.fake.url}/__fake__/tasks")
    assert over_http["tasks"][0]["task_id"] == record["task_id"]


async def test_reset_forgets_everything_and_repeats_ids(
    api: Api, http: aiohttp.ClientSession
) -> None:
    """Reset (in process or over HTTP) clears tasks and figures and restarts the seeded ids."""
    first = await api.post(T2V, {"prompt": "x", "external_task_id": "r"})
    api.fake.inject("http_500")
    api.fake.reset()
    assert api.fake.stats()["creates"] == 0
    await api.get(f"{T2V}/r", status=404)
    again = await api.post(T2V, {"prompt": "x", "external_task_id": "r"})  # no fault, no duplicate
    assert again["data"]["task_id"] == first["data"]["task_id"]
    async with http.post(f"{api.fake.url}/__fake__/reset") as response:
        assert await response.json() == {"ok": True}
    assert api.fake.stats()["creates"] == 0
    assert api.fake.task_records() == []


# --- callbacks ----------------------------------------------------------------------------------


class Receiver:
    """A loopback callback endpoint that records what arrives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()
        self.expected = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        if len(self.received) >= self.expected:
            self.arrived.set()
        return web.Response(text="ok")

    async def wait_for(self, count: int) -> None:
        self.expected = count
        if len(self.received) >= count:
            return
        self.arrived.clear()
        await asyncio.wait_for(self.arrived.wait(), 20)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    sink = Receiver()
    app = web.Application()
    app.router.add_post("/hook", sink.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sink.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield sink
    finally:
        await runner.cleanup()


async def test_callbacks_arrive_signed_on_every_status_change(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """A classic task POSTs its task object on submitted, processing and succeed, each signed."""
    async with run_fake_gateway(time_scale=0.001, webhook_secret=SECRET) as fake:
        api = Api(fake, http)
        await api.post(T2V, {"prompt": "x", "callback_url": receiver.url, "external_task_id": "cb"})
        await receiver.wait_for(1)
        fake.advance(10_000.0)
        await receiver.wait_for(3)
        stats = fake.stats()
    statuses = set()
    for headers, body in receiver.received:
        verify(SECRET, headers, body)
        task = json.loads(body)
        assert "code" not in task  # the task object itself, not the envelope
        assert task["task_info"]["external_task_id"] == "cb"
        statuses.add(task["task_status"])
    assert statuses == {"submitted", "processing", "succeed"}
    assert len({headers["webhook-id"] for headers, _ in receiver.received}) == 3
    assert stats["callbacks_sent"] == 3


async def test_turbo_callbacks_use_options_callback_url(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """A turbo task's options.callback_url gets turbo-shaped bodies, unsigned without a secret."""
    async with run_fake_gateway(time_scale=0.001) as fake:
        api = Api(fake, http)
        await api.post(TURBO, {"prompt": "x", "options": {"callback_url": receiver.url}})
        fake.advance(10_000.0)
        await receiver.wait_for(3)
    bodies = [json.loads(body) for _, body in receiver.received]
    assert {b["status"] for b in bodies} == {"submitted", "processing", "succeeded"}
    assert all("webhook-signature" not in headers for headers, _ in receiver.received)
    final = next(b for b in bodies if b["status"] == "succeeded")
    assert final["billing"][0]["amount"]


async def test_callbacks_never_leave_loopback(api: Api) -> None:
    """A callback URL outside callback_hosts is skipped and counted, never called."""
    await api.post(T2V, {"prompt": "x", "callback_url": "http://example.invalid/hook"})
    api.fake.advance(10_000.0)
    stats = api.fake.stats()
    assert (stats["callbacks_skipped"], stats["callbacks_sent"]) == (3, 0)


class _HangUp(asyncio.Protocol):
    """Accepts a connection and closes it at once, answering nothing."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


async def test_undeliverable_callback_is_counted_as_failed(http: aiohttp.ClientSession) -> None:
    """A callback whose receiver hangs up is counted as failed, and the task still completes."""
    loop = asyncio.get_running_loop()
    rude = await loop.create_server(_HangUp, "127.0.0.1", 0)
    port = rude.sockets[0].getsockname()[1]
    try:
        async with run_fake_gateway(time_scale=0.001) as fake:
            api = Api(fake, http)
            url = f"http://127.0.0.1:{port}/hook"
            created = await api.post(T2V, {"prompt": "x", "callback_url": url})
            fake.advance(10_000.0)
            for _ in range(500):
                if fake.stats()["callbacks_failed"] == 3:
                    break
                await asyncio.sleep(0.01)
            done = await api.get(f"{T2V}/{created['data']['task_id']}")
            stats = fake.stats()
    finally:
        rude.close()
        await rude.wait_closed()
    assert (stats["callbacks_failed"], stats["callbacks_sent"]) == (3, 0)
    assert done["data"]["task_status"] == "succeed"


async def test_callbacks_are_delivered_on_the_real_clock(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    """Without advance(), the delivery loop wakes by itself when each change is due."""
    async with run_fake_gateway(time_scale=0.0005) as fake:
        api = Api(fake, http)
        await api.post(
            "audio/text-to-audio", {"prompt": "x", "duration": 3, "callback_url": receiver.url}
        )
        await receiver.wait_for(3)
    final = json.loads(receiver.received[-1][1])
    assert final["task_status"] == "succeed"
