"""``GET /__media__/{name}``: result files behind signed, expiring URLs, with ``Range``.

The URL's signature covers the file name and its expiry (on the fake's clock), so a
URL can neither be forged nor outlive ``url_ttl``: a bad signature or an expired URL
answers 403, as a CDN would.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from ._media import CONTENT_TYPES, media_for_extension
from ._spoil import Spoiler
from ._state import FakeState

__all__ = ["MediaHandler", "parse_range"]

#: ``parse_range`` answers: send the whole file (200), or refuse the range (416).
WHOLE = (0, -1)
UNSATISFIABLE = (-1, -1)


def parse_range(header: str, size: int) -> tuple[int, int]:
    """The byte span ``(first, last)`` a ``Range`` header asks for.

    Args:
        header: The ``Range`` header.
        size: The file's size.

    Returns:
        The span; :data:`WHOLE` for several ranges or a malformed header (the whole
        file is sent with 200), :data:`UNSATISFIABLE` for a range outside the file
        (416).
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return WHOLE
    first, _, last = spec.strip().partition("-")
    try:
        if not first:
            length = int(last)
            if length <= 0:
                return UNSATISFIABLE
            return (max(0, size - length), size - 1)
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return WHOLE
    if start < 0 or start >= size or end < start:
        return UNSATISFIABLE
    return (start, min(end, size - 1))


class MediaHandler:
    """Serves result files.

    Args:
        state: The fake's shared state.
        spoiler: Acts out faults scoped to ``media``.
    """

    def __init__(self, state: FakeState, spoiler: Spoiler) -> None:
        self._state = state
        self._spoiler = spoiler

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one download.

        Args:
            request: ``GET /__media__/{stem}.{extension}?expires=..&sig=..``.

        Returns:
            200 (or 206 for a range) with the file, 403 for a bad or expired URL,
            404 for an unknown name, 416 for a range outside the file.
        """
        state = self._state
        counts = state.store.counts
        counts["requests_total"] += 1
        counts["media_requests"] += 1
        fault, early = await self._spoiler.before(request, "media")
        if early is not None:
            return early
        stem, _, extension = request.match_info["name"].rpartition(".")
        content_type = CONTENT_TYPES.get(extension)
        if not stem or content_type is None:
            return web.Response(status=404, text="Not Found")
        expires = request.query.get("expires", "")
        signature = request.query.get("sig", "")
        expected = state.media_signature(f"{stem}.{extension}", expires)
        if not expires.isdigit() or not hmac.compare_digest(signature, expected):
            return web.Response(status=403, text="Forbidden: bad signature")
        if (state.clock.now() + state.clock.wall_offset) * 1000 > int(expires):
            counts["media_expired"] += 1
            return web.Response(status=403, text="Forbidden: the URL has expired")
        data = media_for_extension(extension)
        size = len(data)
        headers = {"Content-Type": content_type}
        status = 200
        if state.config.range_requests:
            headers["Accept-Ranges"] = "bytes"
            wanted = request.headers.get("Range")
            span = parse_range(wanted, size) if wanted else WHOLE
            if span is UNSATISFIABLE:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
            if span is not WHOLE:
                start, end = span
                data = data[start : end + 1]
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
                status = 206
        return await self._spoiler.finish(
            request, data, fault, content_type=content_type, status=status, headers=headers
        )
