"""The async session: validate → rate-limit → send → retry or reconcile → map errors → Task."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import anyio
import attrs

from ._backoff import backoff_delay, is_testing, parse_retry_after, poll_delays
from ._config import ClientConfig, PollPolicy, RetryPolicy
from ._converter import parse_face_session, parse_task, to_payload
from ._download import DownloadedFile, download_url
from ._endpoints import (
    TURBO_TASKS_PATH,
    Endpoint,
    Host,
    endpoint_for,
    endpoint_for_request,
    external_id_of,
    with_external_id,
)
from ._errors import (
    APIError,
    ConcurrencyLimitedError,
    ConnectError,
    CreateOutcomeUnknownError,
    KlingError,
    NotFoundError,
    RateLimitedError,
    ResponseDecodeError,
    ServerError,
    TaskFailedError,
    TransportError,
    ValidationError,
    WaitTimeoutError,
    make_api_error,
)
from ._models import (
    AvatarRequest,
    IdentifyFaceRequest,
    ImageGenerationRequest,
    ImageToVideoRequest,
    LipSyncRequest,
    MultiImageToVideoRequest,
    OmniImageRequest,
    OmniVideoRequest,
    Request,
    TextToAudioRequest,
    TextToVideoRequest,
    TurboImageToVideoRequest,
    TurboTextToVideoRequest,
    VideoExtendRequest,
)
from ._ratelimit import RateLimiter
from ._task import FaceSession, Task
from ._transport import AiohttpTransport, HTTPRequest, Transport
from ._validation import validate_payload

if TYPE_CHECKING:
    from .batch import Batch

__all__ = ["Family", "KlingSession"]

logger = logging.getLogger("kling_async")

RequestT = TypeVar("RequestT")

#: Errors after which a create may or may not have landed on the server.
_UNCLEAR = (TransportError, ServerError)


def new_external_task_id() -> str:
    """A fresh external task id the SDK uses when the caller gave none.

    Returns:
        ``ka-`` followed by 32 hex digits.
    """
    return f"ka-{uuid.uuid4().hex}"


class Family(Generic[RequestT]):
    """The coroutines of one endpoint family: ``create``, ``get`` and ``run``.

    Obtained from the session (``session.text_to_video``...), never built by hand.
    """

    def __init__(self, session: KlingSession, endpoint: Endpoint) -> None:
        self._session = session
        #: The endpoint row this family wraps.
        self.endpoint = endpoint

    def __repr__(self) -> str:
        return f"Family({self.endpoint.name!r})"

    async def create(
        self,
        request: RequestT,
        *,
        external_task_id: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> Task:
        """Create a task. See :meth:`KlingSession.create`.

        Args:
            request: The request body.
            external_task_id: Your id for the task (one is generated when omitted).
            limiter: A request-rate limiter to share with other calls.

        Returns:
            The task as created (usually ``submitted``).

        Raises:
            ValidationError: The request breaks a documented limit (nothing sent).
            APIError: The gateway refused the request.
            CreateOutcomeUnknownError: The create failed unclearly and could not be
                reconciled.
        """
        return await self._session.create(
            request,  # type: ignore[arg-type]
            external_task_id=external_task_id,
            limiter=limiter,
        )

    async def get(
        self,
        task_id: str | None = None,
        *,
        external_task_id: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> Task:
        """Query a task of this family by task id or external task id.

        Args:
            task_id: The server's task id.
            external_task_id: Your external id (instead of ``task_id``).
            limiter: A request-rate limiter to share with other calls.

        Returns:
            The task's current state.

        Raises:
            NotFoundError: No such task.
            APIError: Any other refusal.
        """
        return await self._session.get(
            self.endpoint, task_id, external_task_id=external_task_id, limiter=limiter
        )

    async def run(
        self,
        request: RequestT,
        *,
        external_task_id: str | None = None,
        poll: PollPolicy | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (documented overall deadline)
        raise_on_failure: bool = True,
    ) -> Task:
        """Create a task and wait until it ends.

        Args:
            request: The request body.
            external_task_id: Your id for the task.
            poll: Polling policy (default: the session's).
            timeout: Overall deadline of the wait, seconds.
            raise_on_failure: Raise :class:`TaskFailedError` when the task fails.

        Returns:
            The terminal task.

        Raises:
            ValidationError: The request breaks a documented limit.
            TaskFailedError: The task failed (and ``raise_on_failure``).
            WaitTimeoutError: The deadline passed first.
            APIError: The gateway refused a request.
        """
        task = await self.create(request, external_task_id=external_task_id)
        return await self._session.wait(
            task, poll=poll, timeout=timeout, raise_on_failure=raise_on_failure
        )


class KlingSession:
    """An async session for the Kling API: every endpoint, typed, validated, safely retried.

    Use it as an async context manager and share one session across a whole
    application; it holds one connection pool.

    Args:
        api_key: Access key (or use ``config`` / :meth:`from_env`).
        endpoint_path: Your per-customer endpoint path segment.
        base_url: Classic host (default: the public gateway).
        turbo_base_url: Turbo host (default: the public turbo gateway).
        config: A complete configuration (instead of the four arguments above).
        http_session: An :class:`aiohttp.ClientSession` to borrow (not closed by us).
        transport: A custom transport (tests, instrumentation).

    Raises:
        ConfigurationError: The key or endpoint path is missing, or a URL is malformed.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        endpoint_path: str | None = None,
        base_url: str | None = None,
        turbo_base_url: str | None = None,
        config: ClientConfig | None = None,
        http_session: aiohttp.ClientSession | None = None,
        transport: Transport | None = None,
    ) -> None:
        if config is None:
            values: dict[str, Any] = {
                "api_key": api_key or "",
                "endpoint_path": endpoint_path or "",
            }
            if base_url:
                values["base_url"] = base_url
            if turbo_base_url:
                values["turbo_base_url"] = turbo_base_url
            config = ClientConfig(**values)
        self.config: ClientConfig = config
        self._transport: Transport = transport or AiohttpTransport(
            http_session, connect_timeout=config.timeouts.connect
        )
        self._limiter = (
            RateLimiter(
                config.max_requests_per_second, burst=max(1, int(config.max_requests_per_second))
            )
            if config.max_requests_per_second
            else None
        )
        prefix = f"/v1/ai/{quote(config.endpoint_path.strip('/'), safe='')}/kling/"
        self._roots = {
            Host.CLASSIC: config.base_url + prefix,
            Host.TURBO: config.turbo_base_url + prefix,
        }
        self._headers = {
            "Authorization": f"Bearer {config.api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        #: Requests sent by this session (every attempt), by kind.
        self.request_counts: dict[str, int] = {
            "create": 0,
            "query": 0,
            "batch_query": 0,
            "download": 0,
        }
        e = endpoint_for
        self.text_to_video: Family[TextToVideoRequest] = Family(self, e("text2video"))
        self.image_to_video: Family[ImageToVideoRequest] = Family(self, e("image2video"))
        self.omni_video: Family[OmniVideoRequest] = Family(self, e("omni-video"))
        self.video_extend: Family[VideoExtendRequest] = Family(self, e("video-extend"))
        self.multi_image_to_video: Family[MultiImageToVideoRequest] = Family(
            self, e("multi-image2video")
        )
        self.lip_sync: Family[LipSyncRequest] = Family(self, e("lip-sync"))
        self.avatar: Family[AvatarRequest] = Family(self, e("avatar"))
        self.image_generation: Family[ImageGenerationRequest] = Family(self, e("image-generation"))
        self.omni_image: Family[OmniImageRequest] = Family(self, e("omni-image"))
        self.text_to_audio: Family[TextToAudioRequest] = Family(self, e("text-to-audio"))
        self.turbo_text_to_video: Family[TurboTextToVideoRequest] = Family(
            self, e("turbo-text2video")
        )
        self.turbo_image_to_video: Family[TurboImageToVideoRequest] = Family(
            self, e("turbo-image2video")
        )

    @classmethod
    def from_env(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        http_session: aiohttp.ClientSession | None = None,
        transport: Transport | None = None,
        **overrides: Any,
    ) -> KlingSession:
        """Build a session from ``KLING_API_KEY``, ``KLING_ENDPOINT_PATH``,
        ``KLING_BASE_URL`` and ``KLING_TURBO_BASE_URL``.

        Args:
            environ: Where to read variables (default ``os.environ``).
            http_session: An aiohttp session to borrow.
            transport: A custom transport.
            **overrides: Any :class:`ClientConfig` field; wins over the environment.

        Returns:
            The session.

        Raises:
            ConfigurationError: A required variable is missing or a value is invalid.
        """
        config = ClientConfig.from_env(environ, **overrides)
        return cls(config=config, http_session=http_session, transport=transport)

    def __repr__(self) -> str:
        return (
            f"KlingSession(base_url={self.config.base_url!r}, "
            f"turbo_base_url={self.config.turbo_base_url!r})"
        )

    async def __aenter__(self) -> KlingSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this session owns (a borrowed aiohttp session stays open)."""
        await self._transport.aclose()

    # --- the request path -----------------------------------------------------------

    def _url(self, endpoint: Endpoint, *parts: str) -> str:
        tail = "/".join(quote(p, safe="") for p in parts)
        return self._roots[endpoint.host] + endpoint.path + (f"/{tail}" if tail else "")

    async def _send_once(
        self,
        method: str,
        url: str,
        label: str,
        body: bytes | None,
        limiter: RateLimiter | None,
        kind: str,
    ) -> dict[str, Any]:
        """One attempt: rate-limit, send, decode the envelope, map errors."""
        if limiter is not None:
            await limiter.acquire()
        if self._limiter is not None:
            await self._limiter.acquire()
        self.request_counts[kind] += 1
        started = time.perf_counter()
        try:
            response = await self._transport.send(
                HTTPRequest(
                    method=method,
                    url=url,
                    label=label,
                    headers=self._headers,
                    body=body,
                    timeout=self.config.timeouts.request,
                )
            )
        except TransportError as exc:
            logger.warning("%s %s failed: %s", method, label, exc)
            raise
        elapsed = time.perf_counter() - started
        envelope: Any = None
        try:
            envelope = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            envelope = None
        code = envelope.get("code") if isinstance(envelope, dict) else None
        if isinstance(code, str) and code.lstrip("-").isdigit():
            code = int(code)
        request_id = envelope.get("request_id") if isinstance(envelope, dict) else None
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %d code=%s request_id=%s %.3fs",
                method,
                label,
                response.status,
                code,
                request_id,
                elapsed,
            )
        if response.status >= 400 or (isinstance(code, int) and code != 0):
            message = envelope.get("message") if isinstance(envelope, dict) else None
            error = make_api_error(
                http_status=response.status,
                code=code if isinstance(code, int) else None,
                message=str(message or f"HTTP {response.status}"),
                request_id=str(request_id) if request_id else None,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                path=label,
            )
            if not logger.isEnabledFor(logging.DEBUG):
                logger.info(
                    "%s %s -> %d code=%s request_id=%s %.3fs",
                    method,
                    label,
                    response.status,
                    code,
                    request_id,
                    elapsed,
                )
            raise error
        if not isinstance(envelope, dict) or "data" not in envelope:
            raise ResponseDecodeError(
                f"response is not the JSON envelope (HTTP {response.status}, "
                f"{len(response.body)} bytes)",
                method=method,
                path=label,
                http_status=response.status,
            )
        return envelope

    async def _pause_for(
        self, exc: BaseException, attempt: int, policy: RetryPolicy, limiter: RateLimiter | None
    ) -> None:
        retry_after = exc.retry_after if isinstance(exc, APIError) else None
        delay = backoff_delay(
            attempt,
            initial=policy.initial_delay,
            maximum=policy.max_delay,
            multiplier=policy.multiplier,
        )
        if retry_after is not None and not is_testing():
            delay = max(delay, retry_after)
        if isinstance(exc, RateLimitedError):
            for lim in (limiter, self._limiter):
                if lim is not None:
                    lim.pause(delay)
        logger.info(
            "retrying %s in %.2fs (attempt %d): %s", getattr(exc, "path", ""), delay, attempt, exc
        )
        await anyio.sleep(delay)

    async def _read(
        self, url: str, label: str, limiter: RateLimiter | None, kind: str
    ) -> dict[str, Any]:
        """A GET with retries on every transient failure (reads are safe to repeat)."""
        policy = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._send_once("GET", url, label, None, limiter, kind)
            except (TransportError, RateLimitedError, ConcurrencyLimitedError, ServerError) as exc:
                if attempt >= policy.max_attempts:
                    raise
                await self._pause_for(exc, attempt, policy, limiter)

    # --- public API -----------------------------------------------------------------

    async def create(
        self,
        request: Request,
        *,
        external_task_id: str | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
    ) -> Task:
        """Create a task on the endpoint matching the request's type.

        Every create carries an ``external_task_id`` (yours, or a generated one).
        After an unclear failure (timeout, connection dropped after sending, 5xx,
        unparseable body) the task is looked up by that id before anything is sent
        again, so a task is never created twice; only a confirmed "not found" allows
        another POST. A refusal before anything was created (connection refused,
        1302, and 1303 unless ``retry.retry_concurrency_limited`` is off) is simply
        retried with backoff.

        Args:
            request: A request model.
            external_task_id: Your id for the task; wins over the request's own.
            limiter: A request-rate limiter to share with other calls.
            retry: Retry policy for this call (default: the session's).

        Returns:
            The task as created, with ``external_id`` set.

        Raises:
            ValidationError: The request breaks a documented limit (nothing sent).
            TypeError: ``request`` is not a task-creating request model.
            APIError: The gateway refused the request (typed by code).
            CreateOutcomeUnknownError: The create failed unclearly and the lookup
                could not tell whether the task exists.
        """
        endpoint = endpoint_for_request(request)
        if not endpoint.is_task:
            raise TypeError(f"{endpoint.name} creates no task; use identify_face()")
        eid = external_task_id or external_id_of(request) or new_external_task_id()
        payload = to_payload(with_external_id(request, eid))
        if self.config.validate:
            problems = validate_payload(endpoint, payload)
            if problems:
                raise ValidationError(problems, endpoint=endpoint.name)
        body = json.dumps(payload, separators=(",", ":")).encode()
        url = self._url(endpoint)
        policy = retry or self.config.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                envelope = await self._send_once(
                    "POST", url, endpoint.path, body, limiter, "create"
                )
            except ConnectError as exc:  # not sent: safe to repeat
                if attempt >= policy.max_attempts:
                    raise
                await self._pause_for(exc, attempt, policy, limiter)
                continue
            except RateLimitedError as exc:  # refused: nothing created
                if attempt >= policy.max_attempts:
                    raise
                await self._pause_for(exc, attempt, policy, limiter)
                continue
            except ConcurrencyLimitedError as exc:
                if not policy.retry_concurrency_limited or attempt >= policy.max_attempts:
                    raise
                await self._pause_for(exc, attempt, policy, limiter)
                continue
            except _UNCLEAR as exc:
                found = await self._reconcile(endpoint, eid, policy, limiter, exc)
                if found is not None:
                    return found
                if attempt >= policy.max_attempts:
                    raise
                await self._pause_for(exc, attempt, policy, limiter)
                continue
            task = self._task_from(endpoint, envelope)
            if task.external_id is None:
                task = _with_external_id(task, eid)
            return task

    async def _reconcile(
        self,
        endpoint: Endpoint,
        external_task_id: str,
        policy: RetryPolicy,
        limiter: RateLimiter | None,
        cause: BaseException,
    ) -> Task | None:
        """After an unclear create failure: find the task, or prove it is absent."""
        lookups = 1 + int(policy.reconcile_grace / policy.reconcile_interval)
        logger.warning(
            "create on %s failed unclearly (%s); looking the task up by its external id",
            endpoint.path,
            type(cause).__name__,
        )
        for i in range(lookups):
            try:
                task = await self.get(endpoint, external_task_id=external_task_id, limiter=limiter)
            except NotFoundError:
                if i + 1 < lookups:
                    await anyio.sleep(0.0 if is_testing() else policy.reconcile_interval)
                continue
            except KlingError as exc:
                raise CreateOutcomeUnknownError(
                    f"create on {endpoint.path} failed ({type(cause).__name__}) and the lookup "
                    f"by external_task_id also failed ({type(exc).__name__}); look it up later "
                    f"before creating again",
                    external_task_id=external_task_id,
                    endpoint=endpoint.name,
                ) from exc
            logger.info("found task %s by its external id; not creating it again", task.id)
            return task
        return None

    def _task_from(self, endpoint: Endpoint, envelope: Mapping[str, Any]) -> Task:
        data = envelope.get("data")
        if isinstance(data, list):
            data = data[0] if data else None
        if not isinstance(data, Mapping):
            raise ResponseDecodeError(
                "envelope has no task object", method="", path=endpoint.path, http_status=200
            )
        return parse_task(endpoint, data)

    async def get(
        self,
        endpoint: str | Endpoint,
        task_id: str | None = None,
        *,
        external_task_id: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> Task:
        """Query one task by its task id or its external task id.

        Args:
            endpoint: The family (name, alias, path or :class:`Endpoint`).
            task_id: The server's task id.
            external_task_id: Your external id (instead of ``task_id``).
            limiter: A request-rate limiter to share with other calls.

        Returns:
            The task's current state.

        Raises:
            ValueError: Neither or both ids were given.
            NotFoundError: No such task.
            APIError: Any other refusal (after retries of transient failures).
            TransportError: The network kept failing.
        """
        ep = endpoint_for(endpoint)
        if (task_id is None) == (external_task_id is None):
            raise ValueError("pass exactly one of task_id and external_task_id")
        if ep.is_turbo:
            tasks = await self.get_many(
                task_ids=[task_id] if task_id else (),
                external_task_ids=[external_task_id] if external_task_id else (),
                endpoint=ep,
                limiter=limiter,
            )
            if not tasks:
                raise NotFoundError(
                    "task not found", http_status=200, code=1203, path=TURBO_TASKS_PATH
                )
            return tasks[0]
        ident = task_id if task_id is not None else external_task_id or ""
        envelope = await self._read(self._url(ep, ident), f"{ep.path}/{{id}}", limiter, "query")
        task = self._task_from(ep, envelope)
        if task.external_id is None and external_task_id is not None:
            task = _with_external_id(task, external_task_id)
        return task

    async def get_many(
        self,
        *,
        task_ids: Sequence[str] = (),
        external_task_ids: Sequence[str] = (),
        endpoint: str | Endpoint = "turbo-text2video",
        limiter: RateLimiter | None = None,
    ) -> list[Task]:
        """Query many turbo tasks in one request (``GET tasks``).

        Args:
            task_ids: Server task ids.
            external_task_ids: External ids.
            endpoint: Turbo family to label the tasks with.
            limiter: A request-rate limiter to share with other calls.

        Returns:
            The tasks the server knows; unknown ids are simply absent.

        Raises:
            ValueError: No id given, or ``endpoint`` is not a turbo family.
            APIError: The gateway refused the request.
            TransportError: The network kept failing.
        """
        ep = endpoint_for(endpoint)
        if not ep.is_turbo:
            raise ValueError(f"{ep.name} is not a turbo endpoint; use get()")
        if not task_ids and not external_task_ids:
            raise ValueError("pass at least one task id or external task id")
        query = urlencode(
            {"task_ids": ",".join(task_ids), "external_task_ids": ",".join(external_task_ids)}
        )
        url = f"{self._roots[Host.TURBO]}{TURBO_TASKS_PATH}?{query}"
        envelope = await self._read(url, TURBO_TASKS_PATH, limiter, "batch_query")
        data = envelope.get("data")
        items = data if isinstance(data, list) else [data] if isinstance(data, Mapping) else []
        return [parse_task(ep, item) for item in items if isinstance(item, Mapping)]

    async def refresh(self, task: Task, *, limiter: RateLimiter | None = None) -> Task:
        """Query a task again.

        Args:
            task: A task from an earlier call.
            limiter: A request-rate limiter to share with other calls.

        Returns:
            Its current state.

        Raises:
            NotFoundError: The server no longer knows it.
            APIError: Any other refusal.
        """
        if task.id:
            fresh = await self.get(task.endpoint, task.id, limiter=limiter)
        else:
            fresh = await self.get(
                task.endpoint, external_task_id=task.external_id, limiter=limiter
            )
        if fresh.external_id is None and task.external_id is not None:
            fresh = _with_external_id(fresh, task.external_id)
        return fresh

    async def wait(
        self,
        task: Task,
        *,
        poll: PollPolicy | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (documented overall deadline)
        raise_on_failure: bool = True,
        limiter: RateLimiter | None = None,
    ) -> Task:
        """Poll a task until it ends.

        The first poll comes after ``poll.initial_delay`` (generation takes minutes),
        then intervals grow geometrically with jitter up to ``poll.max_interval``.
        Cancelling the caller (anyio or asyncio) stops polling at once.

        Args:
            task: The task to wait for.
            poll: Polling policy (default: the session's).
            timeout: Overall deadline in seconds (default: ``poll.timeout``).
            raise_on_failure: Raise :class:`TaskFailedError` when the task fails;
                otherwise return the failed task.
            limiter: A request-rate limiter to share with other calls.

        Returns:
            The terminal task.

        Raises:
            TaskFailedError: The task failed and ``raise_on_failure`` is set.
            WaitTimeoutError: The deadline passed first (the task keeps running).
            APIError: A query was refused (after retries).
        """
        policy = poll or self.config.poll
        deadline = timeout if timeout is not None else policy.timeout
        delays = poll_delays(policy)
        with anyio.move_on_after(deadline):
            while not task.is_terminal:
                await anyio.sleep(next(delays))
                task = await self.refresh(task, limiter=limiter)
        if not task.is_terminal:
            raise WaitTimeoutError(task, deadline)
        if task.failed and raise_on_failure:
            raise TaskFailedError(task)
        return task

    async def identify_face(self, request: IdentifyFaceRequest) -> FaceSession:
        """Find the faces of a video that lip-sync can animate (answered at once).

        Identify-face creates nothing billable, so it is retried like a read.

        Args:
            request: ``video_id`` or ``video_url``.

        Returns:
            The session id and faces.

        Raises:
            ValidationError: Neither or both of ``video_id`` and ``video_url``.
            APIError: The gateway refused the request.
        """
        endpoint = endpoint_for_request(request)
        payload = to_payload(request)
        if self.config.validate:
            problems = validate_payload(endpoint, payload)
            if problems:
                raise ValidationError(problems, endpoint=endpoint.name)
        body = json.dumps(payload, separators=(",", ":")).encode()
        policy = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                envelope = await self._send_once(
                    "POST", self._url(endpoint), endpoint.path, body, None, "create"
                )
                break
            except (TransportError, RateLimitedError, ServerError) as exc:
                if attempt >= policy.max_attempts:
                    raise
                await self._pause_for(exc, attempt, policy, None)
        data = envelope.get("data")
        if not isinstance(data, Mapping):
            raise ResponseDecodeError("identify-face answer has no data", path=endpoint.path)
        return parse_face_session(data)

    async def download_url(
        self,
        url: str,
        path: str | Path,
        *,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
    ) -> DownloadedFile:
        """Save one result URL to ``path`` (temporary file, checks, atomic rename).

        Args:
            url: The result URL.
            path: Destination file.
            expected_size: Bytes the file must have.
            expected_sha256: Hex digest it must have (also lets an existing
                identical file be kept without a request).

        Returns:
            What was saved.

        Raises:
            URLExpiredError: The URL answered 403/404/410 (query the task again for
                fresh URLs).
            DownloadError: Other HTTP errors, short bodies, integrity mismatches.
            TransportError: The connection failed.
        """
        self.request_counts["download"] += 1
        return await download_url(
            self._transport,
            url,
            path,
            timeout=self.config.timeouts.download,
            expected_size=expected_size,
            expected_sha256=expected_sha256,
        )

    async def download(self, task: Task, directory: str | Path) -> list[DownloadedFile]:
        """Save every output of a task into ``directory``, one file per output.

        File names are stable (``{task_id}_{kind}_{index}.{ext}``), so running it
        again skips files already complete.

        Args:
            task: A succeeded task.
            directory: Where to put the files (created if missing).

        Returns:
            One entry per output, in :attr:`Task.files` order.

        Raises:
            URLExpiredError: A URL has expired.
            DownloadError: A download failed or was incomplete.
        """
        folder = Path(directory)
        return [await self.download_url(f.url, folder / f.name) for f in task.files]

    def batch(self, **options: Any) -> Batch:
        """Open a batch: fan many generations out under the account's limits.

        Args:
            **options: See :class:`kling_async.Batch`.

        Returns:
            The batch, to use as ``async with session.batch(...) as batch``.
        """
        from .batch import Batch

        return Batch(self, **options)


def _with_external_id(task: Task, external_task_id: str) -> Task:
    return attrs.evolve(task, external_id=external_task_id)
