"""Several readers of one batch: each result goes to exactly one, nobody hangs."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from kling_async import TextToVideoRequest
from kling_async.batch import Batch, JobResult
from kling_async.batch._results import ResultQueue
from kling_async.testing import FakeConfig, run_fake_gateway
from kling_async.testing._pytest_plugin import fast_session_options

HANG_GUARD = 60.0  # seconds; only to turn a hang into a failure, never a timing check


def result(key: str) -> JobResult:
    return JobResult(
        key=key, request=TextToVideoRequest(prompt=key), task=None, error=None, status="succeed"
    )


async def test_two_concurrent_readers_share_every_result_and_both_end() -> None:
    """Two `async for` loops over one batch: every result once, in one of them; both finish."""
    seen: dict[str, list[str]] = {"a": [], "b": []}
    async with (
        run_fake_gateway(FakeConfig(time_scale=0.001)) as fake,
        fake.session(**fast_session_options()) as session,
    ):
        with anyio.fail_after(HANG_GUARD):
            async with Batch(session, max_running=4) as batch:
                batch.submit_all(
                    (f"k{i}", TextToVideoRequest(prompt=f"a moth {i}")) for i in range(20)
                )

                async def read(name: str) -> None:
                    async for item in batch:
                        seen[name].append(item.key)

                async with anyio.create_task_group() as tg:
                    tg.start_soon(read, "a")
                    tg.start_soon(read, "b")
    keys = seen["a"] + seen["b"]
    assert sorted(keys) == sorted(f"k{i}" for i in range(20))
    assert len(set(keys)) == 20


async def test_waiting_readers_are_served_in_the_order_they_came() -> None:
    """Readers waiting for results get them first come, first served."""
    queue = ResultQueue()
    got: list[tuple[str, str]] = []

    async def read(name: str) -> None:
        item = await queue.get(lambda: False)
        assert item is not None
        got.append((name, item.key))

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read, "first")
            await anyio.lowlevel.checkpoint()
            tg.start_soon(read, "second")
            await anyio.lowlevel.checkpoint()
            queue.put(result("r1"))
            queue.put(result("r2"))
    assert got == [("first", "r1"), ("second", "r2")]


async def test_a_reader_cancelled_while_waiting_takes_no_result_with_it() -> None:
    """A reader that gave up waiting leaves its place: the next result goes to a live reader."""
    queue = ResultQueue()
    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(queue.get, lambda: False)
            await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()
        queue.put(result("r1"))
        item = await queue.get(lambda: False)
    assert item is not None
    assert item.key == "r1"


async def test_readers_see_the_end_when_nothing_is_left() -> None:
    """With the batch ended and nothing queued, every reader gets the end at once."""
    queue = ResultQueue()
    with anyio.fail_after(HANG_GUARD):
        assert await queue.get(lambda: True) is None
