"""Web app: an aiohttp.web service that turns prompts into videos, and stops without losing any.

    POST   /generate   {"prompt": "..."} -> 202 {"job": "<id>", "status_url": "/jobs/<id>"}
    GET    /jobs/{id}  (?wait=1 waits up to 60 s) -> status, task id, video URL, local file
    DELETE /jobs/{id}  withdraws a job not sent yet (never created, never paid)
    POST   /kling/callback                 <- the gateway's task callbacks (same app)
    GET    /files/...                      the downloaded videos

How it is built (docs/guides/web-apps.md explains each point):

- one KlingSession per process, and one long-lived batch on it that every request
  shares: its slots (--max-running, the session's one pool, which single calls
  such as session.text_to_video.run() would share too), its journal, its downloads;
- callbacks: each task carries --public-url + /kling/callback, the address the
  gateway reaches (a proxy's, in production); the receiver verifies their
  signature and the batch finishes the job at once; polling is a slow fallback;
- a job's id is the external task id it is created with, so any worker answers
  GET /jobs/{id}: from its batch when it runs the job, from its journal when it
  ran it, and otherwise from the gateway, which is the store every worker shares;
- one journal per worker (OUT/journal-<worker>.sqlite); on start the worker
  resumes what its journal holds unfinished (after a SIGTERM or a crash);
- SIGINT or SIGTERM: stop admitting (queued jobs are never created), keep serving
  callbacks while running tasks end (at most --grace seconds), then close; tasks
  still running stay in the journal for the next start. One line of JSON says so.

Against the real gateway (the callback URL must be reachable from the internet):

    export KLING_API_KEY=... KLING_ENDPOINT_PATH=... KLING_WEBHOOK_SECRET=whsec_...
    python examples/web_app.py --port 8080 --public-url https://videos.example.com --worker-id a

Without a key (embedded fake gateway that calls back on loopback):

    python examples/web_app.py --fake                      # then POST to /generate
    python examples/web_app.py --fake --once "a red fox"   # one round trip, then exit
    python examples/web_app.py --fake --workers 2 --once "a red fox"   # two processes
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from kling_async import (
    Batch,
    CallbackReceiver,
    JobResult,
    KlingSession,
    NotFoundError,
    Task,
    TextToVideoRequest,
    WaitTimeoutError,
    graceful_shutdown,
    validate_request,
    wait_for_signal,
)

SETTINGS = web.AppKey("settings", argparse.Namespace)
SESSION = web.AppKey("session", KlingSession)
BATCH = web.AppKey("batch", Batch)
RECEIVER = web.AppKey("receiver", CallbackReceiver)
SUBMITTED = web.AppKey("submitted", asyncio.Event)

CALLBACK_PATH = "/kling/callback"
FAKE_TIME_SCALE = 0.01  # the fake's clock runs 100x fast: a 100 s video takes about 1 s
WAIT_SECONDS = 60.0
LOOKUP_PAUSE = 0.25  # seconds between lookups of a job another worker has not created yet

log = logging.getLogger("web_app")


@contextlib.asynccontextmanager
async def connect(settings: argparse.Namespace) -> AsyncIterator[KlingSession]:
    """A session from KLING_* variables, or one on an in-process fake gateway (--fake)."""
    if not settings.fake:
        async with KlingSession.from_env(max_running=settings.max_running) as session:
            yield session
        return
    from kling_async.testing import FakeConfig, run_fake_gateway

    fake_config = FakeConfig(
        time_scale=FAKE_TIME_SCALE, webhook_secret=settings.secret, max_running=settings.quota
    )
    async with (
        run_fake_gateway(fake_config) as fake,
        fake.session(max_running=settings.max_running) as session,
    ):
        yield session


async def deliver_results(app: web.Application) -> None:
    """Read every result as it comes, so the batch keeps none (the journal has them all)."""
    batch, submitted = app[BATCH], app[SUBMITTED]
    while True:
        async for result in batch:
            log.info("job %s ended %s", result.key, result.status)
        await submitted.wait()  # idle: nothing to read until the next submission
        submitted.clear()


async def kling_context(app: web.Application) -> AsyncIterator[None]:
    """Open the session, the callback receiver and the batch for the app's lifetime."""
    settings = app[SETTINGS]
    receiver = CallbackReceiver(secret=settings.secret, public_url=settings.callback_url)
    async with (
        connect(settings) as session,
        session.batch(
            max_running=settings.max_running,
            callbacks=receiver,
            download_dir=settings.out,
            journal=settings.out / f"journal-{settings.worker_id}.sqlite",
            resume_unfinished=True,  # what a SIGTERM or a crash left running
        ) as batch,
    ):
        app[SESSION], app[RECEIVER], app[BATCH] = session, receiver, batch
        reader = asyncio.create_task(deliver_results(app))
        yield
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def on_callback(request: web.Request) -> web.Response:
    """The gateway's callbacks, handed to the receiver (signature checked there)."""
    return await request.app[RECEIVER].handle(request)


async def generate(request: web.Request) -> web.Response:
    batch = request.app[BATCH]
    if batch.halted is not None:  # shutting down: nothing new is created
        return web.json_response({"error": "shutting down, try another worker"}, status=503)
    try:
        body = await request.json()
        prompt = str(body["prompt"]).strip()
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": 'send {"prompt": "..."}'}, status=400)
    job_id = f"web-{uuid.uuid4().hex}"
    video = TextToVideoRequest(
        model_name="kling-v2-6", prompt=prompt, mode="std", duration="5", external_task_id=job_id
    )
    problems = validate_request(video)  # e.g. a prompt over 2,500 characters
    if problems:
        return web.json_response({"error": [str(p) for p in problems]}, status=400)
    batch.submit(video, key=job_id)
    request.app[SUBMITTED].set()
    return web.json_response({"job": job_id, "status_url": f"/jobs/{job_id}"}, status=202)


def from_result(result: JobResult) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": result.status}
    if result.task is not None:
        answer["task_id"] = result.task.id
        answer["video_url"] = result.task.urls[0] if result.task.urls else None
    if result.files:
        answer["file"] = f"/files/{result.files[0].path.name}"
    if result.error is not None:
        answer["error"] = str(result.error)
    return answer


async def find_created(session: KlingSession, job_id: str, *, patience: float) -> Task:
    """The task created for ``job_id``, looked up again for ``patience`` seconds while unknown.

    A job just submitted to another worker is queued there until a slot frees: the
    gateway does not know its external id yet. NotFoundError once ``patience`` ran out.
    """
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        try:
            return await session.text_to_video.get(external_task_id=job_id)
        except NotFoundError:
            if asyncio.get_running_loop().time() >= deadline:
                raise
        await asyncio.sleep(LOOKUP_PAUSE)


async def job_status(request: web.Request) -> web.Response:
    app, job_id = request.app, request.match_info["job_id"]
    batch, wait = app[BATCH], bool(request.query.get("wait"))
    answer: dict[str, Any] = {"job": job_id, "worker": app[SETTINGS].worker_id}
    handle = batch.job(job_id)
    if handle is not None:  # running here
        if wait and not handle.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(handle.wait(), timeout=WAIT_SECONDS)
        answer.update(from_result(handle.result()) if handle.done() else {"status": "running"})
        return web.json_response(answer)
    entry = batch.journal.get(job_id) if batch.journal is not None else None
    if entry is not None:  # ran here: the journal says how it ended
        answer.update(status=entry.state.value, task_id=entry.task_id, source="journal")
        if entry.files:
            answer["file"] = f"/files/{entry.files[0].path.name}"
        return web.json_response(answer)
    # Another worker's job: the gateway knows every task by its external id, once
    # the worker running it has created it (it may still be queued there).
    session = app[SESSION]
    try:
        task = await find_created(session, job_id, patience=WAIT_SECONDS if wait else 0.0)
        if wait and not task.is_terminal:
            task = await session.wait(task, timeout=WAIT_SECONDS, raise_on_failure=False)
    except NotFoundError:
        return web.json_response({"error": "no such job"}, status=404)
    except WaitTimeoutError:
        task = await session.text_to_video.get(external_task_id=job_id)
    answer.update(status=task.status.value, task_id=task.id, source="gateway")
    answer["video_url"] = task.urls[0] if task.urls else None
    return web.json_response(answer)


async def cancel_job(request: web.Request) -> web.Response:
    handle = request.app[BATCH].job(request.match_info["job_id"])
    if handle is not None and handle.cancel():
        return web.json_response({"cancelled": True})
    return web.json_response({"cancelled": False, "why": "already sent, or not here"}, status=409)


def create_app(settings: argparse.Namespace) -> web.Application:
    settings.out.mkdir(parents=True, exist_ok=True)
    app = web.Application()
    app[SETTINGS] = settings
    app[SUBMITTED] = asyncio.Event()
    app.cleanup_ctx.append(kling_context)
    app.router.add_post("/generate", generate)
    app.router.add_get("/jobs/{job_id}", job_status)
    app.router.add_delete("/jobs/{job_id}", cancel_job)
    app.router.add_post(CALLBACK_PATH, on_callback)
    app.router.add_static("/files", settings.out)
    return app


async def round_trip(prompt: str, post_to: str, ask: str) -> dict[str, Any]:
    """What a client does: start a generation on one worker, wait for it on another."""
    async with aiohttp.ClientSession() as client:
        async with client.post(f"{post_to}/generate", json={"prompt": prompt}) as response:
            started = await response.json()
        status_url = started["status_url"]
        async with client.get(f"{ask}{status_url}", params={"wait": "1"}) as response:
            result: dict[str, Any] = await response.json()
        async with client.get(f"{post_to}{status_url}", params={"wait": "1"}) as response:
            owner = await response.json()
        if "file" in owner:
            async with client.get(f"{post_to}{owner['file']}") as response:
                result["file_bytes"] = len(await response.read())
        return result


async def serve(settings: argparse.Namespace) -> int:
    """Run one worker until a signal (or one round trip with --once), then shut down."""
    # Bind first, so the callback URL (which needs the port) is known before start.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    local_url = f"http://{settings.host}:{sock.getsockname()[1]}"
    settings.callback_url = (settings.public_url or local_url).rstrip("/") + CALLBACK_PATH

    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    app = runner.app
    report: dict[str, Any] = {"worker": settings.worker_id}
    if settings.once:
        report.update(await round_trip(settings.once, local_url, local_url))
        report["callbacks_received"] = app[RECEIVER].received
    else:
        print(f"listening on {local_url}", flush=True)
        report["signal"] = (await wait_for_signal()).name
    report["left_in_journal"] = await graceful_shutdown(runner, BATCH, grace=settings.grace)
    summary = app[BATCH].summary()
    report.update(creates=summary.creates, not_started=summary.not_started)
    print(json.dumps(report), flush=True)
    return 1 if settings.once and report.get("status") != "succeed" else 0


async def start_worker(worker_id: str, settings: argparse.Namespace, env: dict[str, str]) -> Any:
    """Start this script as one worker process (real mode, on the fake via KLING_* vars)."""
    argv = [__file__, "--worker-id", worker_id, "--port", "0", "--out", str(settings.out)]
    argv += ["--max-running", str(settings.max_running), "--grace", str(settings.grace)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, env=env, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    line = (await proc.stdout.readline()).decode()
    return proc, line.removeprefix("listening on ").strip()


async def run_workers(settings: argparse.Namespace) -> int:
    """--fake --workers N: one fake gateway, N worker processes sharing it (and its quota)."""
    from kling_async.testing import FakeConfig, run_fake_gateway

    config = FakeConfig(
        time_scale=FAKE_TIME_SCALE, webhook_secret=settings.secret, max_running=settings.quota
    )
    async with run_fake_gateway(config) as fake:
        env = {
            **os.environ,
            "KLING_API_KEY": fake.api_key,
            "KLING_ENDPOINT_PATH": fake.endpoint_path,
            "KLING_BASE_URL": fake.url,
            "KLING_TURBO_BASE_URL": fake.url,
            "KLING_TIME_SCALE": str(FAKE_TIME_SCALE),
            "KLING_WEBHOOK_SECRET": settings.secret,
        }
        settings.max_running = max(1, settings.quota // settings.workers)  # a share each
        workers = [await start_worker(f"w{i}", settings, env) for i in range(settings.workers)]
        urls = [url for _, url in workers]
        report: dict[str, Any] = {"workers": urls}
        try:
            if settings.once:
                report.update(await round_trip(settings.once, urls[0], urls[-1]))
            else:
                print(f"workers listening on {', '.join(urls)}", flush=True)
                await wait_for_signal()
        finally:
            for proc, _ in workers:
                proc.terminate()  # SIGTERM: each drains, then exits
            report["worker_exit_codes"] = [await proc.wait() for proc, _ in workers]
    print(json.dumps(report), flush=True)
    return 1 if settings.once and report.get("status") != "succeed" else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="default 8080 (--once: any free port)")
    parser.add_argument("--public-url", help="how the gateway reaches this app (callbacks)")
    parser.add_argument("--out", type=Path, default=Path("web-videos"))
    parser.add_argument("--worker-id", default="0", help="names this worker's journal")
    parser.add_argument("--max-running", type=int, default=5, help="slots this worker holds")
    parser.add_argument("--grace", type=float, default=30.0, help="seconds to drain on a stop")
    parser.add_argument("--fake", action="store_true", help="use the embedded fake gateway")
    parser.add_argument("--workers", type=int, default=1, help="--fake: worker processes")
    parser.add_argument("--once", metavar="PROMPT", help="run one request through the app, exit")
    settings = parser.parse_args(argv)
    settings.secret = os.environ.get("KLING_WEBHOOK_SECRET")
    if settings.fake and not settings.secret:
        settings.secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    settings.quota = settings.max_running  # the fake's concurrency quota
    if settings.port is None:
        settings.port = 0 if settings.once else 8080
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if settings.fake and settings.workers > 1:
        return asyncio.run(run_workers(settings))
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    raise SystemExit(main())
