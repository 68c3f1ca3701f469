"""Settings of the commands: connection flags, poll flags, the time scale, and what goes wrong.

Flags win over ``KLING_*`` environment variables. ``--backend`` picks the API
(the reseller gateway, or Kling's own with ``--host``); an access/secret key pair
is read from ``KLING_ACCESS_KEY``/``KLING_SECRET_KEY`` only, never from a flag
(a flag would show in the process list). When the server refuses the
settings (a wrong key, a wrong endpoint path, a base URL that is not the gateway),
:func:`settings_problem` turns the typed error into a sentence naming the setting
to fix; the commands then exit 2. ``--coordinate`` (or ``KLING_COORDINATE``) names
the Redis through which several processes share one account's slots;
:func:`open_coordination_store` opens it and :func:`coordination_message` says in
one line (password hidden) why it could not be used.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

import attrs

from .._backends import BACKENDS, ENV_ACCESS_KEY, ENV_SECRET_KEY, KLING_HOSTS
from .._classify import Verdict, classify
from .._config import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_ENDPOINT_PATH,
    ENV_TIME_SCALE,
    ENV_TURBO_BASE_URL,
    ClientConfig,
    PollPolicy,
    RetryPolicy,
)
from .._endpoints import Endpoint
from .._errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    KlingError,
    NotFoundError,
    ResponseDecodeError,
)
from .._slots import account_key_of
from ..coordination import DEFAULT_LEASE_TTL, SlotStore, open_store, redact_url
from ._common import PROG, positive_float

__all__ = [
    "ENV_COORDINATE",
    "SettingsProblem",
    "add_connection_arguments",
    "add_coordination_arguments",
    "add_poll_arguments",
    "add_time_scale_argument",
    "config_from_args",
    "configuration_message",
    "coordination_message",
    "coordination_url",
    "open_coordination_store",
    "scaled_poll_policy",
    "scaled_retry_policy",
    "settings_problem",
    "time_scaled",
]

#: The gateway's code for "no such method" (a route the gateway does not have).
#: The environment variable naming the coordination store (``--coordinate``).
ENV_COORDINATE = "KLING_COORDINATE"


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--backend``, ``--host``, ``--api-key``, ``--endpoint-path`` and the base URLs.

    Args:
        parser: A command's parser.
    """
    group = parser.add_argument_group("connection (flags win over environment variables)")
    group.add_argument(
        "--backend",
        choices=tuple(BACKENDS),
        help="which API: the reseller gateway (API key + endpoint path) or Kling's own "
        f"(key pair from ${ENV_ACCESS_KEY} and ${ENV_SECRET_KEY}, or an API key); "
        "default: implied by the settings, else the gateway",
    )
    group.add_argument(
        "--host",
        metavar="HOST",
        help=f"Kling's own API: {', '.join(KLING_HOSTS)} or a URL (default: global)",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"access key, never printed (default: ${ENV_API_KEY})",
    )
    group.add_argument(
        "--endpoint-path",
        metavar="PATH",
        help=f"your endpoint path segment (default: ${ENV_ENDPOINT_PATH})",
    )
    group.add_argument(
        "--base-url",
        metavar="URL",
        help=f"classic host (default: ${ENV_BASE_URL}, else the public gateway)",
    )
    group.add_argument(
        "--turbo-base-url",
        metavar="URL",
        help=f"turbo host (default: ${ENV_TURBO_BASE_URL}, else --base-url when given, "
        "else the public turbo gateway)",
    )


def add_coordination_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--coordinate URL`` and ``--lease-ttl S``.

    Args:
        parser: A command's parser.
    """
    group = parser.add_argument_group("coordination (several processes or hosts, one account)")
    group.add_argument(
        "--coordinate",
        metavar="URL",
        help="share the account's concurrency slots, admission window, pauses and learned "
        "task durations with every process using the same API key and this Redis "
        "(redis://[:password@]host:6379/0, rediss:// or unix://; needs the redis extra); "
        f"'' turns it off (default: ${ENV_COORDINATE}, else this process alone)",
    )
    group.add_argument(
        "--lease-ttl",
        type=positive_float,
        default=DEFAULT_LEASE_TTL,
        metavar="S",
        help="seconds a crashed process keeps its shared slots before they expire; renewed "
        "every third of it while its tasks run (default: %(default)g)",
    )


def coordination_url(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> str | None:
    """The coordination store's URL: ``--coordinate``, else ``KLING_COORDINATE``.

    Args:
        args: Parsed arguments.
        environ: Environment (default ``os.environ``).

    Returns:
        The URL, or ``None`` to keep the slots in this process (an empty flag wins
        over the variable).
    """
    flag = getattr(args, "coordinate", None)
    if flag is not None:
        return flag.strip() or None
    env = os.environ if environ is None else environ
    return env.get(ENV_COORDINATE, "").strip() or None


async def open_coordination_store(
    url: str, *, config: ClientConfig, max_running: int, lease_ttl: float = DEFAULT_LEASE_TTL
) -> SlotStore:
    """Open the shared store and check that it answers, before anything is sent.

    The account is named by a fingerprint of the configured key (never the key).
    After a Redis restart without persistence, admissions wait half a lease TTL
    for every live process to re-register its leases.

    Args:
        url: The store's URL.
        config: The configuration (names the account).
        max_running: This process's cap on slots.
        lease_ttl: Seconds a lease lives without renewal.

    Returns:
        The open store; close it with ``aclose()``.

    Raises:
        ConfigurationError: The URL is unusable or the ``redis`` extra is missing.
        CoordinationUnavailableError: Redis did not answer.
    """
    return await open_store(
        url,
        account_key=account_key_of(config),
        max_capacity=max_running,
        lease_ttl=lease_ttl,
        recount_grace=lease_ttl / 2,
    )


def coordination_message(url: str, exc: KlingError) -> str:
    """One line on a coordination store that cannot be used, its password hidden.

    Args:
        url: The URL as given.
        exc: What opening it raised.

    Returns:
        The line, naming the URL and the setting.
    """
    safe = redact_url(url)
    detail = " ".join(str(exc).split())
    password = url.partition("://")[2].rpartition("@")[0].partition(":")[2]
    if password:
        detail = detail.replace(password, "***")
    return (
        f"cannot use the coordination store {safe}: {detail} "
        f"(check --coordinate / {ENV_COORDINATE}; nothing was sent)"
    )


def add_poll_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``--poll-*`` options and ``--time-scale``.

    Args:
        parser: A command's parser.
    """
    defaults = PollPolicy()
    group = parser.add_argument_group("polling (defaults suit real generation times of minutes)")
    group.add_argument(
        "--poll-initial-delay",
        type=positive_float,
        metavar="S",
        help=f"seconds before a task's first poll (default: {defaults.initial_delay:g})",
    )
    group.add_argument(
        "--poll-interval",
        type=positive_float,
        metavar="S",
        help=f"seconds between the first polls (default: {defaults.interval:g})",
    )
    group.add_argument(
        "--poll-max-interval",
        type=positive_float,
        metavar="S",
        help=f"longest wait between polls, seconds (default: {defaults.max_interval:g})",
    )
    add_time_scale_argument(group)


def add_time_scale_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    default: float = 1.0,
    help_text: str | None = None,
) -> None:
    """Add ``--time-scale FACTOR``.

    Args:
        parser: The parser or group.
        default: The factor when the flag is absent.
        help_text: Help to show (default: the text for a fast fake gateway).
    """
    parser.add_argument(
        "--time-scale",
        type=positive_float,
        default=default,
        metavar="FACTOR",
        help=help_text
        or "for a fake gateway whose clock runs fast: multiply every poll and retry delay "
        "of the SDK by FACTOR; 0.01 suits `kling-async fake-server --time-scale 0.01` "
        "(default: %(default)s, real time); explicit --poll-* values are not scaled",
    )


def scaled_poll_policy(factor: float, base: PollPolicy | None = None) -> PollPolicy:
    """A poll policy for a gateway whose clock runs ``1 / factor`` times too fast.

    The batch learns real task durations as tasks finish; this scales its starting
    guesses so that the first tasks of a fast fake are not polled minutes late.
    Intervals keep a small floor so that a tiny factor never turns into a busy loop.

    Args:
        factor: 0.03: a 100 s task takes 3 s.
        base: The policy to scale (default: :class:`PollPolicy`'s defaults).

    Returns:
        The scaled policy (``base`` itself when ``factor`` is 1).
    """
    base = base or PollPolicy()
    if factor == 1:
        return base
    return attrs.evolve(
        base,
        initial_delay=base.initial_delay * factor,
        interval=max(base.interval * factor, 0.01),
        max_interval=max(base.max_interval * factor, 0.05),
        timeout=max(base.timeout * factor, 60.0),
    )


def scaled_retry_policy(factor: float, base: RetryPolicy | None = None) -> RetryPolicy:
    """A retry policy whose backoff and reconcile waits are scaled by ``factor``.

    Args:
        factor: As for :func:`scaled_poll_policy`.
        base: The policy to scale (default: :class:`RetryPolicy`'s defaults).

    Returns:
        The scaled policy (``base`` itself when ``factor`` is 1).
    """
    base = base or RetryPolicy()
    if factor == 1:
        return base
    return attrs.evolve(
        base,
        initial_delay=base.initial_delay * factor,
        max_delay=max(base.max_delay * factor, 0.05),
        reconcile_grace=base.reconcile_grace * factor,
        reconcile_interval=max(base.reconcile_interval * factor, 0.01),
    )


def time_scaled(config: ClientConfig, factor: float) -> ClientConfig:
    """The configuration for a gateway whose clock runs ``1 / factor`` times too fast.

    The one place the CLI scales time: the poll and retry policies, never the HTTP
    timeouts (a slow socket is slow in any clock).

    Args:
        config: The configuration to scale.
        factor: The clock factor (1: real time).

    Returns:
        The scaled configuration (``config`` itself when ``factor`` is 1).
    """
    if factor == 1:
        return config
    return attrs.evolve(
        config,
        poll=scaled_poll_policy(factor, config.poll),
        retry=scaled_retry_policy(factor, config.retry),
    )


def _explicit_poll(args: argparse.Namespace, base: PollPolicy) -> PollPolicy:
    changes = {
        name: value
        for name, value in (
            ("initial_delay", getattr(args, "poll_initial_delay", None)),
            ("interval", getattr(args, "poll_interval", None)),
            ("max_interval", getattr(args, "poll_max_interval", None)),
        )
        if value is not None
    }
    if "interval" in changes and "max_interval" not in changes:
        changes["max_interval"] = max(base.max_interval, changes["interval"])
    if "max_interval" in changes and "interval" not in changes:
        changes["interval"] = min(base.interval, changes["max_interval"])
    return attrs.evolve(base, **changes) if changes else base


def config_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> ClientConfig:
    """Build the configuration from flags, then environment variables.

    On the gateway, a ``--base-url`` without a turbo URL serves both hosts (as a
    fake gateway does) unless ``KLING_TURBO_BASE_URL`` says otherwise; Kling's own
    API has one host. ``--time-scale`` applies :meth:`ClientConfig.time_scaled`
    (``KLING_TIME_SCALE`` is then ignored, so time is never scaled twice);
    explicit ``--poll-*`` values are then applied as given.

    Args:
        args: Parsed arguments.
        environ: Environment (default ``os.environ``).

    Returns:
        The configuration.

    Raises:
        ConfigurationError: A key, key pair or endpoint path is missing, settings
            of both backends are mixed, or a value is bad.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    factor = getattr(args, "time_scale", 1.0) or 1.0
    if factor != 1:
        env = {k: v for k, v in env.items() if k != ENV_TIME_SCALE}
    given = {
        "backend": getattr(args, "backend", None),
        "host": getattr(args, "host", None),
        "api_key": args.api_key,
        "endpoint_path": args.endpoint_path,
        "base_url": args.base_url,
        "turbo_base_url": args.turbo_base_url,
    }
    config = ClientConfig.from_env(env, **given)
    if (
        config.backend == "gateway"
        and args.turbo_base_url is None
        and args.base_url
        and not env.get(ENV_TURBO_BASE_URL)
    ):
        config = ClientConfig.from_env(env, **{**given, "turbo_base_url": args.base_url})
    config = config.time_scaled(factor)
    poll = _explicit_poll(args, config.poll)
    return attrs.evolve(config, poll=poll) if poll is not config.poll else config


def configuration_message(exc: ConfigurationError) -> str:
    """Say which flag or variable to set for a configuration error.

    Args:
        exc: The error from building the configuration.

    Returns:
        One line for a person.
    """
    text = str(exc)
    if "settings of two backends" in text or "does not read" in text:
        return (
            f"settings of two backends: {text} (pass --backend gateway or --backend kling, "
            f"or unset the other side's variables)"
        )
    if "access_key" in text or "secret_key" in text:
        return (
            f"no key pair for Kling's own API: set {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} "
            f"(or {ENV_API_KEY}); pick the host with --host ({', '.join(KLING_HOSTS)} or a "
            "URL), or pass --backend gateway for the gateway"
        )
    if "api_key" in text:
        return (
            f"no API key: pass --api-key or set {ENV_API_KEY} "
            f"(try `{PROG} demo` to see it work without one)"
        )
    if "endpoint_path" in text:
        return f"no endpoint path: pass --endpoint-path or set {ENV_ENDPOINT_PATH}"
    return f"bad configuration: {text}"


@attrs.frozen(kw_only=True)
class SettingsProblem:
    """A request refused because of the settings, not because of the job.

    Attributes:
        setting: What to fix: ``api_key``, ``endpoint_path`` or ``base_url``.
        message: The sentence to show, naming the flag and the variable.
    """

    setting: str
    message: str


def _host_setting(endpoint: Endpoint | None) -> str:
    if endpoint is not None and endpoint.is_turbo:
        return f"--turbo-base-url / {ENV_TURBO_BASE_URL}"
    return f"--base-url / {ENV_BASE_URL}"


def settings_problem(
    exc: BaseException | None, endpoint: Endpoint | None = None, *, backend: str | None = None
) -> SettingsProblem | None:
    """Recognise an error that says the settings are wrong, and say how to fix them.

    * :class:`AuthenticationError` (1000-1004): the key (or, on Kling's own API,
      the key pair).
    * :class:`NotFoundError` with code 1202 (no such method), or a bare HTTP 404:
      the server has no such route, so the endpoint path (or the base URL) is wrong.
      A missing *task* (code 1203) is not a settings problem.
    * :class:`ResponseDecodeError`: something that is not the API answered.
    * :class:`ConnectError`: nothing answers at the base URL.

    Args:
        exc: The error (``None`` is allowed and gives ``None``).
        endpoint: The endpoint the request was for (names the right host setting).
        backend: ``"kling"`` for Kling's own API (messages name its settings and
            never the gateway); anything else: the gateway.

    Returns:
        The problem, or ``None`` when the error is about the job, not the settings.
    """
    if backend == "kling":
        return _kling_problem(exc)
    host = _host_setting(endpoint)
    if isinstance(exc, AuthenticationError):
        code = f", code {exc.code}" if exc.code is not None else ""
        return SettingsProblem(
            setting="api_key",
            message=f"the gateway refused the API key (AuthenticationError{code}): check "
            f"--api-key / {ENV_API_KEY}; the key must be the one issued for this endpoint path",
        )
    if isinstance(exc, NotFoundError) and _wrong_route(exc):
        return SettingsProblem(
            setting="endpoint_path",
            message="the gateway has no such route (NotFoundError"
            + (f", code {exc.code}" if exc.code is not None else ", HTTP 404")
            + f"): check --endpoint-path / {ENV_ENDPOINT_PATH} (the segment after /v1/ai/ in "
            f"your gateway URL) and {host}",
        )
    if isinstance(exc, ResponseDecodeError):
        return SettingsProblem(
            setting="base_url",
            message=f"the server at the base URL does not answer like the gateway "
            f"(ResponseDecodeError): check {host}",
        )
    if isinstance(exc, ConnectError):
        return SettingsProblem(
            setting="base_url",
            message=f"cannot connect to the gateway (ConnectError): check {host} and the network",
        )
    return None


def _wrong_route(exc: NotFoundError) -> bool:
    """A 404 that says the route is wrong (1202, or no envelope), as the one table decides."""
    return classify(exc, phase="create") is Verdict.HALT_ROUTE


def _kling_problem(exc: BaseException | None) -> SettingsProblem | None:
    """:func:`settings_problem` on Kling's own API."""
    keys = f"{ENV_ACCESS_KEY} / {ENV_SECRET_KEY} (or {ENV_API_KEY})"
    host = f"--host / {ENV_BASE_URL}"
    if isinstance(exc, AuthenticationError):
        code = f", code {exc.code}" if exc.code is not None else ""
        return SettingsProblem(
            setting="api_key",
            message=f"Kling's API refused the credentials (AuthenticationError{code}): check "
            f"{keys} and this machine's clock (tokens carry Unix times)",
        )
    if isinstance(exc, NotFoundError) and _wrong_route(exc):
        return SettingsProblem(
            setting="base_url",
            message="Kling's API has no such route (NotFoundError"
            + (f", code {exc.code}" if exc.code is not None else ", HTTP 404")
            + f"): check {host} and --backend",
        )
    if isinstance(exc, ResponseDecodeError):
        return SettingsProblem(
            setting="base_url",
            message=f"the server at the host does not answer like Kling's API "
            f"(ResponseDecodeError): check {host}",
        )
    if isinstance(exc, ConnectError):
        return SettingsProblem(
            setting="base_url",
            message=f"cannot connect to Kling's API (ConnectError): check {host} and the network",
        )
    return None
