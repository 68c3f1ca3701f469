"""Result files of the fake gateway: valid media, signed expiring URLs, Range requests."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway
from kling_async.testing._media import mp3_bytes, mp4_bytes, png_bytes, wav_bytes

PREFIX = "/v1/ai/test-endpoint/kling"
AUTH = {"Authorization": "Bearer test-key"}


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, tuple[int, int]]:
    """Top-level ISO-BMFF boxes between two offsets: type -> (payload start, payload end)."""
    end = len(data) if end is None else end
    found: dict[bytes, tuple[int, int]] = {}
    offset = start
    while offset < end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        assert size >= 8, f"bad box size at {offset}"
        found[kind] = (offset + 8, offset + size)
        offset += size
    assert offset == end, "boxes do not tile their parent exactly"
    return found


def test_mp4_has_ftyp_moov_and_mdat() -> None:
    """The MP4 starts with ftyp and holds a video trak with avcC and a sample in mdat."""
    data = mp4_bytes()
    assert data[4:8] == b"ftyp"
    top = _boxes(data)
    assert list(top) == [b"ftyp", b"moov", b"mdat"]
    moov = _boxes(data, *top[b"moov"])
    assert set(moov) == {b"mvhd", b"trak"}
    trak = _boxes(data, *moov[b"trak"])
    mdia = _boxes(data, *trak[b"mdia"])
    assert data[mdia[b"hdlr"][0] + 8 : mdia[b"hdlr"][0] + 12] == b"vide"
    minf = _boxes(data, *mdia[b"minf"])
    stbl = _boxes(data, *minf[b"stbl"])
    assert {b"stsd", b"stts", b"stsc", b"stsz", b"stco"} <= set(stbl)
    assert b"avcC" in data[stbl[b"stsd"][0] : stbl[b"stsd"][1]]
    chunk_offset = struct.unpack(">I", data[stbl[b"stco"][1] - 4 : stbl[b"stco"][1]])[0]
    assert chunk_offset == top[b"mdat"][0]
    sample_size = struct.unpack(">I", data[stbl[b"stsz"][1] - 4 : stbl[b"stsz"][1]])[0]
    assert sample_size == top[b"mdat"][1] - top[b"mdat"][0]
    nal_length = struct.unpack(">I", data[chunk_offset : chunk_offset + 4])[0]
    assert nal_length == sample_size - 4
    assert data[chunk_offset + 4] & 0x1F == 5  # an IDR slice
    assert len(data) < 4096


def test_png_has_signature_and_valid_chunks() -> None:
    """The PNG has the signature, IHDR/IDAT/IEND with correct CRCs, and decodable pixels."""
    data = png_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        payload = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF
        chunks.append((kind, payload))
        offset += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, color = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (width, height, depth, color) == (32, 32, 8, 2)
    assert len(zlib.decompress(chunks[1][1])) == height * (1 + width * 3)


def test_wav_has_consistent_riff_header() -> None:
    """The WAV is RIFF/WAVE with a PCM fmt chunk and a data chunk whose sizes add up."""
    data = wav_bytes()
    assert data[:4] == b"RIFF"
    assert data[8:16] == b"WAVEfmt "
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    audio_format, channels, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", data[20:36])
    assert (audio_format, channels, rate, bits) == (1, 1, 8000, 16)
    assert byte_rate == rate * align
    assert data[36:40] == b"data"
    assert struct.unpack("<I", data[40:44])[0] == len(data) - 44


def test_mp3_frames_have_valid_headers() -> None:
    """Every MP3 frame starts with an MPEG-1 Layer III sync header and has the right length."""
    data = mp3_bytes()
    offset = frames = 0
    while offset < len(data):
        header = data[offset : offset + 4]
        assert header[0] == 0xFF
        assert header[1] & 0xE0 == 0xE0  # frame sync
        assert (header[1] >> 3) & 0b11 == 0b11  # MPEG-1
        assert (header[1] >> 1) & 0b11 == 0b01  # Layer III
        bitrate = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320][header[2] >> 4]
        rate = [44100, 48000, 32000][(header[2] >> 2) & 0b11]
        offset += 144 * bitrate * 1000 // rate + ((header[2] >> 1) & 1)
        frames += 1
    assert offset == len(data)
    assert frames == 10


class Fake:
    """A fake plus an HTTP client and a few shortcuts."""

    def __init__(self, fake: FakeGateway, http: aiohttp.ClientSession) -> None:
        self.fake = fake
        self.http = http

    async def finished(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.fake.url}{PREFIX}/{path}"
        async with self.http.post(url, json=body, headers=AUTH) as response:
            task_id = (await response.json())["data"]["task_id"]
        ends = self.fake.task_records()[-1]["completes_at"]
        self.fake.advance(max(0.0, ends - self.fake.now()))
        async with self.http.get(f"{url}/{task_id}", headers=AUTH) as response:
            data: dict[str, Any] = (await response.json())["data"]
            return data


async def _fake(http: aiohttp.ClientSession, **overrides: Any) -> AsyncIterator[Fake]:
    async with run_fake_gateway(FakeConfig(time_scale=0.001, **overrides)) as fake:
        yield Fake(fake, http)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def gateway(http: aiohttp.ClientSession) -> AsyncIterator[Fake]:
    async for fake in _fake(http):
        yield fake


async def _fetch(http: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, Any, bytes]:
    async with http.get(url, headers=headers) as response:
        return response.status, response.headers, await response.read()


async def test_every_output_url_serves_a_valid_file(gateway: Fake) -> None:
    """Videos, images, both audio formats and face crops are served as the real files."""
    video = await gateway.finished("videos/text2video", {"prompt": "x"})
    image = await gateway.finished("images/generations", {"prompt": "x", "n": 2})
    audio = await gateway.finished("audio/text-to-audio", {"prompt": "x", "duration": 3})
    urls = {
        "mp4": video["task_result"]["videos"][0]["url"],
        "png": image["task_result"]["images"][1]["url"],
        "mp3": audio["task_result"]["audios"][0]["url_mp3"],
        "wav": audio["task_result"]["audios"][0]["url_wav"],
    }
    expected = {"mp4": mp4_bytes(), "png": png_bytes(), "mp3": mp3_bytes(), "wav": wav_bytes()}
    types = {"mp4": "video/mp4", "png": "image/png", "mp3": "audio/mpeg", "wav": "audio/wav"}
    for kind, url in urls.items():
        assert "cacheKey=" in url
        status, headers, body = await _fetch(gateway.http, url)
        assert (status, headers["Content-Type"], body) == (200, types[kind], expected[kind])
    async with gateway.http.post(
        f"{gateway.fake.url}{PREFIX}/videos/identify-face",
        json={"video_id": video["task_result"]["videos"][0]["id"]},
        headers=AUTH,
    ) as response:
        face_url = (await response.json())["data"]["face_data"][0]["face_image"]
    assert (await _fetch(gateway.http, face_url))[2][:8] == b"\x89PNG\r\n\x1a\n"
    assert gateway.fake.stats()["media_requests"] == 5


async def test_range_requests_return_partial_content(gateway: Fake) -> None:
    """A byte range gets 206 with Content-Range; a suffix range and an open range work too."""
    video = await gateway.finished("videos/text2video", {"prompt": "x"})
    url = video["task_result"]["videos"][0]["url"]
    whole = mp4_bytes()
    status, headers, body = await _fetch(gateway.http, url, Range="bytes=0-11")
    assert (status, body) == (206, whole[:12])
    assert headers["Content-Range"] == f"bytes 0-11/{len(whole)}"
    assert headers["Accept-Ranges"] == "bytes"
    assert (await _fetch(gateway.http, url, Range="bytes=-4"))[2] == whole[-4:]
    assert (await _fetch(gateway.http, url, Range="bytes=100-"))[2] == whole[100:]
    status, headers, _ = await _fetch(gateway.http, url, Range=f"bytes={len(whole)}-")
    assert (status, headers["Content-Range"]) == (416, f"bytes */{len(whole)}")
    status, _, body = await _fetch(gateway.http, url, Range="bytes=0-1,5-6")
    assert (status, body) == (200, whole)


async def test_range_requests_can_be_switched_off(http: aiohttp.ClientSession) -> None:
    """With range_requests off, Range is ignored: 200 with the whole file, no Accept-Ranges."""
    async for gateway in _fake(http, range_requests=False):
        video = await gateway.finished("videos/text2video", {"prompt": "x"})
        status, headers, body = await _fetch(
            http, video["task_result"]["videos"][0]["url"], Range="bytes=0-11"
        )
        assert (status, body) == (200, mp4_bytes())
        assert "Accept-Ranges" not in headers


async def test_urls_expire_after_url_ttl(http: aiohttp.ClientSession) -> None:
    """A result URL answers 403 once url_ttl seconds have passed since the task ended."""
    async for gateway in _fake(http, url_ttl=60.0):
        video = await gateway.finished("videos/text2video", {"prompt": "x"})
        url = video["task_result"]["videos"][0]["url"]
        assert (await _fetch(http, url))[0] == 200
        gateway.fake.advance(61.0)
        status, _, body = await _fetch(http, url)
        assert (status, body) == (403, b"Forbidden: the URL has expired")
        assert gateway.fake.stats()["media_expired"] == 1


async def test_tampered_urls_are_forbidden(gateway: Fake) -> None:
    """Changing a signed URL (its expiry or its file) gets 403; unknown file types 404."""
    video = await gateway.finished("videos/text2video", {"prompt": "x"})
    url = video["task_result"]["videos"][0]["url"]
    later = url.replace("expires=", "expires=9")
    other = url.replace(".mp4?", "0.mp4?")
    assert (await _fetch(gateway.http, later))[0] == 403
    assert (await _fetch(gateway.http, other))[0] == 403
    assert (await _fetch(gateway.http, url.replace(".mp4?", ".exe?")))[0] == 404


async def test_watermarked_copies_are_served(gateway: Fake) -> None:
    """With watermark_info enabled, watermark_url points to a served file as well."""
    video = await gateway.finished(
        "videos/text2video", {"prompt": "x", "watermark_info": {"enabled": True}}
    )
    url = video["task_result"]["videos"][0]["watermark_url"]
    assert (await _fetch(gateway.http, url))[2] == mp4_bytes()


async def test_media_faults_can_be_injected(gateway: Fake) -> None:
    """Downloads can be truncated or refused on demand."""
    video = await gateway.finished("videos/text2video", {"prompt": "x"})
    url = video["task_result"]["videos"][0]["url"]
    gateway.fake.inject("truncated", on="media")
    with pytest.raises(aiohttp.ClientPayloadError):
        await _fetch(gateway.http, url)
    gateway.fake.inject("http_503", on="media")
    assert (await _fetch(gateway.http, url))[0] == 503
    assert (await _fetch(gateway.http, url))[0] == 200
