"""Configuration: frozen, keyword-only attrs objects and their ``DEFAULT_*`` values.

Environment variables are read in exactly one place, :meth:`ClientConfig.from_env`.
Vary a policy with :func:`attrs.evolve`.
"""

from __future__ import annotations

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
        initial_delay: Upper bound of the first backoff, seconds.
        max_delay: Cap of any single backoff, seconds.
        multiplier: Growth of the bound per attempt.
        retry_concurrency_limited: Whether a create refused with 1303 is retried
            (the batch scheduler turns this off and requeues instead).
        reconcile_grace: Seconds to keep looking for a task after an unclear create
            failure before concluding it does not exist.
        reconcile_interval: Seconds between those lookups.
    """

    max_attempts: int = attrs.field(default=5, validator=_positive)
    initial_delay: float = attrs.field(default=0.5, validator=_non_negative)
    max_delay: float = attrs.field(default=30.0, validator=_non_negative)
    multiplier: float = attrs.field(default=2.0, validator=_positive)
    retry_concurrency_limited: bool = True
    reconcile_grace: float = attrs.field(default=3.0, validator=_non_negative)
    reconcile_interval: float = attrs.field(default=1.0, validator=_positive)


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
    max_requests_per_second: float | None = None

    def __attrs_post_init__(self) -> None:
        if not self.api_key or not self.api_key.strip():
            raise ConfigurationError(f"api_key is empty (set it or the {ENV_API_KEY} variable)")
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
