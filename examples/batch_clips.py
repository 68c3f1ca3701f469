"""Batch: hundreds of clips from a text file, one prompt per line, resumable.

    python examples/batch_clips.py prompts.txt --out clips/ --max-running 10

The scheduler keeps your account's concurrency slots full (``--max-running``: your
quota; 1303 answers shrink it if it is too high), polls sparingly, downloads each
clip as it finishes and records every step in a journal (``clips/journal.sqlite``).
Interrupt it (Ctrl-C, a crash, a reboot) and run the same command again: finished
clips are not paid for twice, running tasks are picked up where they were.

Against the real gateway set KLING_API_KEY and KLING_ENDPOINT_PATH. To try it
without a key (embedded fake gateway, compressed clock):

    python examples/batch_clips.py --fake --count 300
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from kling_async import KlingSession, TextToVideoRequest


@contextlib.asynccontextmanager
async def connect(use_fake: bool) -> AsyncIterator[KlingSession]:
    """A session for the real gateway (from KLING_* variables) or an in-process fake."""
    if not use_fake:
        async with KlingSession.from_env() as session:
            yield session
        return
    from kling_async.testing import FakeConfig, run_fake_gateway

    # A fake with a 10-slot quota whose clock runs 200x fast (a 100 s clip takes 0.5 s).
    # fake.session() scales the SDK's delays to the fake's clock (ClientConfig.time_scaled).
    config = FakeConfig(time_scale=0.005, max_running=10)
    async with run_fake_gateway(config) as fake, fake.session() as session:
        yield session


def read_prompts(path: Path | None, count: int) -> list[str]:
    """Non-empty lines of the file; without a file, ``count`` made-up prompts."""
    if path is None:
        subjects = ["a lighthouse", "a fox", "a paper boat", "a city tram", "a hot air balloon"]
        return [f"{subjects[i % len(subjects)]} at dawn, shot {i + 1}" for i in range(count)]
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def jobs(prompts: list[str]) -> Iterator[tuple[str, TextToVideoRequest]]:
    """(key, request) pairs, made lazily. The key names the job in the journal."""
    for number, prompt in enumerate(prompts, start=1):
        yield (
            f"clip-{number:05d}",
            TextToVideoRequest(model_name="kling-v2-6", prompt=prompt, mode="std", duration="5"),
        )


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompts", nargs="?", type=Path, help="text file, one prompt per line")
    parser.add_argument("--out", type=Path, default=Path("clips"), help="where clips go")
    parser.add_argument("--max-running", type=int, default=10, help="your concurrency quota")
    parser.add_argument("--fake", action="store_true", help="use the embedded fake gateway")
    parser.add_argument("--count", type=int, default=300, help="prompts to make up (no file)")
    args = parser.parse_args(argv)
    if args.prompts is None and not args.fake:
        parser.error("give a prompts file (or --fake to try it with made-up prompts)")
    prompts = read_prompts(args.prompts, args.count)

    started = time.monotonic()
    async with connect(args.fake) as session:
        async with session.batch(
            max_running=args.max_running,
            journal=args.out / "journal.sqlite",
            download_dir=args.out,
        ) as batch:
            batch.submit_all(jobs(prompts))
            async for result in batch:  # in completion order
                if result.ok:
                    files = ", ".join(f.path.name for f in result.files)
                    print(f"{result.key}: ok {files}" + (" (from journal)" * result.resumed))
                else:
                    print(f"{result.key}: {result.status}: {result.error}")
        summary = batch.summary()
    print(
        f"{summary.succeeded}/{len(prompts)} clips in {time.monotonic() - started:.1f} s, "
        f"{summary.units:g} units, {summary.polls_per_task:.1f} polls per task, "
        f"{summary.failed} failed, {summary.errors} errors, {summary.not_started} not started"
    )
    return 0 if summary.succeeded == len(prompts) else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
