"""Downloads against a real loopback server: atomic, checked, skipping complete files."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kling_async import DownloadError, KlingError, KlingSession, URLExpiredError

PAYLOAD = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


@pytest.fixture
async def media_server() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """A loopback server with a good file, an expired one and a truncated one."""
    hits: dict[str, int] = {}

    async def good(request: web.Request) -> web.Response:
        hits["good"] = hits.get("good", 0) + 1
        return web.Response(body=PAYLOAD, content_type="video/mp4")

    async def expired(request: web.Request) -> web.Response:
        return web.Response(status=403, text="expired")

    async def short(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(PAYLOAD))})
        await response.prepare(request)
        await response.write(PAYLOAD[:100])
        assert request.transport is not None
        request.transport.close()
        return response

    app = web.Application()
    app.router.add_get("/good.mp4", good)
    app.router.add_get("/expired.mp4", expired)
    app.router.add_get("/short.mp4", short)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), hits
    finally:
        await server.close()


def _session() -> KlingSession:
    return KlingSession(api_key="k", endpoint_path="e", base_url="http://127.0.0.1:9")


async def test_download_writes_atomically_and_reports_digest(
    media_server: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    """The file lands complete with its size and sha256; no temporary file stays behind."""
    base, _ = media_server
    async with _session() as s:
        result = await s.download_url(f"{base}/good.mp4?sig=abc", tmp_path / "out" / "a.mp4")
    assert result.path.read_bytes() == PAYLOAD
    assert result.size == len(PAYLOAD)
    assert result.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert not result.skipped
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.mp4"]


async def test_identical_file_is_skipped(
    media_server: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    """With a known sha256 an identical file is kept without any request."""
    base, hits = media_server
    target = tmp_path / "a.mp4"
    target.write_bytes(PAYLOAD)
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    async with _session() as s:
        result = await s.download_url(f"{base}/good.mp4", target, expected_sha256=digest)
    assert result.skipped
    assert hits.get("good", 0) == 0


async def test_expired_url_is_typed(
    media_server: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    """A 403 raises URLExpiredError without leaving a partial file or the query string."""
    base, _ = media_server
    async with _session() as s:
        with pytest.raises(URLExpiredError) as info:
            await s.download_url(f"{base}/expired.mp4?signature=SECRETSIG", tmp_path / "x.mp4")
    assert "SECRETSIG" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


async def test_truncated_body_never_replaces_the_file(
    media_server: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    """A body cut short raises and leaves the previous file untouched."""
    base, _ = media_server
    target = tmp_path / "a.mp4"
    target.write_bytes(b"old")
    async with _session() as s:
        with pytest.raises(KlingError):
            await s.download_url(f"{base}/short.mp4", target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]


async def test_wrong_digest_is_refused(
    media_server: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    """An integrity mismatch raises DownloadError and writes nothing."""
    base, _ = media_server
    async with _session() as s:
        with pytest.raises(DownloadError, match="sha256"):
            await s.download_url(f"{base}/good.mp4", tmp_path / "a.mp4", expected_sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []
