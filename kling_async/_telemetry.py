"""Optional OpenTelemetry hooks: spans and a few counters, no-ops without the extra.

Standard-library logging stays the SDK's default voice. When ``opentelemetry-api``
is importable (``pip install 'kling-async[otel]'``), the SDK also reports:

=========================  ===============  ===============================================
Instrument                 Kind             Meaning
=========================  ===============  ===============================================
``kling.refusals``         counter          1302 (rate) and 1303 (concurrency) answers seen,
                                            attribute ``kling.code``
``kling.slots.held``       up-down counter  concurrency slots this process holds now
``kling.queue.length``     up-down counter  calls of this process waiting for a slot
=========================  ===============  ===============================================

and a span around each unit of work the SDK wraps with :func:`span` (the session
wraps API requests, the batch wraps jobs). Span attributes never carry the API key,
a URL's query, an ``Authorization`` header or a payload.

Exporting. The API package alone records nothing: the SDK asks the *global*
providers for its tracer and meter, which are no-ops until the application installs
real ones. With ``opentelemetry-sdk`` and an exporter of your choice, for example::

    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter, PeriodicExportingMetricReader)
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(ConsoleMetricExporter())
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

Swap the console exporters for ``opentelemetry-exporter-otlp`` to ship to a
collector. To keep the SDK off the global providers (tests, several pipelines in
one process), pass explicit ones to :func:`configure`.

Every function here is cheap and never raises because telemetry is missing. While
the SDK follows the global providers and none is installed (or a no-op one is), a
request opens no span at all: :func:`tracing` answers that with one lookup, so the
hook costs next to nothing on the request path.
"""

from __future__ import annotations

import contextlib
import time
from contextlib import AbstractContextManager
from typing import Any

try:  # the ``otel`` extra
    from opentelemetry import metrics as _otel_metrics
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - exercised only without the extra installed
    _otel_metrics = None  # type: ignore[assignment]
    _otel_trace = None  # type: ignore[assignment]

#: Global tracer providers that record nothing: the proxy handed out before an
#: application installs one, and the explicit no-op.
_SILENT_PROVIDERS: tuple[type, ...] = (
    (_otel_trace.ProxyTracerProvider, _otel_trace.NoOpTracerProvider)
    if _otel_trace is not None
    else ()
)
_ABSENT = object()
#: What :func:`span` returns when no span is worth opening (reusable, reentrant).
_NO_SPAN: AbstractContextManager[None] = contextlib.nullcontext()

__all__ = [
    "add_queue_length",
    "add_slots_held",
    "available",
    "configure",
    "record_refusal",
    "record_span",
    "request_span",
    "span",
    "tracing",
]

_NAME = "kling_async"

#: Attribute values OpenTelemetry accepts on spans and measurements.
AttributeValue = str | bool | int | float


class _Instruments:
    """The tracer and instruments, bound to one pair of providers."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self.tracer: Any = None
        #: Whether the tracer comes from a provider passed to :func:`configure`.
        self.explicit_tracer = tracer_provider is not None
        self.refusals: Any = None
        self.slots_held: Any = None
        self.queue_length: Any = None
        if _otel_trace is None or _otel_metrics is None:
            return
        self.tracer = (
            tracer_provider.get_tracer(_NAME)
            if tracer_provider is not None
            else _otel_trace.get_tracer(_NAME)
        )
        meter = (
            meter_provider.get_meter(_NAME)
            if meter_provider is not None
            else _otel_metrics.get_meter(_NAME)
        )
        self.refusals = meter.create_counter(
            "kling.refusals", unit="1", description="1302 and 1303 answers seen"
        )
        self.slots_held = meter.create_up_down_counter(
            "kling.slots.held", unit="1", description="Concurrency slots held by this process"
        )
        self.queue_length = meter.create_up_down_counter(
            "kling.queue.length", unit="1", description="Calls waiting for a concurrency slot"
        )


_instruments: _Instruments | None = None


def _get() -> _Instruments:
    global _instruments
    if _instruments is None:
        _instruments = _Instruments()
    return _instruments


def available() -> bool:
    """Whether ``opentelemetry-api`` is importable (the ``otel`` extra is installed).

    Returns:
        ``True`` when spans and counters reach OpenTelemetry.
    """
    return _otel_trace is not None


def configure(*, tracer_provider: Any = None, meter_provider: Any = None) -> bool:
    """Bind the SDK's tracer and instruments to explicit providers.

    Without a call, the global providers are used (the proxies OpenTelemetry hands
    out follow a provider installed later, so the order of setup does not matter).

    Args:
        tracer_provider: An ``opentelemetry.trace.TracerProvider``, or ``None`` for
            the global one.
        meter_provider: An ``opentelemetry.metrics.MeterProvider``, or ``None`` for
            the global one.

    Returns:
        Whether OpenTelemetry is available; when not, the call changes nothing.
    """
    global _instruments
    _instruments = _Instruments(tracer_provider, meter_provider)
    return available()


def tracing() -> bool:
    """Whether a span opened now would reach a tracer provider that may record it.

    ``False`` without the ``otel`` extra, and while the SDK follows the global
    provider and that is still OpenTelemetry's placeholder (or its no-op): spans
    would be dropped anyway, so none is built. A provider passed to
    :func:`configure` is always used.

    Returns:
        Whether to open spans.
    """
    instruments = _instruments if _instruments is not None else _get()
    if instruments.tracer is None:
        return False
    if instruments.explicit_tracer:
        return True
    # The API keeps the installed provider in a module global, and its proxy tracer
    # (ours, when none was installed before us) records nothing while that is unset.
    # Reading it costs one lookup; get_tracer_provider() would also search the
    # environment on every request. An API without the global is asked publicly.
    provider = getattr(_otel_trace, "_TRACER_PROVIDER", _ABSENT)
    if provider is _ABSENT:
        provider = _otel_trace.get_tracer_provider()
    return provider is not None and not isinstance(provider, _SILENT_PROVIDERS)


def span(name: str, **attributes: AttributeValue) -> AbstractContextManager[Any]:
    """A span named ``name`` around a ``with`` block (a shared no-op when not :func:`tracing`).

    An exception leaving the block is recorded on the span and re-raised.

    Args:
        name: Span name, e.g. ``"kling.request"`` or ``"kling.job"``.
        **attributes: Span attributes (no secrets, no payloads).

    Returns:
        A context manager; the span is current inside the block.
    """
    if not tracing():
        return _NO_SPAN
    return _get().tracer.start_as_current_span(name, attributes=attributes)  # type: ignore[no-any-return, unused-ignore]


def request_span(kind: str, method: str) -> AbstractContextManager[Any]:
    """The ``kling.request`` span of one API request (attributes built only when tracing).

    Args:
        kind: The request's counter: ``create``, ``query``, ``batch_query``...
        method: ``GET`` or ``POST``.

    Returns:
        A context manager, as :func:`span`.
    """
    if not tracing():
        return _NO_SPAN
    attributes = {"kling.kind": kind, "http.method": method}
    return _get().tracer.start_as_current_span(  # type: ignore[no-any-return, unused-ignore]
        "kling.request", attributes=attributes
    )


def record_span(name: str, *, seconds: float, **attributes: AttributeValue) -> None:
    """Record a span that has just ended after ``seconds`` (e.g. one batch job's life).

    Args:
        name: Span name, e.g. ``"kling.job"``.
        seconds: How long it lasted, ending now.
        **attributes: Span attributes (no secrets, no payloads).
    """
    if not tracing():
        return
    tracer = _get().tracer
    end = time.time_ns()
    start = end - int(max(seconds, 0.0) * 1e9)
    recorded = tracer.start_span(name, attributes=attributes, start_time=start)
    recorded.end(end_time=end)


def record_refusal(code: int) -> None:
    """Count one refusal answer (1302 rate limited, 1303 concurrency limited).

    Args:
        code: The gateway's error code.
    """
    counter = _get().refusals
    if counter is not None:
        counter.add(1, {"kling.code": code})


def add_slots_held(delta: int) -> None:
    """Move the count of concurrency slots this process holds by ``delta``.

    Args:
        delta: Slots taken (positive) or given back (negative).
    """
    counter = _get().slots_held
    if counter is not None and delta:
        counter.add(delta)


def add_queue_length(delta: int) -> None:
    """Move the count of this process's calls waiting for a slot by ``delta``.

    Args:
        delta: Callers joining (positive) or leaving (negative) the wait.
    """
    counter = _get().queue_length
    if counter is not None and delta:
        counter.add(delta)
