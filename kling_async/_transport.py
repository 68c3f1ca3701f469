"""The one I/O seam: a transport sends one HTTP request and returns its answer.

Retries, authentication, rate limiting, decoding and error mapping live in the
session's send chain (:mod:`kling_async._send`), around this seam, so a test
transport (:class:`kling_async.testing.MockTransport`, or the fake gateway on
loopback) exercises all of them.

Foreign exceptions (aiohttp, OSError, timeouts) are translated here into
:mod:`kling_async._errors` types. They are *described*, never chained: aiohttp's
exceptions can hold the request (URL with the endpoint path, headers with the API
key), so the typed error is raised outside the ``except`` block, with the foreign
class name kept in ``foreign_type`` and ``__cause__``/``__context__`` left empty.

A transport reads at most ``max_answer_bytes`` of a successful answer and
``max_error_bytes`` of an error answer (HTTP >= 400), streamed, and says whether it
stopped early (:attr:`HTTPResponse.truncated`): a 300 MB answer costs a few MiB.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, runtime_checkable

import aiohttp
import attrs

from ._errors import (
    ConnectError,
    RequestTimeoutError,
    SessionClosedError,
    TransportError,
)

__all__ = [
    "AiohttpTransport",
    "HTTPRequest",
    "HTTPResponse",
    "StreamResponse",
    "Transport",
    "body_limit",
]

_READ_CHUNK = 64 * 1024


@attrs.frozen(kw_only=True)
class HTTPRequest:
    """One request, fully built.

    Attributes:
        method: ``GET`` or ``POST``.
        url: Absolute URL (never shown in ``repr``: it holds the endpoint path).
        label: What logs and errors may show: the path under ``/kling/``.
        headers: Headers, including ``Authorization`` (never shown in ``repr``).
        body: JSON body bytes (never shown in ``repr``).
        timeout: Seconds for the whole exchange.
        max_answer_bytes: Read at most this much of a successful answer (``None``:
            no cap).
        max_error_bytes: Read at most this much of an error answer (HTTP >= 400).
    """

    method: str
    url: str = attrs.field(repr=False)
    label: str
    headers: Mapping[str, str] = attrs.field(repr=False, factory=dict)
    body: bytes | None = attrs.field(repr=False, default=None)
    timeout: float = 60.0
    max_answer_bytes: int | None = None
    max_error_bytes: int | None = None


@attrs.frozen(kw_only=True)
class HTTPResponse:
    """A response, read whole or up to a cap.

    Attributes:
        status: HTTP status.
        headers: Response headers.
        body: The body (its first ``limit`` bytes when ``truncated``).
        truncated: ``True`` when the body was longer than the request's cap and
            reading stopped there.
    """

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False, factory=dict)
    body: bytes = attrs.field(repr=False, default=b"")
    truncated: bool = False

    @classmethod
    def from_json(
        cls, payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> HTTPResponse:
        """Build a JSON answer (for mock transports and tests).

        Args:
            payload: Anything :func:`json.dumps` accepts.
            status: The HTTP status.
            headers: Extra headers (``Content-Type`` is set to JSON).

        Returns:
            The response.
        """
        merged = {"Content-Type": "application/json", **(headers or {})}
        return cls(status=status, headers=merged, body=json.dumps(payload).encode())


def body_limit(request: HTTPRequest, status: int) -> int | None:
    """The cap that applies to an answer with ``status``.

    Args:
        request: The request (carries both caps).
        status: The answer's HTTP status.

    Returns:
        Bytes to read at most, or ``None`` for no cap.
    """
    return request.max_error_bytes if status >= 400 else request.max_answer_bytes


class StreamResponse(Protocol):
    """A response whose body is read in chunks (downloads)."""

    status: int
    headers: Mapping[str, str]

    def iter_chunks(self, size: int) -> AsyncIterator[bytes]:
        """Yield the body in chunks of at most ``size`` bytes."""
        ...


@runtime_checkable
class Transport(Protocol):
    """What the session needs from HTTP."""

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send a request and read its answer (up to the request's caps).

        Raises:
            ConnectError: The request was not sent.
            RequestTimeoutError: No complete answer in time.
            TransportError: Anything else that broke the exchange.
            SessionClosedError: The transport was closed.
        """
        ...

    def stream(
        self, url: str, *, timeout: float, follow_redirects: bool = True
    ) -> AbstractAsyncContextManager[StreamResponse]:
        """Open a ``GET`` whose body is read in chunks (an async context manager).

        With ``follow_redirects=False`` a redirect answer is returned as it is, so the
        caller can check each hop before following it.
        """
        ...

    async def aclose(self) -> None:
        """Release connections the transport owns."""
        ...


def _url_label(url: str) -> str:
    """Scheme, host and path of a URL without its (signed) query string."""
    return url.split("?", 1)[0]


def _translate(
    exc: BaseException, *, method: str, label: str, timeout: float, what: str = "connection"
) -> TransportError:
    """Describe a foreign exception as a typed error that holds nothing of the request.

    Only the class name and, for connection failures, the host and port survive;
    the caller raises the result *outside* its ``except`` block so the foreign
    exception is not kept as ``__context__``.
    """
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.strerror or name
        return ConnectError(
            f"cannot connect to {exc.host}:{exc.port} ({reason})",
            method=method,
            path=label,
            foreign_type=name,
        )
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectError("connecting timed out", method=method, path=label, foreign_type=name)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return RequestTimeoutError(
            f"no answer within {timeout:g} s", method=method, path=label, foreign_type=name
        )
    return TransportError(f"{what} failed: {name}", method=method, path=label, foreign_type=name)


async def _read_capped(response: aiohttp.ClientResponse, limit: int | None) -> tuple[bytes, bool]:
    """Read a body, stopping once it exceeds ``limit`` bytes."""
    announced = response.content_length
    if limit is None or (
        announced is not None
        and announced <= limit
        and "Content-Encoding" not in response.headers
        and "Transfer-Encoding" not in response.headers
    ):
        # No cap, or a plain body whose length is within it: aiohttp stops at
        # Content-Length, so one read cannot pass the cap. A compressed body is
        # inflated while read and may grow past it, and a chunked one is not bound
        # by a length: those are streamed and counted.
        return await response.read(), False
    if announced is not None and announced > limit and response.status < 400:
        # Not worth a byte: the answer is refused whole.
        return b"", True
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_READ_CHUNK):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(parts)[:limit], True
    return b"".join(parts), False


class _AiohttpStream:
    def __init__(self, response: aiohttp.ClientResponse, label: str) -> None:
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self._response = response
        self._label = label

    async def iter_chunks(self, size: int) -> AsyncIterator[bytes]:
        iterator = self._response.content.iter_chunked(size).__aiter__()
        while True:
            failure: TransportError | None = None
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                failure = _translate(
                    exc, method="GET", label=self._label, timeout=0.0, what="download"
                )
            if failure is not None:
                raise failure
            yield chunk


class AiohttpTransport:
    """The default transport, on one shared :class:`aiohttp.ClientSession`.

    Args:
        session: A session to borrow (it is not closed by :meth:`aclose`); by
            default one is created on first use and owned.
        connect_timeout: Seconds to establish a connection.
        max_connections: Size of the connection pool of an owned session.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        connect_timeout: float = 10.0,
        max_connections: int = 100,
    ) -> None:
        self._session = session
        self._owned = session is None
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._closed = False
        # ClientTimeout is frozen: one per distinct total serves every request.
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def __repr__(self) -> str:
        return f"AiohttpTransport(owned={self._owned}, closed={self._closed})"

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    def _client(self) -> aiohttp.ClientSession:
        if self._closed or (self._session is not None and self._session.closed):
            raise SessionClosedError("the session is closed; open a new KlingSession")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections)
            self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        return self._session

    def _timeout(self, total: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(total)
        if timeout is None:
            if len(self._timeouts) > 32:  # callers varying it per request: keep a few
                self._timeouts.clear()
            timeout = self._timeouts[total] = aiohttp.ClientTimeout(
                total=total, sock_connect=self._connect_timeout
            )
        return timeout

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send ``request`` and read its answer, up to the request's caps.

        Args:
            request: The request.

        Returns:
            The response (any status); ``truncated`` when a cap stopped the read.

        Raises:
            ConnectError: The connection could not be made (request not sent).
            RequestTimeoutError: No complete answer within ``request.timeout``.
            TransportError: The connection broke or the body was cut short.
            SessionClosedError: :meth:`aclose` was called.
        """
        client = self._client()
        failure: TransportError | None = None
        try:
            async with client.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=self._timeout(request.timeout),
                allow_redirects=False,
            ) as response:
                body, truncated = await _read_capped(response, body_limit(request, response.status))
                if truncated:
                    response.close()  # the rest is never read: drop the connection
                return HTTPResponse(
                    status=response.status,
                    headers=response.headers,
                    body=body,
                    truncated=truncated,
                )
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as exc:
            failure = _translate(
                exc, method=request.method, label=request.label, timeout=request.timeout
            )
        raise failure

    @asynccontextmanager
    async def stream(
        self, url: str, *, timeout: float, follow_redirects: bool = True
    ) -> AsyncIterator[StreamResponse]:
        """Open a streaming ``GET`` of ``url`` (no auth header: result URLs are signed).

        Args:
            url: The URL.
            timeout: Seconds for the whole download.
            follow_redirects: Let aiohttp follow redirects; ``False`` returns a redirect
                answer as it is (downloads check every hop themselves).

        Yields:
            The open response.

        Raises:
            ConnectError: The connection could not be made.
            RequestTimeoutError: The download did not finish in time.
            TransportError: The connection broke.
            SessionClosedError: :meth:`aclose` was called.
        """
        label = _url_label(url)
        client = self._client()
        failure: TransportError | None = None
        try:
            async with client.get(
                url, timeout=self._timeout(timeout), allow_redirects=follow_redirects
            ) as response:
                yield _AiohttpStream(response, label)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            failure = _translate(exc, method="GET", label=label, timeout=timeout, what="download")
        if failure is not None:
            raise failure

    async def aclose(self) -> None:
        """Close the owned aiohttp session (a borrowed one is left open); idempotent."""
        self._closed = True
        if self._owned and self._session is not None and not self._session.closed:
            await self._session.close()
