"""Configuration of the fake gateway: one mutable attrs object with realistic defaults."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = [
    "DEFAULT_FAULT_MIX",
    "DURATION_MODELS",
    "FAULTS",
    "FAULT_SCOPES",
    "FakeConfig",
]

#: Every fault the fake can inject, with what it does. "Before store" faults answer
#: before a create stores its task (no task exists); all others strike after it (the
#: task exists and is paid, whatever the client saw).
#:
#: ``http_500`` / ``http_503`` / ``http_504``
#:     Answer 500/503/504 with codes 5000/5001/5002. On a create, 500 and 503 come
#:     before the task is stored; 504 after (the task exists).
#: ``5xx_after_store``
#:     Answer 500 with code 5000 after the task is stored.
#: ``drop_before_store`` / ``drop_after_store``
#:     Close the connection without any response, before or after the task is stored.
#: ``truncated``
#:     Send the normal response's headers and half of its body, then close (after store).
#: ``html``
#:     Answer HTTP 200 with an HTML proxy error page (after store).
#: ``slow``
#:     Wait ``slow_latency`` seconds, then answer normally.
#: ``rate_limit`` / ``concurrency_limit``
#:     Answer 429 with code 1302 (with ``Retry-After``) or 1303 (before store).
#:
#: Hostile answers, never drawn unless named in ``fault_mix`` or injected:
#:
#: ``retry_after_1e9`` / ``retry_after_inf`` / ``retry_after_negative``
#:     Answer 429, code 1302, with ``Retry-After: 1e9``, ``inf`` or ``-5`` (before store).
#: ``non_json``
#:     HTTP 200, ``Content-Type: application/json``, a body that is not JSON (not
#:     even UTF-8).
#: ``bad_code``
#:     HTTP 200 with ``{"code": "²"}`` (a digit that no integer parser accepts).
#: ``deep_nesting``
#:     HTTP 200 with valid JSON nested ``hostile_depth`` arrays deep under ``data``.
#: ``nan_index``
#:     The normal answer with ``"index": "nan"`` in every object of every list under
#:     ``data`` (on the ``data`` object itself when it has no list).
#: ``non_finite``
#:     The normal answer with every number under ``data`` replaced by the bare tokens
#:     ``NaN`` / ``Infinity`` / ``-Infinity`` and every numeric string that is not an
#:     id (``duration``, ``final_unit_deduction``...) by ``"1e999"``.
#: ``wrong_types``
#:     The normal answer with every nested field of ``data`` of the wrong type
#:     (strings become objects, numbers strings, lists strings, booleans strings).
#: ``huge_body`` / ``huge_body_chunked``
#:     HTTP 200 with a valid answer padded to ``huge_body_bytes``, streamed with an
#:     honest ``Content-Length`` or chunked without one.
FAULTS: tuple[str, ...] = (
    "http_500",
    "http_503",
    "http_504",
    "5xx_after_store",
    "drop_before_store",
    "drop_after_store",
    "truncated",
    "html",
    "slow",
    "rate_limit",
    "concurrency_limit",
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

#: Where a scheduled fault may strike: task creates, single task queries, multi-task
#: queries (``GET tasks`` on either API), list queries (Kling's own API),
#: identify-face, any of those five (``api``), or media downloads.
FAULT_SCOPES: tuple[str, ...] = ("create", "query", "batch", "list", "face", "api", "media")

#: How task lives can be drawn (``FakeConfig.duration_model``). Each uses its kind's
#: ``*_median`` and ``*_sigma``:
#:
#: ``lognormal`` (the default)
#:     ``median * exp(N(0, sigma))``.
#: ``gamma``
#:     A gamma distribution whose coefficient of variation is ``sigma`` (shape
#:     ``1 / sigma**2``), scaled so that its median is about ``median``.
#: ``shifted_exponential``
#:     A fixed minimum plus an exponential tail of mean ``sigma * median``, the
#:     minimum chosen so that the median is ``median`` (floored at 0 when
#:     ``sigma * ln 2 >= 1``).
#: ``bimodal``
#:     Two log-normal modes of log-space ``sigma``: with probability
#:     ``bimodal_share`` the median is ``median * (1 - bimodal_spread)``,
#:     otherwise ``median * (1 + bimodal_spread)``.
DURATION_MODELS: tuple[str, ...] = ("lognormal", "gamma", "shifted_exponential", "bimodal")

#: How the added queue wait is drawn (``FakeConfig.queue_wait_model``).
QUEUE_WAIT_MODELS: tuple[str, ...] = ("lognormal", "exponential")

#: Relative weights of the faults drawn at random when ``fault_rate`` > 0.
DEFAULT_FAULT_MIX: Mapping[str, float] = {
    "http_500": 1.0,
    "http_503": 1.0,
    "http_504": 1.0,
    "drop_before_store": 1.0,
    "drop_after_store": 1.0,
    "truncated": 1.0,
    "html": 1.0,
    "slow": 1.0,
}


def _non_negative(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _fraction(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value!r}")


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            raise ValueError(f"{attribute.name} must be one of {list(choices)}, got {value!r}")

    return check


def _below_one(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1), got {value!r}")


def _fault_mix(_: Any, attribute: attrs.Attribute[Any], value: Mapping[str, float]) -> None:
    unknown = sorted(set(value) - set(FAULTS))
    if unknown:
        raise ValueError(f"{attribute.name} names unknown faults {unknown}; known: {list(FAULTS)}")
    if any(weight < 0 for weight in value.values()):
        raise ValueError(f"{attribute.name} weights must be >= 0")


def _webhook_secret(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        from .._webhooks import sign

        sign(value, "check", 0, b"")  # raises ValueError for a secret that is not base64


def _key_pairs(value: Mapping[str, str] | Iterable[Iterable[str]]) -> tuple[tuple[str, str], ...]:
    """Access/secret key pairs from a mapping or from ``(access, secret)`` items."""
    items = value.items() if isinstance(value, Mapping) else value
    pairs: list[tuple[str, str]] = []
    for item in items:
        access, secret = (str(part) for part in item)
        if not access.strip() or not secret.strip():
            raise ValueError("key_pairs: an access key and its secret key must not be empty")
        pairs.append((access, secret))
    return tuple(pairs)


@attrs.define(kw_only=True)
class FakeConfig:
    """How the fake gateway behaves. Every random choice is seeded by ``seed``.

    Task timing: each task's whole life (``submitted`` until ``succeed``/``failed``,
    the time it holds a concurrency slot) is drawn from a log-normal distribution
    of the given median and log-space sigma for its kind, multiplied by
    ``time_scale``. With ``scale_by_request`` on, video medians also grow with the
    clip (``sqrt(duration / 5)``) and the mode (std 1, pro 1.25, 4k 1.6), and image
    medians with the image count (``1 + 0.1 * (count - 1)``), so a 5 s std clip keeps
    exactly the configured median. The first ``queue_fraction`` of the life is
    ``submitted``, the rest ``processing``.

    Other gateway shapes (all off by default): ``duration_model`` draws lives from
    another distribution (:data:`DURATION_MODELS`); ``queue_fraction_jitter`` gives
    each task its own ``submitted`` share; ``queue_wait_median`` adds a per-task
    wait in ``submitted`` before the life starts. The wait holds the task's
    concurrency slot and counts in its duration (``created`` to the end), like a
    busy queue on the vendor's side. Each of these draws from its own seeded
    sequence, so turning one on leaves the lives, failures and ids of the tasks
    unchanged.

    Units charged (``final_unit_deduction``, turbo ``billing[].amount``), on success
    only (a failed task reports ``"0"``): video per second of clip, std 0.6, pro 1.0,
    4k 2.0, times 1.2 with ``sound: on`` (so pro 5 s with sound = 6, as in the
    seeds); turbo 720p 0.6 and 1080p 1.0 per second; video-extend a 5 s std
    extension (3); lip-sync 0.5 per started 5 s of audio; avatar a 5 s clip at its
    mode's rate; images 0.25 each at 1k, 0.5 at 2k, 1.0 at 4k; audio 0.25.

    Attributes:
        api_key: The accepted bearer key.
        extra_api_keys: More accepted keys (each with its own quotas and
            external-id namespace).
        endpoint_path: The accepted ``/v1/ai/{endpoint_path}/kling`` segment.
        key_pairs: Access/secret key pairs Kling's own API (``/v1/...``) accepts
            tokens from (a mapping or ``(access, secret)`` items). The n-th pair
            acts for the account of the n-th API key (so one account can use
            both, as on Kling's console); pairs beyond the keys are accounts of
            their own. API keys are accepted on Kling's routes too.
        token_time_scale: How fast token time runs: tokens' ``exp``/``nbf`` are
            checked against Unix time stretched by ``1 / token_time_scale``
            around :data:`kling_async._auth.SCALED_CLOCK_ANCHOR` (what
            :func:`kling_async._auth.scaled_clock` computes), plus every
            :meth:`FakeGateway.advance`. ``None``: ``time_scale`` (an 1800 s
            token lives 1.8 s at 0.001); ``1.0``: real Unix time.
        official_max_query_ids: Most ids one ``GET /tasks`` of Kling's own API
            accepts (users report 20); more is refused with 400/1201.
        time_scale: Multiplies every task duration (0.001 turns 100 s into 0.1 s).
        video_median: Median life of a video task, seconds (before ``time_scale``).
        video_sigma: Log-space sigma of video task lives.
        image_median: Median life of an image task, seconds.
        image_sigma: Log-space sigma of image task lives.
        audio_median: Median life of an audio task, seconds.
        audio_sigma: Log-space sigma of audio task lives.
        queue_fraction: Share of a task's life spent ``submitted``.
        duration_model: How lives are drawn, one of :data:`DURATION_MODELS`.
        bimodal_share: With ``bimodal``, the probability of the short mode.
        bimodal_spread: With ``bimodal``, how far each mode's median lies from
            the configured median, as a fraction of it (within [0, 1)).
        queue_fraction_jitter: Each task's ``submitted`` share is drawn uniformly
            within ``queue_fraction`` ± this, clipped to [0, 1]; 0 keeps it fixed.
        queue_wait_median: Median of a wait (seconds, before ``time_scale``) added in
            ``submitted`` before each task's life; 0 adds none.
        queue_wait_sigma: Log-space sigma of that wait (``lognormal`` model).
        queue_wait_model: ``lognormal`` or ``exponential`` (of the same median;
            ``queue_wait_sigma`` is then unused).
        scale_by_request: Let clip duration, mode and image count stretch lives.
        max_running: Concurrency quota per key, in slots (a video takes 1, an image
            task ``n``); a create beyond it gets HTTP 429, code 1303. ``None``: no quota.
        max_rps: Request-rate limit per key (token bucket) on API requests; beyond it
            HTTP 429, code 1302, with ``Retry-After``. ``None``: no limit.
        rps_burst: Bucket size of that limit (default ``max(1, max_rps)``).
        fail_rate: Fraction of tasks that end ``failed``.
        fail_message: Their ``task_status_msg`` / ``message``.
        fault_rate: Probability that an API request suffers a random fault drawn
            from ``fault_mix``.
        fault_mix: Relative weights of the random faults (names from :data:`FAULTS`).
        slow_latency: Delay of the ``slow`` fault, seconds.
        latency: Delay added to every API response, seconds.
        lookup_lag: Seconds a new task stays invisible to queries by task id or
            external id (404, code 1203), while a second create with its external id
            is refused at once (400, code 1201). Real seconds unless ``scale_delays``.
        url_ttl: Seconds a result URL stays valid after the task ends; later
            downloads get 403. Real seconds unless ``scale_delays``.
        scale_delays: Multiply ``lookup_lag``, ``url_ttl``, ``latency`` and
            ``slow_latency`` by ``time_scale`` too, so every delay shrinks with the
            task lives (off by default: those four are real seconds).
        huge_body_bytes: Size of the ``huge_body`` answers, bytes.
        hostile_depth: Nesting depth of the ``deep_nesting`` answer.
        range_requests: Honour ``Range`` headers on media downloads.
        webhook_secret: Sign callbacks with this Standard Webhooks secret
            (``whsec_...``); ``None`` sends them unsigned.
        callback_hosts: Hosts callbacks may be sent to (loopback by default: a fake
            never calls out to the internet); others are skipped and counted.
        callback_timeout: Seconds a callback POST may take.
        seed: Seed of every random choice (durations, failures, faults, ids).
        public_url: Base URL written into result URLs (default: the URL it listens on).
    """

    api_key: str = "test-key"
    extra_api_keys: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    endpoint_path: str = "test-endpoint"
    key_pairs: tuple[tuple[str, str], ...] = attrs.field(
        default=(("test-access-key", "test-secret-key"),), converter=_key_pairs, repr=False
    )
    token_time_scale: float | None = attrs.field(default=None, validator=_positive)
    official_max_query_ids: int = attrs.field(default=20, validator=_positive)
    time_scale: float = attrs.field(default=1.0, validator=_positive)
    video_median: float = attrs.field(default=100.0, validator=_positive)
    video_sigma: float = attrs.field(default=0.25, validator=_non_negative)
    image_median: float = attrs.field(default=20.0, validator=_positive)
    image_sigma: float = attrs.field(default=0.25, validator=_non_negative)
    audio_median: float = attrs.field(default=15.0, validator=_positive)
    audio_sigma: float = attrs.field(default=0.25, validator=_non_negative)
    queue_fraction: float = attrs.field(default=0.1, validator=_fraction)
    duration_model: str = attrs.field(default="lognormal", validator=_one_of(DURATION_MODELS))
    bimodal_share: float = attrs.field(default=0.5, validator=_fraction)
    bimodal_spread: float = attrs.field(default=0.5, validator=_below_one)
    queue_fraction_jitter: float = attrs.field(default=0.0, validator=_fraction)
    queue_wait_median: float = attrs.field(default=0.0, validator=_non_negative)
    queue_wait_sigma: float = attrs.field(default=0.5, validator=_non_negative)
    queue_wait_model: str = attrs.field(default="lognormal", validator=_one_of(QUEUE_WAIT_MODELS))
    scale_by_request: bool = True
    max_running: int | None = attrs.field(default=None, validator=_positive)
    max_rps: float | None = attrs.field(default=None, validator=_positive)
    rps_burst: float | None = attrs.field(default=None, validator=_positive)
    fail_rate: float = attrs.field(default=0.0, validator=_fraction)
    fail_message: str = "The generation failed: content risk control was triggered (fake)"
    fault_rate: float = attrs.field(default=0.0, validator=_fraction)
    fault_mix: Mapping[str, float] = attrs.field(
        factory=lambda: dict(DEFAULT_FAULT_MIX), validator=_fault_mix
    )
    slow_latency: float = attrs.field(default=1.0, validator=_non_negative)
    latency: float = attrs.field(default=0.0, validator=_non_negative)
    lookup_lag: float = attrs.field(default=0.0, validator=_non_negative)
    url_ttl: float = attrs.field(default=3600.0, validator=_non_negative)
    scale_delays: bool = False
    huge_body_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=_positive)
    hostile_depth: int = attrs.field(default=20_000, validator=_positive)
    range_requests: bool = True
    webhook_secret: str | None = attrs.field(default=None, validator=_webhook_secret)
    callback_hosts: tuple[str, ...] = attrs.field(
        default=("127.0.0.1", "localhost", "::1"), converter=tuple
    )
    callback_timeout: float = attrs.field(default=5.0, validator=_positive)
    seed: int = 0
    public_url: str | None = None

    @property
    def api_keys(self) -> tuple[str, ...]:
        """Every accepted key, ``api_key`` first."""
        return (self.api_key, *self.extra_api_keys)

    @property
    def access_key(self) -> str:
        """The first pair's access key (``KLING_ACCESS_KEY`` of a client).

        Raises:
            LookupError: ``key_pairs`` is empty.
        """
        if not self.key_pairs:
            raise LookupError("the fake has no key pairs")
        return self.key_pairs[0][0]

    @property
    def secret_key(self) -> str:
        """The first pair's secret key (``KLING_SECRET_KEY`` of a client).

        Raises:
            LookupError: ``key_pairs`` is empty.
        """
        if not self.key_pairs:
            raise LookupError("the fake has no key pairs")
        return self.key_pairs[0][1]

    @property
    def token_scale(self) -> float:
        """The token time scale in force (``token_time_scale`` or ``time_scale``)."""
        return self.token_time_scale if self.token_time_scale is not None else self.time_scale
