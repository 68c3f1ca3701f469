"""Callback delivery: one background loop over a time-ordered heap of status changes.

No timer per task: :meth:`CallbackDispatcher.schedule` pushes a task's three
status changes (submitted, processing, terminal) onto a heap; a single loop sleeps
until the earliest one is due and POSTs the task object to the task's
``callback_url``, signed with Standard Webhooks headers when a secret is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable

import aiohttp
from yarl import URL

from .._webhooks import signed_headers
from ._config import FakeConfig
from ._store import Store
from ._tasks import FAILED, PROCESSING, SUBMITTED, SUCCEED, TaskRecord

__all__ = ["CallbackDispatcher"]

#: Callback POSTs in flight at once.
_MAX_IN_FLIGHT = 64


class CallbackDispatcher:
    """Delivers callbacks when their moment comes.

    Args:
        config: The fake's configuration.
        store: Where callback figures are counted.
        clock: The fake's monotonic clock.
        render: Builds the JSON body of a task in a status.
    """

    def __init__(
        self,
        config: FakeConfig,
        store: Store,
        clock: Callable[[], float],
        render: Callable[[TaskRecord, str], bytes],
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._render = render
        self._heap: list[tuple[float, int, str, TaskRecord]] = []
        self._seq = 0
        # Created in start(), on the loop that runs the fake.
        self._wake: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None

    def allowed(self, url: str) -> bool:
        """Whether callbacks may go to ``url`` (``callback_hosts``, http/https only).

        Args:
            url: The task's callback URL.

        Returns:
            ``True`` when it may be called.
        """
        try:
            parsed = URL(url)
        except ValueError:
            return False
        return parsed.scheme in ("http", "https") and parsed.host in self._config.callback_hosts

    def schedule(self, rec: TaskRecord) -> None:
        """Queue the three status changes of a task with a callback URL.

        Args:
            rec: The new task.
        """
        terminal = FAILED if rec.fails else SUCCEED
        for due, status in (
            (rec.created, SUBMITTED),
            (rec.started, PROCESSING),
            (rec.completes, terminal),
        ):
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, status, rec))
        self.poke()

    def clear(self) -> None:
        """Drop every pending callback (on reset)."""
        self._heap.clear()

    def poke(self) -> None:
        """Re-check the heap now (after the fake's clock jumped)."""
        if self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        """Start the delivery loop on the running event loop."""
        if self._loop_task is None:
            self._wake = asyncio.Event()
            self._slots = asyncio.Semaphore(_MAX_IN_FLIGHT)
            self._loop_task = asyncio.get_running_loop().create_task(
                self._run(self._wake, self._slots)
            )

    async def close(self) -> None:
        """Stop the loop, cancel deliveries in flight, close the HTTP client."""
        tasks = [t for t in (self._loop_task, *self._sends) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop_task = None
        self._wake = None
        self._slots = None
        self._sends.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _run(self, wake: asyncio.Event, slots: asyncio.Semaphore) -> None:
        while True:
            wake.clear()
            now = self._clock()
            while self._heap and self._heap[0][0] <= now:
                _, _, status, rec = heapq.heappop(self._heap)
                if rec.callback_url is None:
                    continue
                await slots.acquire()
                task = asyncio.get_running_loop().create_task(self._send(rec, status, slots))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)
            if self._heap:
                delay = max(0.0, self._heap[0][0] - self._clock())
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)
            else:
                await wake.wait()

    async def _send(self, rec: TaskRecord, status: str, slots: asyncio.Semaphore) -> None:
        try:
            assert rec.callback_url is not None  # noqa: S101  (filtered by the loop)
            body = self._render(rec, status)
            headers = {"Content-Type": "application/json"}
            secret = self._config.webhook_secret
            if secret:
                self._seq += 1
                msg_id = f"msg_{rec.task_id}_{status}_{self._seq}"
                headers.update(signed_headers(secret, msg_id, body, timestamp=int(time.time())))
            if self._http is None:
                self._http = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=self._config.callback_timeout)
                )
            async with self._http.post(rec.callback_url, data=body, headers=headers) as response:
                await response.read()
                ok = response.status < 400
            self._store.counts["callbacks_sent" if ok else "callbacks_failed"] += 1
        except Exception:  # any delivery failure is the receiver's problem, never the fake's
            self._store.counts["callbacks_failed"] += 1
        finally:
            slots.release()
