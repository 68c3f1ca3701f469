"""The SDK contenders: lifecycles through ``KlingSession``, batches through ``session.batch``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from _measure import LoopLagTicker, percentile, read_status_kb

from kling_async import (
    ClientConfig,
    KlingSession,
    TextToVideoRequest,
    TurboOptions,
    TurboSettings,
    TurboTextToVideoRequest,
)
from kling_async._callbacks import CallbackReceiver
from kling_async.batch import Event, EventKind


def scaled_config(url: str, api_key: str, endpoint_path: str, *, time_scale: float) -> ClientConfig:
    """The session's defaults with every real-time constant compressed by ``time_scale``.

    The fake plays a 100 s task in ``100 * time_scale`` seconds; the SDK's poll and
    retry delays stand for real seconds too, so they shrink by the same factor.
    """
    return ClientConfig(
        api_key=api_key, endpoint_path=endpoint_path, base_url=url, turbo_base_url=url
    ).time_scaled(time_scale)


@asynccontextmanager
async def sdk_session(
    url: str, api_key: str, endpoint_path: str, *, time_scale: float
) -> AsyncIterator[KlingSession]:
    """A session on the fake with compressed time constants."""
    config = scaled_config(url, api_key, endpoint_path, time_scale=time_scale)
    async with KlingSession(config=config) as session:
        yield session


def t2v_request(
    index: int, *, callback_url: str | None = None, duration: str = "5"
) -> TextToVideoRequest:
    """The same job as the naive contenders' body (5 s std, the fake's median life)."""
    return TextToVideoRequest(
        model_name="kling-v2-6",
        prompt=f"A lighthouse on a cliff at dusk, waves crashing, shot {index}",
        mode="std",
        aspect_ratio="16:9",
        duration=duration,
        callback_url=callback_url,
    )


def turbo_request(index: int) -> TurboTextToVideoRequest:
    """A turbo text-to-video job (5 s 720p)."""
    return TurboTextToVideoRequest(
        prompt=f"A lighthouse on a cliff at dusk, waves crashing, shot {index}",
        settings=TurboSettings(resolution="720p", aspect_ratio="16:9", duration=5),
        options=TurboOptions(),
    )


async def sdk_lifecycles(session: KlingSession, n: int, *, concurrency: int) -> int:
    """``n`` create→get lifecycles through the SDK (validation, retries, logging on).

    Returns:
        How many lifecycles ended with a task in hand.
    """
    done = 0
    queue = iter(range(n))

    async def worker() -> None:
        nonlocal done
        for i in queue:
            task = await session.text_to_video.create(t2v_request(i))
            got = await session.text_to_video.get(task.id)
            if got.id == task.id:
                done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def _jobs(family: str, jobs: int) -> Iterator[tuple[str, Any]]:
    """Submissions, generated lazily (the batch pulls them as slots free)."""
    for i in range(jobs):
        if family == "turbo-text2video":
            yield f"job-{i}", turbo_request(i)
        else:
            yield f"job-{i}", t2v_request(i)


async def sdk_batch(
    url: str,
    api_key: str,
    endpoint_path: str,
    *,
    jobs: int,
    max_running: int,
    time_scale: float,
    family: str,
    callback_secret: str | None = None,
    callbacks: bool = False,
    seed: int = 0,
    probe_slots: bool | None = None,
) -> dict[str, Any]:
    """Run ``jobs`` generations through ``session.batch`` and time them.

    With ``callbacks`` a :class:`CallbackReceiver` is served on loopback (verifying
    signatures when ``callback_secret`` is given) and handed to the batch.
    ``probe_slots`` is passed to the batch (``None``, the default: probe past
    ``max_running`` until a probe shows the account has more slots).

    Returns:
        ``started`` / ``finished`` (monotonic), ``noticed`` (task id → monotonic
        time the result was yielded), and ``extra`` figures from the batch summary.
    """
    noticed: dict[str, float] = {}
    failures = 0
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(
            sdk_session(url, api_key, endpoint_path, time_scale=time_scale)
        )
        receiver: CallbackReceiver | None = None
        if callbacks:
            receiver = CallbackReceiver(secret=callback_secret)
            await stack.enter_async_context(receiver.serve(host="127.0.0.1", port=0))
        started = time.monotonic()
        async with session.batch(
            max_running=max_running,
            callbacks=receiver,
            seed=seed,
            probe_slots=probe_slots,  # the breaker follows the session's time_scaled clock
        ) as batch:
            batch.submit_all(_jobs(family, jobs))
            async for result in batch:
                if result.task is not None:
                    noticed[result.task.id] = time.monotonic()
                if not result.ok:
                    failures += 1
        finished = time.monotonic()
        summary = batch.summary()
        extra: dict[str, Any] = {
            "failures": failures,
            "sdk_summary": {
                "creates": summary.creates,
                "status_requests": summary.status_requests,
                "lookups": summary.lookups,
                "polls_per_task": round(summary.polls_per_task, 4),
                "concurrency_limited": summary.concurrency_limited,
                "rate_limited": summary.rate_limited,
                "max_running": summary.max_running,
            },
        }
        if receiver is not None:
            extra["callbacks_received"] = receiver.received
            extra["callbacks_rejected"] = receiver.rejected
    return {"started": started, "finished": finished, "noticed": noticed, "extra": extra}


class _Stop(Exception):
    """Ends the scale run's batch early (its tasks would run for minutes more)."""


def _only_stop(exc: BaseException) -> bool:
    if isinstance(exc, _Stop):
        return True
    inner: Sequence[BaseException] = getattr(exc, "exceptions", None) or ()
    return bool(inner) and all(_only_stop(e) for e in inner)


async def scale_run(
    url: str,
    api_key: str,
    endpoint_path: str,
    *,
    tasks: int,
    time_scale: float,
    window_s: float,
    on_created: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Put ``tasks`` tasks in flight through one batch; sample memory and loop lag.

    The batch admits everything (``max_running`` = ``tasks``); once all are
    created the poller runs for ``window_s`` seconds while a 10 ms ticker
    measures event-loop lag; then the block is left with an exception, which
    cancels the batch cleanly (the fake's tasks would run on for a while).

    Returns:
        ``peak_rss_kb`` (VmHWM at the end of the window), ``in_flight_peak``
        (created, per the batch), loop-lag percentiles, status requests sent in the
        window and ``create_s`` (seconds to create every task).
    """
    created = 0

    def on_event(event: Event) -> None:
        nonlocal created
        if event.kind is EventKind.CREATED:
            created += 1

    ticker = LoopLagTicker(0.010)
    out: dict[str, Any] = {}
    async with sdk_session(url, api_key, endpoint_path, time_scale=time_scale) as session:
        ticker.start()
        try:
            t0 = time.monotonic()
            async with session.batch(max_running=tasks, on_event=on_event, seed=0) as batch:
                batch.submit_all(_jobs("text2video", tasks))
                while created < tasks:
                    await asyncio.sleep(0.05)
                    if time.monotonic() - t0 > 180:
                        raise RuntimeError(f"only {created} of {tasks} tasks created in 180 s")
                out["create_s"] = time.monotonic() - t0
                out["in_flight_peak"] = batch.summary().max_running
                out["loop_lag_p99_ms_creating"] = ticker.p99_ms()
                if on_created is not None:
                    await on_created()
                ticker.mark()
                status0 = batch.summary().status_requests
                w0 = time.monotonic()
                await asyncio.sleep(window_s)
                summary = batch.summary()
                out["status_requests_in_window"] = summary.status_requests - status0
                out["status_requests_per_s"] = (summary.status_requests - status0) / (
                    time.monotonic() - w0
                )
                out["ended_in_window"] = summary.jobs
                out["loop_lag_p99_ms"] = ticker.p99_ms()
                out["loop_lag_p50_ms"] = percentile(ticker.samples, 50) * 1000.0
                out["loop_lag_max_ms"] = ticker.max_ms()
                out["peak_rss_kb"] = read_status_kb("VmHWM")
                raise _Stop
        except BaseException as exc:
            # The batch's task group may wrap the block's exception in a group.
            if not _only_stop(exc):
                raise
        finally:
            await ticker.stop()
    return out
