"""Quickstart: create a text-to-video task, wait for it, download the video.

Against the real gateway (key and endpoint path from the environment):

    export KLING_API_KEY=... KLING_ENDPOINT_PATH=...
    python examples/quickstart.py "a red fox in fresh snow" --out videos/

Without a key, against the embedded fake gateway (a 100 s generation takes 1 s):

    python examples/quickstart.py --fake

or against a fake you started yourself (``kling-async fake-server --port 8089``):

    KLING_API_KEY=test-key KLING_ENDPOINT_PATH=test-endpoint \
    KLING_BASE_URL=http://127.0.0.1:8089 KLING_TURBO_BASE_URL=http://127.0.0.1:8089 \
    python examples/quickstart.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

from kling_async import KlingSession, TextToVideoRequest


@contextlib.asynccontextmanager
async def connect(use_fake: bool) -> AsyncIterator[KlingSession]:
    """A session for the real gateway (from KLING_* variables) or an in-process fake."""
    if not use_fake:
        async with KlingSession.from_env() as session:
            yield session
        return
    from kling_async.testing import FakeConfig, run_fake_gateway

    # fake.session() scales the SDK's delays to the fake's clock (ClientConfig.time_scaled).
    async with run_fake_gateway(FakeConfig(time_scale=0.01)) as fake, fake.session() as session:
        yield session


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", nargs="?", default="A red fox trots through fresh snow at dawn")
    parser.add_argument("--out", default="videos", help="where to save the video")
    parser.add_argument("--fake", action="store_true", help="use the embedded fake gateway")
    args = parser.parse_args(argv)

    async with connect(args.fake) as session:
        request = TextToVideoRequest(
            model_name="kling-v2-6", prompt=args.prompt, mode="std", duration="5"
        )
        task = await session.text_to_video.create(request)  # validated before sending
        print(f"created task {task.id} ({task.status.value})")
        task = await session.wait(task)  # polls sparingly; raises TaskFailedError on failure
        print(f"task {task.id} {task.status.value}, {task.units} units")
        for file in await session.download(task, args.out):
            print(f"saved {file.path} ({file.size} bytes, sha256 {file.sha256[:12]}...)")


if __name__ == "__main__":
    asyncio.run(main())
