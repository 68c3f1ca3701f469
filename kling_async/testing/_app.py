"""The fake Kling gateway: an ``aiohttp.web`` application serving every endpoint family.

Routes (``{prefix}`` is ``/v1/ai/{endpoint_path}/kling``), all read from
:data:`kling_async._endpoints.ENDPOINTS`:

- ``POST {prefix}/{path}``: create a task (or, for identify-face, answer at once),
- ``GET {prefix}/{path}/{id}``: query a classic task by task id or external task id,
- ``GET {prefix}/tasks?task_ids=a,b&external_task_ids=c``: turbo batch query (a list),
- ``GET /__media__/{name}``: result files (signed, expiring URLs; ``Range`` support),
- ``GET /__fake__/stats``, ``POST /__fake__/reset``, ``GET /__fake__/tasks``,
  ``POST /__fake__/inject``, ``POST /__fake__/advance``: introspection and control.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import attrs
from aiohttp import web

from .._endpoints import ENDPOINTS, TURBO_TASKS_PATH, Endpoint, Shape
from .._validation import validate_payload
from ._callbacks import CallbackDispatcher
from ._config import FakeConfig
from ._faults import FaultPlan, TokenBucket
from ._media import CONTENT_TYPES, media_for_extension
from ._store import FaceSessionRecord, Store
from ._tasks import (
    FAILED,
    SUCCEED,
    TaskRecord,
    classic_create_data,
    classic_data,
    clip_seconds,
    image_count,
    life_factor,
    turbo_create_data,
    turbo_data,
    units_for,
)

if TYPE_CHECKING:
    from .._session import KlingSession

__all__ = ["FakeGateway", "run_fake_gateway"]

_JSON = "application/json"
_OK_HEAD = b'{"code":0,"message":"SUCCEED","data":'
_RID_HEAD = b',"request_id":"'
_TAIL = b'"}'
_HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>nginx</center></body></html>"
)
#: Faults that answer before a create stores its task.
_BEFORE_STORE = frozenset(
    {"drop_before_store", "http_500", "http_503", "rate_limit", "concurrency_limit"}
)
_SERVER_ERRORS = {
    "http_500": (500, 5000, "Internal error, please try again later"),
    "http_503": (
        503,
        5001,
        "Service temporarily unavailable (maintenance), please try again later",
    ),
    "http_504": (504, 5002, "Internal timeout, please try again later"),
}
_TERMINAL = frozenset({SUCCEED, FAILED})


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _split_ids(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _text(value: Any) -> str | None:
    """A non-empty string field, or ``None``."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _field(payload: Mapping[str, Any], endpoint: Endpoint, name: str) -> Any:
    """A field that turbo keeps under ``options``."""
    if endpoint.shape is Shape.TURBO:
        options = payload.get("options")
        return options.get(name) if isinstance(options, Mapping) else None
    return payload.get(name)


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
        self._offset = 0.0
        wall_offset = time.time() - time.monotonic()
        self._store = Store(cfg, self._now, wall_offset)
        self._faults = FaultPlan(cfg.fault_rate, cfg.fault_mix, cfg.seed)
        self._buckets: dict[str, TokenBucket] = {}
        self._callbacks = CallbackDispatcher(cfg, self._store, self._now, self._callback_body)
        self._media_key = hashlib.sha256(f"kling-async-fake-media-{cfg.seed}".encode()).digest()
        self._prefix = f"/v1/ai/{quote(cfg.endpoint_path.strip('/'), safe='')}/kling/"
        self._creates: dict[str, Endpoint] = {ep.path: ep for ep in ENDPOINTS}
        self._queries: dict[str, Endpoint] = {
            ep.path: ep for ep in ENDPOINTS if ep.is_task and not ep.is_turbo
        }
        self._auth: dict[str, str] = {f"Bearer {key}": key for key in cfg.api_keys}
        self._base_url: str | None = cfg.public_url.rstrip("/") if cfg.public_url else None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self.app: web.Application = self._build_app()

    # --- lifecycle ------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        router = app.router
        router.add_get("/__fake__/stats", self._handle_stats)
        router.add_post("/__fake__/reset", self._handle_reset)
        router.add_get("/__fake__/tasks", self._handle_tasks)
        router.add_post("/__fake__/inject", self._handle_inject)
        router.add_post("/__fake__/advance", self._handle_advance)
        router.add_get("/__media__/{name}", self._handle_media)
        router.add_route("*", "/{tail:.*}", self._handle_api)
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
        if self._base_url is None:
            self._base_url = self._url
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

    def session(self, **kwargs: Any) -> KlingSession:
        """A :class:`~kling_async.KlingSession` wired to this fake (both hosts).

        Unless ``poll`` is given, the session polls on the fake's clock: the
        default :class:`~kling_async.PollPolicy` delays multiplied by ``time_scale``
        (a few milliseconds at least), so ``run``/``wait`` finish as fast as the
        fake's tasks do.

        Args:
            **kwargs: ``http_session`` / ``transport`` for the session, ``api_key``
                (default: the fake's), and any :class:`~kling_async.ClientConfig`
                field (``poll``, ``retry``, ``timeouts``, ``validate``...).

        Returns:
            The session (use it as an async context manager).

        Raises:
            RuntimeError: The fake is not running.
        """
        from .._config import ClientConfig, PollPolicy
        from .._session import KlingSession

        http_session = kwargs.pop("http_session", None)
        transport = kwargs.pop("transport", None)
        if "poll" not in kwargs:
            default, scale = PollPolicy(), self.config.time_scale
            kwargs["poll"] = attrs.evolve(
                default,
                initial_delay=max(0.005, default.initial_delay * scale),
                interval=max(0.005, default.interval * scale),
                max_interval=max(0.02, default.max_interval * scale),
                timeout=max(60.0, default.timeout * scale),
            )
        config = ClientConfig(
            api_key=kwargs.pop("api_key", self.config.api_key),
            endpoint_path=self.config.endpoint_path,
            base_url=self.url,
            turbo_base_url=self.url,
            **kwargs,
        )
        return KlingSession(config=config, http_session=http_session, transport=transport)

    # --- in-process control ---------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Every figure the fake keeps, as served by ``GET /__fake__/stats``.

        Keys: ``creates`` (tasks created), ``creates_by_family``,
        ``create_requests`` (create calls received, refused ones included),
        ``duplicate_external_ids``, ``queries``, ``batch_queries``,
        ``batch_query_ids``, ``identify_face``, ``rate_limited`` (1302 sent),
        ``concurrency_limited`` (1303 sent), ``faults_injected``, ``faults_by_kind``,
        ``max_running_observed`` (most unfinished tasks of one key at once),
        ``max_slots_observed``, ``running``, ``running_slots``, ``tasks_by_status``
        (classic spelling), ``tasks_total``, ``units_charged`` (succeeded tasks),
        ``requests_total`` (API and media requests), ``api_requests``,
        ``not_found``, ``auth_failures``, ``invalid_requests``, ``media_requests``,
        ``media_expired``, ``callbacks_sent``, ``callbacks_failed``,
        ``callbacks_skipped``, ``face_sessions``.

        Returns:
            A fresh JSON-ready dict.
        """
        return self._store.stats()

    def reset(self) -> None:
        """Forget every task, figure and scheduled fault; restart the random sequences."""
        self._store.reset()
        self._faults = FaultPlan(self.config.fault_rate, self.config.fault_mix, self.config.seed)
        self._buckets.clear()
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
        return self._store.records()

    def inject(self, fault: str, *, count: int = 1, on: str = "create") -> None:
        """Make the next ``count`` requests of a kind misbehave.

        ``fake.inject("drop_after_store")`` means: the next create is stored, then
        its connection is closed without an answer.

        Args:
            fault: A name from :data:`~kling_async.testing.FAULTS`.
            count: How many requests it strikes.
            on: ``create``, ``query``, ``batch``, ``face``, ``api`` (any of those)
                or ``media``.

        Raises:
            ValueError: Unknown fault or scope.
        """
        self._faults.inject(fault, count=count, on=on)

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward: tasks progress, URLs age, lags pass.

        Args:
            seconds: How far (real seconds; compare with scaled task lives).

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds
        self._callbacks.poke()

    def now(self) -> float:
        """The fake's clock: ``time.monotonic()`` plus every :meth:`advance`."""
        return time.monotonic() + self._offset

    _now = now

    # --- responses ------------------------------------------------------------------

    def _request_id(self) -> str:
        return self._store.request_id()

    def _error(
        self, status: int, code: int, message: str, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        body = _dumps({"code": code, "message": message, "request_id": self._request_id()})
        response = web.Response(body=body, status=status, content_type=_JSON)
        if headers:
            response.headers.update(headers)
        return response

    def _ok(self, data: bytes) -> bytes:
        return _OK_HEAD + data + _RID_HEAD + self._request_id().encode() + _TAIL

    def _rate_limited(self, wait: float) -> web.Response:
        self._store.counts["rate_limited"] += 1
        return self._error(
            429,
            1302,
            "Too many requests, please slow down",
            {"Retry-After": TokenBucket.retry_after_header(wait)},
        )

    def _concurrency_limited(self) -> web.Response:
        self._store.counts["concurrency_limited"] += 1
        return self._error(
            429,
            1303,
            "Running tasks exceed the concurrency limit of your resource package",
        )

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        transport = request.transport
        if transport is not None:
            transport.close()
        return web.Response(status=500)

    async def _before(
        self, request: web.Request, scope: str
    ) -> tuple[str | None, web.Response | None]:
        """Draw a fault; act on those that strike before any work."""
        fault = self._faults.take(scope)
        if fault is None:
            return None, None
        self._store.count_fault(fault)
        if fault == "slow":
            await asyncio.sleep(self.config.slow_latency)
            return None, None
        if fault in _BEFORE_STORE:
            return None, self._fault_response(request, fault)
        return fault, None

    def _fault_response(self, request: web.Request, fault: str) -> web.Response:
        if fault in ("drop_before_store", "drop_after_store"):
            return self._drop(request)
        if fault in _SERVER_ERRORS:
            status, code, message = _SERVER_ERRORS[fault]
            return self._error(status, code, message)
        if fault == "rate_limit":
            return self._rate_limited(1.0)
        if fault == "concurrency_limit":
            return self._concurrency_limited()
        if fault == "html":
            return web.Response(body=_HTML_PAGE, status=200, content_type="text/html")
        raise AssertionError(fault)  # pragma: no cover

    async def _finish(
        self, request: web.Request, body: bytes, fault: str | None, content_type: str = _JSON
    ) -> web.StreamResponse:
        """Send a normal 200 answer, or spoil it with a fault drawn earlier."""
        if fault is None:
            return web.Response(body=body, content_type=content_type)
        if fault == "truncated":
            response = web.StreamResponse(status=200)
            response.content_type = content_type
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            self._drop(request)
            return response
        return self._fault_response(request, fault)

    # --- API dispatch ---------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        counts = self._store.counts
        counts["requests_total"] += 1
        raw = request.raw_path.partition("?")[0]
        if not raw.startswith("/v1/ai/"):
            return self._error(404, 1202, "No such API")
        counts["api_requests"] += 1
        header = request.headers.get("Authorization")
        key = self._auth.get(header) if header else None
        if key is None:
            scheme, _, token = (header or "").strip().partition(" ")
            token = token.strip()
            key = token if scheme.lower() == "bearer" and token in self.config.api_keys else None
            if key is None:
                counts["auth_failures"] += 1
                if not token:
                    return self._error(401, 1001, "Authorization is empty")
                return self._error(401, 1002, "Authorization is invalid")
        if self.config.max_rps is not None:
            bucket = self._buckets.get(key)
            real_now = time.monotonic()
            if bucket is None:
                rate = self.config.max_rps
                burst = self.config.rps_burst or max(1.0, rate)
                bucket = self._buckets[key] = TokenBucket(rate, burst, real_now)
            wait = bucket.take(real_now)
            if wait > 0:
                return self._rate_limited(wait)
        if self.config.latency > 0:
            await asyncio.sleep(self.config.latency)
        if self._base_url is None:
            self._base_url = f"{request.scheme}://{request.host}"
        if not raw.startswith(self._prefix):
            counts["not_found"] += 1
            return self._error(404, 1202, "The endpoint path does not exist")
        tail = raw[len(self._prefix) :]
        method = request.method
        if method == "POST":
            endpoint = self._creates.get(tail)
            if endpoint is not None:
                if endpoint.is_task:
                    return await self._create(request, endpoint, key)
                return await self._identify_face(request, endpoint, key)
        elif method in ("GET", "HEAD"):
            if tail == TURBO_TASKS_PATH:
                return await self._batch(request, key)
            path, _, ident = tail.rpartition("/")
            endpoint = self._queries.get(path)
            if endpoint is not None and ident:
                return await self._query(request, endpoint, unquote(ident), key)
        counts["not_found"] += 1
        return self._error(404, 1202, f"Invalid method: {method} {tail}")

    @staticmethod
    def _validate(endpoint: Endpoint, payload: Mapping[str, Any]) -> list[str]:
        # The very rules the SDK checks before sending (one source of truth).
        return [str(problem) for problem in validate_payload(endpoint, payload)]

    async def _payload(
        self, request: web.Request, endpoint: Endpoint
    ) -> tuple[dict[str, Any] | None, web.Response | None]:
        """Parse and validate a create body: the payload, or the 400 to send."""
        raw = await request.read()
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self._store.counts["invalid_requests"] += 1
            return None, self._error(400, 1200, "Invalid request body: not valid JSON")
        if not isinstance(payload, dict):
            self._store.counts["invalid_requests"] += 1
            return None, self._error(400, 1200, "Invalid request body: expected a JSON object")
        problems = self._validate(endpoint, payload)
        if problems:
            return None, self._invalid("; ".join(problems))
        return payload, None

    def _invalid(self, message: str) -> web.Response:
        self._store.counts["invalid_requests"] += 1
        return self._error(400, 1201, f"Invalid parameters: {message}")

    def _media_url(self, name: str, extension: str, expires_ms: int) -> str:
        base = self._base_url or ""
        signature = hmac.new(
            self._media_key, f"{name}.{extension}:{expires_ms}".encode(), hashlib.sha256
        ).hexdigest()[:32]
        # A long cache key, like the real CDN's, so clients meet realistic URLs.
        cache_key = hashlib.sha512(signature.encode()).hexdigest()
        return (
            f"{base}/__media__/{name}.{extension}?expires={expires_ms}&sig={signature}"
            f"&x-kcdn-pid=112757&cacheKey={cache_key}"
        )

    def _video_object(self, rec: TaskRecord, video_id: str) -> dict[str, Any]:
        """``parent_video`` for an output of an earlier task."""
        return {
            "id": video_id,
            "url": self._media_url(video_id, "mp4", rec.expires_ms(self.config.url_ttl)),
            "duration": rec.video_duration(),
        }

    def _known_video(self, key: str, video_id: Any) -> TaskRecord | None:
        rec = self._store.videos.get(str(video_id)) if video_id else None
        if rec is None or rec.key != key or rec.status_at(self._now()) != SUCCEED:
            return None
        return rec

    def _data_bytes(self, rec: TaskRecord, status: str) -> bytes:
        cached = rec.cache.get(status)
        if cached is None:
            render = turbo_data if rec.endpoint.shape is Shape.TURBO else classic_data
            data = render(rec, status, self._media_url, self.config.url_ttl)
            cached = rec.cache[status] = _dumps(data)
        return cached

    def _callback_body(self, rec: TaskRecord, status: str) -> bytes:
        return self._data_bytes(rec, status)

    # --- creates --------------------------------------------------------------------

    async def _create(
        self, request: web.Request, endpoint: Endpoint, key: str
    ) -> web.StreamResponse:
        store = self._store
        store.counts["create_requests"] += 1
        fault: str | None = None
        if self._faults.active:
            fault, early = await self._before(request, "create")
            if early is not None:
                return early
        payload, refusal = await self._payload(request, endpoint)
        if refusal is not None or payload is None:
            return refusal or self._error(400, 1200, "Invalid request body")
        parent: dict[str, Any] | None = None
        if endpoint.name == "video-extend":
            source = self._known_video(key, payload.get("video_id"))
            if source is None:
                return self._invalid(
                    "video_id: no video with this id was generated by this account"
                )
            parent = self._video_object(source, str(payload.get("video_id")))
            if float(parent["duration"]) + 4.5 > 180.0:
                return self._invalid("video_id: an extended video cannot exceed 3 minutes")
        elif endpoint.name == "lip-sync":
            session = store.sessions.get(str(payload.get("session_id") or ""))
            if session is None or session.key != key:
                return self._invalid("session_id: no such face session (call identify-face first)")
            choices = payload.get("face_choose")
            for index, choice in enumerate(choices if isinstance(choices, list) else ()):
                face_id = choice.get("face_id") if isinstance(choice, Mapping) else None
                if str(face_id) not in session.face_ids:
                    return self._invalid(
                        f"face_choose[{index}].face_id: no such face in the session"
                    )
            parent = session.video
        external_id = _text(_field(payload, endpoint, "external_task_id"))
        if external_id is not None and (key, external_id) in store.by_external:
            store.counts["duplicate_external_ids"] += 1
            where = "options.external_task_id" if endpoint.is_turbo else "external_task_id"
            return self._invalid(f"{where}: the external_task_id already exists")
        now = self._now()
        store.advance(now)
        slots = endpoint.slots(payload)
        quota = self.config.max_running
        if quota is not None and store.running_slots.get(key, 0) + slots > quota:
            return self._concurrency_limited()
        rec = self._new_task(endpoint, payload, key, external_id, parent, now, slots)
        store.add(rec)
        if rec.callback_url is not None:
            if self._callbacks.allowed(rec.callback_url):
                self._callbacks.schedule(rec)
            else:
                store.counts["callbacks_skipped"] += 3
                rec.callback_url = None
        data = turbo_create_data(rec) if endpoint.shape is Shape.TURBO else classic_create_data(rec)
        return await self._finish(request, self._ok(_dumps(data)), fault)

    def _new_task(
        self,
        endpoint: Endpoint,
        payload: Mapping[str, Any],
        key: str,
        external_id: str | None,
        parent: dict[str, Any] | None,
        now: float,
        slots: int,
    ) -> TaskRecord:
        store, cfg = self._store, self.config
        life = store.draw_life(endpoint.kind, life_factor(endpoint, payload))
        fails = store.draw_fails()
        task_id = store.next_id()
        count = image_count(endpoint, payload) if endpoint.kind == "image" else 1
        watermark_info = _field(payload, endpoint, "watermark_info")
        result_type = ""
        if endpoint.kind == "image":
            result_type = "series" if payload.get("result_type") == "series" else "single"
        return TaskRecord(
            task_id=task_id,
            external_id=external_id,
            endpoint=endpoint,
            key=key,
            created=now,
            started=now + life * cfg.queue_fraction,
            completes=now + life,
            visible_at=now + cfg.lookup_lag,
            wall_offset=store.wall_offset,
            fails=fails,
            message=cfg.fail_message if fails else "",
            units=units_for(endpoint, payload),
            slots=slots,
            clip=clip_seconds(endpoint, payload),
            image_count=count,
            result_type=result_type,
            watermark=bool(isinstance(watermark_info, Mapping) and watermark_info.get("enabled")),
            callback_url=_text(_field(payload, endpoint, "callback_url")),
            output_ids=[store.next_id() for _ in range(count)],
            parent_video=parent,
        )

    async def _identify_face(
        self, request: web.Request, endpoint: Endpoint, key: str
    ) -> web.StreamResponse:
        store = self._store
        store.counts["identify_face"] += 1
        fault: str | None = None
        if self._faults.active:
            fault, early = await self._before(request, "face")
            if early is not None:
                return early
        payload, refusal = await self._payload(request, endpoint)
        if refusal is not None or payload is None:
            return refusal or self._error(400, 1200, "Invalid request body")
        video_id, video_url = _text(payload.get("video_id")), _text(payload.get("video_url"))
        if video_id is not None:
            source = self._known_video(key, video_id)
            if source is None:
                return self._invalid(
                    "video_id: no video with this id was generated by this account"
                )
            video = self._video_object(source, video_id)
        elif video_url is not None:
            video = {"id": store.next_id(), "url": video_url, "duration": "5.041"}
        else:
            return self._invalid("video_id or video_url: exactly one is required")
        session_id = store.next_id()
        store.sessions[session_id] = FaceSessionRecord(
            session_id=session_id, key=key, face_ids=("0",), video=video
        )
        expires = int((self._now() + store.wall_offset + self.config.url_ttl) * 1000)
        data = {
            "session_id": session_id,
            "face_data": [
                {
                    "face_id": "0",
                    "face_image": self._media_url(f"{session_id}-face0", "png", expires),
                    "start_time": 0,
                    "end_time": int(float(video["duration"]) * 1000),
                }
            ],
        }
        return await self._finish(request, self._ok(_dumps(data)), fault)

    # --- queries --------------------------------------------------------------------

    def _seen(self, rec: TaskRecord, status: str, now: float, delivered: bool) -> None:
        rec.queries += 1
        if delivered and status in _TERMINAL and rec.first_terminal_seen_at is None:
            rec.first_terminal_seen_at = now

    async def _query(
        self, request: web.Request, endpoint: Endpoint, ident: str, key: str
    ) -> web.StreamResponse:
        store = self._store
        store.counts["queries"] += 1
        fault: str | None = None
        if self._faults.active:
            fault, early = await self._before(request, "query")
            if early is not None:
                return early
        rec = store.find(key, ident)
        now = self._now()
        if rec is None or rec.endpoint is not endpoint or now < rec.visible_at:
            store.counts["not_found"] += 1
            return self._error(404, 1203, "Task not found")
        status = rec.status_at(now)
        self._seen(rec, status, now, fault is None)
        body = self._ok(self._data_bytes(rec, status))
        if fault is None:
            return web.Response(body=body, content_type=_JSON)
        return await self._finish(request, body, fault)

    async def _batch(self, request: web.Request, key: str) -> web.StreamResponse:
        store = self._store
        store.counts["batch_queries"] += 1
        fault: str | None = None
        if self._faults.active:
            fault, early = await self._before(request, "batch")
            if early is not None:
                return early
        query = request.query
        task_ids = _split_ids(query.get("task_ids", ""))
        external_ids = _split_ids(query.get("external_task_ids", ""))
        if not task_ids and not external_ids:
            return self._invalid("task_ids or external_task_ids: at least one id is required")
        store.counts["batch_query_ids"] += len(task_ids) + len(external_ids)
        now = self._now()
        found: dict[str, TaskRecord] = {}
        for rec in [store.tasks.get(i) for i in task_ids] + [
            store.by_external.get((key, e)) for e in external_ids
        ]:
            if (
                rec is not None
                and rec.key == key
                and rec.endpoint.is_turbo
                and now >= rec.visible_at
                and rec.task_id not in found
            ):
                found[rec.task_id] = rec
        parts = []
        for rec in found.values():
            status = rec.status_at(now)
            self._seen(rec, status, now, fault is None)
            parts.append(self._data_bytes(rec, status))
        body = _OK_HEAD + b"[" + b",".join(parts) + b"]" + _RID_HEAD
        body += self._request_id().encode() + _TAIL
        return await self._finish(request, body, fault)

    # --- media ----------------------------------------------------------------------

    async def _handle_media(self, request: web.Request) -> web.StreamResponse:
        counts = self._store.counts
        counts["requests_total"] += 1
        counts["media_requests"] += 1
        fault: str | None = None
        if self._faults.active:
            fault, early = await self._before(request, "media")
            if early is not None:
                return early
        stem, _, extension = request.match_info["name"].rpartition(".")
        content_type = CONTENT_TYPES.get(extension)
        if not stem or content_type is None:
            return web.Response(status=404, text="Not Found")
        expires = request.query.get("expires", "")
        signature = request.query.get("sig", "")
        expected = hmac.new(
            self._media_key, f"{stem}.{extension}:{expires}".encode(), hashlib.sha256
        ).hexdigest()[:32]
        if not expires.isdigit() or not hmac.compare_digest(signature, expected):
            return web.Response(status=403, text="Forbidden: bad signature")
        if (self._now() + self._store.wall_offset) * 1000 > int(expires):
            counts["media_expired"] += 1
            return web.Response(status=403, text="Forbidden: the URL has expired")
        data = media_for_extension(extension)
        size = len(data)
        headers = {"Content-Type": content_type}
        status = 200
        if self.config.range_requests:
            headers["Accept-Ranges"] = "bytes"
            wanted = request.headers.get("Range")
            span = _parse_range(wanted, size) if wanted else _WHOLE
            if span is _UNSATISFIABLE:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
            if span is not _WHOLE:
                start, end = span
                data = data[start : end + 1]
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
                status = 206
        if fault is not None:
            if fault == "truncated":
                response = web.StreamResponse(status=status, headers=headers)
                response.content_length = len(data)
                await response.prepare(request)
                await response.write(data[: len(data) // 2])
                self._drop(request)
                return response
            return self._fault_response(request, fault)
        return web.Response(body=data, status=status, headers=headers)

    # --- introspection --------------------------------------------------------------

    async def _handle_stats(self, _: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _handle_reset(self, _: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _handle_tasks(self, _: web.Request) -> web.Response:
        return web.json_response({"tasks": self.task_records()})

    async def _handle_inject(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            self.inject(
                str(body["fault"]),
                count=int(body.get("count", 1)),
                on=str(body.get("on", "create")),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _handle_advance(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            self.advance(float(body["seconds"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True})


_WHOLE = (0, -1)
_UNSATISFIABLE = (-1, -1)


def _parse_range(header: str, size: int) -> tuple[int, int]:
    """The byte span ``(first, last)`` a ``Range`` header asks for.

    Returns :data:`_WHOLE` for several ranges or a malformed header (the whole file
    is sent with 200), :data:`_UNSATISFIABLE` for a range outside the file (416).
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return _WHOLE
    first, _, last = spec.strip().partition("-")
    try:
        if not first:
            length = int(last)
            if length <= 0:
                return _UNSATISFIABLE
            return (max(0, size - length), size - 1)
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return _WHOLE
    if start < 0 or start >= size or end < start:
        return _UNSATISFIABLE
    return (start, min(end, size - 1))


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
