"""``kling-async demo``: a real batch against the embedded fake gateway, no key, no network.

The demo starts :mod:`kling_async.testing`'s fake gateway on loopback with a
compressed clock (a 100 s generation takes 3 s), runs a mixed batch through the
batch command's own :func:`~kling_async.cli.batch.run_batch` (text-to-video,
image-to-video from a generated PNG, image generation, text-to-audio) with live
progress, downloads every output (playable MP4, PNG, MP3 and WAV files), writes
``OUT/results.jsonl`` and ``OUT/report.html`` exactly as ``kling-async batch`` does,
and prints the summary with a link to the report.
"""

from __future__ import annotations

import argparse
import math
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any, TextIO

from .._endpoints import endpoint_for_request
from .._media import encode_image
from .._models import (
    ImageGenerationRequest,
    ImageToVideoRequest,
    Request,
    TextToAudioRequest,
    TextToVideoRequest,
)
from ..testing import FakeConfig, run_fake_gateway
from ._common import HelpFormatter, positive_int
from ._jobs import Job
from ._progress import Mode, ProgressReporter
from ._results import print_batch_summary, write_results
from ._settings import add_time_scale_argument, scaled_poll_policy, scaled_retry_policy
from .batch import BatchRun, exit_status, run_batch
from .report import write_run_report

__all__ = ["add_parser", "demo_jobs", "demo_png", "run", "run_demo"]

_VIDEO_PROMPTS = (
    "A red fox trots through fresh snow at dawn, breath misting, slow tracking shot",
    "Waves roll onto a black sand beach under a violet sky, drone shot pulling back",
    "A paper boat drifts down a rain-soaked city gutter, macro lens, neon reflections",
    "A hot air balloon rises over terraced rice fields as mist lifts, golden hour",
    "An old lighthouse keeper climbs a spiral staircase, warm lantern light, handheld",
    "Time-lapse of a desert bloom, cacti opening flowers under drifting clouds",
)
_ANIMATE_PROMPTS = (
    "The sun sinks slowly behind the hills while the sky deepens to orange",
    "Clouds drift across the sky and the light shimmers over the hills",
    "A gentle breeze moves through the scene, slow push-in",
)
_IMAGE_PROMPTS = (
    "A watercolor map of an imaginary archipelago, soft pastel palette",
    "A cozy reading nook with a cat asleep on a stack of books, film photo",
    "Isometric illustration of a tiny robot repair shop at night",
)
_AUDIO_PROMPTS = (
    "Rain on a tin roof with distant thunder",
    "A crackling campfire and crickets at night",
    "Footsteps on gravel, then a creaking wooden gate",
)


def demo_png(width: int = 480, height: int = 320) -> bytes:
    """A valid RGB PNG (a sunset over hills), big enough for the image APIs (≥ 300 px).

    Args:
        width: Pixels.
        height: Pixels.

    Returns:
        The file's bytes.
    """
    rows = bytearray()
    sun_x, sun_y, sun_r = width * 0.62, height * 0.55, height * 0.16
    for y in range(height):
        rows.append(0)  # filter: none
        sky = y / max(1, height - 1)
        for x in range(width):
            hill = height * (0.72 + 0.08 * math.sin(x / width * 2 * math.pi * 1.5))
            if y >= hill:
                shade = int(40 + 30 * (y - hill) / max(1.0, height - hill))
                rows += bytes((20, shade + 40, 30))
            elif (x - sun_x) ** 2 + (y - sun_y) ** 2 <= sun_r**2:
                rows += bytes((255, 214, 90))
            else:
                rows += bytes((int(60 + 190 * sky), int(40 + 90 * sky), int(140 - 60 * sky)))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def demo_jobs(count: int) -> list[tuple[str, Request]]:
    """A deterministic mix of ``count`` jobs over four families.

    Args:
        count: How many jobs.

    Returns:
        ``(key, request)`` pairs: text-to-video, image-to-video (from
        :func:`demo_png`), image generation and text-to-audio, in turn.
    """
    image = encode_image(demo_png())
    jobs: list[tuple[str, Request]] = []
    for i in range(count):
        kind = i % 4
        n = i // 4
        request: Request
        if kind == 0:
            key = f"t2v-{n + 1:03d}"
            request = TextToVideoRequest(
                model_name="kling-v2-6",
                prompt=_VIDEO_PROMPTS[n % len(_VIDEO_PROMPTS)],
                mode="pro" if n % 3 == 2 else "std",
                duration="10" if n % 2 else "5",
                aspect_ratio="16:9",
            )
        elif kind == 1:
            key = f"i2v-{n + 1:03d}"
            request = ImageToVideoRequest(
                model_name="kling-v2-6",
                image=image,
                prompt=_ANIMATE_PROMPTS[n % len(_ANIMATE_PROMPTS)],
                mode="std",
                duration="5",
            )
        elif kind == 2:
            key = f"img-{n + 1:03d}"
            request = ImageGenerationRequest(
                model_name="kling-v2-1",
                prompt=_IMAGE_PROMPTS[n % len(_IMAGE_PROMPTS)],
                n=1 + n % 2,
                aspect_ratio="1:1" if n % 2 else "16:9",
            )
        else:
            key = f"sfx-{n + 1:03d}"
            request = TextToAudioRequest(
                prompt=_AUDIO_PROMPTS[n % len(_AUDIO_PROMPTS)], duration=5.0
            )
        jobs.append((key, request))
    return jobs


async def run_demo(
    *,
    jobs: int = 24,
    out: Path,
    time_scale: float = 0.03,
    seed: int = 0,
    progress: Mode = "auto",
    stream: TextIO | None = None,
    backend: str = "gateway",
) -> int:
    """Run the demo, write ``out/results.jsonl`` and print the summary.

    Args:
        jobs: Number of jobs.
        out: Directory for the outputs (created if missing).
        time_scale: The fake's clock factor; the SDK's delays are scaled alike.
        seed: The fake's seed.
        progress: Progress display mode.
        stream: Where to print (default ``sys.stdout``).
        backend: ``"gateway"`` (the fake's API key and endpoint path) or
            ``"kling"`` (the fake's official routes, with its access/secret key
            pair: tokens signed and checked, classic tasks watched by list query).

    Returns:
        The exit status, as ``kling-async batch`` would give it (0: all succeeded).
    """
    started = time.monotonic()
    quota = 8
    fake_config = FakeConfig(time_scale=time_scale, max_running=quota, seed=seed)
    work = [
        Job(line=n, key=key, endpoint=endpoint_for_request(request), request=request)
        for n, (key, request) in enumerate(demo_jobs(jobs), start=1)
    ]
    journal = _fresh_journal(out)
    write = stream.write if stream is not None else sys.stdout.write
    async with run_fake_gateway(fake_config) as fake:
        api = "Kling's own API (key pair)" if backend == "kling" else "the gateway"
        write(
            f"kling-async demo: {jobs} jobs against the embedded fake gateway, as {api}\n"
            f"  at {fake.url}, clock x{1 / time_scale:.0f}"
            f" (a 100 s generation takes {100 * time_scale:g} s),\n"
            f"  concurrency quota {quota}; outputs in {out}/\n"
        )
        reporter = ProgressReporter(
            len(work),
            title="demo",
            stream=stream,
            mode=progress,
            families={job.key: job.endpoint.name for job in work},
            slots=quota,
        )
        session = fake.session(
            backend=backend,
            poll=scaled_poll_policy(time_scale),
            retry=scaled_retry_policy(time_scale),
        )
        async with session:
            outcome = await run_batch(
                BatchRun(
                    session=session,
                    jobs=work,
                    reporter=reporter,
                    batch_options={"max_running": quota, "journal": journal, "download_dir": out},
                )
            )
        stats = fake.stats()
    results = out / "results.jsonl"
    records = write_results(results, work, outcome)
    page = write_run_report(out)
    print_batch_summary(
        outcome,
        records,
        title="kling-async demo",
        extra=[
            ("Server creates", str(stats.get("creates", "?"))),
            ("Wall time", f"{time.monotonic() - started:.1f} s"),
            ("Outputs", f"{out}/"),
            ("Results", str(results)),
        ],
        details=results,
        stream=stream,
    )
    if page is not None:
        write(f"Open the report to watch and hear every output: {page.resolve().as_uri()}\n")
    return exit_status(outcome, records)


def _fresh_journal(out: Path) -> Path:
    """Make ``out`` and clear an earlier demo's journal: a demo always starts afresh."""
    out.mkdir(parents=True, exist_ok=True)
    journal = out / "journal.sqlite"
    for stale in (journal, out / "journal.sqlite-wal", out / "journal.sqlite-shm"):
        stale.unlink(missing_ok=True)
    return journal


async def run(args: argparse.Namespace) -> int:
    """Run the ``demo`` command.

    Args:
        args: Parsed arguments.

    Returns:
        The exit status.
    """
    return await run_demo(
        jobs=args.jobs,
        out=Path(args.out),
        time_scale=args.time_scale,
        seed=args.seed,
        progress=args.progress,
        backend=args.backend,
    )


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` command.

    Args:
        sub: The subparsers object of the main parser.

    Returns:
        The command's parser.
    """
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="run a mixed batch against the embedded fake gateway (no key, no network)",
        formatter_class=HelpFormatter,
        description="Start the fake gateway in-process with a compressed clock, run a mixed "
        "batch (text-to-video, image-to-video, image generation, text-to-audio) with live "
        "progress, download every output, write OUT/results.jsonl and OUT/report.html (open "
        "it in a browser to watch every output) and print a summary.",
    )
    parser.add_argument(
        "--jobs", type=positive_int, default=24, help="jobs to run (default: %(default)s)"
    )
    parser.add_argument(
        "--out", default="kling-demo", metavar="DIR", help="where outputs go (default: %(default)s)"
    )
    add_time_scale_argument(
        parser,
        default=0.03,
        help_text="clock factor of the fake, and of the SDK's delays: 0.03 turns a 100 s "
        "generation into 3 s (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the fake's random choices (default: %(default)s)",
    )
    parser.add_argument(
        "--backend",
        choices=("gateway", "kling"),
        default="gateway",
        help="which API the fake plays: the gateway, or Kling's own API signed with the "
        "fake's access/secret key pair (default: %(default)s)",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "rich", "plain", "off"),
        default="auto",
        help="progress display: auto is bars on a terminal, plain lines otherwise "
        "(default: %(default)s)",
    )
    return parser
