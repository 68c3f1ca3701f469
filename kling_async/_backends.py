"""Backends as data: which API a session talks to, where each family lives there, and how.

A :class:`Backend` is a route table (one :class:`FamilyRoute` per family of
:data:`kling_async._endpoints.ENDPOINTS`) plus what differs per API: the path
prefix, the accepted credentials, how many ids one task query may carry, and
whether a family's recent tasks can be listed in one request. Two exist:

* :data:`GATEWAY` (``"gateway"``, the default): the reseller gateway of the seeds,
  ``{base_url}/v1/ai/{endpoint_path}/kling/<path>``, one API key, classic and
  turbo hosts, up to 100 ids per ``GET tasks`` query, no list query.
* :data:`KLING` (``"kling"``): Kling's own API, ``{host}/v1/<path>`` for the legacy
  families (a JWT from an access/secret key pair, or an API key), the
  new-standard turbo routes ``{host}/text-to-video/kling-3.0-turbo`` and
  ``GET {host}/tasks`` (API key only), at most 20 ids per query (reported by
  users, not documented: kept a setting), and ``GET {host}/v1/<path>?pageNum=&pageSize=``
  listing a family's tasks newest first, up to 500 per page.

The official rows are derived from the gateway's: :data:`KLING_PATHS` maps each
family to its official path, and a family without an entry there cannot be built
into the official table (a test keeps the two complete). Adding a backend adds a
builder of rows, not branches in the session.

:func:`resolve_backend` is the one rule that picks a backend from settings and
the environment (a mapping passed in; nothing here reads ``os.environ``), with a
:class:`~kling_async.ConfigurationError` naming the settings that conflict.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Mapping
from urllib.parse import quote

import attrs

from ._auth import (
    DEFAULT_TOKEN_LIFETIME,
    DEFAULT_TOKEN_MARGIN,
    ENV_API_KEY,
    ApiKeyAuth,
    Clock,
    Credentials,
    JwtAuth,
)
from ._endpoints import ENDPOINTS, TURBO_TASKS_PATH, Endpoint, Host, endpoint_for
from ._errors import ConfigurationError

__all__ = [
    "BACKENDS",
    "ENV_ACCESS_KEY",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_ENDPOINT_PATH",
    "ENV_SECRET_KEY",
    "ENV_TURBO_BASE_URL",
    "GATEWAY",
    "GATEWAY_BASE_URL",
    "GATEWAY_TURBO_BASE_URL",
    "KLING",
    "KLING_HOSTS",
    "KLING_PATHS",
    "Backend",
    "BackendSettings",
    "FamilyRoute",
    "QueryBy",
    "backend_named",
    "gateway_backend",
    "kling_backend",
    "resolve_backend",
]

ENV_ACCESS_KEY = "KLING_ACCESS_KEY"
ENV_SECRET_KEY = "KLING_SECRET_KEY"  # noqa: S105  (a variable name, not a secret)
ENV_ENDPOINT_PATH = "KLING_ENDPOINT_PATH"
ENV_BASE_URL = "KLING_BASE_URL"
ENV_TURBO_BASE_URL = "KLING_TURBO_BASE_URL"

#: The gateway's classic and turbo hosts (the seeds).
GATEWAY_BASE_URL = "https://genaiapi.cloudsway.net"
GATEWAY_TURBO_BASE_URL = "https://genaiapi-m2.cloudsway.net"

#: Kling's own hosts by name: same paths and shapes on each; the choice is the user's.
KLING_HOSTS: Mapping[str, str] = {
    "global": "https://api-singapore.klingai.com",
    "global-legacy": "https://api.klingai.com",
    "china": "https://api-beijing.klingai.com",
}

#: Each family's path on Kling's own API (under the host, no leading slash).
KLING_PATHS: Mapping[str, str] = {
    "text2video": "v1/videos/text2video",
    "image2video": "v1/videos/image2video",
    "omni-video": "v1/videos/omni-video",
    "video-extend": "v1/videos/video-extend",
    "multi-image2video": "v1/videos/multi-image2video",
    "identify-face": "v1/videos/identify-face",
    "lip-sync": "v1/videos/advanced-lip-sync",
    "avatar": "v1/videos/avatar/image2video",
    "image-generation": "v1/images/generations",
    "omni-image": "v1/images/omni-image",
    "text-to-audio": "v1/audio/text-to-audio",
    "turbo-text2video": "text-to-video/kling-3.0-turbo",
    "turbo-image2video": "image-to-video/kling-3.0-turbo",
}

#: Largest page of Kling's list query, and the last page number it accepts.
KLING_MAX_PAGE_SIZE = 500
KLING_MAX_PAGE_NUMBER = 1000


class QueryBy(enum.Enum):
    """How one task of a family is looked up."""

    #: ``GET <path>/{task_id or external_task_id}``.
    PATH = "path"
    #: ``GET tasks?task_ids=...`` (or ``external_task_ids=...``), a list answer.
    TASKS = "tasks"
    #: Not at all: the create answers at once (identify-face).
    NONE = "none"


@attrs.frozen(kw_only=True)
class FamilyRoute:
    """Where one family lives on one backend.

    Attributes:
        endpoint: The family (its row of the endpoint table: body, rules, shape).
        path: Create path under the backend's prefix (``POST``).
        host: Which base URL serves it (the gateway has two; Kling's API one).
        query_by: How one of its tasks is looked up.
        list_path: Path of ``GET <list_path>?pageNum=&pageSize=`` listing the
            family's recent tasks newest first, or ``None`` when there is none.
        api_key_only: Whether the route refuses a JWT (Kling's newer routes).
    """

    endpoint: Endpoint
    path: str
    host: Host
    query_by: QueryBy
    list_path: str | None = None
    api_key_only: bool = False

    @property
    def query_path(self) -> str | None:
        """The single-task query path, ``{id}`` last, or ``None``."""
        return f"{self.path}/{{id}}" if self.query_by is QueryBy.PATH else None


@attrs.frozen(kw_only=True)
class Backend:
    """One API the SDK can speak: its route table and its per-API settings.

    Attributes:
        name: ``gateway`` or ``kling`` (the ``backend`` setting, ``--backend``).
        title: How messages name it.
        prefix_template: Path every route hangs from; ``{endpoint_path}`` is the
            gateway's per-customer segment.
        routes: One row per family, in the endpoint table's order.
        tasks_path: Path of the multi-task query (``GET``).
        tasks_api_key_only: Whether that query refuses a JWT.
        mixed_id_query: Whether one multi-task query may carry task ids and
            external ids together (Kling's takes one kind per request).
        max_ids_per_query: Most ids in one multi-task query.
        list_page_size: Largest page of the list query, ``None`` without one.
        max_list_page: Last page number the list query accepts.
        accepts_key_pair: Whether an access/secret key pair can authenticate.
        base_url: Default base URL of the classic (or only) host.
        turbo_base_url: Default base URL of the turbo host.
    """

    name: str
    title: str
    prefix_template: str
    routes: tuple[FamilyRoute, ...]
    tasks_path: str = TURBO_TASKS_PATH
    tasks_api_key_only: bool = False
    mixed_id_query: bool = True
    max_ids_per_query: int = 100
    list_page_size: int | None = None
    max_list_page: int = 0
    accepts_key_pair: bool = False
    base_url: str
    turbo_base_url: str
    _by_name: Mapping[str, FamilyRoute] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        by_name = {route.endpoint.name: route for route in self.routes}
        if len(by_name) != len(self.routes):
            raise ValueError(f"backend {self.name} has two rows for one family")
        object.__setattr__(self, "_by_name", by_name)

    @property
    def supports_list_query(self) -> bool:
        """Whether a family's recent tasks can be listed in one request."""
        return self.list_page_size is not None

    def route(self, endpoint: Endpoint | str) -> FamilyRoute:
        """The row of a family.

        Args:
            endpoint: An endpoint, or its name, alias or gateway path.

        Returns:
            The row.

        Raises:
            KeyError: No such family, or this backend does not serve it.
        """
        name = endpoint_for(endpoint).name
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.title} has no route for {name!r}") from None

    def prefix(self, endpoint_path: str | None = None) -> str:
        """The path every route hangs from, ``/`` first and last.

        Args:
            endpoint_path: The gateway's per-customer segment (escaped here).

        Returns:
            ``/v1/ai/<segment>/kling/`` on the gateway, ``/`` on Kling's API.

        Raises:
            ConfigurationError: The backend needs a segment and none was given.
        """
        if "{endpoint_path}" not in self.prefix_template:
            return self.prefix_template
        segment = (endpoint_path or "").strip("/")
        if not segment:
            raise ConfigurationError(
                f"endpoint_path is not set: {self.title} needs it (or set {ENV_ENDPOINT_PATH})"
            )
        return self.prefix_template.format(endpoint_path=quote(segment, safe=""))


def _query_by(endpoint: Endpoint) -> QueryBy:
    if not endpoint.is_task:
        return QueryBy.NONE
    return QueryBy.TASKS if endpoint.is_turbo else QueryBy.PATH


def gateway_backend(endpoints: Iterable[Endpoint] = ENDPOINTS) -> Backend:
    """The gateway's table, read straight from the endpoint table.

    Args:
        endpoints: The endpoint table.

    Returns:
        The backend.
    """
    routes = tuple(
        FamilyRoute(
            endpoint=ep,
            path=ep.path,
            host=ep.host,
            query_by=_query_by(ep),
        )
        for ep in endpoints
    )
    return Backend(
        name="gateway",
        title="the gateway",
        prefix_template="/v1/ai/{endpoint_path}/kling/",
        routes=routes,
        max_ids_per_query=100,
        base_url=GATEWAY_BASE_URL,
        turbo_base_url=GATEWAY_TURBO_BASE_URL,
    )


def kling_backend(
    endpoints: Iterable[Endpoint] = ENDPOINTS,
    *,
    paths: Mapping[str, str] = KLING_PATHS,
    max_ids_per_query: int = 20,
) -> Backend:
    """Kling's own API, derived from the gateway's rows by :data:`KLING_PATHS`.

    Classic families move to their ``v1/...`` path, keep single queries by path
    and gain the list query on that same path; turbo families move to the
    new-standard paths, queried through ``GET tasks`` and open to API keys only.

    Args:
        endpoints: The endpoint table.
        paths: Official path per family name.
        max_ids_per_query: Most ids in one ``GET tasks`` query.

    Returns:
        The backend.

    Raises:
        KeyError: A family has no official path.
    """
    routes: list[FamilyRoute] = []
    for row in gateway_backend(endpoints).routes:
        name = row.endpoint.name
        if name not in paths:
            raise KeyError(f"family {name!r} has no path on Kling's own API")
        path = paths[name]
        routes.append(
            attrs.evolve(
                row,
                path=path,
                host=Host.CLASSIC,
                list_path=path if row.query_by is QueryBy.PATH else None,
                api_key_only=row.query_by is QueryBy.TASKS,
            )
        )
    return Backend(
        name="kling",
        title="Kling's own API",
        prefix_template="/",
        routes=tuple(routes),
        tasks_api_key_only=True,
        mixed_id_query=False,
        max_ids_per_query=max_ids_per_query,
        list_page_size=KLING_MAX_PAGE_SIZE,
        max_list_page=KLING_MAX_PAGE_NUMBER,
        accepts_key_pair=True,
        base_url=KLING_HOSTS["global"],
        turbo_base_url=KLING_HOSTS["global"],
    )


GATEWAY = gateway_backend()
KLING = kling_backend()
BACKENDS: Mapping[str, Backend] = {GATEWAY.name: GATEWAY, KLING.name: KLING}
_ALIASES = {"official": KLING.name, "klingai": KLING.name}


def backend_named(name: str | Backend) -> Backend:
    """A backend by name (``gateway``, ``kling``; ``official`` is an alias).

    Args:
        name: The name, or a :class:`Backend` (returned as is).

    Returns:
        The backend.

    Raises:
        ConfigurationError: No backend has that name.
    """
    if isinstance(name, Backend):
        return name
    key = name.strip().lower()
    found = BACKENDS.get(_ALIASES.get(key, key))
    if found is None:
        raise ConfigurationError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    return found


@attrs.frozen(kw_only=True)
class BackendSettings:
    """A backend chosen from settings, with everything needed to reach it.

    Attributes:
        backend: The backend.
        base_url: Base URL of the classic (or only) host, no trailing slash.
        turbo_base_url: Base URL of the turbo host (Kling's API: ``base_url``).
        endpoint_path: The gateway's per-customer segment (never shown).
        api_key: The API key, if set (never shown).
        access_key: The access key of a pair, if set (never shown).
        secret_key: The secret key of a pair, if set (never shown).
    """

    backend: Backend = attrs.field(repr=lambda b: b.name)
    base_url: str
    turbo_base_url: str
    endpoint_path: str | None = attrs.field(default=None, repr=False)
    api_key: str | None = attrs.field(default=None, repr=False)
    access_key: str | None = attrs.field(default=None, repr=False)
    secret_key: str | None = attrs.field(default=None, repr=False)

    @property
    def uses_key_pair(self) -> bool:
        """Whether an access/secret key pair is set."""
        return self.access_key is not None and self.secret_key is not None

    def root(self, host: Host) -> str:
        """Base URL and prefix of every route on ``host`` (holds the endpoint path).

        Args:
            host: Which host.

        Returns:
            The root, ending with ``/``.
        """
        base = self.turbo_base_url if host is Host.TURBO else self.base_url
        return base + self.backend.prefix(self.endpoint_path)

    def credentials(
        self,
        *,
        clock: Clock = time.time,
        lifetime: float = DEFAULT_TOKEN_LIFETIME,
        margin: float = DEFAULT_TOKEN_MARGIN,
    ) -> Credentials:
        """Build the auth strategies (call once per session: tokens are cached inside).

        Args:
            clock: Unix seconds for token times (see :func:`~kling_async._auth.scaled_clock`).
            lifetime: Seconds a token lives.
            margin: Seconds before expiry at which a token is renewed.

        Returns:
            The strategies.

        Raises:
            ConfigurationError: A credential cannot travel in a header.
        """
        api_key = ApiKeyAuth(self.api_key) if self.api_key else None
        key_pair = None
        if self.access_key and self.secret_key:
            key_pair = JwtAuth(
                self.access_key, self.secret_key, lifetime=lifetime, margin=margin, clock=clock
            )
        return Credentials(where=self.backend.title, api_key=api_key, key_pair=key_pair)


#: Settings by field name, with the environment variable that can give each.
_ENV: Mapping[str, str] = {
    "api_key": ENV_API_KEY,
    "access_key": ENV_ACCESS_KEY,
    "secret_key": ENV_SECRET_KEY,
    "endpoint_path": ENV_ENDPOINT_PATH,
    "base_url": ENV_BASE_URL,
    "turbo_base_url": ENV_TURBO_BASE_URL,
}
#: Settings that only one backend reads.
_ONLY: Mapping[str, tuple[str, ...]] = {
    "kling": ("access_key", "secret_key", "host"),
    "gateway": ("endpoint_path", "turbo_base_url"),
}


def _url(value: str, setting: str, names: Mapping[str, str]) -> str:
    """A base URL from a URL or (Kling's hosts) a host name."""
    url = names.get(value.lower(), value)
    if not url.startswith(("http://", "https://")):
        known = f"a host name ({', '.join(names)}) or " if names else ""
        raise ConfigurationError(f"{setting} must be {known}an http(s) URL, got {value!r}")
    return url.rstrip("/")


def _choose(
    backend: str | Backend | None, explicit: Mapping[str, str], env: Mapping[str, str]
) -> Backend:
    """The backend: named, else implied by arguments, else by the environment."""
    if backend is not None:
        chosen = backend_named(backend)
        other = "gateway" if chosen.name == "kling" else "kling"
        stray = [f for f in _ONLY[other] if f in explicit]
        if stray:
            raise ConfigurationError(
                f"backend {chosen.name!r} does not read {', '.join(stray)}: "
                f"{'they belong' if len(stray) > 1 else 'it belongs'} to {BACKENDS[other].title}"
            )
        return chosen
    # Arguments first (shown by name), then the environment (shown by variable);
    # in the environment only the pair and the endpoint path say which API is meant.
    sides = (
        (explicit, _ONLY["kling"], _ONLY["gateway"], lambda f: f),
        (env, ("access_key", "secret_key"), ("endpoint_path",), _ENV.__getitem__),
    )
    for source, kling_names, gateway_names, show in sides:
        kling = [show(f) for f in kling_names if f in source]
        gateway = [show(f) for f in gateway_names if f in source]
        if kling and gateway:
            raise ConfigurationError(
                f"settings of two backends: {', '.join(gateway)} (the gateway) and "
                f"{', '.join(kling)} (Kling's own API); remove one side or pick "
                "with backend='gateway' / backend='kling' (--backend)"
            )
        if kling or gateway:
            return KLING if kling else GATEWAY
    return GATEWAY


def resolve_backend(
    environ: Mapping[str, str] | None = None,
    *,
    backend: str | Backend | None = None,
    api_key: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    endpoint_path: str | None = None,
    base_url: str | None = None,
    turbo_base_url: str | None = None,
    host: str | None = None,
) -> BackendSettings:
    """Pick the backend and gather its settings; arguments win over the environment.

    The backend is ``backend`` when given. Otherwise the arguments decide (a key
    pair or ``host``: Kling's own API; ``endpoint_path`` or ``turbo_base_url``: the
    gateway), then the environment (``KLING_ACCESS_KEY`` / ``KLING_SECRET_KEY``:
    Kling's own API; ``KLING_ENDPOINT_PATH``: the gateway), then the default, the
    gateway. An API key alone never picks Kling's API: a gateway key must not
    travel to another company's servers by accident. Environment variables of the
    backend not chosen are ignored.

    Args:
        environ: Environment variables (``os.environ`` or any mapping; ``None``:
            none). Read: ``KLING_API_KEY``, ``KLING_ACCESS_KEY``,
            ``KLING_SECRET_KEY``, ``KLING_ENDPOINT_PATH``, ``KLING_BASE_URL``,
            ``KLING_TURBO_BASE_URL``.
        backend: ``gateway``, ``kling`` (alias ``official``) or a :class:`Backend`.
        api_key: API key (either backend).
        access_key: Access key of a pair (Kling's API).
        secret_key: Secret key of a pair (Kling's API).
        endpoint_path: The gateway's per-customer segment.
        base_url: Base URL of the gateway's classic host, or of Kling's host.
        turbo_base_url: Base URL of the gateway's turbo host.
        host: Kling's host by name (``global``, ``global-legacy``, ``china``) or URL.

    Returns:
        The settings.

    Raises:
        ConfigurationError: Settings of both backends with none named, a setting
            the named backend does not read, a required setting missing, half a
            key pair, or a malformed URL. Messages name settings, never values.
    """
    given = {
        "api_key": api_key,
        "access_key": access_key,
        "secret_key": secret_key,
        "endpoint_path": endpoint_path,
        "base_url": base_url,
        "turbo_base_url": turbo_base_url,
        "host": host,
    }
    explicit = {k: v.strip() for k, v in given.items() if v is not None and v.strip()}
    env = {k: environ.get(var, "").strip() for k, var in _ENV.items()} if environ else {}
    env = {k: v for k, v in env.items() if v}
    chosen = _choose(backend, explicit, env)
    other = "gateway" if chosen.name == "kling" else "kling"
    values = {k: v for k, v in {**env, **explicit}.items() if k not in _ONLY[other]}
    if "host" in explicit and "base_url" not in explicit:
        values.pop("base_url", None)  # a host argument wins over KLING_BASE_URL
    if chosen.name == "gateway":
        if "api_key" not in values:
            raise ConfigurationError(f"api_key is not set: pass it or set {ENV_API_KEY}")
        if "endpoint_path" not in values:
            raise ConfigurationError(
                f"endpoint_path is not set: pass it or set {ENV_ENDPOINT_PATH} (or pick "
                "backend='kling' for Kling's own API)"
            )
        return BackendSettings(
            backend=chosen,
            base_url=_url(values.get("base_url", chosen.base_url), "base_url", {}),
            turbo_base_url=_url(
                values.get("turbo_base_url", chosen.turbo_base_url), "turbo_base_url", {}
            ),
            endpoint_path=values["endpoint_path"].strip("/"),
            api_key=values["api_key"],
        )
    return _kling_settings(chosen, values)


def _kling_settings(chosen: Backend, values: Mapping[str, str]) -> BackendSettings:
    access, secret = values.get("access_key"), values.get("secret_key")
    if bool(access) != bool(secret):
        missing = "secret_key" if access else "access_key"
        raise ConfigurationError(
            f"{missing} is not set (pass it or set {_ENV[missing]}): {chosen.title} "
            "needs both keys of the pair"
        )
    if not access and "api_key" not in values:
        raise ConfigurationError(
            f"{chosen.title} needs access_key and secret_key ({ENV_ACCESS_KEY}, "
            f"{ENV_SECRET_KEY}) or api_key ({ENV_API_KEY})"
        )
    urls = {_url(values[f], f, KLING_HOSTS) for f in ("host", "base_url") if f in values} or {
        chosen.base_url
    }
    if len(urls) > 1:
        raise ConfigurationError("host and base_url name different hosts: pass one of them")
    base = urls.pop()
    return BackendSettings(
        backend=chosen,
        base_url=base,
        turbo_base_url=base,
        api_key=values.get("api_key"),
        access_key=access,
        secret_key=secret,
    )
