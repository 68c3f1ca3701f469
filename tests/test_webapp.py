"""graceful_shutdown(): stop admitting, drain while the app still serves callbacks, then close."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from kling_async import (
    Batch,
    CallbackReceiver,
    ImageGenerationRequest,
    ImageToVideoRequest,
    KlingSession,
    TextToVideoRequest,
    VideoExtendRequest,
    graceful_shutdown,
    wait_for_signal,
)
from kling_async._journal import JobState, Journal
from kling_async.batch import Event, EventKind
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway
from kling_async.testing._pytest_plugin import fast_session_options

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")

SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
GUARD = 60.0  # seconds; only to turn a hang into a failure, never a timing check
#: Tasks that never end by themselves: the tests end them with fake.advance().
STILL = {"time_scale": 1.0, "video_median": 1_000.0, "video_sigma": 0.0}
END = 2_000.0  # fake-clock seconds: every STILL task has ended, no result URL expired yet
BATCH = web.AppKey("batch", Batch)


class App:
    """An aiohttp app with a callback route and one batch in its cleanup context."""

    def __init__(self, session: KlingSession, out: Path, **batch_options: Any) -> None:
        self.session = session
        self.out = out
        self.options = batch_options
        self.receiver: CallbackReceiver | None = None
        self.created = 0
        self.all_created = anyio.Event()
        self.expected = 0

    def on_event(self, event: Event) -> None:
        if event.kind is EventKind.CREATED:
            self.created += 1
            if self.created == self.expected:
                self.all_created.set()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[web.AppRunner]:
        app = web.Application()

        async def context(app: web.Application) -> AsyncIterator[None]:
            assert self.receiver is not None
            async with self.session.batch(
                callbacks=self.receiver,
                journal=self.out / "web.db",
                download_dir=self.out,
                on_event=self.on_event,
                **self.options,
            ) as batch:
                app[BATCH] = batch
                yield

        async def on_callback(request: web.Request) -> web.Response:
            assert self.receiver is not None
            return await self.receiver.handle(request)

        app.cleanup_ctx.append(context)
        app.router.add_post("/kling/callback", on_callback)
        runner = web.AppRunner(app, access_log=None)
        site_sock = socket.socket()
        site_sock.bind(("127.0.0.1", 0))
        port = site_sock.getsockname()[1]
        self.receiver = CallbackReceiver(
            secret=SECRET, public_url=f"http://127.0.0.1:{port}/kling/callback"
        )
        await runner.setup()
        await web.SockSite(runner, site_sock).start()
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield runner
        finally:
            await runner.cleanup()  # a no-op after graceful_shutdown


@contextlib.asynccontextmanager
async def fake_and_session(**config: Any) -> AsyncIterator[tuple[FakeGateway, KlingSession]]:
    async with (
        run_fake_gateway(FakeConfig(webhook_secret=SECRET, **config)) as fake,
        fake.session(**fast_session_options(0.001)) as session,
    ):
        yield fake, session


async def test_the_app_serves_callbacks_until_running_tasks_end(tmp_path: Path) -> None:
    """Stopped with 3 running and 7 queued: the 3 end through callbacks, 0 more creates, closed."""
    async with fake_and_session(max_running=3, **STILL) as (fake, session):
        app = App(session, tmp_path, max_running=3)
        app.expected = 3
        with anyio.fail_after(GUARD):
            async with app.serving() as runner:
                batch = runner.app[BATCH]
                batch.submit_all(
                    [(f"v{i}", TextToVideoRequest(prompt=f"a tern {i}")) for i in range(10)]
                )
                await app.all_created.wait()
                heard = app.receiver.received if app.receiver else 0
                fake.advance(END)  # the running tasks end; the gateway calls back
                left = await graceful_shutdown(runner, BATCH, grace=GUARD)
                with pytest.raises(aiohttp.ClientConnectionError):
                    async with aiohttp.ClientSession() as client:
                        await client.post(f"{app.url}/kling/callback", data=b"{}")
        stats = fake.stats()
    assert left == 0
    assert stats["creates"] == 3
    assert app.receiver is not None
    assert app.receiver.received > heard  # heard while draining, before the site closed
    summary = batch.summary()
    assert (summary.succeeded, summary.not_started) == (3, 7)
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["v0.mp4", "v1.mp4", "v2.mp4"]


async def test_wait_for_signal_returns_the_signal_received() -> None:
    """wait_for_signal() returns when one of its signals arrives, and says which."""
    async with anyio.create_task_group() as tg:
        received: list[signal.Signals] = []

        async def waiter() -> None:
            received.append(await wait_for_signal((signal.SIGUSR1,)))

        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        os.kill(os.getpid(), signal.SIGUSR1)
    assert received == [signal.SIGUSR1]


async def test_a_second_signal_cuts_the_grace_short(tmp_path: Path) -> None:
    """A signal during the grace period: the app closes at once, running tasks stay created."""
    async with fake_and_session(max_running=2, **STILL) as (fake, session):
        app = App(session, tmp_path, max_running=2)
        app.expected = 2
        with anyio.fail_after(GUARD):
            # The signalling task's group is entered before the app is set up: the
            # batch's task group must be left at the level where it was entered.
            async with anyio.create_task_group() as tg, app.serving() as runner:
                runner.app[BATCH].submit_all([TextToVideoRequest(prompt="a puffin")] * 2)
                await app.all_created.wait()

                async def second_signal() -> None:
                    await anyio.wait_all_tasks_blocked()  # the grace period has begun
                    os.kill(os.getpid(), signal.SIGUSR1)

                tg.start_soon(second_signal)
                left = await graceful_shutdown(
                    runner, BATCH, grace=GUARD, signals=(signal.SIGUSR1,)
                )
        assert fake.stats()["creates"] == 2
    assert left == 2
    reader = Journal(tmp_path / "web.db")
    try:
        assert {e.state for e in reader.entries()} == {JobState.CREATED}
    finally:
        reader.close()


async def test_without_a_batch_only_the_app_is_closed() -> None:
    """graceful_shutdown(runner, None) cleans the runner up and reports nothing left."""
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    assert await graceful_shutdown(runner, None) == 0
    assert runner.sites == set()


async def test_pipelines_share_one_sessions_slots(kling_fake_factory: Any) -> None:
    """8 chains image -> video -> extend on one session at twice its quota: all end, no 1303."""
    async with kling_fake_factory(max_running=2) as fake:
        async with fake.session(max_running=2) as session:

            async def chain(i: int) -> str:
                image = await session.image_generation.run(
                    ImageGenerationRequest(prompt=f"a harbour {i}", n=1)
                )
                video = await session.image_to_video.run(
                    ImageToVideoRequest(image=image.images[0].url, prompt="waves roll in")
                )
                assert video.videos[0].id is not None
                final = await session.video_extend.run(
                    VideoExtendRequest(video_id=video.videos[0].id, prompt="the tide turns")
                )
                return final.status.value

            with anyio.fail_after(GUARD):
                statuses = []
                async with anyio.create_task_group() as tg:
                    for i in range(8):

                        async def one(i: int = i) -> None:
                            statuses.append(await chain(i))

                        tg.start_soon(one)
        stats = fake.stats()
    assert statuses == ["succeed"] * 8
    assert stats["creates"] == 24
    assert stats["concurrency_limited"] == 0
    assert stats["max_running_observed"] <= 2
