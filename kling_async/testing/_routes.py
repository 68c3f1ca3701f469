"""The fake's route table: which request reaches which action, per backend.

A :class:`Backend` is one API the fake imitates: the roots under which its requests
live, the prefix its routes hang from, how a caller proves who it is, and its rows
of :class:`Route`. Both imitated APIs take their rows from the SDK's own tables in
:mod:`kling_async._backends` (themselves read from
:data:`kling_async._endpoints.ENDPOINTS`), so a family added there is served here
without an edit:

* the gateway (:func:`gateway_backend`): ``/v1/ai/{endpoint_path}/kling/...``,
  bearer API keys;
* Kling's own API (:func:`official_backend`): ``/v1/...``, the new-standard
  ``/text-to-video/...``, ``/image-to-video/...`` and ``/tasks``, API keys or
  HS256 tokens (:mod:`._tokens`), with the list query on each classic family.

The front door has no branch per backend or per endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from urllib.parse import quote, unquote

import attrs

from .. import _backends as api
from .._endpoints import ENDPOINTS, Endpoint
from ._tokens import Caller, KeyPairAccount, TokenChecker

__all__ = [
    "ACTIONS",
    "AuthFailure",
    "Authenticator",
    "Backend",
    "Route",
    "backend_routes",
    "bearer_auth",
    "gateway_backend",
    "gateway_routes",
    "official_auth",
    "official_backend",
    "official_routes",
]

#: What a route can do: create a task, answer identify-face at once, query one task,
#: query many by id (the gateway's ``tasks``: both id kinds, no cap), query many by
#: id on Kling's API (``tasks``: one id kind, capped), list a family's recent tasks.
#: Each names a handler coroutine of the fake.
ACTIONS: tuple[str, ...] = ("create", "face", "query", "batch", "tasks", "list")

#: Marks the last path segment as the id a query route takes.
_ID = "{id}"


@attrs.frozen
class Route:
    """One row: a method and path under a backend's prefix, and what answers it.

    Attributes:
        method: ``POST`` or ``GET`` (``HEAD`` is answered like ``GET``).
        path: Path under the prefix; a last segment ``{id}`` takes the task id or
            external task id.
        action: One of :data:`ACTIONS`.
        endpoint: The endpoint family served (``None`` for the multi-task query).
        api_key_only: Whether a caller proving itself with a token is refused
            (401, code 1002), as on Kling's newer routes.
    """

    method: str
    path: str
    action: str = attrs.field(validator=attrs.validators.in_(ACTIONS))
    endpoint: Endpoint | None = None
    api_key_only: bool = False


@attrs.frozen
class AuthFailure:
    """Why a caller was refused (HTTP 401).

    Attributes:
        code: Envelope code (1001 empty, 1002 invalid, ...).
        message: Envelope message (never echoes the credential).
    """

    code: int
    message: str


#: Reads the ``Authorization`` header: the caller (a bare key string stands for an
#: API key that is its own account), or why it was refused.
Authenticator = Callable[[str | None], str | Caller | AuthFailure]


def _bearer(header: str | None) -> str | AuthFailure:
    """The token of ``Authorization: Bearer <token>``, or the refusal."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    if not token:
        return AuthFailure(1001, "Authorization is empty")
    if scheme.lower() != "bearer":
        return AuthFailure(1002, "Authorization is invalid")
    return token


def bearer_auth(keys: Iterable[str]) -> Authenticator:
    """The gateway's scheme: ``Authorization: Bearer <key>`` with a known key.

    Args:
        keys: Accepted keys.

    Returns:
        The authenticator.
    """
    accepted = tuple(keys)
    exact: Mapping[str, str] = {f"Bearer {key}": key for key in accepted}

    def authenticate(header: str | None) -> str | AuthFailure:
        key = exact.get(header) if header else None
        if key is not None:
            return key
        scheme, _, token = (header or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token in accepted:
            return token
        if not token:
            return AuthFailure(1001, "Authorization is empty")
        return AuthFailure(1002, "Authorization is invalid")

    return authenticate


class Backend:
    """One imitated API: where its requests live, who may call it, its routes.

    Args:
        name: A label (``gateway``, ``kling``).
        root: Path every request of this API starts with, or several; a request
            under a root but not under ``prefix`` is a wrong customer path (404, 1202).
        prefix: Path the routes hang from (ends with ``/``).
        routes: The rows.
        authenticate: Reads the ``Authorization`` header.

    Raises:
        ValueError: Two rows claim the same method and path.
    """

    __slots__ = ("_table", "authenticate", "name", "prefix", "root", "roots", "routes")

    def __init__(
        self,
        *,
        name: str,
        root: str | Sequence[str],
        prefix: str,
        routes: Iterable[Route],
        authenticate: Authenticator,
    ) -> None:
        self.name = name
        self.roots: tuple[str, ...] = (root,) if isinstance(root, str) else tuple(root)
        self.root = self.roots[0]
        self.prefix = prefix
        self.routes = tuple(routes)
        self.authenticate = authenticate
        self._table: dict[tuple[str, str], Route] = {}
        for route in self.routes:
            slot = (route.method, route.path)
            if slot in self._table:
                raise ValueError(f"two routes for {route.method} {route.path}")
            self._table[slot] = route

    def owns(self, path: str) -> bool:
        """Whether a raw request path lies under one of this API's roots.

        Args:
            path: The path, without the query string.

        Returns:
            ``True`` when this backend answers it.
        """
        return path.startswith(self.roots)

    def resolve(self, method: str, tail: str) -> tuple[Route, str] | None:
        """The row answering a request, and the id it carries.

        Args:
            method: The HTTP method.
            tail: The path after :attr:`prefix` (still percent-encoded).

        Returns:
            ``(route, id)`` (``id`` is ``""`` for routes without one), or ``None``.
        """
        verb = "GET" if method == "HEAD" else method
        route = self._table.get((verb, tail))
        if route is not None:
            return route, ""
        head, _, ident = tail.rpartition("/")
        route = self._table.get((verb, f"{head}/{_ID}")) if head and ident else None
        return (route, unquote(ident)) if route is not None else None


def backend_routes(backend: api.Backend) -> tuple[Route, ...]:
    """The fake's rows for one of the SDK's backend tables.

    Every family is created by ``POST <path>``; a family queried by path has
    ``GET <path>/{id}``; a family with a list query has ``GET <list path>``; the
    multi-task query is ``GET <tasks path>`` (action ``batch`` where one query
    may mix id kinds, ``tasks`` where it may not).

    Args:
        backend: The SDK's table.

    Returns:
        The rows.
    """
    rows: list[Route] = []
    for family in backend.routes:
        endpoint, only = family.endpoint, family.api_key_only
        action = "create" if endpoint.is_task else "face"
        rows.append(Route("POST", family.path, action, endpoint, only))
        if family.query_path is not None:
            rows.append(Route("GET", family.query_path, "query", endpoint, only))
        if family.list_path is not None:
            rows.append(Route("GET", family.list_path, "list", endpoint, only))
    action = "batch" if backend.mixed_id_query else "tasks"
    rows.append(Route("GET", backend.tasks_path, action, None, backend.tasks_api_key_only))
    return tuple(rows)


def gateway_routes(endpoints: Iterable[Endpoint] = ENDPOINTS) -> tuple[Route, ...]:
    """The gateway's rows, read from the endpoint table.

    Every family is created by ``POST <path>``; classic task families are queried
    by ``GET <path>/{id}``; turbo tasks by ``GET tasks?task_ids=..``.

    Args:
        endpoints: The endpoint table.

    Returns:
        The rows.
    """
    return backend_routes(api.gateway_backend(endpoints))


def gateway_backend(endpoint_path: str, keys: Iterable[str]) -> Backend:
    """The gateway: ``/v1/ai/{endpoint_path}/kling/...`` with bearer keys.

    Args:
        endpoint_path: The customer's path segment.
        keys: Accepted keys.

    Returns:
        The backend.
    """
    segment = quote(endpoint_path.strip("/"), safe="")
    return Backend(
        name="gateway",
        root="/v1/ai/",
        prefix=f"/v1/ai/{segment}/kling/",
        routes=gateway_routes(),
        authenticate=bearer_auth(keys),
    )


def official_routes(backend: api.Backend = api.KLING) -> tuple[Route, ...]:
    """Kling's own rows, from the SDK's table of that API.

    Args:
        backend: The SDK's table (default :data:`kling_async._backends.KLING`).

    Returns:
        The rows.
    """
    return backend_routes(backend)


def official_auth(
    api_keys: Mapping[str, str],
    pairs: Mapping[str, KeyPairAccount],
    clock: Callable[[], float],
) -> Authenticator:
    """Kling's schemes: an API key, or an HS256 token from a known key pair.

    Args:
        api_keys: Accepted API keys and the account of each.
        pairs: Accepted access keys, with their secret key and account.
        clock: Unix seconds against which ``exp`` and ``nbf`` are checked.

    Returns:
        The authenticator.
    """
    keys = dict(api_keys)
    check = TokenChecker(pairs, clock)

    def authenticate(header: str | None) -> Caller | AuthFailure:
        token = _bearer(header)
        if isinstance(token, AuthFailure):
            return token
        account = keys.get(token)
        if account is not None:
            return Caller(account)
        checked = check(token)
        return checked if isinstance(checked, Caller) else AuthFailure(*checked)

    return authenticate


def official_backend(
    api_keys: Mapping[str, str],
    pairs: Mapping[str, KeyPairAccount],
    clock: Callable[[], float],
    backend: api.Backend = api.KLING,
) -> Backend:
    """Kling's own API: its legacy ``/v1/...`` and new-standard routes at the root.

    Its roots are the first segments of its paths (``/v1/``, ``/text-to-video/``,
    ``/image-to-video/``, ``/tasks``); list it after the gateway, whose root
    ``/v1/ai/`` lies inside ``/v1/``.

    Args:
        api_keys: Accepted API keys and the account of each.
        pairs: Accepted access keys, with their secret key and account.
        clock: Unix seconds for token times.
        backend: The SDK's table of this API.

    Returns:
        The backend.
    """
    routes = official_routes(backend)
    prefix = backend.prefix()
    roots: dict[str, None] = {}
    for route in routes:
        head, slash, _ = route.path.partition("/")
        roots[f"{prefix}{head}{slash}"] = None
    return Backend(
        name=backend.name,
        root=tuple(roots),
        prefix=prefix,
        routes=routes,
        authenticate=official_auth(api_keys, pairs, clock),
    )
