"""The fake's route table: which request reaches which action, per backend.

A :class:`Backend` is one API the fake imitates: the root under which its requests
live, the prefix its routes hang from, how a caller proves who it is, and its rows
of :class:`Route`. The gateway's rows are read from
:data:`kling_async._endpoints.ENDPOINTS`, so an endpoint added there is served here
without an edit. Serving another API (Kling's own, say) means building one more
``Backend`` from rows whose actions already exist; the front door has no branch per
backend or per endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote, unquote

import attrs

from .._endpoints import ENDPOINTS, TURBO_TASKS_PATH, Endpoint

__all__ = [
    "ACTIONS",
    "AuthFailure",
    "Backend",
    "Route",
    "bearer_auth",
    "gateway_backend",
    "gateway_routes",
]

#: What a route can do: create a task, answer identify-face at once, query one task,
#: query many (turbo's list). Each names a handler coroutine of the fake.
ACTIONS: tuple[str, ...] = ("create", "face", "query", "batch")

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
        endpoint: The endpoint family served (``None`` for turbo's task list).
    """

    method: str
    path: str
    action: str = attrs.field(validator=attrs.validators.in_(ACTIONS))
    endpoint: Endpoint | None = None


@attrs.frozen
class AuthFailure:
    """Why a caller was refused (HTTP 401).

    Attributes:
        code: Envelope code (1001 empty, 1002 invalid, ...).
        message: Envelope message (never echoes the credential).
    """

    code: int
    message: str


#: Reads the ``Authorization`` header: the caller's key, or why it was refused.
Authenticator = Callable[[str | None], str | AuthFailure]


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
        name: A label (``gateway``).
        root: Path every request of this API starts with; a request under the
            root but not under ``prefix`` is a wrong customer path (404, 1202).
        prefix: Path the routes hang from (ends with ``/``).
        routes: The rows.
        authenticate: Reads the ``Authorization`` header.

    Raises:
        ValueError: Two rows claim the same method and path.
    """

    __slots__ = ("_table", "authenticate", "name", "prefix", "root", "routes")

    def __init__(
        self,
        *,
        name: str,
        root: str,
        prefix: str,
        routes: Iterable[Route],
        authenticate: Authenticator,
    ) -> None:
        self.name = name
        self.root = root
        self.prefix = prefix
        self.routes = tuple(routes)
        self.authenticate = authenticate
        self._table: dict[tuple[str, str], Route] = {}
        for route in self.routes:
            slot = (route.method, route.path)
            if slot in self._table:
                raise ValueError(f"two routes for {route.method} {route.path}")
            self._table[slot] = route

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


def gateway_routes(endpoints: Iterable[Endpoint] = ENDPOINTS) -> tuple[Route, ...]:
    """The gateway's rows, read from the endpoint table.

    Every family is created by ``POST <path>``; classic task families are queried
    by ``GET <path>/{id}``; turbo tasks by ``GET tasks?task_ids=..``.

    Args:
        endpoints: The endpoint table.

    Returns:
        The rows.
    """
    rows: list[Route] = []
    for endpoint in endpoints:
        rows.append(
            Route("POST", endpoint.path, "create" if endpoint.is_task else "face", endpoint)
        )
        if endpoint.is_task and not endpoint.is_turbo:
            rows.append(Route("GET", f"{endpoint.path}/{_ID}", "query", endpoint))
    rows.append(Route("GET", TURBO_TASKS_PATH, "batch"))
    return tuple(rows)


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
