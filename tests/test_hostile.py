"""Hostile or broken answers stay typed, local to one request, and bounded in time and memory."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kling_async import (
    ClientConfig,
    CreateOutcomeUnknownError,
    HTTPRequest,
    HTTPResponse,
    KlingError,
    KlingSession,
    Limits,
    PollPolicy,
    RateLimitedError,
    ResponseDecodeError,
    ResponseTooLargeError,
    RetryPolicy,
    Task,
    TaskStatus,
    TextToVideoRequest,
    WaitTimeoutError,
)
from kling_async._backoff import set_testing
from kling_async._converter import parse_task
from kling_async._envelope import decode_answer, json_depth, parse_json
from kling_async._redact import Redactor
from kling_async.testing import MockTransport
from kling_async.testing._pytest_plugin import FakeFactory, fast_session_options

KEY = "hostile-key-0123456789"
BASE = "http://kling.test"
T2V = f"{BASE}/v1/ai/ep/kling/videos/text2video"


def _task(status: str = "processing", task_id: str = "t-1") -> dict[str, Any]:
    return {"task_id": task_id, "task_status": status, "task_info": {}, "created_at": 1}


async def _outcome(call: Awaitable[Task]) -> object:
    """The task's status, or the name of the SDK error it raised (nothing else may escape)."""
    try:
        task = await call
    except KlingError as exc:
        return type(exc).__name__
    return task.status


def _ok(data: Any) -> HTTPResponse:
    return HTTPResponse.from_json({"code": 0, "message": "", "request_id": "r", "data": data})


def _config(**overrides: Any) -> ClientConfig:
    values: dict[str, Any] = {
        "api_key": KEY,
        "endpoint_path": "ep",
        "base_url": BASE,
        "turbo_base_url": BASE,
        "retry": RetryPolicy(max_attempts=2, reconcile_grace=0.0, reconcile_deadline=0.0),
    }
    values.update(overrides)
    return ClientConfig(**values)


def _decode(status: int, body: bytes, **limits: int) -> Any:
    response = HTTPResponse(status=status, headers={}, body=body)
    return decode_answer(
        response,
        method="GET",
        label="videos/text2video/{id}",
        phase="read",
        limits=Limits(**limits),
        redactor=Redactor([KEY]),
        max_retry_after=60.0,
    )


HOSTILE_200_BODIES = [
    pytest.param(b"<html>proxy error</html>", id="html"),
    pytest.param(b"\xff\xfe not utf-8 \x00", id="not-utf8"),
    pytest.param(
        json.dumps({"code": "\u00b2"}, ensure_ascii=False).encode(), id="superscript-code"
    ),
    pytest.param(b'{"code": true, "data": {}}', id="bool-code"),
    pytest.param(b'{"code": 0, "data": ' + b"[" * 5000 + b"]" * 5000 + b"}", id="deep-5000"),
    pytest.param(b'{"code": 0, "data": ' + b"[" * 70 + b"]" * 70 + b"}", id="deep-70"),
    pytest.param(b'{"code": 0, "data": {"x": NaN}}', id="nan"),
    pytest.param(b'{"code": 0, "data": {"x": Infinity}}', id="infinity"),
    pytest.param(b'{"code": 0, "data": {"x": 1e999}}', id="float-overflow"),
    pytest.param(b'{"code": 0, "data": {"x": ' + b"9" * 5000 + b"}}", id="huge-int"),
    pytest.param(b'{"code": 0, "message": 5, "data": {}}', id="message-int"),
    pytest.param(b'{"code": 0, "request_id": {"a": 1}, "data": {}}', id="request-id-object"),
    pytest.param(b'{"code": 0, "message": "ok"}', id="no-data"),
    pytest.param(b"[1, 2, 3]", id="array-envelope"),
    pytest.param(b"", id="empty"),
]


@pytest.mark.parametrize("body", HOSTILE_200_BODIES)
def test_hostile_success_bodies_are_decode_errors(body: bytes) -> None:
    """Every HTTP 200 body that is not the documented envelope raises ResponseDecodeError."""
    with pytest.raises(ResponseDecodeError) as info:
        _decode(200, body)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


def test_oversized_answers_are_refused_at_the_cap() -> None:
    """A success body over max_answer_bytes raises ResponseTooLargeError naming the cap."""
    body = json.dumps({"code": 0, "data": {"pad": "x" * 2000}}).encode()
    with pytest.raises(ResponseTooLargeError) as info:
        _decode(200, body, max_answer_bytes=1000)
    assert info.value.limit == 1000


def test_error_bodies_are_read_only_up_to_their_cap() -> None:
    """An error answer is mapped by status from its first bytes; the rest is never parsed."""
    body = json.dumps({"code": 1302, "message": "slow down", "pad": "x" * 50_000}).encode()
    with pytest.raises(RateLimitedError) as info:
        _decode(429, body, max_error_bytes=100)
    assert info.value.code is None  # the cut envelope is not JSON: the status decides


def test_json_depth_counts_containers() -> None:
    """json_depth counts nested arrays and objects; parse_json refuses past the limit."""
    assert json_depth(1) == 0
    assert json_depth({"a": [1, {"b": []}]}) == 4
    assert parse_json(b"[[[]]]", max_depth=3) == [[[]]]
    with pytest.raises(ValueError, match="deeper than 2"):
        parse_json(b"[[[]]]", max_depth=2)


def test_gateway_text_is_scrubbed() -> None:
    """A message echoing the key or a base64 payload reaches the error scrubbed."""
    b64 = "iVBORw0KGgo" + "A" * 200
    body = json.dumps({"code": 1201, "message": f"bad {KEY} image {b64}"}).encode()
    with pytest.raises(KlingError) as info:
        _decode(400, body)
    text = str(info.value)
    assert KEY not in text
    assert b64 not in text
    assert "base64: 211 chars" in text


@pytest.mark.parametrize(
    ("header", "expected"),
    [("1e9", 60.0), ("inf", None), ("nan", None), ("-5", 0.0), ("soon", None), ("7", 7.0)],
)
def test_retry_after_is_capped_or_ignored(header: str, expected: float | None) -> None:
    """Retry-After is cut to the cap; non-finite and junk values are ignored."""
    response = HTTPResponse(
        status=429,
        headers={"retry-after": header},
        body=json.dumps({"code": 1302, "message": "slow"}).encode(),
    )
    with pytest.raises(RateLimitedError) as info:
        decode_answer(
            response,
            method="GET",
            label="x",
            phase="read",
            limits=Limits(),
            redactor=Redactor([]),
            max_retry_after=60.0,
        )
    assert info.value.retry_after == expected


async def test_retry_after_pause_never_exceeds_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1302 with Retry-After: 1e9 pauses the configured cap, not eleven days."""
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(anyio, "sleep", record)
    answers = iter(
        [
            HTTPResponse(
                status=429,
                headers={"Retry-After": "1e9"},
                body=b'{"code": 1302, "message": "slow"}',
            ),
            _ok(_task("succeed")),
        ]
    )
    config = _config(retry=RetryPolicy(max_retry_after=2.5, initial_delay=0.0, max_delay=0.0))
    async with KlingSession(config=config, transport=MockTransport(lambda r: next(answers))) as s:
        await s.get("text2video", "t-1")
    assert slept == [2.5]


async def test_no_pause_outlives_the_wait_deadline() -> None:
    """wait(timeout=) returns at its deadline even while the gateway asks for a long pause."""
    throttled = HTTPResponse(
        status=429, headers={"Retry-After": "50"}, body=b'{"code": 1302, "message": "slow"}'
    )
    config = _config(retry=RetryPolicy(max_attempts=10))
    policy = PollPolicy(initial_delay=0.0, interval=0.01, jitter=0.0)
    async with KlingSession(config=config, transport=MockTransport(lambda r: throttled)) as s:
        start = parse_task("text2video", _task("submitted"))
        with anyio.fail_after(20), pytest.raises(WaitTimeoutError):
            await s.wait(start, poll=policy, timeout=0.2)


async def test_hostile_create_answer_is_reconciled_not_resent(no_delays: None) -> None:
    """A create answered with garbage is unclear: looked up by external id, never POSTed twice."""
    posts: list[HTTPRequest] = []

    def handler(request: HTTPRequest) -> HTTPResponse:
        if request.method == "POST":
            posts.append(request)
            return HTTPResponse(status=200, headers={}, body=b'{"code": "\xc2\xb2"}')
        return _ok(_task("processing", "t-9"))

    async with KlingSession(config=_config(), transport=MockTransport(handler)) as s:
        task = await s.create(TextToVideoRequest(prompt="x"))
    assert task.id == "t-9"
    assert len(posts) == 1


async def test_wrong_types_inside_a_task_are_typed(no_delays: None) -> None:
    """A task object with wrong types in nested fields is a ResponseDecodeError, not a crash."""
    hostile = _ok(
        {
            "task_id": "t-1",
            "task_status": "succeed",
            "task_info": "not-an-object",
            "task_result": {"videos": "not-a-list", "images": [{"index": "nan"}]},
            "created_at": {"x": 1},
        }
    )
    async with KlingSession(config=_config(), transport=MockTransport(lambda r: hostile)) as s:
        outcome = await _outcome(s.get("text2video", "t-1"))
    assert outcome in ("ResponseDecodeError", TaskStatus.SUCCEED)


@pytest.mark.parametrize(
    "fault",
    [
        "non_json",
        "bad_code",
        "deep_nesting",
        "nan_index",
        "non_finite",
        "wrong_types",
        "huge_body",
        "huge_body_chunked",
        "retry_after_1e9",
        "retry_after_inf",
        "retry_after_negative",
    ],
)
async def test_fake_hostile_answers_through_get_wait_create(
    kling_fake_factory: FakeFactory, fault: str
) -> None:
    """Each hostile answer of the fake, on create and query, ends typed or succeeds."""
    options = fast_session_options()
    options["retry"] = RetryPolicy(
        initial_delay=0.001, max_delay=0.01, reconcile_grace=0.2, max_retry_after=0.05
    )
    options["limits"] = Limits(max_answer_bytes=256 * 1024)
    outcomes: list[object] = []
    async with (
        kling_fake_factory(huge_body_bytes=2 * 1024 * 1024) as fake,
        fake.session(**options) as session,
    ):
        clean = await session.text_to_video.create(TextToVideoRequest(prompt="clean"))
        fake.inject(fault, on="query", count=2)
        outcomes.append(await _outcome(session.get(clean)))
        outcomes.append(await _outcome(session.wait(clean, timeout=30)))
        fake.inject(fault, on="create")
        outcomes.append(
            await _outcome(session.text_to_video.create(TextToVideoRequest(prompt="x")))
        )
        assert fake.stats()["duplicate_external_ids"] == 0
    assert len(outcomes) == 3


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_TASK_KEYS = st.sampled_from(
    ["task_id", "task_status", "task_info", "task_result", "created_at", "id", "status", "outputs"]
)
_TASKISH = st.dictionaries(_TASK_KEYS, _JSON, max_size=6)
_ENVELOPE = st.fixed_dictionaries(
    {},
    optional={
        "code": st.one_of(_SCALARS, st.sampled_from(["\u00b2", "0", "1303", "-1", "٣"])),
        "message": _JSON,
        "request_id": _JSON,
        "data": st.one_of(_JSON, _TASKISH, st.lists(_TASKISH, max_size=3)),
    },
)
_RAW_TOKENS = st.sampled_from(
    [
        b"NaN",
        b"Infinity",
        b"1e999",
        b"9" * 5000,
        b"[" * 3000,
        b'{"code":0,"data":' + b"[" * 100 + b"]" * 100 + b"}",
        b"\xff\xfe",
        b"",
    ]
)
_BODIES = st.one_of(
    _ENVELOPE.map(lambda e: json.dumps(e).encode()),
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
    _RAW_TOKENS,
)
_RETRY_AFTER = st.one_of(
    st.none(),
    st.sampled_from(
        ["1e9", "inf", "-inf", "nan", "-5", "1e400", "0", "Fri, 31 Dec 9999 23:59:59 GMT"]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=16),
)
_STATUSES = st.sampled_from([200, 201, 204, 302, 400, 401, 403, 404, 429, 500, 502, 503, 599])
_OPERATIONS = st.sampled_from(["create", "get", "wait", "get_many", "get_any"])


async def _exercise(session: KlingSession, operation: str) -> None:
    """Run one operation; only the SDK's own errors may escape."""
    try:
        if operation == "create":
            await session.create(TextToVideoRequest(prompt="x"), timeout=0.3)
        elif operation == "get":
            await session.get("text2video", "t-1")
        elif operation == "get_any":
            await session.get(external_task_id="e-1")
        elif operation == "get_many":
            await session.get_many(task_ids=["1", "2"])
        else:
            start = parse_task("text2video", _task("submitted"))
            await session.wait(start, timeout=0.05)
    except KlingError:
        pass


def _mock_session(response: HTTPResponse) -> KlingSession:
    config = _config(poll=PollPolicy(initial_delay=0.0, interval=0.001, jitter=0.0))
    return KlingSession(config=config, transport=MockTransport(lambda r: response))


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(status=_STATUSES, body=_BODIES, retry_after=_RETRY_AFTER, operation=_OPERATIONS)
def test_property_mock_transport_never_leaks_foreign_exceptions(
    status: int, body: bytes, retry_after: str | None, operation: str
) -> None:
    """For any status, body and Retry-After, get/wait/create raise only KlingError subclasses."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    response = HTTPResponse(status=status, headers=headers, body=body)

    async def scenario() -> None:
        async with _mock_session(response) as session:
            with anyio.fail_after(30):
                await _exercise(session, operation)

    set_testing(True)
    try:
        asyncio.run(scenario())
    finally:
        set_testing(False)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(status=_STATUSES, body=_BODIES, retry_after=_RETRY_AFTER, operation=_OPERATIONS)
def test_property_loopback_server_never_leaks_foreign_exceptions(
    status: int, body: bytes, retry_after: str | None, operation: str
) -> None:
    """The same property over a real socket: aiohttp parsing included, only typed errors."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, headers=headers)

    async def scenario() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        async with TestServer(app, host="127.0.0.1") as server:
            config = _config(
                base_url=str(server.make_url("")),
                turbo_base_url=str(server.make_url("")),
                poll=PollPolicy(initial_delay=0.0, interval=0.001, jitter=0.0),
            )
            async with KlingSession(config=config) as session:
                with anyio.fail_after(30):
                    await _exercise(session, operation)

    set_testing(True)
    try:
        asyncio.run(scenario())
    finally:
        set_testing(False)


def _peak_rss_reset() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux); False when unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
async def test_300_mb_answer_keeps_memory_bounded(chunked: bool) -> None:
    """A 300 MB answer is refused after at most the cap: peak RSS grows by far less than it."""
    if not _peak_rss_reset():
        pytest.skip("peak RSS cannot be reset on this platform")
    total = 300 * 1024 * 1024
    block = b" " * (256 * 1024)

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        if not chunked:
            response.content_length = total
        await response.prepare(request)
        sent = 0
        try:
            while sent < total:
                await response.write(block)
                sent += len(block)
        except (ConnectionResetError, ConnectionError, RuntimeError):
            pass
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", huge)
    async with TestServer(app, host="127.0.0.1") as server:
        base = str(server.make_url(""))
        config = _config(base_url=base, turbo_base_url=base, retry=RetryPolicy(max_attempts=1))
        before = _status_kib("VmRSS")
        _peak_rss_reset()
        async with KlingSession(config=config) as session:
            with pytest.raises(ResponseTooLargeError):
                await session.get("text2video", "t-1")
        grown_mib = (_status_kib("VmHWM") - before) / 1024
    assert grown_mib < 64, f"peak RSS grew by {grown_mib:.1f} MiB for a 300 MiB answer"


def _lag_options(grace: float) -> dict[str, Any]:
    options = fast_session_options()
    options["retry"] = RetryPolicy(
        initial_delay=0.001,
        max_delay=0.02,
        reconcile_grace=grace,
        reconcile_interval=0.01,
        reconcile_deadline=30.0,
    )
    return options


async def test_lookup_lag_is_waited_out_without_sending_again(
    kling_fake_factory: FakeFactory,
) -> None:
    """A create that landed but dropped is found despite lookup lag: one create, no resend."""
    async with kling_fake_factory(lookup_lag=0.3) as fake:
        async with fake.session(**_lag_options(grace=10.0)) as session:
            fake.inject("drop_after_store", on="create")
            task = await session.text_to_video.create(TextToVideoRequest(prompt="x"))
        stats = fake.stats()
    assert task.id
    assert (stats["creates"], stats["create_requests"], stats["duplicate_external_ids"]) == (
        1,
        1,
        0,
    )


async def test_1201_after_a_resend_means_it_exists(kling_fake_factory: FakeFactory) -> None:
    """With lag beyond the grace, the resend is refused 1201 and the paid task is adopted."""
    async with kling_fake_factory(lookup_lag=0.3) as fake:
        async with fake.session(**_lag_options(grace=0.0)) as session:
            fake.inject("drop_after_store", on="create")
            task = await session.text_to_video.create(TextToVideoRequest(prompt="x"))
        stats = fake.stats()
    assert task.id
    assert task.external_id
    assert stats["creates"] == 1
    assert stats["duplicate_external_ids"] == 1  # the refused resend, not a second task


async def test_exists_past_the_reconcile_deadline_names_the_id(no_delays: None) -> None:
    """1201 after an unclear attempt, and the lookup never finds it: the external id is kept."""
    calls = {"POST": 0}

    def handler(request: HTTPRequest) -> HTTPResponse:
        if request.method == "POST":
            calls["POST"] += 1
            if calls["POST"] == 1:
                return HTTPResponse.from_json({"code": 5000, "message": "boom"}, status=500)
            return HTTPResponse.from_json({"code": 1201, "message": "duplicate"}, status=400)
        return HTTPResponse.from_json({"code": 1203, "message": "not found"}, status=404)

    config = _config(retry=RetryPolicy(reconcile_grace=0.0, reconcile_deadline=1.0))
    async with KlingSession(config=config, transport=MockTransport(handler)) as s:
        with pytest.raises(CreateOutcomeUnknownError) as info:
            await s.create(TextToVideoRequest(prompt="x"), external_task_id="mine-7")
    assert info.value.external_task_id == "mine-7"
    assert calls["POST"] == 2
    assert isinstance(info.value.__cause__, KlingError)


async def test_server_error_then_found_is_adopted(no_delays: None) -> None:
    """A 500 on create followed by a successful lookup adopts the task with one POST."""
    posts = 0

    def handler(request: HTTPRequest) -> HTTPResponse:
        nonlocal posts
        if request.method == "POST":
            posts += 1
            return HTTPResponse.from_json({"code": 5000, "message": "boom"}, status=500)
        return _ok(_task("processing", "t-5"))

    async with KlingSession(config=_config(), transport=MockTransport(handler)) as s:
        task = await s.create(TextToVideoRequest(prompt="x"))
    assert (task.id, posts) == ("t-5", 1)
