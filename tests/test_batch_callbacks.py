"""Callbacks can't fake success, and callbacks about other tasks are refused for redelivery."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import aiohttp
import anyio
import anyio.lowlevel

from kling_async import TextToVideoRequest
from kling_async._callbacks import CallbackReceiver
from kling_async._webhooks import signed_headers
from kling_async.batch import Batch, Event, EventKind
from kling_async.testing import FakeConfig, run_fake_gateway
from kling_async.testing._pytest_plugin import fast_session_options

SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
HANG_GUARD = 60.0  # seconds; only to turn a hang into a failure, never a timing check


def forged_success(task_id: str, external_id: str, url: str) -> bytes:
    """A classic 'succeed' callback body whose only output is ``url``."""
    return json.dumps(
        {
            "task_id": task_id,
            "task_status": "succeed",
            "task_info": {"external_task_id": external_id},
            "task_result": {"videos": [{"id": "v-forged", "url": url, "duration": "5.0"}]},
        }
    ).encode()


async def test_an_early_signed_success_with_a_dead_url_is_checked_then_followed(
    tmp_path: Path,
) -> None:
    """A signed 'succeed' arriving early with a 404 URL: re-queried, watched, really downloaded."""
    receiver = CallbackReceiver(secret=SECRET)
    events: list[Event] = []
    config = FakeConfig(time_scale=0.01, webhook_secret=SECRET)  # a 100 s video lives 1 s
    async with (
        run_fake_gateway(config) as fake,
        fake.session(**fast_session_options()) as session,
        receiver.serve(),
    ):
        with anyio.fail_after(HANG_GUARD):
            async with Batch(
                session,
                max_running=1,
                callbacks=receiver,
                download_dir=tmp_path,
                on_event=events.append,
            ) as batch:
                handle = batch.submit(TextToVideoRequest(prompt="a slow tide"), key="tide")
                while not any(e.kind is EventKind.CREATED for e in events):
                    await anyio.lowlevel.checkpoint()
                created = next(e for e in events if e.kind is EventKind.CREATED)
                assert created.task_id is not None
                body = forged_success(
                    created.task_id, handle.external_task_id, f"{fake.url}/media/gone.mp4"
                )
                receiver.accept(signed_headers(SECRET, "early-1", body), body)
                result = await handle.wait()
    assert result.ok, result.error
    assert result.task is not None
    assert result.task.succeeded
    assert len(result.files) == 1
    saved = result.files[0]
    assert "gone" not in saved.url
    assert hashlib.sha256(saved.path.read_bytes()).hexdigest() == saved.sha256
    details = [e.detail for e in events if e.kind is EventKind.RETRIED]
    assert any("refreshed" in d for d in details)
    assert any("watching" in d for d in details)


async def post(url: str, body: bytes, msg_id: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers=signed_headers(SECRET, msg_id, body)) as response,
    ):
        await response.read()
        return response.status


async def test_callbacks_for_unknown_tasks_get_503_and_known_ones_200() -> None:
    """Another process's task: 503 (sent again later); a task this batch finished: 200."""
    receiver = CallbackReceiver(secret=SECRET)
    config = FakeConfig(time_scale=0.002, webhook_secret=SECRET)
    async with (
        run_fake_gateway(config) as fake,
        fake.session(**fast_session_options()) as session,
        receiver.serve() as url,
    ):
        with anyio.fail_after(HANG_GUARD):
            async with Batch(session, max_running=2, callbacks=receiver) as batch:
                batch.submit_all([TextToVideoRequest(prompt=f"a wave {i}") for i in range(2)])
                results = [r async for r in batch]
                ours = results[0]
                assert ours.task is not None
                stranger = forged_success("not-ours", "ext-not-ours", f"{fake.url}/m.mp4")
                known = forged_success(ours.task.id, ours.external_task_id or "", "http://x/y")
                assert await post(url, stranger, "m-1") == 503
                assert await post(url, known, "m-2") == 200
    assert receiver.unclaimed == 1
    assert all(r.ok for r in results)
