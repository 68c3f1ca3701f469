"""The request path's shortcuts keep every guarantee of the long way round.

Each shortcut (strict JSON without per-number hooks, depth walks skipped by a bracket
count, one read of a plain body within its cap, request-id-shaped text left as it is,
unquoted plain ids, running tasks parsed without output walks, no span work without
a recording tracer) is pinned here against the behaviour it must not change.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

import attrs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kling_async import (
    AiohttpTransport,
    HTTPRequest,
    HTTPResponse,
    ImageGenerationRequest,
    KlingSession,
    ResponseDecodeError,
    ResponseTooLargeError,
    TaskStatus,
    TextToVideoRequest,
    TurboOptions,
    TurboSettings,
    TurboTextToVideoRequest,
    _telemetry,
)
from kling_async._converter import parse_task, to_payload
from kling_async._endpoints import body_with_external_id, endpoint_for, with_external_id
from kling_async._envelope import json_depth, parse_json
from kling_async._redact import Redactor
from kling_async._rules import apply_table
from kling_async._task import ms_to_datetime
from kling_async.testing import MockTransport

API_KEY = "hot-path-key-0001"
ENDPOINT_PATH = "hot-path-endpoint"


# --- strict JSON ------------------------------------------------------------------------


def test_integers_up_to_forty_characters_pass_and_longer_ones_are_refused() -> None:
    """A 40-digit integer parses; 41 digits, or 40 digits with a sign, are refused."""
    assert parse_json(b'{"n": %s}' % (b"9" * 40), max_depth=8) == {"n": int("9" * 40)}
    assert parse_json(b'{"n": -%s}' % (b"9" * 39), max_depth=8) == {"n": -int("9" * 39)}
    for body in (b'{"n": %s}' % (b"9" * 41), b'{"n": -%s}' % (b"9" * 40)):
        with pytest.raises(ValueError, match="digits"):
            parse_json(body, max_depth=8)


def test_a_long_digit_run_inside_a_string_is_just_text() -> None:
    """Sixty digits in a string are kept as the string, not refused as a number."""
    digits = "7" * 60
    assert parse_json(json.dumps({"id": digits}).encode(), max_depth=8) == {"id": digits}


@pytest.mark.parametrize("literal", [b"1e999", b"-1e999", b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_numbers_are_refused(literal: bytes) -> None:
    """Overflowing floats and the non-finite constants never become values."""
    with pytest.raises(ValueError, match="not JSON"):
        parse_json(b'{"x": ' + literal + b"}", max_depth=8)


def test_nesting_past_the_cap_is_refused_when_brackets_could_reach_it() -> None:
    """Nine levels with a cap of eight is refused; eight levels pass."""
    assert parse_json(b"[" * 8 + b"]" * 8, max_depth=8) is not None
    with pytest.raises(ValueError, match="nested deeper than 8"):
        parse_json(b"[" * 9 + b"]" * 9, max_depth=8)


def test_many_shallow_siblings_pass_a_small_depth_cap() -> None:
    """Fifty sibling objects (over 100 brackets, depth 4) pass a cap of 4: depth is measured."""
    body = json.dumps({"data": [{"outputs": []} for _ in range(50)]}).encode()
    assert len(parse_json(body, max_depth=4)["data"]) == 50
    with pytest.raises(ValueError, match="nested deeper than 3"):
        parse_json(body, max_depth=3)


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    """A message full of brackets is depth 1, whatever the bracket count says."""
    body = json.dumps({"message": "[{" * 40}).encode()
    assert parse_json(body, max_depth=1) == {"message": "[{" * 40}


def test_json_depth_counts_only_containers() -> None:
    """Scalars are depth 0; each array or object level adds one."""
    samples: tuple[Any, ...] = (1, "x", {}, [], {"a": [1]}, [[[]]])
    assert [json_depth(v) for v in samples] == [0, 0, 1, 1, 2, 3]
    assert json_depth({"a": {"b": [{"c": 1}]}, "x": [], "y": 2}) == 4


# --- capped reads --------------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    """Loopback routes: a plain body, a gzip bomb and a chunked body."""
    plain = b'{"code": 0, "data": {}}'
    bomb = gzip.compress(b" " * 2_000_000)

    async def small(request: web.Request) -> web.Response:
        return web.Response(body=plain, content_type="application/json")

    async def inflating(request: web.Request) -> web.Response:
        return web.Response(
            body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(20):
            await response.write(b"y" * 10_000)
        return response

    app = web.Application()
    app.router.add_get("/small", small)
    app.router.add_get("/gzip", inflating)
    app.router.add_get("/chunked", chunked)
    async with TestServer(app, host="127.0.0.1") as running:
        yield running


async def _fetch(url: str, cap: int) -> HTTPResponse:
    transport = AiohttpTransport()
    try:
        return await transport.send(
            HTTPRequest(method="GET", url=url, label="x", timeout=5.0, max_answer_bytes=cap)
        )
    finally:
        await transport.aclose()


async def test_a_plain_body_within_its_cap_is_read_whole(server: TestServer) -> None:
    """A short answer with a Content-Length under the cap arrives whole, not truncated."""
    response = await _fetch(str(server.make_url("/small")), 1000)
    assert (response.body, response.truncated) == (b'{"code": 0, "data": {}}', False)


async def test_a_compressed_body_is_capped_after_inflating(server: TestServer) -> None:
    """A 2 KB gzip body that inflates to 2 MB stops at the 100 KB cap."""
    assert len(gzip.compress(b" " * 2_000_000)) < 100_000
    response = await _fetch(str(server.make_url("/gzip")), 100_000)
    assert (len(response.body), response.truncated) == (100_000, True)


async def test_a_chunked_body_is_capped(server: TestServer) -> None:
    """A 200 KB chunked answer (no Content-Length) stops at a 50 KB cap."""
    response = await _fetch(str(server.make_url("/chunked")), 50_000)
    assert (len(response.body), response.truncated) == (50_000, True)


# --- redaction -----------------------------------------------------------------------------


def test_request_id_shaped_text_is_kept_and_secrets_still_go() -> None:
    """An id is returned as is; a secret inside an id-like text is still replaced."""
    redactor = Redactor(["s3cretKEY"])
    assert redactor.scrub("9f1c2b7e-0d7e-4a53_9c1b") == "9f1c2b7e-0d7e-4a53_9c1b"
    assert redactor.scrub("abc-s3cretKEY-def") == "abc-***-def"
    assert redactor.scrub("abcdef", limit=5) == "ab..."


def test_longer_or_dotted_text_takes_every_pattern() -> None:
    """A 64-character run is described as base64; a token shape is replaced."""
    redactor = Redactor([])
    assert redactor.scrub("A" * 64).startswith("<base64: 64 chars")
    assert redactor.scrub("eyJhbGciOi.eyJzdWIi.c2ln") == "<token>"


# --- task parsing --------------------------------------------------------------------------


def _classic(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "task_id": "812",
        "task_status": "succeed" if result else "processing",
        "created_at": 1_733_180_000_000,
        "updated_at": 1_733_180_000_500,
        "task_info": {"external_task_id": "ext-1"},
        "task_result": result,
    }


def test_a_running_classic_task_has_no_outputs() -> None:
    """An empty task_result gives no outputs and no result type, times still read."""
    task = parse_task("text2video", _classic({}), request_id="r-1")
    assert (task.videos, task.images, task.series_images, task.audios) == ((), (), (), ())
    assert (task.result_type, task.request_id, task.external_id) == (None, "r-1", "ext-1")
    assert task.created_at == datetime(2024, 12, 2, 22, 53, 20, tzinfo=timezone.utc)


def test_a_finished_classic_task_still_reads_its_outputs() -> None:
    """Videos and images of a non-empty task_result are read as before."""
    task = parse_task(
        "omni-image",
        _classic({"result_type": "single", "images": [{"index": 0, "url": "https://a/0.png"}]}),
    )
    assert task.status is TaskStatus.SUCCEED
    assert (task.result_type, [i.url for i in task.images]) == ("single", ["https://a/0.png"])


def test_a_turbo_task_sums_its_billing_and_reads_outputs() -> None:
    """Billing lines sum into units; outputs are split by type; running ones have none."""
    running = parse_task(
        "turbo-text2video", {"id": "9", "status": "processing", "outputs": [], "billing": []}
    )
    assert (running.videos, running.billing, running.units) == ((), (), None)
    done = parse_task(
        "turbo-text2video",
        {
            "id": "9",
            "status": "succeeded",
            "outputs": [{"type": "video", "url": "https://a/v.mp4"}],
            "billing": [{"amount": "1.5"}, {"amount": 2}],
        },
    )
    assert (done.status, done.units, done.videos[0].url) == (
        TaskStatus.SUCCEED,
        3.5,
        "https://a/v.mp4",
    )


def test_status_spellings_and_timestamps_parse_as_before() -> None:
    """Padded, capitalised and unknown statuses; int, string and junk timestamps."""
    assert TaskStatus.parse(" Processing ") is TaskStatus.PROCESSING
    assert TaskStatus.parse("weird") is TaskStatus.UNKNOWN
    assert TaskStatus.parse(None) is TaskStatus.UNKNOWN
    # Other servers' words for an end are ends, not "still running".
    for word in ("Completed", "done", "FINISHED"):
        assert TaskStatus.parse(word) is TaskStatus.SUCCEED
    for word in ("cancelled", "Canceled", "error", "timeout", "expired"):
        assert TaskStatus.parse(word) is TaskStatus.FAILED
    assert TaskStatus.parse("in_queue") is TaskStatus.SUBMITTED
    first = ms_to_datetime(1_700_000_000_000)
    assert first == ms_to_datetime(1_700_000_000_000) == ms_to_datetime("1700000000000")
    assert first == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
    assert [ms_to_datetime(v) for v in (None, "", True, "x", 10**400)] == [None] * 5


# --- the session's read path ---------------------------------------------------------------


def _session(handler: Any) -> tuple[KlingSession, MockTransport]:
    transport = MockTransport(handler)
    session = KlingSession(
        api_key=API_KEY,
        endpoint_path=ENDPOINT_PATH,
        base_url="http://127.0.0.1:9",
        transport=transport,
    )
    return session, transport


def _turbo_item(task_id: str) -> dict[str, Any]:
    return {"id": task_id, "status": "processing", "outputs": [], "billing": []}


async def test_ids_are_escaped_only_when_they_need_it() -> None:
    """A plain id goes in the path as is; one with a slash or space is percent-escaped."""

    def handler(request: HTTPRequest) -> HTTPResponse:
        ident = request.url.rsplit("/", 1)[-1]
        return HTTPResponse.from_json(
            {"code": 0, "request_id": "r-9", "data": {"task_id": ident, "task_status": "submitted"}}
        )

    session, transport = _session(handler)
    async with session:
        task = await session.get("text2video", "812-a_b.c~d")
        await session.get("text2video", "a/b c")
    urls = [r.url for r in transport.requests]
    assert urls[0].endswith("/videos/text2video/812-a_b.c~d")
    assert urls[1].endswith("/videos/text2video/" + quote("a/b c", safe=""))
    assert (task.id, task.request_id) == ("812-a_b.c~d", "r-9")


@pytest.mark.parametrize(
    ("task_ids", "external_ids"),
    [(["1", "2", "3"], []), (["a b", "c,d"], ["x/y"]), ([], ["ext-1", "ext~2"])],
)
async def test_batch_query_strings_match_urlencode(
    task_ids: list[str], external_ids: list[str]
) -> None:
    """The multi-task query's string is exactly what urlencode writes, plain ids or not."""

    def handler(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse.from_json(
            {"code": 0, "request_id": "r-7", "data": [_turbo_item(i) for i in task_ids]}
        )

    session, transport = _session(handler)
    async with session:
        tasks = await session.get_many(task_ids=task_ids, external_task_ids=external_ids)
    query = transport.requests[0].url.split("?", 1)[1]
    expected = urlencode(
        {"task_ids": ",".join(task_ids), "external_task_ids": ",".join(external_ids)}
    )
    assert query == expected
    assert [(t.id, t.request_id) for t in tasks] == [(i, "r-7") for i in task_ids]


async def test_every_request_carries_the_key_and_json_headers() -> None:
    """Headers merged once hold Authorization and the JSON type each time, read-only."""

    def handler(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse.from_json({"code": 0, "data": {"task_id": "1"}})

    session, transport = _session(handler)
    async with session:
        await session.get("text2video", "1")
        await session.get("text2video", "1")
    for request in transport.requests:
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
        assert request.headers["Content-Type"] == "application/json"
        with pytest.raises(TypeError):  # shared by every request: nobody may alter them
            request.headers["X-Extra"] = "1"  # type: ignore[index]


async def test_a_deep_answer_is_still_a_decode_error() -> None:
    """An answer nested past max_json_depth is refused with a ResponseDecodeError."""
    deep: Any = {"task_id": "1"}
    for _ in range(80):
        deep = {"x": deep}

    def handler(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse.from_json({"code": 0, "data": deep})

    session, _ = _session(handler)
    async with session:
        with pytest.raises(ResponseDecodeError, match="nested deeper"):
            await session.get("text2video", "1")


async def test_an_oversize_mock_answer_is_still_too_large() -> None:
    """A body past max_answer_bytes is refused whole, as before the shortcuts."""

    def handler(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse.from_json({"code": 0, "data": {"task_id": "1", "pad": "x" * 9_000_000}})

    session, _ = _session(handler)
    async with session:
        with pytest.raises(ResponseTooLargeError):
            await session.get("text2video", "1")


# --- telemetry guard -----------------------------------------------------------------------


def test_without_a_provider_no_span_is_opened() -> None:
    """Following OpenTelemetry's placeholder provider, span() is the shared no-op."""
    _telemetry.configure()
    trace: Any = pytest.importorskip("opentelemetry.trace")
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        pytest.skip("a global tracer provider is installed in this process")
    assert _telemetry.tracing() is False
    assert _telemetry.request_span("query", "GET") is _telemetry.span("kling.job")


def test_a_real_global_provider_turns_tracing_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the global provider is a real one, tracing() says so and spans are opened."""
    trace: Any = pytest.importorskip("opentelemetry.trace")

    class RealProvider(trace.TracerProvider):  # type: ignore[misc]
        """Stands for an SDK provider: any class but the two silent ones."""

        def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
            return trace.NoOpTracer()

    _telemetry.configure()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", RealProvider())
    assert _telemetry.tracing() is True
    assert _telemetry.request_span("query", "GET") is not _telemetry.span("kling.job", k=1)


async def test_each_query_is_a_span_with_an_explicit_provider() -> None:
    """With configure(tracer_provider=...), get and get_many each open a kling.request span."""
    trace: Any = pytest.importorskip("opentelemetry.trace")
    seen: list[tuple[str, dict[str, Any]]] = []

    class Tracer(trace.NoOpTracer):  # type: ignore[misc]
        def start_as_current_span(self, name: str, **kwargs: Any) -> Any:
            seen.append((name, dict(kwargs.get("attributes") or {})))
            return super().start_as_current_span(name, **kwargs)

    class Provider(trace.NoOpTracerProvider):  # type: ignore[misc]
        def get_tracer(self, *args: Any, **kwargs: Any) -> Tracer:
            return Tracer()

    def handler(request: HTTPRequest) -> HTTPResponse:
        if "tasks?" in request.url:
            return HTTPResponse.from_json({"code": 0, "data": [_turbo_item("5")]})
        return HTTPResponse.from_json({"code": 0, "data": {"task_id": "1"}})

    assert _telemetry.configure(tracer_provider=Provider())
    try:
        session, _ = _session(handler)
        async with session:
            await session.get("text2video", "1")
            await session.get_many(task_ids=["5"])
    finally:
        _telemetry.configure()
    assert seen == [
        ("kling.request", {"kling.kind": "query", "http.method": "GET"}),
        ("kling.request", {"kling.kind": "batch_query", "http.method": "GET"}),
    ]


@pytest.mark.parametrize(
    "request_",
    [
        TextToVideoRequest(prompt="a fox", model_name="kling-v2-6", duration="5"),
        TextToVideoRequest(prompt="a fox", external_task_id="mine-1"),
        TurboTextToVideoRequest(prompt="a fox", settings=TurboSettings(duration=5)),
        TurboTextToVideoRequest(
            prompt="a fox", options=TurboOptions(callback_url="https://example.com/cb")
        ),
        ImageGenerationRequest(prompt="a fox", n=2),
    ],
    ids=["classic", "classic-with-id", "turbo-no-options", "turbo-options", "image"],
)
def test_the_external_id_set_on_the_body_matches_the_copied_model(request_: Any) -> None:
    """Setting the id on the built body sends what building the copied model would."""
    built = to_payload(request_)
    fast = body_with_external_id(request_, built, "ext-42")
    assert fast == to_payload(with_external_id(request_, "ext-42"))
    assert built == to_payload(request_)  # the body given is not changed


def test_rules_about_absent_values_are_skipped_without_changing_findings() -> None:
    """A body without a rule's field gives the findings of the full pass over every rule."""
    table = endpoint_for("text2video").rules
    valued = [rule for rule in table.rules if rule.needs is not None]
    assert valued
    assert any(rule.needs is None for rule in table.rules)
    bodies: list[dict[str, Any]] = [
        {"prompt": "a fox", "mode": "ultra"},
        {"prompt": "", "model_name": "kling-v9", "duration": "7", "cfg_scale": 3},
        {"prompt": "a fox", "multi_shot": True, "multi_prompt": [{"index": 1, "duration": "9"}]},
        {"negative_prompt": "x" * 3000, "aspect_ratio": "4:5"},
        {"prompt": "a fox", "voice_list": [{"voice_id": "a"}]},  # sound must then be on
        {"prompt": "a fox", "camera_control": {"type": "simple"}},
        {"prompt": "a fox", "camera_control": {"type": "down_back", "config": {"zoom": 3}}},
        {"prompt": "a fox", "camera_control": {"type": "simple", "config": {"pan": 2, "tilt": 1}}},
    ]
    slow = attrs.evolve(table, rules=tuple(attrs.evolve(r, needs=None) for r in table.rules))
    for body in bodies:
        assert apply_table(table, body) == apply_table(slow, body)
        assert apply_table(table, body)  # each body is refused or warned about
    assert apply_table(table, {"prompt": "a fox"}) == apply_table(slow, {"prompt": "a fox"}) == []
