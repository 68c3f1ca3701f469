"""The fake Kling gateway: an ``aiohttp.web`` application serving every endpoint family.

It speaks two APIs at once, both from the route tables of :mod:`._routes`, read
from the SDK's :mod:`kling_async._backends`. The gateway (``{prefix}`` is
``/v1/ai/{endpoint_path}/kling``, bearer API keys):

- ``POST {prefix}/{path}``: create a task (or, for identify-face, answer at once),
- ``GET {prefix}/{path}/{id}``: query a classic task by task id or external task id,
- ``GET {prefix}/tasks?task_ids=a,b&external_task_ids=c``: turbo batch query (a list),

and Kling's own API (API keys, or HS256 tokens from ``key_pairs``, checked with
PyJWT: see :mod:`._tokens`):

- ``POST /v1/{path}`` and ``GET /v1/{path}/{id}`` for the classic families,
- ``GET /v1/{path}?pageNum=&pageSize=``: the family's tasks, newest first,
- ``POST /text-to-video/kling-3.0-turbo``, ``POST /image-to-video/kling-3.0-turbo``
  and ``GET /tasks?task_ids=..`` (or ``external_task_ids``): API keys only.

Both serve:

- ``GET /__media__/{name}``: result files (signed, expiring URLs; ``Range`` support),
- ``GET /__fake__/stats``, ``POST /__fake__/reset``, ``GET /__fake__/tasks``,
  ``POST /__fake__/inject``, ``POST /__fake__/advance``: introspection and control.

:class:`FakeGateway` only wires the pieces: :class:`~._state.FakeState` (settings,
clock, store, faults) shared by the handlers of :mod:`._api` (front door),
:mod:`._create`, :mod:`._query`, :mod:`._media_route` and :mod:`._admin`, with
faults acted out by :mod:`._spoil` and callbacks sent by :mod:`._callbacks`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import web

from ._admin import AdminRoutes
from ._api import ApiFront, quiet_disconnects
from ._callbacks import CallbackDispatcher
from ._config import FakeConfig
from ._create import CreateHandler
from ._media_route import MediaHandler
from ._query import QueryHandler
from ._routes import gateway_backend, official_backend
from ._spoil import Spoiler
from ._state import FakeState

if TYPE_CHECKING:
    from .._session import KlingSession

__all__ = ["FakeGateway", "run_fake_gateway"]

#: Largest request body the fake reads (base64 media included).
_MAX_REQUEST_BYTES = 64 * 1024 * 1024


class FakeGateway:
    """A faithful, fast, misbehaving-on-demand fake of the Kling gateway.

    Build it, then either ``await start()`` / ``await close()``, use it as an async
    context manager, or use :func:`run_fake_gateway`. Its :attr:`app` can also be
    served by any aiohttp runner or test server.

    Args:
        config: The behaviour (default: :class:`FakeConfig` defaults).
        **overrides: Fields of :class:`FakeConfig` to change.

    Raises:
        ValueError: An override is invalid.
        TypeError: An override names no field.
    """

    def __init__(self, config: FakeConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else FakeConfig()
        self.config: FakeConfig = attrs.evolve(base, **overrides) if overrides else base
        cfg = self.config
        self._state = state = FakeState(cfg)
        self._callbacks = CallbackDispatcher(cfg, state.store, state.clock.now, state.render)
        spoiler = Spoiler(state)
        creates = CreateHandler(state, spoiler, self._callbacks)
        queries = QueryHandler(state, spoiler)
        backends = [
            gateway_backend(cfg.endpoint_path, cfg.api_keys),
            official_backend(state.api_key_accounts(), state.pair_accounts(), state.token_clock),
        ]
        self._front = ApiFront(
            state,
            backends,
            {
                "create": creates.create,
                "face": creates.identify_face,
                "query": queries.query,
                "batch": queries.batch,
                "tasks": queries.tasks,
                "list": queries.list_tasks,
            },
        )
        self._media = MediaHandler(state, spoiler)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self.app: web.Application = self._build_app()

    # --- lifecycle ------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(
            client_max_size=_MAX_REQUEST_BYTES, middlewares=[quiet_disconnects(self._state)]
        )
        AdminRoutes(self).add_to(app.router)
        app.router.add_get("/__media__/{name}", self._media.handle)
        app.router.add_route("*", "/{tail:.*}", self._front.handle)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_startup(self, _: web.Application) -> None:
        self._callbacks.start()

    async def _on_cleanup(self, _: web.Application) -> None:
        await self._callbacks.close()

    @property
    def url(self) -> str:
        """Base URL of the running fake (both hosts), e.g. ``http://127.0.0.1:40123``.

        Raises:
            RuntimeError: The fake was not started with :meth:`start`.
        """
        if self._url is None:
            raise RuntimeError("the fake gateway is not running; call start() first")
        return self._url

    @property
    def api_key(self) -> str:
        """The accepted key."""
        return self.config.api_key

    @property
    def endpoint_path(self) -> str:
        """The accepted endpoint path segment."""
        return self.config.endpoint_path

    @property
    def access_key(self) -> str:
        """The first accepted access key of Kling's own API (never log it)."""
        return self.config.access_key

    @property
    def secret_key(self) -> str:
        """The secret key of :attr:`access_key` (never log it)."""
        return self.config.secret_key

    def token_clock(self) -> float:
        """The Unix time this fake checks token ``exp``/``nbf`` against.

        Give it as the ``clock`` of :class:`kling_async._auth.JwtAuth` and tokens
        renew on the fake's schedule, :meth:`advance` included (a client in
        another process uses :func:`kling_async._auth.scaled_clock` with
        ``config.token_scale`` instead, which misses only the advances).

        Returns:
            Unix seconds on the token time scale.
        """
        return self._state.token_clock()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeGateway:
        """Listen on ``host:port`` (port 0 picks a free one).

        Args:
            host: Interface to bind (loopback by default).
            port: TCP port, 0 for any free port.

        Returns:
            The gateway itself, now with :attr:`url` set.

        Raises:
            RuntimeError: Already started.
            OSError: The port could not be bound.
        """
        if self._runner is not None:
            raise RuntimeError("the fake gateway is already running")
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0]
        bound_host = str(bound[0])
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._url = f"http://{shown}:{bound[1]}"
        if self._state.base_url is None:
            self._state.base_url = self._url
        return self

    async def close(self) -> None:
        """Stop listening, cancel pending callbacks, close every connection."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeGateway:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def session(self, *, backend: str = "gateway", **kwargs: Any) -> KlingSession:
        """A :class:`~kling_async.KlingSession` wired to this fake.

        The session runs on the fake's clock: its configuration is
        :meth:`~kling_async.ClientConfig.time_scaled` by ``time_scale`` (first
        poll, poll intervals, retry backoff, reconcile lookups, slot TTL), so
        ``run``/``wait`` finish as fast as the fake's tasks do; fields given in
        ``kwargs`` win. On Kling's own API its tokens are timed by
        :meth:`token_clock`, so they expire and renew on the fake's schedule,
        :meth:`advance` included.

        Args:
            backend: ``"gateway"`` (the fake's API key and endpoint path, both
                hosts on this fake) or ``"kling"`` (Kling's own API at this fake's
                URL with its first access/secret key pair; pass
                ``api_key=fake.api_key`` too for the routes that take API keys only).
            **kwargs: ``http_session`` / ``transport`` for the session, credentials
                (``api_key``; ``access_key``/``secret_key`` on ``"kling"``) to use
                instead of the fake's, and any :class:`~kling_async.ClientConfig`
                field (``poll``, ``retry``, ``timeouts``, ``validate``...).

        Returns:
            The session (use it as an async context manager).

        Raises:
            RuntimeError: The fake is not running.
            ConfigurationError: ``backend`` names no backend, or a setting is bad.
        """
        from .._backends import KLING, backend_named
        from .._config import ClientConfig
        from .._session import KlingSession

        http_session = kwargs.pop("http_session", None)
        transport = kwargs.pop("transport", None)
        where: dict[str, Any] = {"base_url": self.url}
        if backend_named(backend) is KLING:
            where["backend"] = KLING.name
            where["access_key"] = kwargs.pop("access_key", self.config.access_key)
            where["secret_key"] = kwargs.pop("secret_key", self.config.secret_key)
            if "api_key" in kwargs:
                where["api_key"] = kwargs.pop("api_key")
        else:
            where["api_key"] = kwargs.pop("api_key", self.config.api_key)
            where["endpoint_path"] = self.config.endpoint_path
            where["turbo_base_url"] = self.url
        scaled = ClientConfig(**where).time_scaled(self.config.time_scale)
        kwargs.setdefault("token_clock", self.token_clock)
        config = attrs.evolve(scaled, **kwargs)
        return KlingSession(config=config, http_session=http_session, transport=transport)

    # --- in-process control ---------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Every figure the fake keeps, as served by ``GET /__fake__/stats``.

        Keys: ``creates`` (tasks actually created), ``creates_by_family``,
        ``create_requests`` (create calls received, refused ones included),
        ``list_queries`` and ``list_query_tasks`` (Kling's list query: requests
        and tasks reported), ``token_requests`` (requests authenticated with a
        token) and ``tokens_seen`` (distinct tokens accepted),
        ``duplicate_external_ids`` (creates refused with 1201 because their
        external id already named a task: each would have been a second paid task;
        0 in a run where the client never re-sends a create it cannot prove
        missing), ``queries``, ``batch_queries``,
        ``batch_query_ids``, ``identify_face``, ``rate_limited`` (1302 sent),
        ``concurrency_limited`` (1303 sent), ``faults_injected``, ``faults_by_kind``,
        ``max_running_observed`` (most unfinished tasks of one key at once),
        ``max_slots_observed``, ``running``, ``running_slots``, ``tasks_by_status``
        (classic spelling), ``tasks_total``, ``units_charged`` (succeeded tasks),
        ``requests_total`` (API and media requests), ``api_requests``,
        ``not_found``, ``auth_failures``, ``invalid_requests``, ``media_requests``,
        ``media_expired``, ``callbacks_sent``, ``callbacks_failed``,
        ``callbacks_skipped``, ``client_disconnects`` (requests whose client went
        away before the answer), ``face_sessions``.

        Returns:
            A fresh JSON-ready dict.
        """
        return self._state.store.stats()

    def reset(self) -> None:
        """Forget every task, figure and scheduled fault; restart the random sequences."""
        self._state.reset()
        self._callbacks.clear()

    def task_records(self) -> list[dict[str, Any]]:
        """One dict per task, in creation order.

        Keys: ``task_id``, ``external_task_id``, ``family``, ``created``,
        ``started``, ``completes_at`` (fake monotonic clock: ``time.monotonic()``
        plus any :meth:`advance`), ``duration_s`` (real seconds the task holds its
        slot), ``status`` (now), ``first_terminal_seen_at`` (clock of the first
        successfully answered query that showed it ended, or ``None``),
        ``queries``, ``units``, ``slots``.

        Returns:
            The list.
        """
        return self._state.store.records()

    def inject(self, fault: str, *, count: int = 1, on: str = "create") -> None:
        """Make the next ``count`` requests of a kind misbehave.

        ``fake.inject("drop_after_store")`` means: the next create is stored, then
        its connection is closed without an answer.

        Args:
            fault: A name from :data:`~kling_async.testing.FAULTS`.
            count: How many requests it strikes.
            on: ``create``, ``query``, ``batch``, ``list``, ``face``, ``api`` (any
                of those) or ``media``.

        Raises:
            ValueError: Unknown fault or scope, or a JSON-rewriting fault on media.
        """
        self._state.faults.inject(fault, count=count, on=on)

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward: tasks progress, callbacks fall due, lags pass.

        Result URLs age with it too: every delay of the fake lives on this one clock.

        Args:
            seconds: How far (compare with scaled task lives).

        Raises:
            ValueError: ``seconds`` is negative.
        """
        self._state.clock.advance(seconds)
        self._callbacks.poke()

    def now(self) -> float:
        """The fake's clock: ``time.monotonic()`` plus every :meth:`advance`."""
        return self._state.clock.now()


@contextlib.asynccontextmanager
async def run_fake_gateway(
    config: FakeConfig | None = None, *, host: str = "127.0.0.1", port: int = 0, **overrides: Any
) -> AsyncIterator[FakeGateway]:
    """Run a fake gateway on loopback for the duration of an ``async with`` block.

    Args:
        config: Its behaviour (default: :class:`FakeConfig` defaults).
        host: Interface to bind.
        port: TCP port (0: any free port).
        **overrides: Fields of :class:`FakeConfig` to change.

    Yields:
        The running gateway; :attr:`FakeGateway.url` is its base URL.

    Raises:
        OSError: The port could not be bound.
    """
    gateway = FakeGateway(config, **overrides)
    await gateway.start(host, port)
    try:
        yield gateway
    finally:
        await gateway.close()
