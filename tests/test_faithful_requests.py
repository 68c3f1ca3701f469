"""Send exactly what the user wrote: seed examples arrive unchanged, and the dict path
and the model path either both refuse (at the same fields) or both send the same body.
"""

from __future__ import annotations

import json
import math
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_models import SEED_MODELS, SEED_TEXTS, seed_payload

from kling_async import KlingWarning, ValidationError
from kling_async._converter import encode_body, request_from_payload
from kling_async._endpoints import ENDPOINTS, Endpoint, endpoint_for_request
from kling_async._models import TextToVideoRequest, TrajectoryPoint, WatermarkInfo
from kling_async._models._json import FieldKind, Kind, field_kinds
from kling_async._validation import build_payload, prepare_request

URL = "https://example.com/picture.png"
#: Seed examples with placeholder images ("xxx", "${Your image1}"): filled with a URL.
PLACEHOLDERS = {"000-image-generation", "001-omni-image-2", "003-multi-image2video"}


def canonical(value: Any) -> str:
    """JSON text with sorted keys: tells "5" from 5, and 1 from 1.0 and from true."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def filled(name: str) -> dict[str, Any]:
    """A seed example, with its placeholder images replaced by a URL."""
    payload = seed_payload(name)
    if name in PLACEHOLDERS:
        if "image" in payload:
            payload["image"] = URL
        if "image_list" in payload:
            payload["image_list"] = [{"image": URL} for _ in payload["image_list"]]
    return payload


@pytest.mark.parametrize("name", sorted(SEED_TEXTS))
def test_seed_example_builds_unchanged_without_warnings(
    name: str, recwarn: pytest.WarningsRecorder
) -> None:
    """Each seed request example passes the strict path as is, with no warning."""
    endpoint = endpoint_for_request(SEED_MODELS[name])
    payload, found = build_payload(endpoint, filled(name))
    assert canonical(payload) == canonical(filled(name))
    assert found == []
    assert not [w for w in recwarn if isinstance(w.message, KlingWarning)]


@pytest.mark.parametrize("name", sorted(SEED_TEXTS))
def test_seed_example_model_path_gives_the_same_body(name: str) -> None:
    """The body structured into a model and prepared again is the seed's body."""
    endpoint = endpoint_for_request(SEED_MODELS[name])
    model = request_from_payload(endpoint.request_type, filled(name))
    payload, found = prepare_request(model)
    assert canonical(payload) == canonical(filled(name))
    assert found == []
    if name not in PLACEHOLDERS:
        assert canonical(prepare_request(SEED_MODELS[name])[0]) == canonical(seed_payload(name))


async def test_seed_examples_reach_a_recording_server_unchanged() -> None:
    """Encoded bodies, POSTed to a loopback recorder, decode to each seed's JSON value."""
    received: list[tuple[str, bytes]] = []

    async def record(request: web.Request) -> web.Response:
        received.append((request.match_info["tail"], await request.read()))
        return web.json_response({"code": 0, "message": "SUCCEED", "data": {}})

    app = web.Application()
    app.router.add_post("/kling/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http:
            for name in sorted(SEED_TEXTS):
                endpoint = endpoint_for_request(SEED_MODELS[name])
                payload, _ = build_payload(endpoint, filled(name))
                async with http.post(
                    f"http://127.0.0.1:{port}/kling/{endpoint.path}",
                    data=encode_body(payload),
                    headers={"Content-Type": "application/json"},
                ) as response:
                    assert response.status == 200
    finally:
        await runner.cleanup()
    assert len(received) == len(SEED_TEXTS)
    for name, (path, body) in zip(sorted(SEED_TEXTS), received, strict=True):
        assert path == endpoint_for_request(SEED_MODELS[name]).path
        assert canonical(json.loads(body)) == canonical(filled(name))


def test_encode_body_refuses_nan() -> None:
    """The encoder never writes NaN (not JSON) even if handed one."""
    with pytest.raises(ValueError, match="JSON"):
        encode_body({"cfg_scale": math.nan})


def test_models_refuse_wrong_types_at_construction() -> None:
    """Python models name the field and never coerce (the CLI probes of issue 12)."""
    with pytest.raises(ValidationError) as info:
        WatermarkInfo(enabled="false")  # type: ignore[arg-type]
    assert [p.path for p in info.value.problems] == ["enabled"]
    with pytest.raises(ValidationError, match=r"x: must be a whole number, got 10\.9"):
        TrajectoryPoint(x=10.9, y=1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"duration: must be a whole number, got 5\.0"):
        TextToVideoRequest(prompt="x", duration=5.0)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"multi_prompt\[0\]: must be a Shot"):
        TextToVideoRequest(multi_prompt=[{"prompt": "x"}])  # type: ignore[list-item]


def test_extra_body_is_merged_and_sent() -> None:
    """extra_body fields the SDK does not know are sent; objects merge key by key."""
    request = TextToVideoRequest(prompt="x", watermark_info=WatermarkInfo(enabled=True))
    payload, _ = prepare_request(request, extra_body={"seed": 7, "watermark_info": {"style": 1}})
    assert payload == {"prompt": "x", "seed": 7, "watermark_info": {"enabled": True, "style": 1}}
    with pytest.raises(ValidationError, match="duration"):
        prepare_request(request, extra_body={"duration": 5.5})


# --- property: the dict path and the model path agree ---------------------------------------

_WORDS = [
    "",
    "x",
    "16:9",
    "4:3",
    "std",
    "pro",
    "4k",
    "on",
    "off",
    "customize",
    "intelligence",
    "series",
    "single",
    "first_frame",
    "end_frame",
    "prompt",
    "base",
    "feature",
    "yes",
    "no",
    "simple",
    "down_back",
    "720p",
    "1080p",
    "kling-v1",
    "kling-v3",
    "kling-v2-6",
    "2k",
    "a/b",
    "job-1",
    URL,
    "5",
    "10",
    "2.5",
    "five",
    "false",
]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(_WORDS),
    st.text(max_size=4),
)
_JUNK = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=5,
)


def _typed(kind: FieldKind, depth: int) -> st.SearchStrategy[Any]:
    if kind.kind is Kind.STR:
        return st.sampled_from(_WORDS)
    if kind.kind is Kind.BOOL:
        return st.booleans()
    if kind.kind is Kind.INT:
        return st.integers(min_value=-2, max_value=80)
    if kind.kind is Kind.NUMBER:
        return st.integers(min_value=-12, max_value=12) | st.floats(-12, 12)
    if kind.kind is Kind.INT_OR_TEXT:
        return st.integers(min_value=0, max_value=16) | st.sampled_from(["5", "10", "16", "x"])
    if kind.kind is Kind.NUMBER_OR_TEXT:
        return st.integers(0, 6) | st.floats(0, 6) | st.sampled_from(["2", "2.5", "3", "x"])
    if kind.kind is Kind.LIST and kind.item is not None:
        return st.lists(_value(kind.item, depth + 1), max_size=3 if depth else 4)
    if kind.model is not None:
        return _body(kind.model, depth + 1)
    raise AssertionError(kind)


def _value(kind: FieldKind, depth: int) -> st.SearchStrategy[Any]:
    return st.integers(0, 19).flatmap(lambda n: _JUNK if n == 0 else _typed(kind, depth))


def _body(cls: type[Any], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    kinds = field_kinds(cls)
    required = {name: _value(kind, depth) for name, (kind, req) in kinds.items() if req}
    optional: dict[str, st.SearchStrategy[Any]] = {
        name: _value(kind, depth) for name, (kind, req) in kinds.items() if not req
    }
    body = st.fixed_dictionaries(required, optional=optional)
    misspelt = st.fixed_dictionaries({}, optional={"promt": _SCALARS})  # now and then
    return st.tuples(body, st.integers(0, 9), misspelt).map(
        lambda t: {**t[0], **t[2]} if t[1] == 0 else t[0]
    )


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _outcome_dict(endpoint: Endpoint, body: dict[str, Any]) -> tuple[str, Any]:
    try:
        payload, _ = build_payload(endpoint, body, warn=False)
    except ValidationError as exc:
        return "refused", {p.path for p in exc.problems}
    return "sent", canonical(payload)


def _outcome_model(endpoint: Endpoint, body: dict[str, Any]) -> tuple[str, Any, bool]:
    try:
        model = request_from_payload(endpoint.request_type, body)
    except ValidationError as exc:
        return "refused", {p.path for p in exc.problems}, False
    try:
        payload, _ = prepare_request(model, warn=False)
    except ValidationError as exc:
        return "refused", {p.path for p in exc.problems}, True
    return "sent", canonical(payload), True


def _agree(endpoint: Endpoint, body: dict[str, Any]) -> None:
    by_dict = _outcome_dict(endpoint, body)
    verdict, detail, structured = _outcome_model(endpoint, body)
    assert by_dict[0] == verdict
    if verdict == "sent":
        assert by_dict[1] == detail
        # Nothing coerced: the body sent is the one written, minus null (unset) fields.
        assert detail == canonical(_without_nulls(body))
    elif structured:
        assert detail == by_dict[1]
    else:
        assert detail <= by_dict[1]


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_paths_agree_on_mutated_seed_examples(data: st.DataObject) -> None:
    """A seed example with one field replaced: both paths agree, nothing is coerced."""
    name = data.draw(st.sampled_from(sorted(SEED_TEXTS)))
    endpoint = endpoint_for_request(SEED_MODELS[name])
    body = filled(name)
    kinds = field_kinds(endpoint.request_type)
    field = data.draw(st.sampled_from(sorted(kinds)))
    body[field] = data.draw(_value(kinds[field][0], 0))
    _agree(endpoint, body)


@settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_dict_and_model_paths_agree(data: st.DataObject) -> None:
    """Random bodies: both paths refuse (same fields) or both send the same, unchanged body."""
    endpoint = data.draw(st.sampled_from(ENDPOINTS))
    _agree(endpoint, data.draw(_body(endpoint.request_type)))
