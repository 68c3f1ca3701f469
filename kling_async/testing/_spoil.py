"""Turning a drawn fault into what the client sees.

A handler asks :meth:`Spoiler.before` first: faults that strike before any work
(before a create stores its task) answer right there. Any other fault is carried
to :meth:`Spoiler.finish`, which spoils the normal answer after the work is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from aiohttp import web

from ._answers import JSON
from ._faults import BEFORE_STORE, HOSTILE_RETRY_AFTER
from ._hostile import NON_JSON_BODY, bad_code_body, deep_body, huge_chunks, rewrite_body
from ._state import FakeState

__all__ = ["Spoiler"]

_HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>nginx</center></body></html>"
)
_SERVER_ERRORS = {
    "http_500": (500, 5000, "Internal error, please try again later"),
    "5xx_after_store": (500, 5000, "Internal error, please try again later"),
    "http_503": (
        503,
        5001,
        "Service temporarily unavailable (maintenance), please try again later",
    ),
    "http_504": (504, 5002, "Internal timeout, please try again later"),
}
_REWRITES = frozenset({"nan_index", "non_finite", "wrong_types"})


def drop(request: web.Request) -> web.Response:
    """Close the connection without answering.

    Args:
        request: The request whose connection is closed.

    Returns:
        A placeholder response aiohttp cannot send (the socket is gone).
    """
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=500)


class Spoiler:
    """Acts out faults for the handlers of one fake.

    Args:
        state: The fake's shared state (fault plan, store, answers, config).
    """

    def __init__(self, state: FakeState) -> None:
        self._state = state

    async def before(
        self, request: web.Request, scope: str
    ) -> tuple[str | None, web.StreamResponse | None]:
        """Draw the fault for one request; answer at once if it strikes before work.

        Args:
            request: The request.
            scope: ``create``, ``query``, ``batch``, ``list``, ``face`` or ``media``.

        Returns:
            ``(fault to apply in finish, None)``, or ``(None, early answer)``.
        """
        state = self._state
        if not state.faults.active:
            return None, None
        fault = state.faults.take(scope)
        if fault is None:
            return None, None
        state.store.count_fault(fault)
        if fault == "slow":
            await asyncio.sleep(state.slow_latency)
            return None, None
        if fault in BEFORE_STORE:
            return None, self._plain(request, fault)
        return fault, None

    async def finish(
        self,
        request: web.Request,
        body: bytes,
        fault: str | None,
        *,
        content_type: str = JSON,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> web.StreamResponse:
        """Send the normal answer, or that answer spoiled by ``fault``.

        Args:
            request: The request.
            body: The normal body.
            fault: From :meth:`before`, or ``None``.
            content_type: Of the normal body.
            status: Of the normal answer.
            headers: Of the normal answer.

        Returns:
            The response (already sent when streamed).
        """
        if fault is None:
            response = web.Response(body=body, status=status, headers=headers)
            response.content_type = content_type
            return response
        if fault == "truncated":
            return await self._stream(
                request, status, headers, content_type, len(body), [body[: len(body) // 2]]
            )
        if fault in ("huge_body", "huge_body_chunked"):
            size = max(len(body), self._state.config.huge_body_bytes)
            length = size if fault == "huge_body" else None
            return await self._stream(
                request, status, headers, content_type, length, huge_chunks(body, size)
            )
        if fault in _REWRITES:
            return web.Response(body=rewrite_body(fault, body), content_type=JSON)
        if fault == "non_json":
            return web.Response(body=NON_JSON_BODY, headers={"Content-Type": JSON})
        if fault == "bad_code":
            return web.Response(body=bad_code_body(), content_type=JSON, charset="utf-8")
        if fault == "deep_nesting":
            depth = self._state.config.hostile_depth
            rid = self._state.answers.request_id()
            return web.Response(body=deep_body(depth, rid), content_type=JSON)
        return self._plain(request, fault)

    def _plain(self, request: web.Request, fault: str) -> web.Response:
        """Answers that ignore the normal body: errors, drops, HTML."""
        answers = self._state.answers
        if fault in ("drop_before_store", "drop_after_store"):
            return drop(request)
        if fault in _SERVER_ERRORS:
            status, code, message = _SERVER_ERRORS[fault]
            return answers.error(status, code, message)
        if fault == "rate_limit":
            return answers.rate_limited(1.0)
        if fault in HOSTILE_RETRY_AFTER:
            return answers.rate_limited(HOSTILE_RETRY_AFTER[fault])
        if fault == "concurrency_limit":
            return answers.concurrency_limited()
        if fault == "html":
            return web.Response(body=_HTML_PAGE, status=200, content_type="text/html")
        raise AssertionError(f"unhandled fault {fault}")  # pragma: no cover

    async def _stream(
        self,
        request: web.Request,
        status: int,
        headers: Mapping[str, str] | None,
        content_type: str,
        length: int | None,
        chunks: Iterable[bytes],
    ) -> web.StreamResponse:
        """Stream ``chunks``; close the connection early when they fall short of ``length``."""
        response = web.StreamResponse(status=status, headers=headers)
        response.content_type = content_type
        if length is not None:
            response.content_length = length
        sent = 0
        try:
            await response.prepare(request)
            for chunk in chunks:
                await response.write(chunk)
                sent += len(chunk)
            if length is not None and sent < length:
                drop(request)
            else:
                await response.write_eof()
        except ConnectionError:
            # The client stopped reading (as a careful one should): count it, quietly.
            self._state.store.counts["client_disconnects"] += 1
            drop(request)
        return response
