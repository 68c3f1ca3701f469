"""Configuration: frozen, keyword-only attrs objects and their ``DEFAULT_*`` values.

Environment variables are read in exactly one place, :meth:`ClientConfig.from_env`.
Vary a policy with :func:`attrs.evolve`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import attrs

from ._errors import ConfigurationError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TURBO_BASE_URL",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_ENDPOINT_PATH",
    "ENV_TURBO_BASE_URL",
    "ClientConfig",
    "Limits",
    "PollPolicy",
    "RetryPolicy",
    "Timeouts",
]

DEFAULT_BASE_URL = "https://genaiapi.cloudsway.net"
DEFAULT_TURBO_BASE_URL = "https://genaiapi-m2.cloudsway.net"

ENV_API_KEY = "KLING_API_KEY"
ENV_ENDPOINT_PATH = "KLING_ENDPOINT_PATH"
ENV_BASE_URL = "KLING_BASE_URL"
ENV_TURBO_BASE_URL = "KLING_TURBO_BASE_URL"


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ConfigurationError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ConfigurationError(f"{attribute.name} must be >= 0, got {value!r}")


def _finite(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not math.isfinite(value):
        raise ConfigurationError(f"{attribute.name} must be a finite number, got {value!r}")


def _optional_positive(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value <= 0:
        raise ConfigurationError(f"{attribute.name} must be > 0 or None, got {value!r}")


@attrs.frozen(kw_only=True)
class Timeouts:
    """HTTP timeouts, in seconds.

    Attributes:
        connect: To establish a connection.
        request: For a whole API request (send and read the answer).
        download: For a whole output download.
    """

    connect: float = attrs.field(default=10.0, validator=_positive)
    request: float = attrs.field(default=60.0, validator=_positive)
    download: float = attrs.field(default=600.0, validator=_positive)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How failed requests are retried (capped exponential backoff, full jitter).

    Queries retry on connection errors, timeouts, 1302/1303/429 and 5xx. Creates are
    retried only when the task certainly was not created (connection refused,
    1302/1303); after an unclear failure the task is first looked up by its
    ``external_task_id`` (see ``reconcile_*``).

    Attributes:
        max_attempts: Attempts per call, the first included (the retry budget).
            1303 refusals of a create do not spend it (they wait for a slot until
            the call's deadline), except that ``1`` turns every retry off.
        initial_delay: Upper bound of the first backoff, seconds.
        max_delay: Cap of any single backoff, seconds.
        multiplier: Growth of the bound per attempt.
        retry_concurrency_limited: Whether a create refused with 1303 waits for a
            slot and is sent again (free: nothing was created); the batch scheduler
            turns this off and requeues instead.
        reconcile_grace: Seconds to keep looking for a task after an unclear create
            failure before sending the create again *with the same external id*.
            Real gateways find a new task by its external id only after a lag, so
            this is generous; sending again early is still safe (if the first one
            landed, the gateway answers 1201 and the task is looked up again, see
            ``reconcile_deadline``), only slower.
        reconcile_interval: Seconds before the first of those lookups; later ones
            back off (x1.5 each, capped at ``max_delay``).
        reconcile_deadline: Seconds to keep looking up a task whose create answered
            1200/1201 after an earlier attempt may have landed (the task exists and is
            paid; real gateways find it by external id only after a lag). After it,
            :class:`~kling_async.CreateOutcomeUnknownError` carries the external id.
        max_retry_after: Cap of a server's ``Retry-After`` hint, seconds; larger
            values are cut to it (negative, non-finite and unparseable ones are
            ignored).
    """

    max_attempts: int = attrs.field(default=5, validator=_positive)
    initial_delay: float = attrs.field(default=0.5, validator=[_non_negative, _finite])
    max_delay: float = attrs.field(default=30.0, validator=[_non_negative, _finite])
    multiplier: float = attrs.field(default=2.0, validator=[_positive, _finite])
    retry_concurrency_limited: bool = True
    reconcile_grace: float = attrs.field(default=30.0, validator=[_non_negative, _finite])
    reconcile_interval: float = attrs.field(default=1.0, validator=[_positive, _finite])
    reconcile_deadline: float = attrs.field(default=300.0, validator=[_non_negative, _finite])
    max_retry_after: float = attrs.field(default=60.0, validator=[_non_negative, _finite])


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How ``wait`` polls a task: late first poll, then geometric growth with jitter.

    Attributes:
        initial_delay: Seconds before the first poll (generation takes minutes).
        interval: Seconds between the first and second poll.
        multiplier: Growth of the interval per poll.
        max_interval: Cap of the interval, seconds.
        jitter: Relative jitter, 0 to 1 (0.1 = ±10 %).
        timeout: Overall deadline of a ``wait``, seconds.
    """

    initial_delay: float = attrs.field(default=20.0, validator=_non_negative)
    interval: float = attrs.field(default=5.0, validator=_positive)
    multiplier: float = attrs.field(default=1.5, validator=_positive)
    max_interval: float = attrs.field(default=60.0, validator=_positive)
    jitter: float = attrs.field(default=0.1, validator=_non_negative)
    timeout: float = attrs.field(default=3600.0, validator=_positive)


#: Largest JSON answer read, bytes (8 MiB: a task with many outputs is a few KiB).
DEFAULT_MAX_ANSWER_BYTES = 8 * 1024 * 1024
#: Largest error body read, bytes: the envelope of an error is a few hundred bytes.
DEFAULT_MAX_ERROR_BYTES = 8 * 1024
#: Deepest JSON nesting accepted in an answer (the documented shapes nest 5 deep).
DEFAULT_MAX_JSON_DEPTH = 64


@attrs.frozen(kw_only=True)
class Limits:
    """Bounds on what the SDK reads from the gateway (a hostile answer stays small).

    Attributes:
        max_answer_bytes: Largest successful JSON answer; reading stops at the cap
            and the request fails with :class:`~kling_async.ResponseTooLargeError`.
        max_error_bytes: Bytes of an error answer (HTTP >= 400) that are read; the
            rest is never read, the error is mapped from what was.
        max_json_depth: Deepest nesting of arrays and objects accepted.
    """

    max_answer_bytes: int = attrs.field(default=DEFAULT_MAX_ANSWER_BYTES, validator=_positive)
    max_error_bytes: int = attrs.field(default=DEFAULT_MAX_ERROR_BYTES, validator=_positive)
    max_json_depth: int = attrs.field(default=DEFAULT_MAX_JSON_DEPTH, validator=_positive)


def _url(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"{attribute.name} must start with http:// or https://, got {value!r}"
        )


def _strip_slash(value: str) -> str:
    return value.rstrip("/")


@attrs.frozen(kw_only=True)
class ClientConfig:
    """Everything a session needs to talk to the gateway.

    Attributes:
        api_key: The access key (never shown in ``repr``).
        endpoint_path: Your per-customer path segment (``/v1/ai/{endpoint_path}/kling/``).
        base_url: Base URL of the classic host.
        turbo_base_url: Base URL of the turbo host.
        timeouts: HTTP timeouts.
        retry: Retry policy.
        poll: Polling policy of ``wait``.
        validate: Check documented limits before sending (turn off only when the
            server's rules have moved ahead of this SDK).
        max_requests_per_second: Client-side request-rate limit shared by every
            call of the session; ``None`` for none.
        limits: Size and depth caps on answers.
        max_running: Concurrency slots this session's paid calls may hold at once
            (``create``, ``run``, handles); a call beyond it waits for a slot.
            ``None``: no client-side bound (a 1303 still waits and retries).
        slot_ttl: Seconds after which a slot held by a task nobody observed ending
            (a bare ``create`` never waited on) is given back anyway.
    """

    api_key: str = attrs.field(repr=False)
    endpoint_path: str = attrs.field(repr=False)
    base_url: str = attrs.field(default=DEFAULT_BASE_URL, converter=_strip_slash, validator=_url)
    turbo_base_url: str = attrs.field(
        default=DEFAULT_TURBO_BASE_URL, converter=_strip_slash, validator=_url
    )
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    poll: PollPolicy = attrs.field(factory=PollPolicy)
    validate: bool = True
    max_requests_per_second: float | None = attrs.field(default=None, validator=_optional_positive)
    limits: Limits = attrs.field(factory=Limits)
    max_running: int | None = attrs.field(default=None, validator=_optional_positive)
    slot_ttl: float = attrs.field(default=3600.0, validator=[_positive, _finite])

    def time_scaled(self, factor: float, *, min_deadline: float = 30.0) -> ClientConfig:
        """A copy for a gateway whose clock runs ``1 / factor`` times as fast (fakes, tests).

        Every delay on the gateway's clock is multiplied by ``factor``: the first
        poll, poll intervals, retry backoff, ``Retry-After`` cap, reconcile lookups
        and the slot TTL. Deadlines on the gateway's clock (``poll.timeout``,
        ``retry.reconcile_deadline``) are scaled too, but never below
        ``min_deadline``: they also absorb this machine's own slowness, which does
        not speed up. HTTP timeouts (``timeouts``) are this machine's, not scaled.

        Args:
            factor: The gateway's clock factor, e.g. a fake's ``time_scale``
                (``0.001``: a 100 s generation takes 0.1 s). ``1.0`` changes nothing.
            min_deadline: Floor of the scaled deadlines, seconds.

        Returns:
            The scaled configuration.

        Raises:
            ConfigurationError: ``factor`` is not a positive finite number.
        """
        if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
            raise ConfigurationError(f"factor must be a positive finite number, got {factor!r}")
        if factor == 1.0:
            return self

        def deadline(value: float) -> float:
            return max(value * factor, min(value, min_deadline))

        poll = attrs.evolve(
            self.poll,
            initial_delay=self.poll.initial_delay * factor,
            interval=self.poll.interval * factor,
            max_interval=self.poll.max_interval * factor,
            timeout=deadline(self.poll.timeout),
        )
        retry = attrs.evolve(
            self.retry,
            initial_delay=self.retry.initial_delay * factor,
            max_delay=self.retry.max_delay * factor,
            reconcile_grace=self.retry.reconcile_grace * factor,
            reconcile_interval=self.retry.reconcile_interval * factor,
            reconcile_deadline=deadline(self.retry.reconcile_deadline),
            max_retry_after=self.retry.max_retry_after * factor,
        )
        return attrs.evolve(self, poll=poll, retry=retry, slot_ttl=self.slot_ttl * factor)

    def __attrs_post_init__(self) -> None:
        if not self.api_key or not self.api_key.strip():
            raise ConfigurationError(f"api_key is empty (set it or the {ENV_API_KEY} variable)")
        if any(ch in self.api_key for ch in "\r\n\0"):
            raise ConfigurationError(
                f"api_key holds a line break or NUL (check {ENV_API_KEY}; the value is not shown)"
            )
        if not self.endpoint_path or "/" in self.endpoint_path.strip("/"):
            raise ConfigurationError(
                f"endpoint_path must be one non-empty path segment (or set {ENV_ENDPOINT_PATH})"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClientConfig:
        """Build a configuration from ``KLING_*`` environment variables.

        Reads ``KLING_API_KEY``, ``KLING_ENDPOINT_PATH``, ``KLING_BASE_URL`` and
        ``KLING_TURBO_BASE_URL``; keyword arguments win over the environment.

        Args:
            environ: Where to read from (default ``os.environ``).
            **overrides: Any :class:`ClientConfig` field.

        Returns:
            The configuration.

        Raises:
            ConfigurationError: The key or endpoint path is missing, or a URL is bad.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field, var in (
            ("api_key", ENV_API_KEY),
            ("endpoint_path", ENV_ENDPOINT_PATH),
            ("base_url", ENV_BASE_URL),
            ("turbo_base_url", ENV_TURBO_BASE_URL),
        ):
            if env.get(var):
                values[field] = env[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        for required, var in (("api_key", ENV_API_KEY), ("endpoint_path", ENV_ENDPOINT_PATH)):
            if not values.get(required):
                raise ConfigurationError(f"{required} is not set: pass it or set {var}")
        return cls(**values)
