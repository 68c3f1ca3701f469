"""The aiohttp transport on loopback: capped reads; foreign errors described, never chained."""

from __future__ import annotations

import asyncio
import socket
import traceback
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kling_async import (
    AiohttpTransport,
    ConnectError,
    HTTPRequest,
    RequestTimeoutError,
    TransportError,
)

SECRET_HEADER = {"Authorization": "Bearer transport-canary-0001"}


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    """A loopback server with a route per behaviour."""

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=int(request.query.get("status", "200")))
        if request.query.get("length"):
            response.content_length = int(request.query["length"])
        await response.prepare(request)
        try:
            for _ in range(64):
                await response.write(b"x" * 16_384)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def drop(request: web.Request) -> web.Response:
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=500)

    app = web.Application()
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    app.router.add_get("/drop", drop)
    async with TestServer(app, host="127.0.0.1") as running:
        yield running


def _request(url: str, **caps: int) -> HTTPRequest:
    return HTTPRequest(method="GET", url=url, label="x", headers=SECRET_HEADER, timeout=0.5, **caps)


def _chain_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


async def test_a_long_answer_is_read_only_up_to_the_cap(server: TestServer) -> None:
    """A 1 MiB chunked answer with a 50 KiB cap returns 50 KiB, marked truncated."""
    with_transport = AiohttpTransport()
    try:
        response = await with_transport.send(
            _request(str(server.make_url("/big")), max_answer_bytes=50_000)
        )
    finally:
        await with_transport.aclose()
    assert (len(response.body), response.truncated) == (50_000, True)


async def test_an_announced_oversize_answer_is_not_read_at_all(server: TestServer) -> None:
    """A Content-Length above the cap stops the read before the first byte."""
    transport = AiohttpTransport()
    try:
        url = str(server.make_url("/big?length=1048576"))
        response = await transport.send(_request(url, max_answer_bytes=1000))
    finally:
        await transport.aclose()
    assert (response.body, response.truncated) == (b"", True)


async def test_error_answers_use_the_error_cap(server: TestServer) -> None:
    """An HTTP 500 answer is read up to max_error_bytes, not max_answer_bytes."""
    transport = AiohttpTransport()
    try:
        url = str(server.make_url("/big?status=500"))
        response = await transport.send(
            _request(url, max_answer_bytes=1_000_000, max_error_bytes=300)
        )
    finally:
        await transport.aclose()
    assert (response.status, len(response.body), response.truncated) == (500, 300, True)


async def test_connection_refused_is_a_connect_error_without_a_chain() -> None:
    """A refused connection: ConnectError, sent=False, the aiohttp class named, nothing chained."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{'secret'}-path"
    transport = AiohttpTransport()
    try:
        with pytest.raises(ConnectError) as info:
            await transport.send(_request(url))
    finally:
        await transport.aclose()
    err = info.value
    assert err.sent is False
    assert err.foreign_type == "ClientConnectorError"
    assert (err.__cause__, err.__context__) == (None, None)
    assert "transport-canary" not in _chain_text(err)
    assert "secret-path" not in _chain_text(err)


async def test_a_slow_answer_is_a_request_timeout(server: TestServer) -> None:
    """No answer within the request's timeout: RequestTimeoutError (the request may have landed)."""
    transport = AiohttpTransport()
    try:
        with pytest.raises(RequestTimeoutError) as info:
            await transport.send(_request(str(server.make_url("/slow"))))
    finally:
        await transport.aclose()
    assert info.value.sent is True
    assert info.value.__context__ is None


async def test_a_dropped_connection_is_a_transport_error(server: TestServer) -> None:
    """A connection closed without an answer: TransportError naming the aiohttp class."""
    transport = AiohttpTransport()
    try:
        with pytest.raises(TransportError) as info:
            await transport.send(_request(str(server.make_url("/drop"))))
    finally:
        await transport.aclose()
    assert info.value.foreign_type
    assert info.value.__context__ is None
    assert "transport-canary" not in _chain_text(info.value)
