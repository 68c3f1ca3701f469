"""The callback receiver: Standard Webhooks verification, parsing, notification, serving."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from kling_async import TaskStatus
from kling_async._callbacks import CallbackEvent, CallbackReceiver
from kling_async._webhooks import signed_headers

SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
CLASSIC = {
    "task_id": "t-1",
    "task_status": "succeed",
    "task_info": {"external_task_id": "ext-1"},
    "task_result": {"videos": [{"id": "v", "url": "https://x/v.mp4", "duration": "5.0"}]},
    "final_unit_deduction": "3",
}
TURBO = {"id": "t-2", "status": "processing", "external_id": "ext-2"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for posting callbacks."""
    async with aiohttp.ClientSession() as session:
        yield session


def collect(receiver: CallbackReceiver) -> list[CallbackEvent]:
    events: list[CallbackEvent] = []
    receiver.subscribe(events.append)
    return events


async def post(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str] | None = None
) -> int:
    async with http.post(url, data=body, headers=headers or {}) as response:
        await response.read()
        return response.status


async def test_signed_callback_is_verified_parsed_and_delivered(
    http: aiohttp.ClientSession,
) -> None:
    """A correctly signed callback reaches subscribers as a verified, parsed task."""
    receiver = CallbackReceiver(secret=SECRET)
    events = collect(receiver)
    body = json.dumps(CLASSIC).encode()
    async with receiver.serve() as url:
        assert receiver.url == url
        target = receiver.callback_url_for("text2video")
        status = await post(http, target, body, signed_headers(SECRET, "msg-1", body))
    assert status == 200
    assert receiver.url is None
    assert len(events) == 1
    event = events[0]
    assert event.verified
    assert event.webhook_id == "msg-1"
    assert event.task.id == "t-1"
    assert event.task.endpoint == "text2video"
    assert event.task.status is TaskStatus.SUCCEED
    assert event.task.external_id == "ext-1"
    assert event.task.urls == ("https://x/v.mp4",)


async def test_bad_or_missing_signature_is_refused(http: aiohttp.ClientSession) -> None:
    """With a secret, a wrong or absent signature gets 401 and notifies nobody."""
    receiver = CallbackReceiver(secret=SECRET)
    events = collect(receiver)
    body = json.dumps(CLASSIC).encode()
    forged = signed_headers("whsec_" + "QUJD" * 8, "msg-1", body)
    async with receiver.serve() as url:
        assert await post(http, url, body, forged) == 401
        assert await post(http, url, body) == 401
    assert events == []
    assert receiver.rejected == 2


async def test_unsigned_callbacks_are_accepted_without_a_secret(
    http: aiohttp.ClientSession,
) -> None:
    """Without a secret, callbacks are accepted but marked unverified (turbo shape too)."""
    receiver = CallbackReceiver()
    events = collect(receiver)
    async with receiver.serve() as url:
        status = await post(
            http, receiver.callback_url_for("turbo-text2video"), json.dumps(TURBO).encode()
        )
        assert url.startswith("http://127.0.0.1:")
    assert status == 200
    assert not events[0].verified
    assert events[0].task.id == "t-2"
    assert events[0].task.status is TaskStatus.PROCESSING
    assert events[0].task.external_id == "ext-2"


async def test_bodies_that_are_not_task_objects_get_400(http: aiohttp.ClientSession) -> None:
    """Garbage, non-objects and objects without any id are refused with 400."""
    receiver = CallbackReceiver()
    events = collect(receiver)
    async with receiver.serve() as url:
        assert await post(http, url, b"not json") == 400
        assert await post(http, url, b"[1, 2]") == 400
        assert await post(http, url, b'{"status": "succeed"}') == 400
    assert events == []
    assert receiver.rejected == 3


async def test_oversized_bodies_get_413(http: aiohttp.ClientSession) -> None:
    """A body over max_body is refused before parsing."""
    receiver = CallbackReceiver(max_body=100)
    events = collect(receiver)
    async with receiver.serve() as url:
        assert await post(http, url, b"x" * 500) == 413
    assert events == []


async def test_a_redelivered_webhook_id_notifies_once(http: aiohttp.ClientSession) -> None:
    """The same signed webhook-id delivered twice is acknowledged twice, notified once."""
    receiver = CallbackReceiver(secret=SECRET)
    events = collect(receiver)
    body = json.dumps(CLASSIC).encode()
    headers = signed_headers(SECRET, "msg-7", body)
    async with receiver.serve() as url:
        assert await post(http, url, body, headers) == 200
        assert await post(http, url, body, headers) == 200
    assert len(events) == 1
    assert receiver.duplicates == 1


async def test_handler_mounts_in_the_users_own_app(http: aiohttp.ClientSession) -> None:
    """`app.router.add_post(path, receiver.handle)` works in any aiohttp application."""
    receiver = CallbackReceiver(public_url="https://app.example/hooks/kling")
    events = collect(receiver)
    app = web.Application()
    app.router.add_post("/hooks/kling", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        status = await post(
            http,
            f"http://{host}:{port}/hooks/kling?endpoint=text2video",
            json.dumps(CLASSIC).encode(),
        )
    finally:
        await runner.cleanup()
    assert status == 200
    assert events[0].task.endpoint == "text2video"
    assert receiver.url == "https://app.example/hooks/kling"
    assert receiver.callback_url_for("image-generation") == (
        "https://app.example/hooks/kling?endpoint=image-generation"
    )


def test_published_test_vector_verifies() -> None:
    """The Standard Webhooks vector from the API notes passes through accept()."""
    receiver = CallbackReceiver(secret=SECRET, tolerance=1e12)
    body = (
        b'{"id":"1234567890","status":"succeeded","message":"","create_time":1781080778802,'
        b'"update_time":1781080794151}'
    )
    headers = {
        "webhook-id": "9876543210",
        "webhook-timestamp": "1781080794",
        "webhook-signature": "v1,UsKlJP00XoQyOn410NM9xv34sP+Gl0jnOO9Lcpr7NJ4=",
    }
    event = receiver.accept(headers, body)
    assert event is not None
    assert event.verified
    assert event.task.status is TaskStatus.SUCCEED


def test_envelopes_and_unknown_endpoints_are_tolerated() -> None:
    """A body wrapped in the envelope is unwrapped; an unknown endpoint name is ignored."""
    receiver = CallbackReceiver()
    body = json.dumps({"code": 0, "data": CLASSIC}).encode()
    event = receiver.accept({}, body, endpoint="no-such-endpoint")
    assert event is not None
    assert event.task.id == "t-1"
    assert event.task.status is TaskStatus.SUCCEED


def test_unsubscribe_and_failing_subscribers() -> None:
    """Unsubscribed callables hear nothing; a raising subscriber does not stop others."""
    receiver = CallbackReceiver()
    heard: list[CallbackEvent] = []

    def broken(_: CallbackEvent) -> None:
        raise RuntimeError("subscriber bug")

    receiver.subscribe(broken)
    unsubscribe = receiver.subscribe(heard.append)
    receiver.accept({}, json.dumps(TURBO).encode())
    unsubscribe()
    unsubscribe()
    receiver.accept({}, json.dumps(TURBO).encode())
    assert len(heard) == 1
    assert receiver.received == 2


def test_callback_url_needs_a_url() -> None:
    """Asking for a callback URL before serving or setting public_url is an error."""
    receiver = CallbackReceiver()
    with pytest.raises(RuntimeError, match="no URL"):
        receiver.callback_url_for("text2video")
    assert "signed=False" in repr(receiver)
