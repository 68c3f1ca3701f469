"""Ids before waiting: handles, on_created, every form of get, families from the table."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from kling_async import (
    ENDPOINTS,
    ClientConfig,
    CreateOutcomeUnknownError,
    HTTPRequest,
    HTTPResponse,
    ImageGenerationRequest,
    KlingSession,
    RetryPolicy,
    Task,
    TaskHandle,
    TextToVideoRequest,
    TurboTextToVideoRequest,
    ValidationError,
    VideoExtendRequest,
)
from kling_async._families import TypedFamilies, attribute_name, family_accessor
from kling_async.testing import MockTransport
from kling_async.testing._pytest_plugin import FakeFactory, fast_session_options

BASE = "http://kling.test"


def _config(**overrides: Any) -> ClientConfig:
    values: dict[str, Any] = {
        "api_key": "k",
        "endpoint_path": "ep",
        "base_url": BASE,
        "turbo_base_url": BASE,
        "retry": RetryPolicy(reconcile_grace=0.0, reconcile_deadline=5.0),
    }
    values.update(overrides)
    return ClientConfig(**values)


def _ok(data: Any, status: int = 200) -> HTTPResponse:
    return HTTPResponse.from_json({"code": 0, "request_id": "r", "data": data}, status=status)


async def test_the_external_id_is_known_before_anything_is_sent(
    kling_fake_factory: FakeFactory,
) -> None:
    """submit() returns at once with the external id; the task id appears after creation."""
    async with kling_fake_factory() as fake, fake.session(**fast_session_options()) as session:
        handle = session.text_to_video.submit(TextToVideoRequest(prompt="x"))
        assert isinstance(handle, TaskHandle)
        assert handle.external_task_id
        assert handle.task_id is None
        assert fake.stats()["create_requests"] == 0
        task = await handle
        assert task.succeeded
        assert task.external_id == handle.external_task_id
        assert handle.task_id == task.id
        assert handle.done


async def test_on_created_sees_the_task_before_the_wait(kling_fake_factory: FakeFactory) -> None:
    """run(on_created=...) is called once, with the created task's ids, before it ends."""
    seen: list[Task] = []

    async def created(task: Task) -> None:
        seen.append(task)

    async with kling_fake_factory() as fake, fake.session(**fast_session_options()) as session:
        done = await session.text_to_video.run(TextToVideoRequest(prompt="x"), on_created=created)
    assert len(seen) == 1
    assert seen[0].id == done.id
    assert not seen[0].is_terminal


async def test_two_awaiters_share_one_run(kling_fake_factory: FakeFactory) -> None:
    """Awaiting a handle twice at once creates the task once and gives both the same result."""
    results: list[Task] = []
    async with kling_fake_factory() as fake, fake.session(**fast_session_options()) as session:
        handle = session.text_to_video.submit(TextToVideoRequest(prompt="x"))

        async def join() -> None:
            results.append(await handle)

        async with anyio.create_task_group() as group:
            group.start_soon(join)
            group.start_soon(join)
        assert fake.stats()["creates"] == 1
    assert [t.id for t in results] == [results[0].id] * 2


async def test_a_cancelled_create_resumes_without_paying_twice(no_delays: None) -> None:
    """Cancelled mid-create, a handle awaited again treats a 1201 as 'it exists' and adopts it."""
    posts: list[dict[str, Any]] = []
    hang = anyio.Event()

    async def handler(request: HTTPRequest) -> HTTPResponse:
        if request.method == "POST":
            posts.append(json.loads(request.body or b"{}"))
            if len(posts) == 1:
                await hang.wait()  # the first create never answers
            return HTTPResponse.from_json({"code": 1201, "message": "duplicate"}, status=400)
        return _ok({"task_id": "t-1", "task_status": "succeed"})

    async with KlingSession(config=_config(), transport=MockTransport(handler)) as session:
        handle = session.submit(TextToVideoRequest(prompt="x"))
        with anyio.move_on_after(0.05):
            await handle
        assert handle.create_sent
        assert handle.task is None
        task = await handle
    assert task.id == "t-1"
    assert len(posts) == 2
    assert posts[0]["external_task_id"] == posts[1]["external_task_id"]


async def test_validation_happens_at_submit(no_delays: None) -> None:
    """An invalid request is refused by submit() itself; nothing is ever sent."""
    transport = MockTransport(lambda r: _ok({}))
    async with KlingSession(config=_config(), transport=transport) as session:
        with pytest.raises(ValidationError):
            session.submit(TextToVideoRequest(prompt="x" * 5000))
    assert transport.requests == []


async def test_every_form_of_get_finds_the_task(kling_fake_factory: FakeFactory) -> None:
    """get(task), get(task_id), get(external_task_id=) and get(family, id) all find it."""
    async with kling_fake_factory() as fake:
        async with fake.session(**fast_session_options()) as first:
            created = await first.text_to_video.create(
                TextToVideoRequest(prompt="x"), external_task_id="mine-1"
            )
            assert (await first.get(created)).id == created.id
            assert (await first.get(created.id)).id == created.id
            assert (await first.get("text2video", created.id)).id == created.id
        async with fake.session(**fast_session_options()) as other_process:
            found = await other_process.get(external_task_id="mine-1")
            by_id = await other_process.get(created.id)
    assert (found.id, found.endpoint, found.external_id) == (created.id, "text2video", "mine-1")
    assert by_id.id == created.id


async def test_get_finds_tasks_of_other_families(kling_fake_factory: FakeFactory) -> None:
    """A fresh session finds a turbo or image task by external id without naming its family."""
    async with kling_fake_factory() as fake:
        async with fake.session(**fast_session_options()) as first:
            image = await first.image_generation.create(
                ImageGenerationRequest(prompt="x"), external_task_id="img-1"
            )
            turbo = await first.turbo_text_to_video.create(
                TurboTextToVideoRequest(prompt="x"), external_task_id="turbo-1"
            )
        async with fake.session(**fast_session_options()) as second:
            assert (await second.get(external_task_id="img-1")).id == image.id
            assert (await second.get(external_task_id="turbo-1")).id == turbo.id


async def test_video_extend_gets_no_invented_id(no_delays: None) -> None:
    """video-extend's seeds document no external id: none is added, and an unclear create stops."""
    posts: list[dict[str, Any]] = []

    def handler(request: HTTPRequest) -> HTTPResponse:
        posts.append(json.loads(request.body or b"{}"))
        return HTTPResponse.from_json({"code": 5000, "message": "boom"}, status=500)

    async with KlingSession(config=_config(), transport=MockTransport(handler)) as session:
        handle = session.video_extend.submit(VideoExtendRequest(video_id="v-1"))
        assert handle.external_task_id is None
        with pytest.raises(CreateOutcomeUnknownError) as info:
            await session.video_extend.create(VideoExtendRequest(video_id="v-1"))
    assert info.value.external_task_id is None
    assert info.value.endpoint == "video-extend"
    assert len(posts) == 1
    assert "external_task_id" not in posts[0]


def test_every_task_family_has_a_typed_accessor() -> None:
    """Each task-creating row of the endpoint table is reachable as a typed session attribute."""
    for endpoint in ENDPOINTS:
        if endpoint.is_task:
            accessor = getattr(TypedFamilies, attribute_name(endpoint))
            assert accessor.endpoint is endpoint


async def test_families_are_built_from_the_table() -> None:
    """session.families holds one Family per task endpoint; accessors return those objects."""
    async with KlingSession(config=_config(), transport=MockTransport(lambda r: _ok({}))) as s:
        assert set(s.families) == {ep.name for ep in ENDPOINTS if ep.is_task}
        assert s.text_to_video is s.families["text2video"]
        assert s.family("videos/text2video") is s.text_to_video


def test_a_misnamed_accessor_is_refused() -> None:
    """Declaring a family under a name that does not match the table fails at class creation."""
    with pytest.raises((TypeError, RuntimeError)):

        class Wrong(TypedFamilies):
            videos = family_accessor(TextToVideoRequest)
