"""The API front door: backend, key, request rate, latency, then the route's action.

Every API request goes through :meth:`ApiFront.handle` in the gateway's order:
a path outside every backend is 404/1202; a bad key or token 401 (1001 empty,
1002 invalid, 1003 not yet valid, 1004 expired); over the request rate 429/1302
with ``Retry-After``; a wrong customer path segment 404/1202; no row for the
method and path 404/1202; a token on a row that takes API keys only 401/1002. A
known row calls its action with the caller's account.

:func:`quiet_disconnects` keeps a client that goes away mid-request (a cancelled
create, a download stopped at its size cap) from becoming an error log with a
traceback: it is counted and logged at debug level.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ._faults import TokenBucket
from ._routes import AuthFailure, Backend, Route
from ._state import FakeState
from ._tokens import TOKEN, Caller

__all__ = ["Action", "ApiFront", "quiet_disconnects"]

_log = logging.getLogger("kling_async.testing")

#: A route's handler: ``(request, route, id from the path, caller's account)``.
Action = Callable[[web.Request, Route, str, str], Awaitable[web.StreamResponse]]
#: Status logged (never sent) when the client is gone: nginx's "client closed request".
_CLIENT_GONE = 499


def quiet_disconnects(state: FakeState) -> Middleware:
    """A middleware that turns a vanished client into a debug record and a count.

    Args:
        state: Where ``client_disconnects`` is counted.

    Returns:
        The middleware.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ConnectionError as exc:
            state.store.counts["client_disconnects"] += 1
            # The method and error class only: the path holds the customer's segment.
            _log.debug("client went away during %s (%s)", request.method, type(exc).__name__)
            return web.Response(status=_CLIENT_GONE)

    return middleware


class ApiFront:
    """Routes API requests to their actions.

    Args:
        state: The fake's shared state.
        backends: The imitated APIs, tried in order by their root path.
        actions: A handler per action name of the route table.

    Raises:
        ValueError: A route names an action without a handler.
    """

    def __init__(
        self, state: FakeState, backends: Sequence[Backend], actions: Mapping[str, Action]
    ) -> None:
        self._state = state
        self._backends = tuple(backends)
        self._actions = dict(actions)
        missing = {r.action for b in self._backends for r in b.routes} - set(self._actions)
        if missing:
            raise ValueError(f"routes name actions without a handler: {sorted(missing)}")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one API request.

        Args:
            request: Any request that no other route took.

        Returns:
            The response.
        """
        state = self._state
        counts, answers = state.store.counts, state.answers
        counts["requests_total"] += 1
        raw = request.raw_path.partition("?")[0]
        backend = next((b for b in self._backends if b.owns(raw)), None)
        if backend is None:
            return answers.error(404, 1202, "No such API")
        counts["api_requests"] += 1
        who = backend.authenticate(request.headers.get("Authorization"))
        if isinstance(who, AuthFailure):
            counts["auth_failures"] += 1
            return answers.error(401, who.code, who.message)
        caller = Caller(who) if isinstance(who, str) else who
        if caller.scheme == TOKEN:
            state.store.note_token(caller.credential)
        key = caller.account
        wait = self._throttle(key)
        if wait > 0:
            return answers.rate_limited(wait)
        if state.latency > 0:
            await asyncio.sleep(state.latency)
        if state.base_url is None:
            state.base_url = f"{request.scheme}://{request.host}"
        if not raw.startswith(backend.prefix):
            return answers.not_found(1202, "The endpoint path does not exist")
        tail = raw[len(backend.prefix) :]
        found = backend.resolve(request.method, tail)
        if found is None:
            return answers.not_found(1202, f"Invalid method: {request.method} {tail}")
        route, ident = found
        if route.api_key_only and caller.scheme == TOKEN:
            counts["auth_failures"] += 1
            return answers.error(
                401, 1002, "Authorization is invalid: this API takes API keys only"
            )
        return await self._actions[route.action](request, route, ident, key)

    def _throttle(self, key: str) -> float:
        """Spend one request of ``key``'s rate: 0, or seconds until one is allowed."""
        rate = self._state.config.max_rps
        if rate is None:
            return 0.0
        buckets = self._state.buckets
        now = time.monotonic()  # request rates are real, whatever the fake's clock says
        bucket = buckets.get(key)
        if bucket is None:
            burst = self._state.config.rps_burst or max(1.0, rate)
            bucket = buckets[key] = TokenBucket(rate, burst, now)
        return bucket.take(now)
