"""``kling-async demo``: a real batch against the embedded fake, valid media, a summary."""

from __future__ import annotations

import io
import struct
import zlib
from collections import Counter
from pathlib import Path

import pytest

from kling_async import cli as _cli
from kling_async._endpoints import endpoint_for_request
from kling_async._media import image_info
from kling_async._validation import validate_request
from kling_async.cli import _progress
from kling_async.cli._progress import ProgressReporter, print_summary
from kling_async.cli._settings import scaled_poll_policy
from kling_async.cli.demo import demo_jobs, demo_png


def is_mp4(data: bytes) -> bool:
    """An ISO-BMFF file starts with a box whose type is ``ftyp``."""
    return len(data) >= 12 and data[4:8] == b"ftyp"


def is_png(data: bytes) -> bool:
    """PNG signature, then an IHDR chunk with a correct CRC."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR":
        return False
    (length,) = struct.unpack(">I", data[8:12])
    crc = struct.unpack(">I", data[16 + length : 20 + length])[0]
    return crc == zlib.crc32(data[12 : 16 + length]) & 0xFFFFFFFF


def is_wav(data: bytes) -> bool:
    """``RIFF`` size ``WAVE``, with the RIFF size matching the file."""
    return (
        data[:4] == b"RIFF"
        and data[8:12] == b"WAVE"
        and struct.unpack("<I", data[4:8])[0] == len(data) - 8
    )


def is_mp3(data: bytes) -> bool:
    """An ID3 tag, or an MPEG audio frame sync (11 set bits)."""
    return data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


CHECKS = {".mp4": is_mp4, ".png": is_png, ".wav": is_wav, ".mp3": is_mp3}


def test_demo_exits_0_prints_summary_and_saves_valid_media(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo runs a mixed batch to the end, prints the summary and saves playable files."""
    out = tmp_path / "demo"
    code = _cli.main(
        ["demo", "--jobs", "8", "--out", str(out), "--time-scale", "0.002", "--progress", "plain"]
    )
    printed = capsys.readouterr().out
    assert code == 0
    for label in ("Jobs", "Succeeded", "Failed", "Units charged", "Polls per task", "Wall time"):
        assert label in printed
    assert "Throttled" not in printed  # refused probes are named for what they cost: nothing
    assert "Traceback" not in printed
    files = [p for p in out.iterdir() if p.suffix in CHECKS]
    by_type = Counter(p.suffix for p in files)
    assert set(by_type) == {".mp4", ".png", ".wav", ".mp3"}
    for path in files:
        assert CHECKS[path.suffix](path.read_bytes()), path.name


def test_demo_png_meets_the_image_limits() -> None:
    """The generated first frame is a valid PNG of at least 300 px a side."""
    data = demo_png()
    assert is_png(data)
    info = image_info(data)
    assert info.width is not None
    assert info.height is not None
    assert min(info.width, info.height) >= 300


def test_demo_jobs_are_valid_and_mixed() -> None:
    """The demo's jobs pass validation and cover four families, with unique keys."""
    jobs = demo_jobs(24)
    assert len({key for key, _ in jobs}) == 24
    assert all(validate_request(request) == [] for _, request in jobs)
    families = Counter(endpoint_for_request(request).name for _, request in jobs)
    assert families == {
        "text2video": 6,
        "image2video": 6,
        "image-generation": 6,
        "text-to-audio": 6,
    }


def test_scaled_poll_policy_shrinks_the_priors() -> None:
    """A compressed clock scales the first poll and the intervals, never to zero."""
    policy = scaled_poll_policy(0.01)
    assert policy.initial_delay == pytest.approx(0.2)
    assert 0 < policy.interval <= 0.05
    assert policy.max_interval >= policy.interval


def test_plain_progress_line_counts_states() -> None:
    """Plain progress shows done/total and per-state counts; ETA is unknown before any end."""
    reporter = ProgressReporter(4, title="jobs", mode="plain", stream=io.StringIO())
    assert "ETA --:--" in reporter.plain_line()
    reporter.set_state("a", "processing")
    reporter.set_state("b", "succeeded")
    reporter.set_state("b", "processing")  # late events never revive a finished job
    line = reporter.plain_line()
    assert line.startswith("jobs: 1/4 done (25%)")
    assert "queued 2" in line
    assert "processing 1" in line
    assert "succeeded 1" in line


async def test_plain_progress_prints_periodic_lines() -> None:
    """Off a terminal the reporter writes plain lines and a last one on exit."""
    stream = io.StringIO()
    async with ProgressReporter(2, title="t", mode="auto", stream=stream, interval=0.01) as rep:
        assert rep.mode == "plain"  # a StringIO is no terminal
        rep.set_state("a", "succeeded")
        rep.set_state("b", "failed")
    assert stream.getvalue().splitlines()[-1].startswith("t: 2/2 done (100%)")


def test_summary_falls_back_to_plain_text_without_rich(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the optional rich package the summary is an aligned plain table."""
    monkeypatch.setattr(_progress, "rich_available", lambda: False)
    stream = io.StringIO()
    print_summary([("Jobs", "3"), ("Units charged", "1.5")], title="S", stream=stream)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "S"
    assert lines[2].startswith("Jobs")
    assert lines[2].endswith("3")


async def test_rich_progress_draws_bar_counts_and_note() -> None:
    """The rich display renders the bar, the per-state counts and the last note."""
    stream = io.StringIO()
    async with ProgressReporter(2, title="jobs", mode="rich", stream=stream) as reporter:
        reporter.set_state("a", "succeeded")
        reporter.set_state("b", "processing")
        reporter.count("throttled")
        reporter.note("Stopping: no new jobs")
    text = stream.getvalue()
    assert "1/2" in text
    assert "processing 1" in text
    assert "succeeded 1" in text
    assert "throttled 1" in text
    assert "Stopping: no new jobs" in text
