"""Configuration: frozen, keyword-only attrs objects and their ``DEFAULT_*`` values.

Environment variables are read in exactly one place, :meth:`ClientConfig.from_env`
(through :func:`~kling_async._backends.resolve_backend`, the one rule that picks
the gateway or Kling's own API). Vary a policy with :func:`attrs.evolve`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from typing import Any

import attrs

from ._auth import DEFAULT_TOKEN_LIFETIME, DEFAULT_TOKEN_MARGIN, Clock, Credentials, scaled_clock
from ._backends import (
    ENV_ACCESS_KEY,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_ENDPOINT_PATH,
    ENV_SECRET_KEY,
    ENV_TURBO_BASE_URL,
    GATEWAY_BASE_URL,
    GATEWAY_TURBO_BASE_URL,
    KLING,
    KLING_HOSTS,
    Backend,
    BackendSettings,
    backend_named,
    resolve_backend,
)
from ._errors import ConfigurationError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TURBO_BASE_URL",
    "ENV_ACCESS_KEY",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_ENDPOINT_PATH",
    "ENV_SECRET_KEY",
    "ENV_TIME_SCALE",
    "ENV_TURBO_BASE_URL",
    "ClientConfig",
    "Limits",
    "PollPolicy",
    "RetryPolicy",
    "Timeouts",
]

#: The gateway's classic and turbo hosts (the defaults of the gateway backend).
DEFAULT_BASE_URL = GATEWAY_BASE_URL
DEFAULT_TURBO_BASE_URL = GATEWAY_TURBO_BASE_URL

#: The variable :meth:`ClientConfig.from_env` reads a clock factor from (see
#: :meth:`ClientConfig.time_scaled`): for a fake gateway whose clock runs fast.
ENV_TIME_SCALE = "KLING_TIME_SCALE"
#: Environment variable naming a coordination store (``redis://...``) for shared slots.
ENV_COORDINATE = "KLING_COORDINATE"

#: Fields handed to :func:`~kling_async._backends.resolve_backend`.
_BACKEND_FIELDS = (
    "backend",
    "api_key",
    "access_key",
    "secret_key",
    "endpoint_path",
    "base_url",
    "turbo_base_url",
    "host",
)


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


def _strip_slash(value: str | None) -> str:
    return (value or "").strip().rstrip("/")


def _backend_name(value: str | Backend | None) -> str | None:
    return None if value is None else backend_named(value).name


def _host_url(host: str) -> str:
    """The base URL a ``host`` setting names (a name of :data:`KLING_HOSTS` or a URL)."""
    text = host.strip()
    return KLING_HOSTS.get(text.lower(), text).rstrip("/")


#: Credentials checked before anything else, with the variable that gives each.
_CREDENTIALS = (
    ("api_key", ENV_API_KEY),
    ("access_key", ENV_ACCESS_KEY),
    ("secret_key", ENV_SECRET_KEY),
)


@attrs.frozen(kw_only=True)
class ClientConfig:
    """Everything a session needs to reach the gateway or Kling's own API.

    Two backends exist (see :mod:`kling_async._backends`): the reseller gateway
    (``backend="gateway"``, the default: ``api_key`` and ``endpoint_path``) and
    Kling's own API (``backend="kling"``: ``access_key`` and ``secret_key``,
    turned into short-lived tokens, and/or ``api_key``; ``host`` picks the
    region). Without ``backend`` the settings decide: a key pair or ``host``
    mean Kling's own API, ``endpoint_path`` the gateway. Settings of both
    backends at once are a :class:`~kling_async.ConfigurationError`.

    After construction :attr:`backend`, :attr:`base_url` and
    :attr:`turbo_base_url` hold what was chosen, so :func:`attrs.evolve` keeps
    the same choice. To move an
    evolved copy to another ``host``, pass ``base_url=""`` with it when the
    first one named a host of its own.

    Attributes:
        api_key: The gateway's key, or an API key of Kling's own API (never shown).
        endpoint_path: The gateway's per-customer path segment
            (``/v1/ai/{endpoint_path}/kling/``; never shown).
        access_key: Access key of Kling's own API (never shown).
        secret_key: Secret key of that access key (never shown).
        backend: ``"gateway"`` or ``"kling"`` (alias ``"official"``); ``None``
            (before construction only): implied by the settings.
        host: Kling's own API: ``"global"`` (the default), ``"global-legacy"``,
            ``"china"``, or a URL.
        base_url: Base URL of the classic host (the gateway's; or of Kling's API,
            instead of ``host``). Empty: the backend's default.
        turbo_base_url: Base URL of the gateway's turbo host. Empty: the default
            (and always empty on Kling's own API, which has one host).
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
        token_lifetime: Seconds from signing a token to its ``exp`` (key pairs).
        token_margin: Seconds before ``exp`` at which a token is replaced.
        token_clock: Unix seconds for token times (default ``time.time``; see
            :meth:`time_scaled`). Not part of ``repr`` or equality.
        coordination: Share the account's concurrency slots with other processes:
            a ``redis://`` URL (extra ``kling-async[redis]``) or a
            :class:`kling_async.coordination.SlotStore`. Single calls then take a
            shared slot and batches opened on the session coordinate through it.
            ``None``: this process only. Not part of ``repr`` (a URL may hold a
            password).
        time_factor: Seconds of this machine per second of the gateway's clock,
            as set by :meth:`time_scaled` (``1.0`` for a real gateway). Batches
            count their refusal ceiling and probe pacing on the gateway's clock.
    """

    api_key: str | None = attrs.field(default=None, repr=False)
    endpoint_path: str | None = attrs.field(default=None, repr=False)
    access_key: str | None = attrs.field(default=None, repr=False)
    secret_key: str | None = attrs.field(default=None, repr=False)
    backend: str | None = attrs.field(default=None, converter=_backend_name)
    host: str | None = None
    base_url: str = attrs.field(default="", converter=_strip_slash)
    turbo_base_url: str = attrs.field(default="", converter=_strip_slash)
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    poll: PollPolicy = attrs.field(factory=PollPolicy)
    validate: bool = True
    max_requests_per_second: float | None = attrs.field(default=None, validator=_optional_positive)
    limits: Limits = attrs.field(factory=Limits)
    max_running: int | None = attrs.field(default=None, validator=_optional_positive)
    slot_ttl: float = attrs.field(default=3600.0, validator=[_positive, _finite])
    token_lifetime: float = attrs.field(
        default=DEFAULT_TOKEN_LIFETIME, validator=[_positive, _finite]
    )
    token_margin: float = attrs.field(
        default=DEFAULT_TOKEN_MARGIN, validator=[_non_negative, _finite]
    )
    token_clock: Clock | None = attrs.field(default=None, repr=False, eq=False)
    coordination: Any = attrs.field(default=None, repr=False, eq=False)
    time_factor: float = attrs.field(default=1.0, validator=[_positive, _finite])
    _settings: BackendSettings = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        for name, var in _CREDENTIALS:
            value = getattr(self, name)
            if value is not None and any(ch in value for ch in "\r\n\0"):
                raise ConfigurationError(
                    f"{name} holds a line break or NUL (check {var}; the value is not shown)"
                )
        given_path = (self.endpoint_path or "").strip()
        segment = given_path.strip("/")
        if given_path and (not segment or "/" in segment):
            raise ConfigurationError(
                f"endpoint_path must be one non-empty path segment (or set {ENV_ENDPOINT_PATH})"
            )
        if self.token_margin >= self.token_lifetime:
            raise ConfigurationError(
                f"token_margin must be below token_lifetime ({self.token_lifetime!r}), "
                f"got {self.token_margin!r}"
            )
        settings = self._resolve()
        object.__setattr__(self, "backend", settings.backend.name)
        object.__setattr__(self, "base_url", settings.base_url)
        # Kling's own API has one host: no turbo URL to show (or to pass back to evolve).
        turbo = settings.turbo_base_url if settings.backend.name != KLING.name else ""
        object.__setattr__(self, "turbo_base_url", turbo)
        object.__setattr__(self, "_settings", settings)

    def _resolve(self) -> BackendSettings:
        """The backend settings; resolved URLs passed back by ``evolve`` are not a conflict."""
        base, turbo = self.base_url or None, self.turbo_base_url or None
        if (
            self.backend == KLING.name
            and self.host is not None
            and base in (KLING.base_url, _host_url(self.host))
        ):
            base = None  # the default, or the host's own URL: host decides
        return resolve_backend(
            None,
            backend=self.backend,
            api_key=self.api_key,
            access_key=self.access_key,
            secret_key=self.secret_key,
            endpoint_path=self.endpoint_path,
            base_url=base,
            turbo_base_url=turbo,
            host=self.host,
        )

    @property
    def backend_settings(self) -> BackendSettings:
        """The chosen backend with its hosts and credentials (never shown)."""
        return self._settings

    def credentials(self) -> Credentials:
        """Build the auth strategies of this configuration (once per session).

        Returns:
            The strategies: a key pair's tokens (on :attr:`token_clock`) and/or
            an API key.

        Raises:
            ConfigurationError: A credential cannot travel in a header.
        """
        return self._settings.credentials(
            clock=self.token_clock or time.time,
            lifetime=self.token_lifetime,
            margin=self.token_margin,
        )

    def time_scaled(self, factor: float, *, min_deadline: float = 30.0) -> ClientConfig:
        """A copy for a gateway whose clock runs ``1 / factor`` times as fast (fakes, tests).

        Every delay on the gateway's clock is multiplied by ``factor``: the first
        poll, poll intervals, retry backoff, ``Retry-After`` cap, reconcile lookups
        and the slot TTL. Deadlines on the gateway's clock (``poll.timeout``,
        ``retry.reconcile_deadline``) are scaled too, but never below
        ``min_deadline``: they also absorb this machine's own slowness, which does
        not speed up. HTTP timeouts (``timeouts``) are this machine's, not scaled.
        Token times follow the gateway's clock (:attr:`token_clock` becomes
        :func:`~kling_async._auth.scaled_clock` of the clock in force), so a key
        pair's tokens renew on the server's schedule.

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
        return attrs.evolve(
            self,
            poll=poll,
            retry=retry,
            slot_ttl=self.slot_ttl * factor,
            time_factor=self.time_factor * factor,
            token_clock=scaled_clock(factor, base=self.token_clock or time.time),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClientConfig:
        """Build a configuration from ``KLING_*`` environment variables.

        The backend and its settings come from one call to
        :func:`~kling_async._backends.resolve_backend`: ``KLING_ACCESS_KEY`` and
        ``KLING_SECRET_KEY`` (without ``KLING_ENDPOINT_PATH``) pick Kling's own
        API, ``KLING_ENDPOINT_PATH`` the gateway; ``KLING_API_KEY`` and
        ``KLING_BASE_URL`` serve either, ``KLING_TURBO_BASE_URL`` the gateway.
        ``KLING_TIME_SCALE`` (a fake gateway's clock factor, e.g. ``0.001``)
        applies :meth:`time_scaled`; ``KLING_COORDINATE`` sets ``coordination``.
        Keyword arguments win over the environment;
        ``None`` values are ignored.

        Args:
            environ: Where to read from (default ``os.environ``).
            **overrides: Any :class:`ClientConfig` field.

        Returns:
            The configuration.

        Raises:
            ConfigurationError: A required setting is missing, settings of both
                backends are mixed, or a value is bad (messages name the setting
                and its variable, never a value of a credential).
        """
        env = os.environ if environ is None else environ
        given = {k: v for k, v in overrides.items() if v is not None}
        wiring = {k: given.pop(k) for k in _BACKEND_FIELDS if k in given}
        shared = env.get(ENV_COORDINATE, "").strip()
        if shared and "coordination" not in given:
            given["coordination"] = shared
        settings = resolve_backend(env, **wiring)
        config = cls(
            backend=settings.backend.name,
            api_key=settings.api_key,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            endpoint_path=settings.endpoint_path,
            host=wiring.get("host"),
            base_url=settings.base_url,
            turbo_base_url=settings.turbo_base_url if settings.backend.name != KLING.name else "",
            **given,
        )
        raw = env.get(ENV_TIME_SCALE, "").strip()
        if not raw:
            return config
        try:
            factor = float(raw)
        except ValueError:
            factor = math.nan
        if not (math.isfinite(factor) and factor > 0):
            raise ConfigurationError(f"{ENV_TIME_SCALE} must be a positive number, got {raw!r}")
        return config.time_scaled(factor)
