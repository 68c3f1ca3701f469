"""An in-memory transport for unit tests: no sockets, no patching of aiohttp.

Plug it in at the session's one seam::

    from kling_async import HTTPResponse, KlingSession
    from kling_async.testing import MockTransport

    def handler(request):
        if request.method == "POST":
            return HTTPResponse.from_json({"code": 0, "data": {"task_id": "1", ...}})
        return HTTPResponse(status=404, body=b"")

    async with KlingSession(config=config, transport=MockTransport(handler)) as session:
        ...

The handler gets each :class:`~kling_async.HTTPRequest` (URL, headers and body
included) and returns an :class:`~kling_async.HTTPResponse`, directly or from a
coroutine. To simulate the network failing, raise the SDK's own transport errors
(:class:`~kling_async.ConnectError`: never sent; :class:`~kling_async.TransportError`
or :class:`~kling_async.RequestTimeoutError`: may have arrived). Anything else a
handler raises is treated by the session as a broken transport.

Like a real transport, it reads at most the request's caps
(``max_answer_bytes``/``max_error_bytes``) and marks the answer ``truncated``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from .._errors import SessionClosedError
from .._transport import HTTPRequest, HTTPResponse, StreamResponse, body_limit

__all__ = ["MockHandler", "MockTransport"]

#: A handler: from a request to a response, sync or async.
MockHandler = Callable[[HTTPRequest], "HTTPResponse | Awaitable[HTTPResponse]"]


class _MockStream:
    def __init__(self, response: HTTPResponse) -> None:
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self._body = response.body

    async def iter_chunks(self, size: int) -> AsyncIterator[bytes]:
        for start in range(0, len(self._body), max(1, size)):
            yield self._body[start : start + size]


class MockTransport:
    """A transport that answers from a function instead of the network.

    Args:
        handler: Called with each request; returns the response (or an awaitable
            of it), or raises a transport error.

    Attributes:
        requests: Every request received, in order (streams included, as ``GET``).
    """

    def __init__(self, handler: MockHandler) -> None:
        self._handler = handler
        self.requests: list[HTTPRequest] = []
        self.closed = False

    def __repr__(self) -> str:
        return f"MockTransport({len(self.requests)} requests, closed={self.closed})"

    async def _answer(self, request: HTTPRequest) -> HTTPResponse:
        if self.closed:
            raise SessionClosedError("the transport is closed")
        self.requests.append(request)
        outcome = self._handler(request)
        response = await outcome if inspect.isawaitable(outcome) else outcome
        if not isinstance(response, HTTPResponse):
            raise TypeError(f"the handler returned {type(response).__name__}, not HTTPResponse")
        return response

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Answer one request through the handler, applying the request's caps.

        Args:
            request: The request.

        Returns:
            The handler's response, cut at the cap for its status.

        Raises:
            SessionClosedError: :meth:`aclose` was called.
            TransportError: Whatever transport error the handler raised.
        """
        response = await self._answer(request)
        limit = body_limit(request, response.status)
        if limit is not None and len(response.body) > limit:
            return HTTPResponse(
                status=response.status,
                headers=response.headers,
                body=response.body[:limit],
                truncated=True,
            )
        return response

    @asynccontextmanager
    async def stream(
        self, url: str, *, timeout: float, follow_redirects: bool = True
    ) -> AsyncIterator[StreamResponse]:
        """Answer a download through the handler (a ``GET`` without auth headers).

        The handler's answer is returned as it is; a redirect is never followed here,
        whatever ``follow_redirects`` says (the caller sees the hop).

        Args:
            url: The URL.
            timeout: Seconds (recorded on the request only).
            follow_redirects: Accepted for the protocol; see above.

        Yields:
            The response, readable in chunks.

        Raises:
            SessionClosedError: :meth:`aclose` was called.
        """
        request = HTTPRequest(method="GET", url=url, label=url.split("?", 1)[0], timeout=timeout)
        yield _MockStream(await self._answer(request))

    async def aclose(self) -> None:
        """Mark the transport closed; later requests raise :class:`SessionClosedError`."""
        self.closed = True
