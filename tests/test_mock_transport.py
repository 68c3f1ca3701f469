"""MockTransport: an in-memory gateway at the session's one seam, for users' tests and ours."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from kling_async import (
    ClientConfig,
    HTTPRequest,
    HTTPResponse,
    KlingSession,
    RetryPolicy,
    SessionClosedError,
    TextToVideoRequest,
    TransportError,
)
from kling_async.testing import MockTransport

CONFIG = ClientConfig(
    api_key="mock-key",
    endpoint_path="ep",
    base_url="http://kling.test",
    retry=RetryPolicy(max_attempts=1),
)
TASK = {"task_id": "t-1", "task_status": "submitted", "task_info": {}}


def _created(request: HTTPRequest) -> HTTPResponse:
    return HTTPResponse.from_json({"code": 0, "request_id": "r-1", "data": TASK})


async def test_a_sync_handler_sees_the_whole_request() -> None:
    """The handler gets method, URL, auth header and body; its answer becomes the Task."""
    transport = MockTransport(_created)
    async with KlingSession(config=CONFIG, transport=transport) as session:
        task = await session.text_to_video.create(TextToVideoRequest(prompt="a cat"))
    (request,) = transport.requests
    assert request.method == "POST"
    assert request.url == "http://kling.test/v1/ai/ep/kling/videos/text2video"
    assert request.headers["Authorization"] == "Bearer mock-key"
    assert json.loads(request.body or b"")["prompt"] == "a cat"
    assert task.id == "t-1"
    assert task.request_id == "r-1"


async def test_an_async_handler_is_awaited() -> None:
    """A coroutine handler works the same way."""

    async def handler(request: HTTPRequest) -> HTTPResponse:
        return _created(request)

    async with KlingSession(config=CONFIG, transport=MockTransport(handler)) as session:
        task = await session.text_to_video.create(TextToVideoRequest(prompt="x"))
    assert task.id == "t-1"


async def test_answers_are_cut_at_the_requests_caps() -> None:
    """Like a real transport, the mock reads at most the cap and marks the answer truncated."""
    big = HTTPResponse(status=200, headers={}, body=b"x" * 100)
    transport = MockTransport(lambda r: big)
    request = HTTPRequest(method="GET", url="http://x/", label="x", max_answer_bytes=10)
    response = await transport.send(request)
    assert (len(response.body), response.truncated) == (10, True)
    error = HTTPResponse(status=500, headers={}, body=b"e" * 100)
    transport = MockTransport(lambda r: error)
    request = HTTPRequest(method="GET", url="http://x/", label="x", max_error_bytes=7)
    assert (await transport.send(request)).body == b"e" * 7


async def test_a_handler_bug_becomes_a_transport_error_without_a_chain() -> None:
    """A foreign exception from the handler is described by class name, never chained."""

    def broken(request: HTTPRequest) -> HTTPResponse:
        raise KeyError("secret-looking detail")

    async with KlingSession(config=CONFIG, transport=MockTransport(broken)) as session:
        with pytest.raises(TransportError) as info:
            await session.get("text2video", "t-1")
    assert info.value.foreign_type == "KeyError"
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert "secret-looking" not in str(info.value)


async def test_a_closed_mock_refuses_requests() -> None:
    """After aclose the mock raises SessionClosedError."""
    transport = MockTransport(_created)
    await transport.aclose()
    with pytest.raises(SessionClosedError):
        await transport.send(HTTPRequest(method="GET", url="http://x/", label="x"))


async def test_downloads_stream_through_the_handler(tmp_path: Path) -> None:
    """download_url reads the handler's body through the mock's stream."""
    payload = b"\x00\x00\x00\x18ftypmp42" + b"v" * 1000

    def handler(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(status=200, headers={"Content-Length": str(len(payload))}, body=payload)

    transport = MockTransport(handler)
    async with KlingSession(config=CONFIG, transport=transport) as session:
        saved = await session.download_url("http://cdn.test/v.mp4?sig=1", tmp_path / "v.mp4")
    assert (tmp_path / "v.mp4").read_bytes() == payload
    assert saved.size == len(payload)
    assert transport.requests[0].method == "GET"
    assert "Authorization" not in transport.requests[0].headers


def test_a_handler_returning_the_wrong_type_is_reported() -> None:
    """Returning something that is not an HTTPResponse is a clear TypeError at the seam."""
    transport = MockTransport(lambda r: "nope")  # type: ignore[arg-type,return-value]
    request = HTTPRequest(method="GET", url="http://x/", label="x")
    with pytest.raises(TypeError, match="HTTPResponse"):
        asyncio.run(transport.send(request))
