"""Errors say what is wrong in words: settings by name, request ids, closed sessions."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from kling_async import (
    AiohttpTransport,
    AuthenticationError,
    ClientConfig,
    ConfigurationError,
    HTTPRequest,
    HTTPResponse,
    KlingSession,
    NotFoundError,
    RetryPolicy,
    ServerError,
    SessionClosedError,
    TextToVideoRequest,
)
from kling_async._converter import parse_task
from kling_async.testing import MockTransport
from kling_async.testing._pytest_plugin import FakeFactory, fast_session_options

KEY = "settings-key-9876543210"
PATH = "settings-ep-31337"
BASE = "http://kling.test"


def _config(**overrides: Any) -> ClientConfig:
    values: dict[str, Any] = {
        "api_key": KEY,
        "endpoint_path": PATH,
        "base_url": BASE,
        "turbo_base_url": BASE,
        "retry": RetryPolicy(max_attempts=1, reconcile_grace=0.0),
    }
    values.update(overrides)
    return ClientConfig(**values)


def _answer(status: int, payload: Any) -> MockTransport:
    return MockTransport(lambda r: HTTPResponse.from_json(payload, status=status))


async def test_a_wrong_key_names_the_setting_not_the_value() -> None:
    """401/1002 says to check KLING_API_KEY, and the key itself appears nowhere."""
    transport = _answer(401, {"code": 1002, "message": "Authorization is invalid"})
    async with KlingSession(config=_config(), transport=transport) as s:
        with pytest.raises(AuthenticationError) as info:
            await s.create(TextToVideoRequest(prompt="x"))
    text = str(info.value)
    assert "KLING_API_KEY" in text
    assert KEY not in text
    assert info.value.hint
    assert info.value.message == "Authorization is invalid"


@pytest.mark.parametrize(
    ("status", "payload"),
    [(404, {"code": 1202, "message": "Invalid method"}), (404, "<html>Not Found</html>")],
    ids=["1202", "bare-404"],
)
async def test_a_wrong_route_on_create_names_path_and_base_url(status: int, payload: Any) -> None:
    """A 1202 or a bare 404 on a create names KLING_ENDPOINT_PATH and the base URL variables."""
    async with KlingSession(config=_config(), transport=_answer(status, payload)) as s:
        with pytest.raises(NotFoundError) as info:
            await s.create(TextToVideoRequest(prompt="x"))
    text = str(info.value)
    assert "KLING_ENDPOINT_PATH" in text
    assert "KLING_BASE_URL" in text
    assert PATH not in text
    assert BASE not in text


async def test_a_missing_task_is_not_blamed_on_settings() -> None:
    """1203 on a lookup is a plain not-found, with no settings hint."""
    transport = _answer(404, {"code": 1203, "message": "Task not found"})
    async with KlingSession(config=_config(), transport=transport) as s:
        with pytest.raises(NotFoundError) as info:
            await s.get("text2video", "t-1")
    assert info.value.hint == ""


async def test_wrong_settings_against_the_fake(kling_fake_factory: FakeFactory) -> None:
    """Against the fake: a wrong key and a wrong endpoint path each name their setting."""
    async with kling_fake_factory() as fake:
        async with fake.session(api_key="not-the-key", **fast_session_options()) as s:
            with pytest.raises(AuthenticationError, match="KLING_API_KEY"):
                await s.text_to_video.create(TextToVideoRequest(prompt="x"))
        config = ClientConfig(
            api_key=fake.config.api_key,
            endpoint_path="no-such-path",
            base_url=fake.url,
            turbo_base_url=fake.url,
        )
        async with KlingSession(config=config) as s:
            with pytest.raises(NotFoundError, match="KLING_ENDPOINT_PATH") as info:
                await s.text_to_video.create(TextToVideoRequest(prompt="x"))
        assert "no-such-path" not in str(info.value)
        assert fake.stats()["creates"] == 0


async def test_every_api_error_carries_the_request_id() -> None:
    """The envelope's request_id is on the error, whatever the code."""
    transport = _answer(500, {"code": 5000, "message": "boom", "request_id": "rid-42"})
    async with KlingSession(config=_config(), transport=transport) as s:
        with pytest.raises(ServerError) as info:
            await s.get("text2video", "t-1")
    assert info.value.request_id == "rid-42"


async def test_a_closed_session_refuses_every_call() -> None:
    """After aclose, create/get/wait/submit/download raise SessionClosedError and send nothing."""
    transport = _answer(200, {"code": 0, "data": {"task_id": "1", "task_status": "submitted"}})
    session = KlingSession(config=_config(), transport=transport)
    await session.aclose()
    task = parse_task("text2video", {"task_id": "1", "task_status": "submitted"})
    calls = [
        lambda: session.create(TextToVideoRequest(prompt="x")),
        lambda: session.get("text2video", "1"),
        lambda: session.wait(task),
        lambda: session.download_url("http://kling.test/x.mp4", "/nonexistent/x.mp4"),
    ]
    for call in calls:
        with pytest.raises(SessionClosedError):
            await call()
    with pytest.raises(SessionClosedError):
        session.submit(TextToVideoRequest(prompt="x"))
    with pytest.raises(SessionClosedError):
        async with session:
            pass
    assert transport.requests == []
    assert issubclass(SessionClosedError, ConfigurationError)
    assert session.closed


async def test_a_closed_aiohttp_transport_opens_no_new_pool() -> None:
    """The default transport, once closed, raises instead of silently creating a pool."""
    transport = AiohttpTransport()
    await transport.aclose()
    request = HTTPRequest(method="GET", url="http://127.0.0.1:9/x", label="x")
    with pytest.raises(SessionClosedError):
        await transport.send(request)
    assert transport._session is None


async def test_a_borrowed_aiohttp_session_stays_open() -> None:
    """Closing a session that borrowed an aiohttp session leaves that session open."""
    async with aiohttp.ClientSession() as borrowed:
        async with KlingSession(config=_config(), http_session=borrowed):
            pass
        assert not borrowed.closed


def test_an_api_key_with_a_line_break_is_refused_without_showing_it() -> None:
    """A key that would corrupt the header is refused, naming the variable, not the value."""
    with pytest.raises(ConfigurationError, match="KLING_API_KEY") as info:
        ClientConfig(api_key="abc\ndef", endpoint_path="e")
    assert "abc" not in str(info.value)


def test_error_bodies_reach_the_mapping_scrubbed() -> None:
    """A message that echoes the key is scrubbed before it reaches the error."""
    from kling_async import Limits
    from kling_async._envelope import decode_answer
    from kling_async._redact import Redactor

    body = json.dumps({"code": 1002, "message": f"key {KEY} refused"}).encode()
    with pytest.raises(AuthenticationError) as info:
        decode_answer(
            HTTPResponse(status=401, headers={}, body=body),
            method="GET",
            label="x",
            phase="read",
            limits=Limits(),
            redactor=Redactor([KEY]),
            max_retry_after=60.0,
        )
    assert KEY not in str(info.value)
    assert info.value.message == "key *** refused"
