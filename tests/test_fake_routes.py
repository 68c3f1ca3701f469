"""The fake's route table, front-door order, lookup lag and its one clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kling_async._endpoints import ENDPOINTS, TURBO_TASKS_PATH
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway
from kling_async.testing._api import ApiFront
from kling_async.testing._routes import (
    AuthFailure,
    Backend,
    Route,
    bearer_auth,
    gateway_backend,
    gateway_routes,
)
from kling_async.testing._state import FakeState

PREFIX = "/v1/ai/test-endpoint/kling"
AUTH = {"Authorization": "Bearer test-key"}
T2V = "videos/text2video"
TURBO = "videos/text-to-video/kling-3.0-turbo"


async def call(
    http: aiohttp.ClientSession,
    fake: FakeGateway,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    """Status and decoded JSON body of one request (``path`` under the prefix or absolute)."""
    url = f"{fake.url}{path}" if path.startswith("/") else f"{fake.url}{PREFIX}/{path}"
    async with http.request(
        method, url, headers=AUTH if headers is None else headers, **kwargs
    ) as r:
        return r.status, await r.json(content_type=None)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- the route table -------------------------------------------------------------------------


def test_every_endpoint_has_its_rows() -> None:
    """Each family has a create row; classic task families a query row; turbo a list row."""
    rows = {(r.method, r.path): r for r in gateway_routes()}
    for endpoint in ENDPOINTS:
        create = rows[("POST", endpoint.path)]
        assert create.endpoint is endpoint
        assert create.action == ("create" if endpoint.is_task else "face")
        has_query = ("GET", f"{endpoint.path}/{{id}}") in rows
        assert has_query is (endpoint.is_task and not endpoint.is_turbo)
    assert rows[("GET", TURBO_TASKS_PATH)].action == "batch"


def test_resolve_takes_the_id_and_treats_head_as_get() -> None:
    """A query row takes the last segment, percent-decoded; HEAD resolves like GET."""
    backend = gateway_backend("seg", ["k"])
    route, ident = backend.resolve("HEAD", f"{T2V}/ext%2F1") or (None, "")
    assert route is not None
    assert (route.action, ident) == ("query", "ext/1")
    assert backend.resolve("GET", f"{T2V}/") is None
    assert backend.resolve("PUT", T2V) is None
    assert backend.prefix == "/v1/ai/seg/kling/"


def test_a_backend_is_rows_and_refuses_two_rows_for_one_path() -> None:
    """A new backend needs only rows; two rows for one method and path are refused."""
    endpoint = ENDPOINTS[0]
    rows = [Route("POST", "v1/videos/x", "create", endpoint)]
    other = Backend(
        name="other", root="/v1/", prefix="/v1/", routes=rows, authenticate=bearer_auth(["k"])
    )
    assert other.resolve("POST", "v1/videos/x") == (rows[0], "")
    with pytest.raises(ValueError, match="two routes"):
        Backend(
            name="twice",
            root="/",
            prefix="/",
            routes=rows * 2,
            authenticate=bearer_auth(["k"]),
        )
    with pytest.raises(ValueError, match="action"):
        Route("GET", "x", "teleport")


def test_front_refuses_rows_whose_action_has_no_handler() -> None:
    """Wiring a backend whose rows name an unhandled action fails at construction."""
    backend = gateway_backend("seg", ["k"])
    with pytest.raises(ValueError, match="without a handler"):
        ApiFront(FakeState(FakeConfig()), [backend], {})


def test_bearer_auth_tells_empty_from_invalid_and_never_echoes() -> None:
    """Missing credentials are 1001, wrong ones 1002; the message never holds the key."""
    auth = bearer_auth(["good"])
    assert auth("Bearer good") == "good"
    assert auth("bearer   good ") == "good"
    assert auth(None) == AuthFailure(1001, "Authorization is empty")
    assert auth("Bearer ") == AuthFailure(1001, "Authorization is empty")
    wrong = auth("Bearer s3cret-guess")
    assert isinstance(wrong, AuthFailure)
    assert wrong.code == 1002
    assert "s3cret" not in wrong.message


# --- the front door ---------------------------------------------------------------------------


async def test_wrong_settings_answer_as_the_gateway_does(http: aiohttp.ClientSession) -> None:
    """Wrong key: 401/1002 (even on a wrong path); wrong path segment or route: 404/1202."""
    async with run_fake_gateway(time_scale=0.001) as fake:
        bad_key = {"Authorization": "Bearer nope"}
        status, body = await call(http, fake, "POST", T2V, bad_key, json={"prompt": "x"})
        assert (status, body["code"]) == (401, 1002)
        wrong_seg = "/v1/ai/other-endpoint/kling/videos/text2video"
        status, body = await call(http, fake, "POST", wrong_seg, bad_key, json={"prompt": "x"})
        assert (status, body["code"]) == (401, 1002)
        status, body = await call(http, fake, "POST", wrong_seg, json={"prompt": "x"})
        assert (status, body["code"]) == (404, 1202)
        assert "other-endpoint" not in body["message"]
        status, body = await call(http, fake, "POST", "videos/text2vidoe", json={"prompt": "x"})
        assert (status, body["code"]) == (404, 1202)
        status, body = await call(http, fake, "GET", "/somewhere/else")
        assert (status, body["code"]) == (404, 1202)
        stats = fake.stats()
    assert (stats["auth_failures"], stats["not_found"], stats["creates"]) == (2, 2, 0)


# --- lookup lag and external ids -------------------------------------------------------------


async def test_lagging_task_is_hidden_by_external_id_but_its_id_is_taken(
    http: aiohttp.ClientSession,
) -> None:
    """Under lookup lag: 1203 by external id, absent from lists, yet a re-create is 1201 at once."""
    async with run_fake_gateway(time_scale=0.001, lookup_lag=30.0) as fake:
        status, _ = await call(
            http, fake, "POST", T2V, json={"prompt": "x", "external_task_id": "c1"}
        )
        assert status == 200
        turbo = {"prompt": "x", "options": {"external_task_id": "t1"}}
        assert (await call(http, fake, "POST", TURBO, json=turbo))[0] == 200
        status, body = await call(http, fake, "GET", f"{T2V}/c1")
        assert (status, body["code"]) == (404, 1203)
        status, body = await call(http, fake, "GET", "tasks?external_task_ids=t1")
        assert (status, body["data"]) == (200, [])
        status, body = await call(
            http, fake, "POST", T2V, json={"prompt": "y", "external_task_id": "c1"}
        )
        assert (status, body["code"]) == (400, 1201)
        assert "external_task_id already exists" in body["message"]
        status, body = await call(http, fake, "POST", TURBO, json=turbo)
        assert (status, body["code"]) == (400, 1201)
        assert "options.external_task_id" in body["message"]
        stats = fake.stats()
        assert (stats["creates"], stats["duplicate_external_ids"]) == (2, 2)
        assert stats["create_requests"] == 4
        fake.advance(30.0)
        assert (await call(http, fake, "GET", f"{T2V}/c1"))[1]["code"] == 0
        listed = (await call(http, fake, "GET", "tasks?external_task_ids=t1"))[1]["data"]
        assert [item["external_id"] for item in listed] == ["t1"]


async def test_a_careful_client_leaves_no_duplicate(http: aiohttp.ClientSession) -> None:
    """Creates with distinct external ids, even after drops after store, count no duplicate."""
    async with run_fake_gateway(time_scale=0.001, lookup_lag=5.0) as fake:
        fake.inject("drop_after_store", count=2)
        for i in range(4):
            body = {"prompt": "x", "external_task_id": f"e{i}"}
            with contextlib.suppress(aiohttp.ServerDisconnectedError):
                await call(http, fake, "POST", T2V, json=body)
        stats = fake.stats()
    assert (stats["creates"], stats["duplicate_external_ids"]) == (4, 0)


# --- one clock ---------------------------------------------------------------------------------


async def test_scale_delays_shrinks_lag_and_url_life_with_the_tasks(
    http: aiohttp.ClientSession,
) -> None:
    """With scale_delays, lookup_lag and url_ttl are gateway seconds times time_scale."""
    # Lives of about 1 s; the lag (36 s) and URL life (72 s) leave room for a busy machine.
    config = FakeConfig(time_scale=0.01, scale_delays=True, lookup_lag=3600.0, url_ttl=7200.0)
    async with run_fake_gateway(config) as fake:
        await call(http, fake, "POST", T2V, json={"prompt": "x", "external_task_id": "s1"})
        assert (await call(http, fake, "GET", f"{T2V}/s1"))[1]["code"] == 1203
        fake.advance(40.0)  # an hour of lag, scaled: 36 s
        _, body = await call(http, fake, "GET", f"{T2V}/s1")
        assert body["data"]["task_status"] == "succeed"
        path = body["data"]["task_result"]["videos"][0]["url"].removeprefix(fake.url)
        async with http.get(f"{fake.url}{path}") as ok:
            assert ok.status == 200
        fake.advance(80.0)  # two hours of URL life, scaled: 72 s
        async with http.get(f"{fake.url}{path}") as gone:
            assert gone.status == 403


async def test_without_scale_delays_lag_stays_in_real_seconds() -> None:
    """By default lookup_lag and url_ttl are real seconds, whatever time_scale says."""
    fake = FakeGateway(time_scale=0.001, lookup_lag=5.0, url_ttl=60.0)
    state = fake._state
    assert (state.lookup_lag, state.url_ttl) == (5.0, 60.0)
    scaled = FakeGateway(time_scale=0.01, lookup_lag=5.0, url_ttl=60.0, scale_delays=True)
    assert (scaled._state.lookup_lag, scaled._state.url_ttl) == pytest.approx((0.05, 0.6))


class Hook:
    """A loopback receiver that records the statuses of callbacks."""

    def __init__(self) -> None:
        self.statuses: list[str] = []
        self.changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.statuses.append(json.loads(await request.read())["task_status"])
        self.changed.set()
        return web.Response(text="ok")

    async def until(self, count: int) -> None:
        async with asyncio.timeout(30.0):  # a hang guard, not a timing check
            while len(self.statuses) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_callbacks_lag_and_urls_all_follow_advance(http: aiohttp.ClientSession) -> None:
    """One advance() ends a 100 s task: its callbacks go out, the lag passes, URLs stay valid."""
    hook = Hook()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        config = FakeConfig(time_scale=1.0, lookup_lag=50.0, url_ttl=100.0, video_sigma=0.0)
        async with run_fake_gateway(config) as fake:
            body = {"prompt": "x", "external_task_id": "a1", "callback_url": url}
            await call(http, fake, "POST", T2V, json=body)
            await hook.until(1)
            assert hook.statuses == ["submitted"]
            assert (await call(http, fake, "GET", f"{T2V}/a1"))[1]["code"] == 1203
            fake.advance(150.0)  # past the lag (50), the life (100), within the URL's (200)
            await hook.until(3)
            _, found = await call(http, fake, "GET", f"{T2V}/a1")
            assert found["data"]["task_status"] == "succeed"
            media = found["data"]["task_result"]["videos"][0]["url"].removeprefix(fake.url)
            async with http.get(f"{fake.url}{media}") as ok:
                assert ok.status == 200
            fake.advance(60.0)  # now past completes + url_ttl
            async with http.get(f"{fake.url}{media}") as gone:
                assert gone.status == 403
    finally:
        await runner.cleanup()
    assert sorted(hook.statuses) == ["processing", "submitted", "succeed"]
