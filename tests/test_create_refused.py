"""A create refused for want of a slot (1303) is sent again as it was built, never rebuilt."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import kling_async._runs as runs_module
from kling_async import (
    ClientConfig,
    ConcurrencyLimitedError,
    HTTPResponse,
    KlingSession,
    RetryPolicy,
    Shot,
    TextToVideoRequest,
)
from kling_async._create import RefusedCreates, prepare
from kling_async.testing import MockTransport

# One attempt per call, as the batch sends its creates: a 1303 comes back at once.
CONFIG = ClientConfig(
    api_key="mock-key",
    endpoint_path="ep",
    base_url="http://kling.test",
    retry=RetryPolicy(max_attempts=1),
)
TASK = {"task_id": "t-1", "task_status": "submitted", "task_info": {}}


def _answers(*codes: int) -> Iterator[HTTPResponse]:
    for code in codes:
        if code == 1303:
            yield HTTPResponse.from_json(
                {"code": 1303, "message": "concurrency limit", "request_id": "r"}, status=429
            )
        else:
            yield HTTPResponse.from_json({"code": 0, "request_id": "r", "data": TASK})


class CountingPrepare:
    """Stands in for ``prepare`` where the session calls it and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return prepare(*args, **kwargs)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> CountingPrepare:
    counter = CountingPrepare()
    monkeypatch.setattr(runs_module, "prepare", counter)
    return counter


async def test_the_same_request_and_id_after_a_1303_goes_out_as_built(
    counted: CountingPrepare,
) -> None:
    answers = _answers(1303, 1303, 0)
    transport = MockTransport(lambda request: next(answers))
    request = TextToVideoRequest(prompt="a cat on a wall")
    async with KlingSession(config=CONFIG, transport=transport) as session:
        for _ in range(2):
            with pytest.raises(ConcurrencyLimitedError):
                await session.create(request, external_task_id="job-1")
        task = await session.create(request, external_task_id="job-1")
    assert task.id == "t-1"
    assert counted.calls == 1  # built and validated once, sent three times
    bodies = [r.body for r in transport.requests]
    assert len(bodies) == 3
    assert len(set(bodies)) == 1
    assert json.loads(bodies[0] or b"")["external_task_id"] == "job-1"
    assert len(session._paid.refused) == 0  # created: nothing kept


async def test_without_the_callers_id_each_call_is_a_new_create(counted: CountingPrepare) -> None:
    answers = _answers(1303, 0)
    transport = MockTransport(lambda request: next(answers))
    request = TextToVideoRequest(prompt="a cat on a wall")
    async with KlingSession(config=CONFIG, transport=transport) as session:
        with pytest.raises(ConcurrencyLimitedError):
            await session.create(request)
        await session.create(request)
    assert counted.calls == 2
    first, second = (json.loads(r.body or b"")["external_task_id"] for r in transport.requests)
    assert first != second  # two calls, two tasks: never one id for both


async def test_an_equal_request_another_id_or_extra_fields_are_built_anew(
    counted: CountingPrepare,
) -> None:
    answers = _answers(1303, 1303, 1303, 1303)
    transport = MockTransport(lambda request: next(answers))
    request = TextToVideoRequest(prompt="a cat on a wall")
    async with KlingSession(config=CONFIG, transport=transport) as session:
        for call in (
            lambda: session.create(request, external_task_id="job-1"),
            lambda: session.create(
                TextToVideoRequest(prompt="a cat on a wall"), external_task_id="job-1"
            ),
            lambda: session.create(request, external_task_id="job-2"),
            lambda: session.create(request, external_task_id="job-2", extra_body={"x": 1}),
        ):
            with pytest.raises(ConcurrencyLimitedError):
                await call()
    assert counted.calls == 4
    ids = [json.loads(r.body or b"")["external_task_id"] for r in transport.requests]
    assert ids == ["job-1", "job-1", "job-2", "job-2"]
    assert "x" in json.loads(transport.requests[3].body or b"")


async def test_a_request_changed_in_place_after_a_1303_is_built_anew(
    counted: CountingPrepare,
) -> None:
    answers = _answers(1303, 0)
    transport = MockTransport(lambda request: next(answers))
    shots = [Shot(index=1, prompt="a cat", duration="5")]
    request = TextToVideoRequest(
        model_name="kling-v3", multi_shot=True, shot_type="customize", multi_prompt=shots
    )
    async with KlingSession(config=CONFIG, transport=transport) as session:
        with pytest.raises(ConcurrencyLimitedError):
            await session.create(request, external_task_id="job-1")
        shots[0] = Shot(index=1, prompt="a dog", duration="5")  # the frozen model's list
        await session.create(request, external_task_id="job-1")
    assert counted.calls == 2
    prompts = [json.loads(r.body or b"")["multi_prompt"][0]["prompt"] for r in transport.requests]
    assert prompts == ["a cat", "a dog"]  # what the caller wrote at each call


def test_kept_creates_are_bounded_by_count_and_bytes() -> None:
    requests = [TextToVideoRequest(prompt=f"clip {i}") for i in range(5)]
    prepared = [prepare(r, external_task_id=f"k{i}", validate=True) for i, r in enumerate(requests)]
    by_count = RefusedCreates(max_items=3)
    for i, (r, p) in enumerate(zip(requests, prepared, strict=True)):
        by_count.keep(r, f"k{i}", None, p)
    assert len(by_count) == 3
    assert by_count.take(requests[0], "k0", None) is None  # the oldest went first
    assert by_count.take(requests[4], "k4", None) is prepared[4]
    assert by_count.take(requests[4], "k4", None) is None  # taken once
    size = len(prepared[0].body)
    by_bytes = RefusedCreates(max_bytes=2 * size + size // 2)
    for i, (r, p) in enumerate(zip(requests, prepared, strict=True)):
        by_bytes.keep(r, f"k{i}", None, p)
    assert len(by_bytes) == 2
