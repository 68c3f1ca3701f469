"""Errors, quotas and injected faults of the fake gateway: each gives its documented answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway

PREFIX = "/v1/ai/test-endpoint/kling"
AUTH = {"Authorization": "Bearer test-key"}
T2V = "videos/text2video"
TURBO = "videos/text-to-video/kling-3.0-turbo"


class Reply:
    """Status, headers and decoded body of one response."""

    def __init__(self, status: int, headers: Any, body: Any, text: str) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.text = text

    @property
    def code(self) -> Any:
        return self.body.get("code") if isinstance(self.body, dict) else None


async def call(
    http: aiohttp.ClientSession,
    fake: FakeGateway,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Reply:
    """One request under the API prefix (``path`` may also be absolute)."""
    url = f"{fake.url}{path}" if path.startswith("/") else f"{fake.url}{PREFIX}/{path}"
    async with http.request(
        method, url, headers=AUTH if headers is None else headers, **kwargs
    ) as r:
        text = await r.text()
        try:
            body: Any = await r.json(content_type=None)
        except ValueError:
            body = None
        return Reply(r.status, r.headers, body, text)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fake() -> AsyncIterator[FakeGateway]:
    # Real-scale lives (minutes): a task ends only when a test calls advance(), never
    # because a busy machine let real time pass between two steps.
    async with run_fake_gateway(FakeConfig(time_scale=1.0)) as gateway:
        yield gateway


# --- authentication and routing --------------------------------------------------------


async def test_missing_key_is_401_code_1001(http: aiohttp.ClientSession, fake: FakeGateway) -> None:
    """No Authorization header: HTTP 401 with code 1001 (authentication empty)."""
    reply = await call(http, fake, "POST", T2V, headers={}, json={"prompt": "x"})
    assert (reply.status, reply.code) == (401, 1001)
    assert reply.body["request_id"]
    assert fake.stats()["auth_failures"] == 1
    assert fake.stats()["creates"] == 0


async def test_wrong_key_is_401_code_1002(http: aiohttp.ClientSession, fake: FakeGateway) -> None:
    """A wrong bearer key: HTTP 401 with code 1002, and the key is not echoed."""
    headers = {"Authorization": "Bearer not-the-key"}
    reply = await call(http, fake, "GET", f"{T2V}/1", headers=headers)
    assert (reply.status, reply.code) == (401, 1002)
    assert "not-the-key" not in reply.text


async def test_wrong_endpoint_path_is_404_code_1202(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """A path under another endpoint path segment: HTTP 404 with code 1202."""
    reply = await call(http, fake, "POST", f"/v1/ai/other/kling/{T2V}", json={"prompt": "x"})
    assert (reply.status, reply.code) == (404, 1202)
    assert "other" not in reply.body["message"]


async def test_unknown_method_is_404_code_1202(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """An unknown path, or a create path used with GET, is 404 with code 1202."""
    assert (await call(http, fake, "POST", "videos/nothing", json={})).code == 1202
    assert (await call(http, fake, "GET", T2V)).code == 1202
    assert (await call(http, fake, "GET", f"{TURBO}/1")).code == 1202
    assert (await call(http, fake, "GET", "/elsewhere")).status == 404


async def test_unknown_task_is_404_code_1203(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """A query for a task that does not exist: HTTP 404 with code 1203."""
    reply = await call(http, fake, "GET", f"{T2V}/868000000000000000")
    assert (reply.status, reply.code) == (404, 1203)
    assert fake.stats()["not_found"] == 1


async def test_task_of_another_family_is_not_found(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """A text-to-video task is not visible under the image-to-video query path."""
    created = await call(http, fake, "POST", T2V, json={"prompt": "x"})
    task_id = created.body["data"]["task_id"]
    assert (await call(http, fake, "GET", f"videos/image2video/{task_id}")).code == 1203


async def test_task_of_another_key_is_not_found() -> None:
    """Keys are separate accounts: one key cannot see another key's task."""
    async with (
        run_fake_gateway(time_scale=1.0, extra_api_keys=("second",)) as fake,
        aiohttp.ClientSession() as http,
    ):
        created = await call(http, fake, "POST", T2V, json={"prompt": "x"})
        task_id = created.body["data"]["task_id"]
        other = {"Authorization": "Bearer second"}
        reply = await call(http, fake, "GET", f"{T2V}/{task_id}", headers=other)
    assert reply.code == 1203


# --- bodies and rules --------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
async def test_unparseable_body_is_400_code_1200(
    http: aiohttp.ClientSession, fake: FakeGateway, body: bytes
) -> None:
    """A body that is not a JSON object: HTTP 400 with code 1200; nothing created."""
    reply = await call(http, fake, "POST", T2V, data=body)
    assert (reply.status, reply.code) == (400, 1200)
    assert fake.stats()["creates"] == 0
    assert fake.stats()["create_requests"] == 1


async def test_rule_violation_is_400_code_1201_naming_the_field(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """A documented rule broken: HTTP 400, code 1201, the message names the field."""
    reply = await call(http, fake, "POST", T2V, json={"prompt": "x", "mode": "ultra"})
    assert (reply.status, reply.code) == (400, 1201)
    assert "mode" in reply.body["message"]
    reply = await call(
        http, fake, "POST", "audio/text-to-audio", json={"prompt": "x" * 201, "duration": 3}
    )
    assert reply.code == 1201
    assert "prompt" in reply.body["message"]
    assert fake.stats()["invalid_requests"] == 2
    assert fake.stats()["creates"] == 0


async def test_duplicate_external_id_is_refused_and_counted(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """A second create with the same external_task_id is 400/1201 and counted."""
    body = {"prompt": "x", "external_task_id": "job-1"}
    assert (await call(http, fake, "POST", T2V, json=body)).status == 200
    reply = await call(
        http, fake, "POST", "videos/image2video", json={**body, "image": "https://e/i.png"}
    )
    assert (reply.status, reply.code) == (400, 1201)
    assert "already exists" in reply.body["message"]
    turbo = {"prompt": "x", "options": {"external_task_id": "job-1"}}
    assert (await call(http, fake, "POST", TURBO, json=turbo)).code == 1201
    stats = fake.stats()
    assert (stats["creates"], stats["create_requests"], stats["duplicate_external_ids"]) == (
        1,
        3,
        2,
    )


async def test_same_external_id_under_two_keys_is_allowed() -> None:
    """External ids are unique per key, not across keys."""
    async with (
        run_fake_gateway(time_scale=1.0, extra_api_keys=("second",)) as fake,
        aiohttp.ClientSession() as http,
    ):
        body = {"prompt": "x", "external_task_id": "shared"}
        first = await call(http, fake, "POST", T2V, json=body)
        second = await call(
            http, fake, "POST", T2V, json=body, headers={"Authorization": "Bearer second"}
        )
    assert (first.status, second.status) == (200, 200)
    assert fake.stats()["duplicate_external_ids"] == 0


async def test_video_extend_needs_a_known_video(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """video-extend of a video this fake never produced is 400/1201 naming video_id."""
    reply = await call(http, fake, "POST", "videos/video-extend", json={"video_id": "123"})
    assert reply.code == 1201
    assert "video_id" in reply.body["message"]


async def test_video_extend_refuses_unfinished_video(http: aiohttp.ClientSession) -> None:
    """A video id of a task that has not succeeded yet cannot be extended."""
    # Ids are seeded: the same create on two fakes yields the same task and video ids.
    async with run_fake_gateway(time_scale=1.0) as finished:
        created = await call(http, finished, "POST", T2V, json={"prompt": "x"})
        finished.advance(10_000.0)
        done = await call(http, finished, "GET", f"{T2V}/{created.body['data']['task_id']}")
        video_id = done.body["data"]["task_result"]["videos"][0]["id"]
        ok = await call(http, finished, "POST", "videos/video-extend", json={"video_id": video_id})
        assert ok.code == 0
    async with run_fake_gateway(time_scale=1.0) as running:
        await call(http, running, "POST", T2V, json={"prompt": "x"})
        early = await call(
            http, running, "POST", "videos/video-extend", json={"video_id": video_id}
        )
    assert early.code == 1201


async def test_lip_sync_needs_a_known_session_and_face(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """lip-sync with an unknown session_id, or a face not in the session, is 400/1201."""
    choice = {"face_id": "0", "audio_id": "a1", "sound_start_time": 0, "sound_end_time": 3000,
              "sound_insert_time": 0}  # fmt: skip
    reply = await call(
        http,
        fake,
        "POST",
        "videos/advanced-lip-sync",
        json={"session_id": "42", "face_choose": [choice]},
    )
    assert reply.code == 1201
    assert "session_id" in reply.body["message"]
    face = await call(
        http, fake, "POST", "videos/identify-face", json={"video_url": "https://e/v.mp4"}
    )
    session_id = face.body["data"]["session_id"]
    wrong = {**choice, "face_id": "7"}
    reply = await call(
        http,
        fake,
        "POST",
        "videos/advanced-lip-sync",
        json={"session_id": session_id, "face_choose": [wrong]},
    )
    assert reply.code == 1201
    assert "face_choose[0].face_id" in reply.body["message"]


async def test_identify_face_needs_a_known_video(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """identify-face by an unknown video_id is 400/1201; by any video_url it answers."""
    reply = await call(http, fake, "POST", "videos/identify-face", json={"video_id": "999"})
    assert reply.code == 1201
    reply = await call(
        http, fake, "POST", "videos/identify-face", json={"video_url": "https://e/v.mp4"}
    )
    assert reply.code == 0
    assert reply.body["data"]["face_data"][0]["face_id"] == "0"


# --- quotas --------------------------------------------------------------------------------


async def test_concurrency_quota_is_429_code_1303_until_a_task_ends(
    http: aiohttp.ClientSession,
) -> None:
    """Beyond max_running unfinished tasks a create gets 429/1303; it passes once one ends."""
    async with run_fake_gateway(time_scale=1.0, max_running=2) as fake:
        for _ in range(2):
            assert (await call(http, fake, "POST", T2V, json={"prompt": "x"})).status == 200
        refused = await call(http, fake, "POST", T2V, json={"prompt": "x"})
        assert (refused.status, refused.code) == (429, 1303)
        fake.advance(10_000.0)
        assert (await call(http, fake, "POST", T2V, json={"prompt": "x"})).status == 200
        stats = fake.stats()
    assert stats["concurrency_limited"] == 1
    assert stats["creates"] == 3
    assert stats["create_requests"] == 4
    assert stats["max_running_observed"] == 2


async def test_image_tasks_take_one_slot_per_image(http: aiohttp.ClientSession) -> None:
    """An image task holds n slots: n=4 does not fit a quota of 3, n=3 does."""
    async with run_fake_gateway(time_scale=1.0, max_running=3) as fake:
        too_many = await call(
            http, fake, "POST", "images/generations", json={"prompt": "x", "n": 4}
        )
        fits = await call(http, fake, "POST", "images/generations", json={"prompt": "x", "n": "3"})
        stats = fake.stats()
    assert too_many.code == 1303
    assert fits.code == 0
    assert (stats["max_running_observed"], stats["max_slots_observed"]) == (1, 3)


async def test_rate_limit_is_429_code_1302_with_retry_after(http: aiohttp.ClientSession) -> None:
    """Beyond max_rps a request gets 429/1302 with a Retry-After header; queries count too."""
    async with run_fake_gateway(time_scale=1.0, max_rps=0.01) as fake:
        first = await call(http, fake, "POST", T2V, json={"prompt": "x"})
        second = await call(http, fake, "GET", f"{T2V}/{first.body['data']['task_id']}")
        stats = fake.stats()
    assert first.status == 200
    assert (second.status, second.code) == (429, 1302)
    assert int(second.headers["Retry-After"]) >= 1
    assert stats["rate_limited"] == 1


# --- injected faults -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "code", "stored"),
    [
        ("http_500", 500, 5000, False),
        ("http_503", 503, 5001, False),
        ("http_504", 504, 5002, True),
        ("rate_limit", 429, 1302, False),
        ("concurrency_limit", 429, 1303, False),
    ],
)
async def test_injected_error_answers(
    http: aiohttp.ClientSession,
    fake: FakeGateway,
    fault: str,
    status: int,
    code: int,
    stored: bool,
) -> None:
    """Each injected error answer has its status and code; 504 comes after the task is stored."""
    fake.inject(fault)
    body = {"prompt": "x", "external_task_id": f"ext-{fault}"}
    reply = await call(http, fake, "POST", T2V, json=body)
    assert (reply.status, reply.code) == (status, code)
    assert ("Retry-After" in reply.headers) is (code == 1302)
    lookup = await call(http, fake, "GET", f"{T2V}/ext-{fault}")
    assert (lookup.status == 200) is stored
    assert fake.stats()["faults_injected"] == 1
    assert fake.stats()["faults_by_kind"] == {fault: 1}
    again = await call(http, fake, "POST", T2V, json={"prompt": "y"})
    assert again.status == 200


async def test_drop_before_store_closes_connection_and_stores_nothing(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """drop_before_store: the client sees a disconnect and no task exists."""
    fake.inject("drop_before_store")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(http, fake, "POST", T2V, json={"prompt": "x", "external_task_id": "d1"})
    assert (await call(http, fake, "GET", f"{T2V}/d1")).code == 1203
    assert fake.stats()["creates"] == 0


async def test_drop_after_store_closes_connection_but_task_exists(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """drop_after_store: the client sees a disconnect, yet the task was created."""
    fake.inject("drop_after_store", count=1, on="create")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(http, fake, "POST", T2V, json={"prompt": "x", "external_task_id": "d2"})
    found = await call(http, fake, "GET", f"{T2V}/d2")
    assert found.code == 0
    assert found.body["data"]["task_info"]["external_task_id"] == "d2"
    assert fake.stats()["creates"] == 1


async def test_truncated_body_breaks_the_payload(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """truncated: headers promise more bytes than arrive; the task is stored."""
    fake.inject("truncated")
    with pytest.raises(aiohttp.ClientPayloadError):
        await call(http, fake, "POST", T2V, json={"prompt": "x", "external_task_id": "t1"})
    assert (await call(http, fake, "GET", f"{T2V}/t1")).code == 0


async def test_html_body_with_status_200(http: aiohttp.ClientSession, fake: FakeGateway) -> None:
    """html: HTTP 200 with an HTML error page instead of the envelope; the task is stored."""
    fake.inject("html")
    reply = await call(http, fake, "POST", T2V, json={"prompt": "x", "external_task_id": "h1"})
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.text.startswith("<html>")
    assert (await call(http, fake, "GET", f"{T2V}/h1")).code == 0


async def test_slow_fault_still_answers(http: aiohttp.ClientSession) -> None:
    """slow: the answer is late but normal, and the fault is counted."""
    async with run_fake_gateway(time_scale=1.0, slow_latency=0.01) as fake:
        fake.inject("slow", on="query")
        created = await call(http, fake, "POST", T2V, json={"prompt": "x"})
        reply = await call(http, fake, "GET", f"{T2V}/{created.body['data']['task_id']}")
        stats = fake.stats()
    assert reply.code == 0
    assert stats["faults_by_kind"] == {"slow": 1}


async def test_faults_strike_only_their_scope_and_count(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """A query-scoped fault leaves creates alone; count=2 strikes exactly two queries."""
    fake.inject("http_503", count=2, on="query")
    created = await call(http, fake, "POST", T2V, json={"prompt": "x"})
    assert created.status == 200
    path = f"{T2V}/{created.body['data']['task_id']}"
    statuses = [(await call(http, fake, "GET", path)).status for _ in range(3)]
    assert statuses == [503, 503, 200]


async def test_api_scope_covers_batch_queries(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """A fault injected on "api" strikes the next API request of any kind (here a batch query)."""
    fake.inject("http_500", on="api")
    reply = await call(http, fake, "GET", "tasks?task_ids=1")
    assert reply.code == 5000


async def test_first_terminal_sighting_ignores_spoiled_answers(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """A query answer spoiled by a fault does not count as the client seeing the end."""
    created = await call(http, fake, "POST", T2V, json={"prompt": "x"})
    fake.advance(10_000.0)
    fake.inject("truncated", on="query")
    path = f"{T2V}/{created.body['data']['task_id']}"
    with pytest.raises(aiohttp.ClientPayloadError):
        await call(http, fake, "GET", path)
    assert fake.task_records()[0]["first_terminal_seen_at"] is None
    await call(http, fake, "GET", path)
    assert fake.task_records()[0]["first_terminal_seen_at"] is not None


async def test_random_faults_are_seeded(http: aiohttp.ClientSession) -> None:
    """With the same seed, random faults strike the same requests in the same way."""
    outcomes: list[list[str]] = []
    for _ in range(2):
        config = FakeConfig(
            time_scale=1.0, fault_rate=0.5, seed=7, fault_mix={"http_503": 1.0, "html": 1.0}
        )
        async with run_fake_gateway(config) as fake:
            seen = []
            for i in range(20):
                reply = await call(http, fake, "POST", T2V, json={"prompt": f"p{i}"})
                seen.append("html" if reply.text.startswith("<html>") else str(reply.status))
            outcomes.append(seen)
            assert fake.stats()["faults_injected"] == sum(1 for s in seen if s != "200")
    assert outcomes[0] == outcomes[1]
    assert {"200", "503", "html"} == set(outcomes[0])


async def test_fault_rate_one_strikes_every_api_request(http: aiohttp.ClientSession) -> None:
    """fault_rate=1 spoils every API request but never the introspection endpoints."""
    async with run_fake_gateway(
        time_scale=1.0, fault_rate=1.0, fault_mix={"http_504": 1.0}
    ) as fake:
        replies = [await call(http, fake, "POST", T2V, json={"prompt": "x"}) for _ in range(3)]
        stats = await call(http, fake, "GET", "/__fake__/stats")
    assert [r.code for r in replies] == [5002, 5002, 5002]
    assert stats.body["faults_injected"] == 3
    assert stats.body["creates"] == 3  # 504 comes after the task is stored


def test_inject_rejects_unknown_names() -> None:
    """inject() refuses unknown faults, unknown scopes and counts below one."""
    fake = FakeGateway()
    with pytest.raises(ValueError, match="unknown fault"):
        fake.inject("meteor")
    with pytest.raises(ValueError, match="unknown scope"):
        fake.inject("http_500", on="everything")
    with pytest.raises(ValueError, match="count"):
        fake.inject("http_500", count=0)


def test_config_rejects_out_of_range_values() -> None:
    """FakeConfig validates its fields."""
    with pytest.raises(ValueError, match="fail_rate"):
        FakeConfig(fail_rate=1.5)
    with pytest.raises(ValueError, match="time_scale"):
        FakeConfig(time_scale=0)
    with pytest.raises(ValueError, match="unknown faults"):
        FakeConfig(fault_mix={"meteor": 1.0})
    with pytest.raises(ValueError, match="base64"):
        FakeConfig(webhook_secret="whsec_***")


async def test_lookup_lag_hides_new_tasks_for_a_while(
    http: aiohttp.ClientSession,
) -> None:
    """With lookup_lag a new task is 404/1203, and absent from batch queries, until it passes."""
    async with run_fake_gateway(time_scale=1.0, lookup_lag=30.0) as fake:
        created = await call(
            http, fake, "POST", T2V, json={"prompt": "x", "external_task_id": "lag"}
        )
        turbo = await call(http, fake, "POST", TURBO, json={"prompt": "x"})
        assert created.status == 200
        assert (await call(http, fake, "GET", f"{T2V}/lag")).code == 1203
        hidden = await call(http, fake, "GET", f"tasks?task_ids={turbo.body['data']['id']}")
        assert hidden.body["data"] == []
        again = await call(http, fake, "POST", T2V, json={"prompt": "x", "external_task_id": "lag"})
        assert again.code == 1201  # stored, so still a duplicate
        fake.advance(31.0)
        assert (await call(http, fake, "GET", f"{T2V}/lag")).code == 0
        shown = await call(http, fake, "GET", f"tasks?task_ids={turbo.body['data']['id']}")
        assert len(shown.body["data"]) == 1


async def test_inject_and_advance_over_http(http: aiohttp.ClientSession, fake: FakeGateway) -> None:
    """POST /__fake__/inject and /__fake__/advance drive a standalone fake; bad input is 400."""
    reply = await call(
        http, fake, "POST", "/__fake__/inject", json={"fault": "http_503", "on": "create"}
    )
    assert reply.body == {"ok": True}
    assert (await call(http, fake, "POST", T2V, json={"prompt": "x"})).code == 5001
    created = await call(http, fake, "POST", T2V, json={"prompt": "x"})
    assert (
        await call(http, fake, "POST", "/__fake__/advance", json={"seconds": 9999})
    ).status == 200
    done = await call(http, fake, "GET", f"{T2V}/{created.body['data']['task_id']}")
    assert done.body["data"]["task_status"] == "succeed"
    bad = await call(http, fake, "POST", "/__fake__/inject", json={"fault": "meteor"})
    assert bad.status == 400
    assert (await call(http, fake, "POST", "/__fake__/advance", json={"seconds": -1})).status == 400
