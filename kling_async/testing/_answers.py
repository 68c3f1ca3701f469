"""The gateway's envelope: success bodies and the documented error answers.

Success bodies are assembled from bytes (the ``data`` of a task is rendered once per
status and cached), so the hot path never re-serialises the envelope.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from ._faults import TokenBucket
from ._store import Store

__all__ = ["JSON", "Answers", "dumps"]

JSON = "application/json"
_OK_HEAD = b'{"code":0,"message":"SUCCEED","data":'
_RID_HEAD = b',"request_id":"'
_TAIL = b'"}'


def dumps(value: Any) -> bytes:
    """Compact JSON bytes of ``value``."""
    return json.dumps(value, separators=(",", ":")).encode()


class Answers:
    """Builds the gateway's answers and counts the refusals it sends.

    Args:
        store: Where refusals are counted and request ids drawn.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def request_id(self) -> str:
        """A fresh ``request_id``."""
        return self._store.request_id()

    def ok(self, data: bytes) -> bytes:
        """The success envelope around already-serialised ``data``.

        Args:
            data: JSON bytes of the ``data`` member.

        Returns:
            The whole body.
        """
        return _OK_HEAD + data + _RID_HEAD + self.request_id().encode() + _TAIL

    def ok_list(self, parts: Iterable[bytes]) -> bytes:
        """The success envelope around a JSON list of serialised items.

        Args:
            parts: JSON bytes of each item.

        Returns:
            The whole body.
        """
        return self.ok(b"[" + b",".join(parts) + b"]")

    def error(
        self, status: int, code: int, message: str, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        """An error answer: the envelope with ``code``, ``message`` and ``request_id``.

        Args:
            status: HTTP status.
            code: Envelope code.
            message: Envelope message.
            headers: Extra response headers.

        Returns:
            The response.
        """
        body = dumps({"code": code, "message": message, "request_id": self.request_id()})
        response = web.Response(body=body, status=status, content_type=JSON)
        if headers:
            response.headers.update(headers)
        return response

    def invalid(self, message: str) -> web.Response:
        """400, code 1201: a documented rule broken (counted as an invalid request).

        Args:
            message: What is wrong, naming the field.

        Returns:
            The response.
        """
        self._store.counts["invalid_requests"] += 1
        return self.error(400, 1201, f"Invalid parameters: {message}")

    def bad_body(self, message: str) -> web.Response:
        """400, code 1200: a body that cannot be read as a JSON object.

        Args:
            message: What is wrong with it.

        Returns:
            The response.
        """
        self._store.counts["invalid_requests"] += 1
        return self.error(400, 1200, f"Invalid request body: {message}")

    def not_found(self, code: int, message: str) -> web.Response:
        """404 with ``code`` (1202: no such route, 1203: no such task), counted.

        Args:
            code: 1202 or 1203.
            message: The envelope message.

        Returns:
            The response.
        """
        self._store.counts["not_found"] += 1
        return self.error(404, code, message)

    def rate_limited(self, retry_after: float | str) -> web.Response:
        """429, code 1302, with a ``Retry-After`` header (counted).

        Args:
            retry_after: Seconds to wait (rounded up to whole seconds), or the
                header's literal text.

        Returns:
            The response.
        """
        self._store.counts["rate_limited"] += 1
        value = (
            retry_after
            if isinstance(retry_after, str)
            else TokenBucket.retry_after_header(retry_after)
        )
        return self.error(429, 1302, "Too many requests, please slow down", {"Retry-After": value})

    def concurrency_limited(self) -> web.Response:
        """429, code 1303: running tasks exceed the quota (counted).

        Returns:
            The response.
        """
        self._store.counts["concurrency_limited"] += 1
        return self.error(
            429,
            1303,
            "Running tasks exceed the concurrency limit of your resource package",
        )
