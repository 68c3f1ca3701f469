"""A long-lived batch keeps no per-job record after delivery; max_buffered_results pushes back."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from kling_async import ClientConfig, Task, TaskStatus, TextToVideoRequest
from kling_async._ratelimit import RateLimiter
from kling_async._task import VideoOutput
from kling_async.batch import Batch
from kling_async.batch._job import Job

HANG_GUARD = 60.0  # seconds; only to turn a hang into a failure, never a timing check
WAVE = 500


class InstantGateway:
    """A session that creates tasks at once; each has ended by the first look at it.

    It stands in for the gateway at the batch's session port (no sockets), so
    what a test measures is the batch's own bookkeeping: create, poll, end,
    result, journal.
    """

    def __init__(self) -> None:
        self.config = ClientConfig(api_key="-", endpoint_path="-").time_scaled(0.0001)
        self.creates = 0
        self.queries = 0

    async def create(self, request: Any, *, external_task_id: str | None = None, **_: Any) -> Task:
        self.creates += 1
        await anyio.lowlevel.checkpoint()
        return Task(
            id=f"t{self.creates}",
            endpoint="text2video",
            status=TaskStatus.SUBMITTED,
            raw_status="submitted",
            external_id=external_task_id,
        )

    async def get(
        self,
        endpoint: Any,
        task_id: str | None = None,
        /,
        *,
        external_task_id: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> Task:
        self.queries += 1
        await anyio.lowlevel.checkpoint()
        return Task(
            id=str(task_id),
            endpoint="text2video",
            status=TaskStatus.SUCCEED,
            raw_status="succeed",
            external_id=external_task_id,
            units=1.0,
            videos=(VideoOutput(id="v", url="https://cdn.example/v.mp4"),),
            raw={"task_id": task_id, "task_status": "succeed"},
        )

    async def get_many(self, **_: Any) -> list[Task]:
        raise AssertionError("classic tasks are queried one by one")

    async def refresh(self, task: Task, *, limiter: RateLimiter | None = None) -> Task:
        raise AssertionError("nothing to refresh")

    async def download_url(self, url: str, path: str | Path, **_: Any) -> Any:
        raise AssertionError("nothing to download")


def jobs_alive() -> int:
    return sum(isinstance(o, Job) for o in gc.get_objects())


def footprint() -> tuple[int, int, int]:
    """Memory blocks held by Python's allocator, objects tracked by gc, and Jobs alive."""
    gc.collect()
    return sys.getallocatedblocks(), len(gc.get_objects()), jobs_alive()


async def test_ten_thousand_jobs_leave_memory_flat_once_their_results_are_read(
    tmp_path: Path,
) -> None:
    """Jobs 2,000 to 10,000 through one open batch: Jobs alive, objects and blocks stay flat."""
    gateway = InstantGateway()
    figures: dict[int, tuple[int, int, int]] = {}
    with anyio.fail_after(HANG_GUARD):
        async with Batch(gateway, max_running=100, journal=tmp_path / "web.db") as batch:
            done = 0
            while done < 10_000:
                for i in range(done, done + WAVE):
                    batch.submit(TextToVideoRequest(prompt=f"a crane {i}"), key=f"req-{i}")
                async for result in batch:
                    assert result.ok
                    done += 1
                if done in (2_000, 5_000, 10_000):
                    figures[done] = footprint()
    assert gateway.creates == 10_000
    (blocks_2k, objects_2k, jobs_2k) = figures[2_000]
    (blocks_5k, _, _) = figures[5_000]
    (blocks_10k, objects_10k, jobs_10k) = figures[10_000]
    # Only the last job each worker handled lingers in its loop variable: a constant.
    assert jobs_10k == jobs_2k <= 16 + 32
    assert abs(objects_10k - objects_2k) < 500, (objects_2k, objects_10k)
    # 8,000 more jobs cost under half a block each (before: ~5 KB each, kept forever);
    # what grows at all is the latency sample filling up to its bound (4,096 floats).
    assert blocks_10k - blocks_2k < 4_000, (blocks_2k, blocks_10k)
    assert blocks_10k - blocks_5k < 500, (blocks_5k, blocks_10k)


async def test_max_buffered_results_holds_new_jobs_until_results_are_read() -> None:
    """With 5 results unread, no more creates; reading them lets the rest through."""
    gateway = InstantGateway()
    with anyio.fail_after(HANG_GUARD):
        async with Batch(gateway, max_running=2, max_buffered_results=5) as batch:
            for i in range(40):
                batch.submit(TextToVideoRequest(prompt=f"a stork {i}"), key=f"s-{i}")
            await anyio.wait_all_tasks_blocked()
            stalled = gateway.creates
            await anyio.wait_all_tasks_blocked()
            assert gateway.creates == stalled  # nothing more while nobody reads
            first = [await anext(aiter(batch)) for _ in range(5)]
            rest = [r async for r in batch]
    # The bound, plus what was already admitted when it was reached (window and lookahead).
    assert 5 <= stalled <= 5 + 2 + 8
    assert gateway.creates == 40
    assert len(first) + len(rest) == 40
