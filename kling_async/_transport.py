"""The one I/O seam: a transport sends one HTTP request and returns the whole answer.

Retries, authentication, rate limiting and error mapping live in the session,
around this seam, so a test transport (or the fake gateway on loopback) exercises
all of them. Foreign exceptions (aiohttp, OSError, timeouts) are translated here,
and only here, into :mod:`kling_async._errors` types.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, runtime_checkable

import aiohttp
import attrs

from ._errors import ConnectError, RequestTimeoutError, TransportError

__all__ = ["AiohttpTransport", "HTTPRequest", "HTTPResponse", "StreamResponse", "Transport"]


@attrs.frozen(kw_only=True)
class HTTPRequest:
    """One request, fully built.

    Attributes:
        method: ``GET`` or ``POST``.
        url: Absolute URL.
        label: What logs and errors may show: the path under ``/kling/``.
        headers: Headers, including ``Authorization`` (never shown in ``repr``).
        body: JSON body bytes (never shown in ``repr``).
        timeout: Seconds for the whole exchange.
    """

    method: str
    url: str = attrs.field(repr=False)
    label: str
    headers: Mapping[str, str] = attrs.field(repr=False, factory=dict)
    body: bytes | None = attrs.field(repr=False, default=None)
    timeout: float = 60.0


@attrs.frozen(kw_only=True)
class HTTPResponse:
    """A complete response.

    Attributes:
        status: HTTP status.
        headers: Response headers.
        body: The raw body.
    """

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)


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
        """Send a request and read its whole answer.

        Raises:
            ConnectError: The request was not sent.
            RequestTimeoutError: No complete answer in time.
            TransportError: Anything else that broke the exchange.
        """
        ...

    def stream(self, url: str, *, timeout: float) -> AbstractAsyncContextManager[StreamResponse]:
        """Open a ``GET`` whose body is read in chunks (an async context manager)."""
        ...

    async def aclose(self) -> None:
        """Release connections the transport owns."""
        ...


class _AiohttpStream:
    def __init__(self, response: aiohttp.ClientResponse, label: str) -> None:
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self._response = response
        self._label = label

    async def iter_chunks(self, size: int) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(size):
                yield chunk
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(
                f"download interrupted: {type(exc).__name__}", method="GET", path=self._label
            ) from exc
        except asyncio.TimeoutError as exc:
            raise RequestTimeoutError("download timed out", method="GET", path=self._label) from exc


def _url_label(url: str) -> str:
    """Scheme, host and path of a URL without its (signed) query string."""
    return url.split("?", 1)[0]


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

    def __repr__(self) -> str:
        return f"AiohttpTransport(owned={self._owned})"

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owned and self._session.closed):
            connector = aiohttp.TCPConnector(limit=self._max_connections)
            self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        return self._session

    def _timeout(self, total: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=total, sock_connect=self._connect_timeout)

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send ``request`` and read the whole answer.

        Args:
            request: The request.

        Returns:
            The response (any status).

        Raises:
            ConnectError: The connection could not be made (request not sent).
            RequestTimeoutError: No complete answer within ``request.timeout``.
            TransportError: The connection broke or the body was cut short.
        """
        label = request.label
        try:
            async with self._client().request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=self._timeout(request.timeout),
                allow_redirects=False,
            ) as response:
                body = await response.read()
                return HTTPResponse(status=response.status, headers=response.headers, body=body)
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(
                f"cannot connect to {exc.host}:{exc.port} ({exc.strerror or type(exc).__name__})",
                method=request.method,
                path=label,
            ) from exc
        except asyncio.TimeoutError as exc:
            raise RequestTimeoutError(
                f"no answer within {request.timeout:g} s", method=request.method, path=label
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(
                f"connection failed: {type(exc).__name__}", method=request.method, path=label
            ) from exc

    @asynccontextmanager
    async def stream(self, url: str, *, timeout: float) -> AsyncIterator[StreamResponse]:
        """Open a streaming ``GET`` of ``url`` (no auth header: result URLs are signed).

        Args:
            url: The URL.
            timeout: Seconds for the whole download.

        Yields:
            The open response.

        Raises:
            ConnectError: The connection could not be made.
            RequestTimeoutError: The download did not finish in time.
            TransportError: The connection broke.
        """
        label = _url_label(url)
        try:
            async with self._client().get(
                url, timeout=self._timeout(timeout), allow_redirects=True
            ) as response:
                yield _AiohttpStream(response, label)
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(
                f"cannot connect to {exc.host}:{exc.port}", method="GET", path=label
            ) from exc
        except asyncio.TimeoutError as exc:
            raise RequestTimeoutError("download timed out", method="GET", path=label) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(
                f"download failed: {type(exc).__name__}", method="GET", path=label
            ) from exc

    async def aclose(self) -> None:
        """Close the owned aiohttp session (a borrowed one is left open)."""
        if self._owned and self._session is not None and not self._session.closed:
            await self._session.close()
