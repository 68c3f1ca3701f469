"""Hostile and after-store faults of the fake gateway: each sends exactly the damage it names."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from kling_async.testing import DEFAULT_FAULT_MIX, FAULTS, FakeConfig, FakeGateway, run_fake_gateway

PREFIX = "/v1/ai/test-endpoint/kling"
AUTH = {"Authorization": "Bearer test-key"}
T2V = "videos/text2video"
IMAGES = "images/generations"
HOSTILE = (
    "retry_after_1e9",
    "retry_after_inf",
    "retry_after_negative",
    "non_json",
    "bad_code",
    "deep_nesting",
    "nan_index",
    "non_finite",
    "wrong_types",
    "huge_body",
    "huge_body_chunked",
)


class Raw:
    """Status, headers and raw bytes of one response."""

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


async def raw(
    http: aiohttp.ClientSession, fake: FakeGateway, method: str, path: str, **kwargs: Any
) -> Raw:
    """One API request under the prefix, body kept as bytes."""
    url = f"{fake.url}{path}" if path.startswith("/") else f"{fake.url}{PREFIX}/{path}"
    async with http.request(method, url, headers=AUTH, **kwargs) as r:
        return Raw(r.status, r.headers, await r.read())


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fake() -> AsyncIterator[FakeGateway]:
    config = FakeConfig(time_scale=0.001, huge_body_bytes=200_000, hostile_depth=3_000)
    async with run_fake_gateway(config) as gateway:
        yield gateway


async def create(http: aiohttp.ClientSession, fake: FakeGateway, ext: str) -> Raw:
    """A text-to-video create with external id ``ext``."""
    return await raw(http, fake, "POST", T2V, json={"prompt": "x", "external_task_id": ext})


def test_hostile_faults_are_known_but_never_drawn_by_default() -> None:
    """Every hostile kind is a known fault; the default random mix holds none of them."""
    assert set(HOSTILE) | {"5xx_after_store"} <= set(FAULTS)
    assert not (set(HOSTILE) | {"5xx_after_store"}) & set(DEFAULT_FAULT_MIX)


async def test_5xx_after_store_answers_500_but_the_task_exists(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """5xx_after_store: HTTP 500 / code 5000, yet the task was stored and is paid for."""
    fake.inject("5xx_after_store")
    reply = await create(http, fake, "s1")
    assert (reply.status, reply.json()["code"]) == (500, 5000)
    assert (await raw(http, fake, "GET", f"{T2V}/s1")).json()["code"] == 0
    assert fake.stats()["creates"] == 1


@pytest.mark.parametrize(
    ("fault", "value"),
    [("retry_after_1e9", "1e9"), ("retry_after_inf", "inf"), ("retry_after_negative", "-5")],
)
async def test_hostile_retry_after_is_sent_before_store(
    http: aiohttp.ClientSession, fake: FakeGateway, fault: str, value: str
) -> None:
    """retry_after_*: 429 / code 1302 with that literal Retry-After, and no task stored."""
    fake.inject(fault)
    reply = await create(http, fake, "r1")
    assert (reply.status, reply.json()["code"]) == (429, 1302)
    assert reply.headers["Retry-After"] == value
    assert (await raw(http, fake, "GET", f"{T2V}/r1")).json()["code"] == 1203
    assert fake.stats()["creates"] == 0


async def test_non_json_body_is_neither_json_nor_utf8(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """non_json: HTTP 200 labelled JSON whose body no JSON parser accepts; the task exists."""
    fake.inject("non_json")
    reply = await create(http, fake, "n1")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError, match=r"decode|Expecting"):
        reply.json()
    with pytest.raises(UnicodeDecodeError):
        reply.body.decode()
    assert fake.stats()["creates"] == 1


async def test_bad_code_is_a_superscript_digit(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """bad_code: the body is exactly {"code": "²"}, a "digit" int() refuses."""
    fake.inject("bad_code")
    reply = await create(http, fake, "b1")
    assert reply.status == 200
    assert reply.json() == {"code": "²"}
    assert reply.json()["code"].isdigit()
    with pytest.raises(ValueError, match="invalid literal"):
        int(reply.json()["code"])
    assert fake.stats()["creates"] == 1


async def test_deep_nesting_exceeds_the_parser_limit(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """deep_nesting: a success envelope whose data is hostile_depth arrays deep."""
    fake.inject("deep_nesting")
    reply = await create(http, fake, "d1")
    assert reply.status == 200
    assert reply.body.startswith(b'{"code":0,')
    assert reply.body.count(b"[") == reply.body.count(b"]") == 3_000
    with pytest.raises(RecursionError):
        reply.json()


async def test_nan_index_marks_every_output_item(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """nan_index: each image of a finished task carries index "nan"; the ids are untouched."""
    created = await raw(http, fake, "POST", IMAGES, json={"prompt": "x", "n": 3})
    task_id = created.json()["data"]["task_id"]
    fake.advance(10_000.0)
    fake.inject("nan_index", on="query")
    data = (await raw(http, fake, "GET", f"{IMAGES}/{task_id}")).json()["data"]
    images = data["task_result"]["images"]
    assert len(images) == 3
    assert {image["index"] for image in images} == {"nan"}
    assert data["task_id"] == task_id


async def test_nan_index_on_an_answer_without_lists_marks_the_data(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """nan_index on a create answer (no output list) puts index "nan" on data itself."""
    fake.inject("nan_index")
    data = (await create(http, fake, "i1")).json()["data"]
    assert data["index"] == "nan"
    assert data["task_status"] == "submitted"


async def test_non_finite_numbers_use_bare_tokens_and_keep_ids(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """non_finite: numbers become NaN/Infinity tokens, numeric strings 1e999, ids stay."""
    created = await create(http, fake, "f1")
    task_id = created.json()["data"]["task_id"]
    fake.advance(10_000.0)
    fake.inject("non_finite", on="query")
    reply = await raw(http, fake, "GET", f"{T2V}/{task_id}")
    tokens: list[str] = []
    data = json.loads(reply.body, parse_constant=lambda t: tokens.append(t) or float(t))["data"]
    assert tokens
    with pytest.raises(ValueError, match=r"Infinity|NaN"):
        json.loads(reply.body, parse_constant=lambda t: (_ for _ in ()).throw(ValueError(t)))
    assert not math.isfinite(data["created_at"])
    assert not math.isfinite(data["updated_at"])
    assert data["final_unit_deduction"] == "1e999"
    assert data["task_result"]["videos"][0]["duration"] == "1e999"
    assert data["task_id"] == task_id
    assert data["task_info"]["external_task_id"] == "f1"


async def test_wrong_types_damage_nested_fields_but_keep_the_envelope(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """wrong_types: code/message intact; nested strings, numbers and lists change type."""
    created = await create(http, fake, "w1")
    task_id = created.json()["data"]["task_id"]
    fake.advance(10_000.0)
    fake.inject("wrong_types", on="query")
    body = (await raw(http, fake, "GET", f"{T2V}/{task_id}")).json()
    assert (body["code"], body["message"]) == (0, "SUCCEED")
    data = body["data"]
    assert isinstance(data["task_status"], dict)
    assert isinstance(data["created_at"], str)
    assert isinstance(data["task_info"]["external_task_id"], dict)
    assert isinstance(data["task_result"]["videos"], str)


async def test_wrong_types_on_a_batch_query_keep_the_list(http: aiohttp.ClientSession) -> None:
    """wrong_types on turbo's list answer: still a list, each item's fields wrongly typed."""
    async with run_fake_gateway(time_scale=0.001) as fake:
        turbo = "videos/text-to-video/kling-3.0-turbo"
        created = await raw(http, fake, "POST", turbo, json={"prompt": "x"})
        task_id = created.json()["data"]["id"]
        fake.inject("wrong_types", on="batch")
        data = (await raw(http, fake, "GET", f"tasks?task_ids={task_id}")).json()["data"]
    assert isinstance(data, list)
    assert len(data) == 1
    assert isinstance(data[0]["id"], dict)
    assert isinstance(data[0]["outputs"], str)


@pytest.mark.parametrize("fault", ["huge_body", "huge_body_chunked"])
async def test_huge_body_is_padded_to_the_configured_size(
    http: aiohttp.ClientSession, fake: FakeGateway, fault: str
) -> None:
    """huge_body(_chunked): huge_body_bytes of valid JSON holding the normal answer."""
    fake.inject(fault)
    reply = await create(http, fake, "h1")
    assert reply.status == 200
    assert len(reply.body) == 200_000
    declared = reply.headers.get("Content-Length")
    assert declared == ("200000" if fault == "huge_body" else None)
    body = reply.json()
    assert body["data"]["task_info"]["external_task_id"] == "h1"
    assert body["padding"].strip() == ""


async def test_reader_that_stops_early_is_dropped_quietly(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that stops reading a huge answer is counted; nothing is logged as an error."""
    caplog.set_level(logging.DEBUG)
    async with run_fake_gateway(time_scale=0.001, huge_body_bytes=64 * 1024 * 1024) as fake:
        fake.inject("huge_body_chunked")
        url = f"{fake.url}{PREFIX}/{T2V}"
        async with http.post(url, headers=AUTH, json={"prompt": "x"}) as response:
            first = await response.content.readexactly(64 * 1024)
            response.close()
        assert first.startswith(b'{"padding":"')
        after = await raw(http, fake, "POST", T2V, json={"prompt": "y"})
        assert after.status == 200
        await fake.close()
        stats = fake.stats()
    assert stats["client_disconnects"] == 1
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_huge_body_on_media_streams_bytes_of_the_media_type(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """huge_body on a download: the file's type, huge_body_bytes long, the file first."""
    created = await create(http, fake, "m1")
    task_id = created.json()["data"]["task_id"]
    fake.advance(100.0)  # done, yet well within url_ttl
    video = (await raw(http, fake, "GET", f"{T2V}/{task_id}")).json()["data"]
    url = video["task_result"]["videos"][0]["url"]
    normal = await raw(http, fake, "GET", url.removeprefix(fake.url))
    assert normal.status == 200
    fake.inject("huge_body", on="media")
    reply = await raw(http, fake, "GET", url.removeprefix(fake.url))
    assert reply.headers["Content-Type"] == "video/mp4"
    assert len(reply.body) == 200_000
    assert reply.body.startswith(normal.body)
    assert set(reply.body[len(normal.body) :]) == {0}


def test_json_rewriting_faults_cannot_target_media() -> None:
    """inject() refuses a JSON-rewriting fault on the media scope, naming the reason."""
    fake = FakeGateway()
    with pytest.raises(ValueError, match="cannot strike media"):
        fake.inject("bad_code", on="media")
    fake.inject("huge_body", on="media")  # byte-level faults are fine


async def test_hostile_kinds_work_through_fault_mix(http: aiohttp.ClientSession) -> None:
    """A fault_mix of hostile kinds strikes at random like any other fault, seeded."""
    config = FakeConfig(
        time_scale=0.001, fault_rate=1.0, fault_mix={"bad_code": 1.0, "retry_after_inf": 1.0}
    )
    async with run_fake_gateway(config) as fake:
        replies = [await create(http, fake, f"x{i}") for i in range(12)]
        stats = fake.stats()
    kinds = {"bad_code" if r.status == 200 else r.headers["Retry-After"] for r in replies}
    assert kinds == {"bad_code", "inf"}
    assert stats["faults_by_kind"]["bad_code"] == stats["creates"]
    assert sum(stats["faults_by_kind"].values()) == 12
