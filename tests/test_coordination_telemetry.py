"""The optional OpenTelemetry hooks: spans and counters reach explicit providers.

The providers here are small recording subclasses of the API's no-op classes, so
the tests need only ``opentelemetry-api`` (the ``otel`` extra), not the SDK.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from kling_async import _telemetry
from kling_async.coordination import InProcessSlotStore

pytest.importorskip("opentelemetry.trace", reason="the otel extra is not installed")

from opentelemetry.metrics import NoOpMeter, NoOpMeterProvider
from opentelemetry.trace import NoOpTracer, NoOpTracerProvider


class _Recorder:
    def __init__(self) -> None:
        self.spans: list[tuple[str, dict[str, Any]]] = []
        self.errors: list[BaseException] = []
        self.measurements: list[tuple[str, float, dict[str, Any]]] = []


class _Tracer(NoOpTracer):
    def __init__(self, recorder: _Recorder) -> None:
        self.recorder = recorder

    @contextlib.contextmanager
    def start_as_current_span(  # type: ignore[override]
        self, name: str, attributes: Mapping[str, Any] | None = None, **_: Any
    ) -> Iterator[None]:
        self.recorder.spans.append((name, dict(attributes or {})))
        try:
            yield
        except BaseException as exc:
            self.recorder.errors.append(exc)
            raise


class _Span:
    def __init__(self, recorder: _Recorder, name: str, attributes: dict[str, Any]) -> None:
        self.recorder, self.name, self.attributes = recorder, name, attributes

    def end(self, end_time: int | None = None) -> None:
        self.recorder.spans.append((self.name, self.attributes))


def _start_span(
    self: _Tracer, name: str, attributes: Mapping[str, Any] | None = None, **_: Any
) -> _Span:
    return _Span(self.recorder, name, dict(attributes or {}))


_Tracer.start_span = _start_span  # type: ignore[assignment,method-assign]


class _TracerProvider(NoOpTracerProvider):
    def __init__(self, recorder: _Recorder) -> None:
        self.recorder = recorder

    def get_tracer(self, *args: Any, **kwargs: Any) -> _Tracer:
        return _Tracer(self.recorder)


class _Counter:
    def __init__(self, name: str, recorder: _Recorder) -> None:
        self.name = name
        self.recorder = recorder

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None, **_: Any) -> None:
        self.recorder.measurements.append((self.name, amount, dict(attributes or {})))


class _Meter(NoOpMeter):
    def __init__(self, recorder: _Recorder) -> None:
        super().__init__("test")
        self.recorder = recorder

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Any:
        return _Counter(name, self.recorder)

    def create_up_down_counter(self, name: str, unit: str = "", description: str = "") -> Any:
        return _Counter(name, self.recorder)


class _MeterProvider(NoOpMeterProvider):
    def __init__(self, recorder: _Recorder) -> None:
        self.recorder = recorder

    def get_meter(self, *args: Any, **kwargs: Any) -> _Meter:
        return _Meter(self.recorder)


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    """Bind the SDK's telemetry to recording providers for one test, then unbind."""
    found = _Recorder()
    assert _telemetry.configure(
        tracer_provider=_TracerProvider(found), meter_provider=_MeterProvider(found)
    )
    yield found
    _telemetry.configure()


def test_span_records_name_attributes_and_errors(recorder: _Recorder) -> None:
    """span() opens a named span with its attributes and sees the exception leaving it."""
    with _telemetry.span("kling.job", key="clip-1", slots=2):
        pass
    with pytest.raises(RuntimeError), _telemetry.span("kling.request", path="videos/text2video"):
        raise RuntimeError("boom")
    assert recorder.spans == [
        ("kling.job", {"key": "clip-1", "slots": 2}),
        ("kling.request", {"path": "videos/text2video"}),
    ]
    assert [type(e) for e in recorder.errors] == [RuntimeError]


def test_refusals_are_counted_by_code(recorder: _Recorder) -> None:
    """record_refusal adds one to kling.refusals with the code as an attribute."""
    _telemetry.record_refusal(1303)
    _telemetry.record_refusal(1302)
    assert recorder.measurements == [
        ("kling.refusals", 1, {"kling.code": 1303}),
        ("kling.refusals", 1, {"kling.code": 1302}),
    ]


async def test_store_reports_slots_held_and_queue_length(recorder: _Recorder) -> None:
    """A store moves kling.slots.held with its leases and kling.queue.length with waiters."""
    store = InProcessSlotStore(max_capacity=3, initial_capacity=3)
    lease = await store.acquire("a", 2)
    assert lease is not None
    waited = await store.wait_acquire("a", 1, timeout=5)
    assert waited is not None
    await store.release(lease)
    await store.on_limited(refused=waited)
    by_name: dict[str, float] = {}
    for name, amount, _ in recorder.measurements:
        by_name[name] = by_name.get(name, 0) + amount
    assert by_name == {"kling.slots.held": 0, "kling.queue.length": 0}
    held = [amount for name, amount, _ in recorder.measurements if name == "kling.slots.held"]
    assert held == [2, 1, -2, -1]


def test_global_providers_are_no_ops_without_an_sdk() -> None:
    """With only the API installed, every hook runs and records nothing, without error."""
    _telemetry.configure()
    with _telemetry.span("kling.job", key="k"):
        _telemetry.record_refusal(1303)
        _telemetry.add_slots_held(1)
        _telemetry.add_queue_length(-1)
    assert _telemetry.available()


async def test_every_api_request_is_a_span_and_refusals_are_counted(recorder: _Recorder) -> None:
    """The session's send chain opens a span per request and counts a 1303 by code."""
    from kling_async import (
        ClientConfig,
        ConcurrencyLimitedError,
        HTTPRequest,
        HTTPResponse,
        KlingSession,
        RetryPolicy,
        TextToVideoRequest,
    )
    from kling_async.testing import MockTransport

    def refuse(request: HTTPRequest) -> HTTPResponse:
        body = {"code": 1303, "message": "busy", "request_id": "r"}
        return HTTPResponse.from_json(body, status=429)

    config = ClientConfig(
        api_key="k",
        endpoint_path="p",
        base_url="http://kling.test",
        retry=RetryPolicy(max_attempts=1),
    )
    async with KlingSession(config=config, transport=MockTransport(refuse)) as session:
        with pytest.raises(ConcurrencyLimitedError):
            await session.create(TextToVideoRequest(prompt="x"), timeout=0.5)
    assert ("kling.request", {"kling.kind": "create", "http.method": "POST"}) in recorder.spans
    assert any(m[1] == 1 and m[2].get("kling.code") == 1303 for m in recorder.measurements)


async def test_every_batch_job_is_a_span(recorder: _Recorder) -> None:
    """A job that reached the gateway is recorded as one kling.job span with its status."""
    from kling_async import TextToVideoRequest
    from kling_async.testing import FakeConfig, run_fake_gateway

    async with (
        run_fake_gateway(FakeConfig(time_scale=0.001)) as fake,
        fake.session() as session,
        session.batch(max_running=2) as batch,
    ):
        batch.submit_all((f"j{i}", TextToVideoRequest(prompt="x")) for i in range(3))
        results = [result async for result in batch]
    assert all(result.ok for result in results)
    jobs = [attrs for name, attrs in recorder.spans if name == "kling.job"]
    assert jobs == [{"kling.endpoint": "text2video", "kling.status": "succeed"}] * 3
