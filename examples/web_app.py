"""Web app: an aiohttp.web service that turns prompts into videos, with callbacks.

    POST /generate   {"prompt": "..."}  -> 202 {"job": "...", "status_url": "/jobs/..."}
    GET  /jobs/{id}  (add ?wait=1 to wait up to 60 s) -> status, video URL, local file
    POST /kling/callback                 <- the gateway's task callbacks (same app)
    GET  /files/...                      the downloaded videos

One session and one long-lived batch serve the whole app. Each task is created
with this app's callback URL; the gateway POSTs status changes there, the
CallbackReceiver verifies their Standard Webhooks signature and the batch
finishes the job at once. Polling stays on as a slow fallback for lost callbacks.

Against the real gateway (the callback URL must be reachable from the internet):

    export KLING_API_KEY=... KLING_ENDPOINT_PATH=... KLING_WEBHOOK_SECRET=whsec_...
    python examples/web_app.py --port 8080 --public-url https://videos.example.com

Without a key (embedded fake gateway that calls back on loopback):

    python examples/web_app.py --fake                      # then POST to /generate
    python examples/web_app.py --fake --once "a red fox"   # one round trip, then exit
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from kling_async import (
    Batch,
    CallbackReceiver,
    JobHandle,
    KlingSession,
    PollPolicy,
    TextToVideoRequest,
    validate_request,
)

SETTINGS = web.AppKey("settings", argparse.Namespace)
BATCH = web.AppKey("batch", Batch)
RECEIVER = web.AppKey("receiver", CallbackReceiver)
JOBS = web.AppKey("jobs", dict)  # job id -> JobHandle

CALLBACK_PATH = "/kling/callback"


@contextlib.asynccontextmanager
async def connect(settings: argparse.Namespace) -> AsyncIterator[KlingSession]:
    """A session for the real gateway (from KLING_* variables) or an in-process fake."""
    if not settings.fake:
        async with KlingSession.from_env() as session:
            yield session
        return
    from kling_async.testing import FakeConfig, run_fake_gateway

    fake_config = FakeConfig(time_scale=0.01, webhook_secret=settings.secret)
    async with run_fake_gateway(fake_config) as fake:
        fast = PollPolicy(initial_delay=0.2, interval=0.1, max_interval=0.5)
        async with fake.session(poll=fast) as session:
            yield session


async def kling_context(app: web.Application) -> AsyncIterator[None]:
    """Open the session, the callback receiver and one batch for the app's lifetime."""
    settings = app[SETTINGS]
    receiver = CallbackReceiver(
        secret=settings.secret, public_url=settings.public_url.rstrip("/") + CALLBACK_PATH
    )
    async with connect(settings) as session:
        batch_options = {
            "max_running": settings.max_running,
            "callbacks": receiver,
            "download_dir": settings.out,
            "journal": settings.out / "journal.sqlite",
        }
        async with session.batch(**batch_options) as batch:
            app[RECEIVER] = receiver
            app[BATCH] = batch
            yield
            # Shutting down: the batch waits for jobs in flight (the journal keeps
            # them if the process is killed; the next start does not re-create them).


async def on_callback(request: web.Request) -> web.Response:
    """The gateway's callbacks, handed to the receiver (signature checked there)."""
    return await request.app[RECEIVER].handle(request)


async def generate(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        prompt = str(body["prompt"]).strip()
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": 'send {"prompt": "..."}'}, status=400)
    job_id = uuid.uuid4().hex[:12]
    video = TextToVideoRequest(model_name="kling-v2-6", prompt=prompt, mode="std", duration="5")
    problems = validate_request(video)  # e.g. a prompt over 2,500 characters
    if problems:
        return web.json_response({"error": [str(p) for p in problems]}, status=400)
    request.app[JOBS][job_id] = request.app[BATCH].submit(video, key=job_id)
    return web.json_response({"job": job_id, "status_url": f"/jobs/{job_id}"}, status=202)


async def job_status(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    handle: JobHandle | None = request.app[JOBS].get(job_id)
    if handle is None:
        return web.json_response({"error": "no such job"}, status=404)
    if request.query.get("wait") and not handle.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(handle.wait(), timeout=60)
    if not handle.done():
        return web.json_response({"job": job_id, "status": "running"})
    result = handle.result()
    answer = {"job": job_id, "status": result.status}
    if result.task is not None:
        answer["task_id"] = result.task.id
        answer["video_url"] = result.task.urls[0] if result.task.urls else None
    if result.files:
        answer["file"] = f"/files/{result.files[0].path.name}"
    if result.error is not None:
        answer["error"] = str(result.error)
    return web.json_response(answer)


def create_app(settings: argparse.Namespace) -> web.Application:
    settings.out.mkdir(parents=True, exist_ok=True)
    app = web.Application()
    app[SETTINGS] = settings
    app[JOBS] = {}
    app.cleanup_ctx.append(kling_context)
    app.router.add_post("/generate", generate)
    app.router.add_get("/jobs/{job_id}", job_status)
    app.router.add_post(CALLBACK_PATH, on_callback)
    app.router.add_static("/files", settings.out)
    return app


async def round_trip(base_url: str, prompt: str) -> dict[str, object]:
    """What a client of the app does: start a generation, then wait for it."""
    async with aiohttp.ClientSession(base_url) as client:
        async with client.post("/generate", json={"prompt": prompt}) as response:
            started = await response.json()
        async with client.get(started["status_url"], params={"wait": "1"}) as response:
            result: dict[str, object] = await response.json()
        if "file" in result:
            async with client.get(str(result["file"])) as response:
                result["file_bytes"] = len(await response.read())
        return result


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="default 8080 (--once: any free port)")
    parser.add_argument("--public-url", help="how the gateway reaches this app (callbacks)")
    parser.add_argument("--out", type=Path, default=Path("web-videos"))
    parser.add_argument("--max-running", type=int, default=5)
    parser.add_argument("--fake", action="store_true", help="use the embedded fake gateway")
    parser.add_argument("--once", metavar="PROMPT", help="run one request through the app, exit")
    settings = parser.parse_args(argv)
    settings.secret = os.environ.get("KLING_WEBHOOK_SECRET")
    if settings.fake and not settings.secret:
        settings.secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    if settings.port is None:
        settings.port = 0 if settings.once else 8080

    # Bind first, so the callback URL (which needs the port) is known before start.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    port = sock.getsockname()[1]
    local_url = f"http://{settings.host}:{port}"
    settings.public_url = settings.public_url or local_url

    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        if settings.once:
            result = await round_trip(local_url, settings.once)
            result["callbacks_received"] = runner.app[RECEIVER].received
            result["status_requests"] = runner.app[BATCH].summary().status_requests
            print(json.dumps(result, indent=2))
            return 0 if result.get("status") == "succeed" else 1
        print(f"listening on {local_url}; callbacks at {settings.public_url}{CALLBACK_PATH}")
        print(f'try: curl -X POST {local_url}/generate -d \'{{"prompt": "a red fox"}}\'')
        await asyncio.Event().wait()  # serve until Ctrl-C
        return 0
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(asyncio.run(main()))
