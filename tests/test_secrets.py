"""Secrets never leave: a canary key and endpoint path through a fault matrix, grepped everywhere.

A loopback gateway misbehaves in every way the matrix lists (and echoes the request's
Authorization header, path and body back in its messages, as a hostile gateway
might). Everything the SDK produces — every log record at DEBUG, every ``repr`` and
``str``, every exception with its whole ``__cause__``/``__context__`` chain as
``traceback.format_exception`` renders it, and every attribute of every exception in
that chain — is searched for the key, the endpoint path, ``Bearer`` and the base64
payload.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kling_async import (
    ClientConfig,
    ImageToVideoRequest,
    KlingError,
    KlingSession,
    PollPolicy,
    RetryPolicy,
    TextToVideoRequest,
    Timeouts,
)
from kling_async._converter import parse_task

CANARY_KEY = "canary-key-" + hashlib.sha256(b"key").hexdigest()[:24]
CANARY_PATH = "canary-ep-" + hashlib.sha256(b"path").hexdigest()[:12]
CANARY_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + hashlib.sha512(b"img").digest() * 8).decode()
NEEDLES = (CANARY_KEY, CANARY_PATH, "Bearer", CANARY_B64[:48])

#: Logs of the loopback server itself (test scaffolding, not the SDK).
_SERVER_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web")


def _echo(request: web.Request, body: bytes) -> str:
    """What a hostile gateway might put in its message: everything it was sent."""
    return (
        f"auth={request.headers.get('Authorization')} path={request.path} "
        f"body={body.decode('utf-8', 'replace')}"
    )


async def _respond(mode: str, request: web.Request) -> web.StreamResponse:
    body = await request.read()
    echo = _echo(request, body)
    if mode == "timeout":
        await asyncio.sleep(5)
    if mode == "server_error":
        return web.json_response({"code": 5000, "message": echo}, status=500)
    if mode == "unauthorized":
        return web.json_response({"code": 1002, "message": echo, "request_id": echo}, status=401)
    if mode == "expired":
        return web.json_response({"code": 1004, "message": echo, "request_id": echo}, status=401)
    if mode == "token_echo":  # the bare credential, no "Bearer" before it
        bare = (request.headers.get("Authorization") or "").partition(" ")[2]
        return web.json_response({"code": 5000, "message": bare, "request_id": bare}, status=500)
    if mode == "route":
        return web.Response(status=404, text=f"<html>no route {request.path}</html>")
    if mode == "invalid":
        return web.json_response({"code": 1201, "message": echo}, status=400)
    if mode == "non_json":
        return web.Response(status=200, body=b"\xff" + echo.encode())
    if mode == "deep":
        return web.Response(status=200, body=b'{"code":0,"data":' + b"[" * 4000 + b"]" * 4000)
    if mode == "bad_code":
        return web.json_response({"code": "\u00b2", "message": echo})
    if mode == "drop":
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=500)
    raise AssertionError(mode)


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[TestServer, dict[str, str]]]:
    """A loopback gateway whose misbehaviour is chosen per test through ``state["mode"]``."""
    state = {"mode": "server_error"}

    async def handler(request: web.Request) -> web.StreamResponse:
        return await _respond(state["mode"], request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        yield server, state


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(base: str) -> ClientConfig:
    return ClientConfig(
        api_key=CANARY_KEY,
        endpoint_path=CANARY_PATH,
        base_url=base,
        turbo_base_url=base,
        validate=False,
        timeouts=Timeouts(request=0.3, connect=0.3),
        retry=RetryPolicy(
            max_attempts=2,
            initial_delay=0.0,
            max_delay=0.0,
            reconcile_grace=0.0,
            reconcile_deadline=0.0,
        ),
        poll=PollPolicy(initial_delay=0.0, interval=0.01, jitter=0.0),
    )


def _exception_texts(exc: BaseException) -> list[str]:
    """Every rendering of an exception and of everything chained to it."""
    texts = ["".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        texts += [repr(item), str(item), repr(vars(item))]
        todo += [item.__cause__, item.__context__]
    return texts


def _operations(session: KlingSession) -> dict[str, Callable[[], Awaitable[Any]]]:
    submitted = parse_task("text2video", {"task_id": "t-1", "task_status": "submitted"})
    return {
        "create": lambda: session.create(TextToVideoRequest(prompt="p"), timeout=2),
        "create_b64": lambda: session.create(
            ImageToVideoRequest(image=CANARY_B64, prompt="p"), timeout=2
        ),
        "get": lambda: session.get("text2video", "t-1"),
        "get_any": lambda: session.get(external_task_id="e-1"),
        "wait": lambda: session.wait(submitted, timeout=1),
    }


MODES = [
    "connect_refused",
    "timeout",
    "server_error",
    "unauthorized",
    "route",
    "invalid",
    "non_json",
    "deep",
    "bad_code",
    "drop",
    "token_echo",
]


@pytest.mark.parametrize("mode", MODES)
async def test_canaries_never_leave_the_sdk(
    mode: str,
    gateway: tuple[TestServer, dict[str, str]],
    caplog: pytest.LogCaptureFixture,
    no_delays: None,
) -> None:
    """No key, endpoint path, Authorization scheme or base64 payload in logs, reprs or chains."""
    caplog.set_level(logging.DEBUG)
    server, state = gateway
    state["mode"] = mode
    base = str(server.make_url("")).rstrip("/")
    if mode == "connect_refused":
        base = f"http://127.0.0.1:{_closed_port()}"
    config = _config(base)
    texts: list[str] = [repr(config), str(config)]
    raised = 0
    async with KlingSession(config=config) as session:
        texts += [repr(session), repr(session.transport), repr(session.slots)]
        handle = session.submit(TextToVideoRequest(prompt="p"))
        texts.append(repr(handle))
        for name, operation in _operations(session).items():
            try:
                result = await operation()
            except KlingError as exc:
                raised += 1
                texts += _exception_texts(exc)
            else:
                texts += [name, repr(result)]
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        if record.name.startswith(_SERVER_LOGGERS):
            continue
        texts.append(formatter.format(record))
        texts.append(repr(record.args))
    blob = "\n".join(texts)
    leaks = [needle[:16] for needle in NEEDLES if needle in blob]
    assert leaks == []
    assert raised >= 4  # the matrix did fail the calls


def test_redactor_describes_payloads_by_length_and_hash() -> None:
    """A base64 run in foreign text becomes its length and a hash prefix."""
    from kling_async._redact import Redactor, describe_base64

    scrubbed = Redactor([CANARY_KEY]).scrub(f"x {CANARY_KEY} y {CANARY_B64} z", limit=10_000)
    assert CANARY_KEY not in scrubbed
    assert CANARY_B64 not in scrubbed
    assert describe_base64(CANARY_B64) in scrubbed
    assert f"{len(CANARY_B64)} chars" in describe_base64(CANARY_B64)


def test_request_model_repr_hides_base64() -> None:
    """A request model's repr shows a base64 image as length and hash only."""
    assert CANARY_B64[:48] not in repr(ImageToVideoRequest(image=CANARY_B64, prompt="p"))


CANARY_ACCESS = "canary-ak-" + hashlib.sha256(b"ak").hexdigest()[:20]
CANARY_SECRET = "canary-sk-" + hashlib.sha256(b"sk").hexdigest()[:20]
OFFICIAL_MODES = ["unauthorized", "expired", "token_echo", "server_error", "invalid", "non_json"]


@pytest.mark.parametrize("mode", OFFICIAL_MODES)
async def test_official_canaries_and_tokens_never_leave_the_sdk(
    mode: str,
    gateway: tuple[TestServer, dict[str, str]],
    caplog: pytest.LogCaptureFixture,
    no_delays: None,
) -> None:
    """On Kling's own API: no access key, secret key or signed token anywhere the SDK writes."""
    caplog.set_level(logging.DEBUG)
    server, state = gateway
    state["mode"] = mode
    sent: list[str] = []

    def recording_clock() -> float:
        return 1_700_000_000.0 + len(sent)  # each token signed on a new second

    config = attrs.evolve(
        _config(str(server.make_url("")).rstrip("/")),
        api_key=None,
        endpoint_path=None,
        turbo_base_url="",
        backend="kling",
        access_key=CANARY_ACCESS,
        secret_key=CANARY_SECRET,
        token_clock=recording_clock,
    )
    texts: list[str] = [repr(config), str(config)]
    raised = 0
    async with KlingSession(config=config) as session:
        credentials = session._sender.credentials
        texts += [repr(session), repr(credentials), repr(credentials.key_pair)]
        for name, operation in _operations(session).items():
            assert credentials.key_pair is not None
            sent.append(credentials.key_pair.token())
            try:
                result = await operation()
            except KlingError as exc:
                raised += 1
                texts += _exception_texts(exc)
            else:
                texts += [name, repr(result)]
            sent.append(credentials.key_pair.token())
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        if not record.name.startswith(_SERVER_LOGGERS):
            texts += [formatter.format(record), repr(record.args)]
    blob = "\n".join(texts)
    needles = [CANARY_ACCESS, CANARY_SECRET, "Bearer", CANARY_B64[:48]]
    needles += [part for token in set(sent) for part in (token, token.rsplit(".", 1)[1])]
    assert [needle[:16] for needle in needles if needle in blob] == []
    assert raised >= 4
