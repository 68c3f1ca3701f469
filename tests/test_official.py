"""KlingSession on Kling's own API, against the fake in official mode with an access/secret pair."""

from __future__ import annotations

import logging
import traceback
import warnings
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import anyio
import attrs
import jwt
import pytest

from kling_async import (
    AuthenticationError,
    ConfigurationError,
    ImageGenerationRequest,
    ImageToVideoRequest,
    KlingSession,
    Task,
    TextToAudioRequest,
    TextToVideoRequest,
    TurboSettings,
    TurboTextToVideoRequest,
)
from kling_async._auth import JWT_PATTERN
from kling_async._backends import ENV_API_KEY, KLING
from kling_async._reads import id_queries, list_query
from kling_async._transport import HTTPRequest, HTTPResponse, StreamResponse, Transport
from kling_async.testing import FakeGateway, run_fake_gateway

IMAGE = "https://example.com/frame.png"
HANG_GUARD = 60.0  # seconds; turns a hang into a failure, never a timing check


class Recording:
    """A transport that remembers every Authorization header it carried."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.authorizations: list[str] = []

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        self.authorizations.append(request.headers.get("Authorization", ""))
        return await self.inner.send(request)

    def stream(
        self, url: str, *, timeout: float, follow_redirects: bool = True
    ) -> AbstractAsyncContextManager[StreamResponse]:
        return self.inner.stream(url, timeout=timeout, follow_redirects=follow_redirects)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def tokens(self) -> set[str]:
        return {value.removeprefix("Bearer ") for value in self.authorizations}


@pytest.fixture
async def fake() -> AsyncIterator[FakeGateway]:
    """Fast tasks; tokens on real Unix time, moved only by advance()."""
    async with run_fake_gateway(time_scale=0.001, token_time_scale=1.0) as gateway:
        yield gateway


def mixed_requests() -> list[object]:
    return [
        TextToVideoRequest(prompt="a heron at dawn"),
        ImageToVideoRequest(image=IMAGE, prompt="a slow pan"),
        ImageGenerationRequest(prompt="a lighthouse", n=2),
        TextToAudioRequest(prompt="rain on a tin roof", duration=3),
    ]


async def test_a_mixed_family_run_creates_each_task_once_with_tokens(fake: FakeGateway) -> None:
    """Video, image-to-video, images and audio on official routes: one create each, no 401."""
    requests = mixed_requests() * 2
    done: list[Task] = []
    async with fake.session(backend="kling") as session:
        assert session.backend is KLING
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as group:
                for request in requests:

                    async def one(r: object = request) -> None:
                        done.append(await session.run(r))  # type: ignore[arg-type]

                    group.start_soon(one)
    stats = fake.stats()
    assert len(done) == len(requests)
    assert all(task.succeeded for task in done)
    assert stats["creates"] == stats["create_requests"] == len(requests)
    assert stats["duplicate_external_ids"] == 0
    assert stats["auth_failures"] == 0
    assert stats["token_requests"] == stats["api_requests"]  # every request carried a token
    families = {"text2video", "image2video", "image-generation", "text-to-audio"}
    assert {name for name, n in stats["creates_by_family"].items() if n} == families


async def test_tokens_renew_when_the_fakes_clock_passes_their_lifetime(fake: FakeGateway) -> None:
    """A run longer than a token's life: the session signs a new one before the old expires."""
    async with fake.session(backend="kling") as session:
        task = await session.create(TextToVideoRequest(prompt="one"))
        fake.advance(1000.0)  # 800 s left: above the 300 s margin, same token
        await session.get(task)
        fake.advance(1000.0)  # past exp on both clocks: renewed before sending
        await session.get(task)
        fake.advance(2000.0)
        await session.create(TextToVideoRequest(prompt="two"))
    stats = fake.stats()
    assert (stats["tokens_seen"], stats["auth_failures"], stats["creates"]) == (3, 0, 2)


async def test_a_401_for_an_expired_token_renews_and_sends_exactly_once_more(
    fake: FakeGateway,
) -> None:
    """A client clock 10 min behind keeps a token the fake finds expired: one resend, one task."""
    skewed = attrs.evolve(
        fake.session(backend="kling").config, token_clock=lambda: fake.token_clock() - 600.0
    )
    async with KlingSession(config=skewed) as session:
        await session.create(TextToVideoRequest(prompt="before"))
        fake.advance(1300.0)  # exp passed for the fake; 200 s of margin left for the client
        task = await session.create(TextToVideoRequest(prompt="after"))
        assert task.id
        assert session.request_counts["create"] == 3
    stats = fake.stats()
    assert (stats["creates"], stats["auth_failures"], stats["tokens_seen"]) == (2, 1, 2)
    assert stats["duplicate_external_ids"] == 0


async def test_a_wrong_secret_is_refused_after_one_renewal_and_names_the_pair(
    fake: FakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad signature: one fresh token, then AuthenticationError naming the variables only."""
    caplog.set_level(logging.DEBUG, logger="kling_async")
    secret = "sk-canary-" + "7" * 20
    config = fake.session(backend="kling", secret_key=secret).config
    recording: Recording | None = None
    async with KlingSession(config=config) as session:
        recording = Recording(session.transport)
        session._sender.transport = recording  # the seam: record what left
        with pytest.raises(AuthenticationError) as caught:
            await session.create(TextToVideoRequest(prompt="p"))
        texts = [repr(session), repr(config), str(config), repr(session._sender.credentials)]
    error = caught.value
    assert error.code == 1002
    assert "KLING_ACCESS_KEY" in str(error)
    assert "KLING_SECRET_KEY" in str(error)
    assert fake.stats()["auth_failures"] == 2
    assert fake.stats()["creates"] == 0
    texts.append("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    texts += [record.getMessage() for record in caplog.records]
    blob = "\n".join(texts)
    assert len(recording.authorizations) == 2  # the create and its one resend
    for token in recording.tokens():
        assert token not in blob
        assert token.rsplit(".", 1)[1] not in blob  # not even the signature
    assert secret not in blob
    assert fake.access_key not in blob
    assert not JWT_PATTERN.search(blob)


async def test_api_key_only_routes_with_only_a_pair_are_refused_before_sending(
    fake: FakeGateway,
) -> None:
    """Turbo creates and GET /tasks need KLING_API_KEY; nothing is sent, no slot is taken."""
    turbo = TurboTextToVideoRequest(prompt="a fox", settings=TurboSettings(duration=5))
    async with fake.session(backend="kling", max_running=1) as session:
        with pytest.raises(ConfigurationError, match=ENV_API_KEY) as created:
            await session.create(turbo)
        with pytest.raises(ConfigurationError, match=ENV_API_KEY):
            session.submit(turbo)
        with pytest.raises(ConfigurationError, match=ENV_API_KEY):
            await session.get_many(task_ids=["1"])
        assert session.slots.in_use == 0
    assert "API key only" in str(created.value)
    assert fake.stats()["api_requests"] == 0


async def test_with_an_api_key_too_turbo_goes_through_get_tasks_one_id_kind_each(
    fake: FakeGateway,
) -> None:
    """Pair plus API key: turbo creates and queries; mixed id kinds split into two requests."""
    turbo = TurboTextToVideoRequest(prompt="a fox", settings=TurboSettings(duration=5))
    async with fake.session(backend="kling", api_key=fake.api_key) as session:
        task = await session.run(turbo)
        classic = await session.create(TextToVideoRequest(prompt="a heron"))
        assert task.succeeded
        assert task.external_id
        before = fake.stats()["batch_queries"]
        both = await session.get_many(task_ids=[task.id], external_task_ids=[task.external_id])
        assert [t.id for t in both] == [task.id]
        assert fake.stats()["batch_queries"] - before == 2
        many = await session.get_many(task_ids=[task.id, *(str(n) for n in range(24))])
        assert [t.id for t in many] == [task.id]
        assert fake.stats()["batch_queries"] - before == 4  # 25 ids: 20 + 5
        found = await session.get(classic.id)  # by id alone: the family is remembered
        assert found.id == classic.id
    stats = fake.stats()
    assert stats["invalid_requests"] == 0
    assert stats["token_requests"] > 0  # the classic family still used tokens


async def test_list_tasks_reports_a_family_newest_first_in_one_request(
    fake: FakeGateway,
) -> None:
    """Three text-to-video tasks, one list query: newest first, the other family absent."""
    async with fake.session(backend="kling") as session:
        made = [await session.create(TextToVideoRequest(prompt=f"p{i}")) for i in range(3)]
        await session.create(TextToAudioRequest(prompt="rain", duration=3))
        listed = await session.list_tasks("text2video")
        assert [t.id for t in listed] == [t.id for t in reversed(made)]
        assert all(t.endpoint == "text2video" for t in listed)
        assert [t.id for t in await session.list_tasks("text2video", page=2, page_size=2)] == [
            made[0].id
        ]
        assert session.request_counts["list_query"] == 2
        with pytest.raises(ValueError, match="no list query"):
            await session.list_tasks("turbo-text2video")
        with pytest.raises(ValueError, match="page_size"):
            await session.list_tasks("text2video", page_size=501)
    assert fake.stats()["list_queries"] == 2


async def test_list_tasks_on_the_gateway_is_a_configuration_error(fake: FakeGateway) -> None:
    """The gateway has no list query: a ConfigurationError says which backend has one."""
    async with fake.session() as session:
        with pytest.raises(ConfigurationError, match="backend='kling'"):
            await session.list_tasks("text2video")
    assert fake.stats()["api_requests"] == 0


async def test_tokens_carry_the_documented_claims(fake: FakeGateway) -> None:
    """What leaves is HS256 with iss = access key, exp = nbf + 5 + lifetime, checked by PyJWT."""
    async with fake.session(backend="kling") as session:
        recording = Recording(session.transport)
        session._sender.transport = recording
        await session.create(TextToVideoRequest(prompt="p"))
    (token,) = recording.tokens()
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT's note on short HMAC keys (the fake's test key)
        claims = jwt.decode(
            token,
            fake.secret_key,
            algorithms=["HS256"],
            issuer=fake.access_key,
            options={"verify_exp": False, "verify_nbf": False},
        )
    assert claims["exp"] - claims["nbf"] == 1800 + 5


def test_id_queries_follow_each_backends_rules() -> None:
    """Gateway: both kinds together, 100 a request; Kling: one kind a request, 20 at most."""
    from kling_async._backends import GATEWAY

    ids = [str(n) for n in range(45)]
    kling = id_queries(KLING, ids, ["e1", "e2"])
    assert [len(q.get("task_ids", "").split(",")) for q in kling[:3]] == [20, 20, 5]
    assert kling[3] == {"external_task_ids": "e1,e2"}
    assert all(len(q) == 1 for q in kling)
    gateway = id_queries(GATEWAY, ids, ["e1"])
    assert gateway == [{"task_ids": ",".join(ids), "external_task_ids": "e1"}]
    assert id_queries(KLING, [], []) == []


def test_list_query_bounds() -> None:
    """Page 1-1000, size 1-500, classic families of a backend with a list query only."""
    route = KLING.route("text2video")
    assert list_query(KLING, route, page=3, page_size=500) == "pageNum=3&pageSize=500"
    with pytest.raises(ValueError, match="page must"):
        list_query(KLING, route, page=1001, page_size=1)
    with pytest.raises(ValueError, match="page_size"):
        list_query(KLING, route, page=1, page_size=0)


async def test_a_batch_of_mixed_families_on_kling_creates_once_and_renews_tokens(
    fake: FakeGateway,
) -> None:
    """session.batch on the official routes: one create per job, tokens renewed, no 401."""
    from kling_async.batch import Event, EventKind

    jobs = [(f"job-{i}", request) for i, request in enumerate(mixed_requests() * 3)]
    created: list[str] = []

    def on_event(event: Event) -> None:
        if event.kind is EventKind.CREATED:
            created.append(event.key)
            # Twice mid-run, 1600 s pass on the fake: past the renewal point (lifetime
            # 1800 s less the 300 s margin) but not past the expiry of a token in flight,
            # so the session renews before sending and nothing is ever refused.
            if len(created) in (3, 8):
                fake.advance(1600.0)

    async with fake.session(backend="kling") as session:
        with anyio.fail_after(HANG_GUARD):
            async with session.batch(max_running=3, on_event=on_event) as batch:
                batch.submit_all(jobs)
                results = [result async for result in batch]
    stats = fake.stats()
    assert len(results) == len(jobs)
    assert all(r.ok for r in results)
    assert stats["creates"] == stats["create_requests"] == len(jobs)
    assert stats["duplicate_external_ids"] == 0
    assert stats["auth_failures"] == 0
    assert stats["tokens_seen"] >= 3
    assert stats["token_requests"] == stats["api_requests"]
