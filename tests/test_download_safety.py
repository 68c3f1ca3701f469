"""Downloads you can trust, on a loopback server: skips, names, redirects, caps, threads."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kling_async import DownloadError
from kling_async import _download as download_module
from kling_async._download import download_url
from kling_async._filenames import output_name
from kling_async._transport import AiohttpTransport

PAYLOAD = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
OTHER = bytes(reversed(PAYLOAD))  # same size, other content
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class _Chunks:
    """A streamed answer, as the download code sees one."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self._response = response

    async def iter_chunks(self, size: int) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_chunked(size):
            yield chunk


class ManualRedirectTransport:
    """A minimal transport whose stream can leave redirects to the caller."""

    def __init__(self) -> None:
        self.session = aiohttp.ClientSession()
        self.opened: list[str] = []

    @asynccontextmanager
    async def stream(
        self, url: str, *, timeout: float, follow_redirects: bool = True
    ) -> AsyncIterator[_Chunks]:
        self.opened.append(url)
        async with self.session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=follow_redirects
        ) as response:
            yield _Chunks(response)

    async def send(self, request: Any) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.session.close()


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """A loopback server with files, redirects of every kind, and oversized answers."""
    hits: dict[str, int] = {}

    def count(name: str) -> None:
        hits[name] = hits.get(name, 0) + 1

    async def good(request: web.Request) -> web.Response:
        count("good")
        return web.Response(body=PAYLOAD, content_type="video/mp4")

    async def redirect(request: web.Request) -> web.Response:
        count("redirect")
        raise web.HTTPFound(location=request.query["to"])

    async def chain(request: web.Request) -> web.Response:
        hops = int(request.match_info["hops"])
        if hops == 0:
            return await good(request)
        raise web.HTTPFound(location=f"/chain/{hops - 1}")

    async def announced(request: web.Request) -> web.Response:
        return web.Response(body=bytes(1000))

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(48):
            await response.write(bytes(64 * 1024))
        await response.write_eof()
        return response

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]))

    app = web.Application()
    app.router.add_get("/good.mp4", good)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/chain/{hops}", chain)
    app.router.add_get("/announced", announced)
    app.router.add_get("/endless", endless)
    app.router.add_get("/status/{code}", status)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield str(test_server.make_url("")).rstrip("/"), hits
    finally:
        await test_server.close()


@pytest.fixture
async def transport() -> AsyncIterator[ManualRedirectTransport]:
    """A transport that lets the download check every redirect hop."""
    made = ManualRedirectTransport()
    try:
        yield made
    finally:
        await made.aclose()


async def _get(transport: Any, url: str, path: Path, **options: Any) -> Any:
    return await download_url(transport, url, path, timeout=10.0, **options)


# --- skips -------------------------------------------------------------------------------


async def test_a_file_of_the_right_size_is_not_trusted(
    server: tuple[str, dict[str, int]], transport: ManualRedirectTransport, tmp_path: Path
) -> None:
    """Same size, other content, no recorded digest: fetched again and replaced."""
    base, hits = server
    target = tmp_path / "a.mp4"
    target.write_bytes(OTHER)
    result = await _get(transport, f"{base}/good.mp4", target)
    assert not result.skipped
    assert hits["good"] == 1
    assert target.read_bytes() == PAYLOAD


async def test_a_file_is_skipped_only_when_its_digest_matches(
    server: tuple[str, dict[str, int]], transport: ManualRedirectTransport, tmp_path: Path
) -> None:
    """A matching sha256 keeps the file without a request; a stale one is refetched."""
    base, hits = server
    target = tmp_path / "a.mp4"
    target.write_bytes(PAYLOAD)
    kept = await _get(transport, f"{base}/good.mp4", target, expected_sha256=DIGEST)
    assert kept.skipped
    assert hits.get("good", 0) == 0
    target.write_bytes(OTHER)
    fetched = await _get(transport, f"{base}/good.mp4", target, expected_sha256=DIGEST)
    assert not fetched.skipped
    assert hits["good"] == 1
    assert target.read_bytes() == PAYLOAD


# --- names -------------------------------------------------------------------------------


async def test_hostile_keys_land_inside_the_folder_under_distinct_names(
    server: tuple[str, dict[str, int]], transport: ManualRedirectTransport, tmp_path: Path
) -> None:
    """'..', '/', control characters, 1,000 characters, 'a/b' vs 'a_b': all safe, all distinct."""
    base, _ = server
    out = tmp_path / "out"
    keys = ["..", ".", "a/b", "a_b", "../../escape", "tab\there\n", "x" * 1000, "", "A", "a"]
    for key in keys:
        name = output_name(key, 0, 1, "mp4")
        await _get(transport, f"{base}/good.mp4", out / name, within=out)
    saved = sorted(p.name for p in out.iterdir())
    assert len(saved) == len(keys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert all(len(name) <= 100 and not name.startswith(".") for name in saved)


@pytest.mark.parametrize(
    ("name", "reason"),
    [("..", "not a file name"), ("a\nb.mp4", "control"), ("y" * 300 + ".mp4", "too long")],
)
async def test_a_hostile_file_name_is_a_typed_error_before_any_request(
    server: tuple[str, dict[str, int]],
    transport: ManualRedirectTransport,
    tmp_path: Path,
    name: str,
    reason: str,
) -> None:
    """Names that cannot be plain files raise DownloadError (never OSError); nothing is fetched."""
    base, hits = server
    with pytest.raises(DownloadError, match=reason) as info:
        await _get(transport, f"{base}/good.mp4", tmp_path / name)
    assert str(tmp_path) not in str(info.value)
    assert hits == {}
    assert transport.opened == []


async def test_a_path_the_disk_refuses_is_a_typed_error(
    server: tuple[str, dict[str, int]], transport: ManualRedirectTransport, tmp_path: Path
) -> None:
    """A folder path beyond the system's limit gives DownloadError naming only the file."""
    base, _ = server
    deep = tmp_path.joinpath(*["d" * 200] * 30)
    with pytest.raises(DownloadError, match=r"cannot save 'a\.mp4'") as info:
        await _get(transport, f"{base}/good.mp4", deep / "a.mp4")
    assert "d" * 200 not in str(info.value)
    assert not isinstance(info.value.__cause__, OSError)


async def test_a_path_outside_its_folder_is_refused(
    server: tuple[str, dict[str, int]], transport: ManualRedirectTransport, tmp_path: Path
) -> None:
    """With within=, a destination that climbs out of the folder is refused."""
    base, _ = server
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match="outside its folder"):
        await _get(transport, f"{base}/good.mp4", out / ".." / "x.mp4", within=out)
    assert not (tmp_path / "x.mp4").exists()


# --- redirects ---------------------------------------------------------------------------


async def test_a_redirect_to_loopback_is_refused_unless_allowed(
    server: tuple[str, dict[str, int]], transport: ManualRedirectTransport, tmp_path: Path
) -> None:
    """A hop to 127.0.0.1 or localhost is refused; allow_private follows it."""
    base, hits = server
    port = base.rsplit(":", 1)[1]
    for to in (f"{base}/good.mp4", f"http://localhost:{port}/good.mp4", "/good.mp4"):
        with pytest.raises(DownloadError, match="private, loopback or link-local"):
            await _get(transport, f"{base}/redirect?to={to}", tmp_path / "a.mp4")
    assert "good" not in hits
    assert not (tmp_path / "a.mp4").exists()
    result = await _get(
        transport, f"{base}/redirect?to=/good.mp4", tmp_path / "a.mp4", allow_private=True
    )
    assert result.path.read_bytes() == PAYLOAD


@pytest.mark.parametrize("to", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://h/x"])
async def test_a_redirect_to_another_scheme_is_refused_even_when_private_is_allowed(
    server: tuple[str, dict[str, int]], transport: ManualRedirectTransport, tmp_path: Path, to: str
) -> None:
    """Only http and https hops are followed."""
    base, _ = server
    with pytest.raises(DownloadError, match="only http and https"):
        await _get(transport, f"{base}/redirect?to={to}", tmp_path / "a.mp4", allow_private=True)


async def test_at_most_five_redirects_are_followed(
    server: tuple[str, dict[str, int]], transport: ManualRedirectTransport, tmp_path: Path
) -> None:
    """Five hops arrive; six are refused; the limit is configurable."""
    base, _ = server
    done = await _get(transport, f"{base}/chain/5", tmp_path / "a.mp4", allow_private=True)
    assert done.size == len(PAYLOAD)
    with pytest.raises(DownloadError, match="more than 5 redirects"):
        await _get(transport, f"{base}/chain/6", tmp_path / "b.mp4", allow_private=True)
    with pytest.raises(DownloadError, match="more than 1 redirects"):
        await _get(
            transport, f"{base}/chain/2", tmp_path / "c.mp4", allow_private=True, max_redirects=1
        )


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%2", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_only_global_addresses_count_as_public(address: str, public: bool) -> None:
    """Loopback, private, link-local, shared, unspecified and multicast are all refused."""
    assert download_module._is_public(address) is public


async def test_a_redirect_to_a_public_address_passes_the_check() -> None:
    """A global IP literal is accepted as a hop (checked without any connection)."""
    await download_module._check_redirect("https://93.184.216.34/a.mp4", allow_private=False)


@pytest.mark.skipif(
    not download_module._refuses_redirects(AiohttpTransport()),  # type: ignore[arg-type]
    reason="AiohttpTransport.stream has no follow_redirects switch yet (change requested)",
)
async def test_the_default_transport_lets_every_hop_be_checked(
    server: tuple[str, dict[str, int]], tmp_path: Path
) -> None:
    """Through the session's own transport, a loopback redirect is refused too."""
    base, _ = server
    default = AiohttpTransport()
    try:
        with pytest.raises(DownloadError, match="loopback"):
            await download_url(
                default, f"{base}/redirect?to=/good.mp4", tmp_path / "a.mp4", timeout=10.0
            )
    finally:
        await default.aclose()


# --- sizes, statuses, threads ------------------------------------------------------------


async def test_an_announced_length_over_the_cap_is_refused_before_reading(
    server: tuple[str, dict[str, int]], transport: ManualRedirectTransport, tmp_path: Path
) -> None:
    """Content-Length above max_bytes: DownloadError, no file, no temporary file."""
    base, _ = server
    with pytest.raises(DownloadError, match="cap"):
        await _get(transport, f"{base}/announced", tmp_path / "a.bin", max_bytes=999)
    assert list(tmp_path.iterdir()) == []
    ok = await _get(transport, f"{base}/announced", tmp_path / "a.bin", max_bytes=1000)
    assert ok.size == 1000


async def test_a_streamed_body_over_the_cap_is_stopped(
    server: tuple[str, dict[str, int]], transport: ManualRedirectTransport, tmp_path: Path
) -> None:
    """Without Content-Length the bytes are counted; past max_bytes the download stops."""
    base, _ = server
    with pytest.raises(DownloadError, match="cap"):
        await _get(transport, f"{base}/endless", tmp_path / "a.bin", max_bytes=1024 * 1024)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code", [304, 500, 502])
async def test_statuses_other_than_success_are_errors(
    server: tuple[str, dict[str, int]],
    transport: ManualRedirectTransport,
    tmp_path: Path,
    code: int,
) -> None:
    """A 304 or a 5xx never becomes a file."""
    base, _ = server
    with pytest.raises(DownloadError) as info:
        await _get(transport, f"{base}/status/{code}", tmp_path / "a.bin")
    assert info.value.http_status == code
    assert list(tmp_path.iterdir()) == []


async def test_writes_and_fsync_run_off_the_event_loop(
    server: tuple[str, dict[str, int]],
    transport: ManualRedirectTransport,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every write and the final flush + fsync happen in a worker thread."""
    base, _ = server
    loop_thread = threading.current_thread()
    seen: list[threading.Thread] = []
    write, finish = download_module._write, download_module._finish

    def spy_write(handle: BinaryIO, data: bytes) -> None:
        seen.append(threading.current_thread())
        write(handle, data)

    def spy_finish(handle: BinaryIO) -> None:
        seen.append(threading.current_thread())
        finish(handle)

    monkeypatch.setattr(download_module, "_write", spy_write)
    monkeypatch.setattr(download_module, "_finish", spy_finish)
    await _get(transport, f"{base}/endless", tmp_path / "a.bin")
    assert len(seen) >= 3  # three 1 MiB batches and the finish
    assert loop_thread not in seen
