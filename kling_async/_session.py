"""The async session: one connection pool, every endpoint family, typed and safely retried.

The session is thin: it wires the pieces and holds what is shared by every call.

* the send chain (:mod:`kling_async._send`): rate limit → authorize → the transport
  seam → decode, caps and error mapping → log, with read retries;
* the create path (:mod:`kling_async._create`): validate, send, reconcile unclear
  outcomes by external id, never pay twice;
* one slot pool (:mod:`kling_async._slots`) shared by every paid call;
* the families (:mod:`kling_async._families`), built from the endpoint table;
* handles (:mod:`kling_async._handles`): ids before waiting.
"""

from __future__ import annotations

import inspect
import ipaddress
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import anyio
import attrs

from ._backoff import poll_delays
from ._classify import Verdict, classify
from ._config import ClientConfig, PollPolicy, RetryPolicy
from ._converter import parse_face_session, parse_task, to_payload
from ._create import Prepared, create_task, new_external_task_id, prepare
from ._download import DownloadedFile, download_url
from ._endpoints import (
    ENDPOINTS,
    TURBO_TASKS_PATH,
    Endpoint,
    Host,
    endpoint_for,
    endpoint_for_request,
)
from ._envelope import Answer
from ._errors import (
    CreateOutcomeUnknownError,
    KlingError,
    NotFoundError,
    ResponseDecodeError,
    SessionClosedError,
    SlotTimeoutError,
    TaskFailedError,
    ValidationError,
    WaitTimeoutError,
)
from ._families import Family, OnCreated, TypedFamilies
from ._handles import TaskHandle
from ._models import IdentifyFaceRequest, Request
from ._ratelimit import RateLimiter
from ._redact import Redactor
from ._send import Call, Sender
from ._slots import SlotLease, SlotPool
from ._task import FaceSession, Task
from ._transport import AiohttpTransport, Transport
from ._validation import validate_payload

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._callbacks import CallbackReceiver
    from ._schedule import ScheduleTuning
    from .batch import Batch, Event

__all__ = ["Family", "KlingSession", "new_external_task_id"]

logger = logging.getLogger("kling_async")

#: How many task ids the session remembers the family of (for ``get(task_id)``).
_KNOWN_IDS = 10_000


class KlingSession(TypedFamilies):
    """An async session for the Kling API: every endpoint, typed, validated, safely retried.

    Use it as an async context manager and share one session across a whole
    application: it holds one connection pool and one pool of concurrency slots
    (``config.max_running``) that every ``create``/``run``/``submit`` shares.

    Args:
        api_key: Access key (or use ``config`` / :meth:`from_env`).
        endpoint_path: Your per-customer endpoint path segment.
        base_url: Classic host (default: the public gateway).
        turbo_base_url: Turbo host (default: the public turbo gateway).
        config: A complete configuration (instead of the four arguments above).
        http_session: An :class:`aiohttp.ClientSession` to borrow (not closed by us).
        transport: A custom transport (tests: :class:`kling_async.testing.MockTransport`).

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
        segment = config.endpoint_path.strip("/")
        redactor = Redactor([config.api_key, segment, quote(segment, safe="")])
        self._sender = Sender(
            transport or AiohttpTransport(http_session, connect_timeout=config.timeouts.connect),
            config,
            redactor,
        )
        #: The concurrency slots shared by every paid call of this session.
        self.slots = SlotPool(config.max_running, ttl=config.slot_ttl)
        prefix = f"/v1/ai/{quote(segment, safe='')}/kling/"
        self._roots = {
            Host.CLASSIC: config.base_url + prefix,
            Host.TURBO: config.turbo_base_url + prefix,
        }
        #: One family per task-creating row of the endpoint table, by endpoint name.
        self.families: Mapping[str, Family[Any]] = {
            ep.name: Family(self, ep) for ep in ENDPOINTS if ep.is_task
        }
        self._known: dict[str, str] = {}

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
            f"turbo_base_url={self.config.turbo_base_url!r}, closed={self.closed})"
        )

    @property
    def request_counts(self) -> dict[str, int]:
        """Requests sent by this session (every attempt), by kind."""
        return self._sender.request_counts

    @property
    def transport(self) -> Transport:
        """The transport every request goes through."""
        return self._sender.transport

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called (the session can no longer be used)."""
        return self._sender.closed

    async def __aenter__(self) -> KlingSession:
        self._sender.check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this session owns (a borrowed aiohttp session stays open).

        Any later use raises :class:`SessionClosedError`; closing twice is harmless.
        """
        self._sender.closed = True
        await self._sender.transport.aclose()

    # --- helpers ------------------------------------------------------------------

    def _url(self, endpoint: Endpoint, *parts: str) -> str:
        tail = "/".join(quote(p, safe="") for p in parts)
        return self._roots[endpoint.host] + endpoint.path + (f"/{tail}" if tail else "")

    def _remember(self, task: Task) -> None:
        for key in (task.id, task.external_id):
            if key:
                self._known.pop(key, None)
                self._known[key] = task.endpoint
        while len(self._known) > _KNOWN_IDS:
            del self._known[next(iter(self._known))]

    def _parse(self, endpoint: Endpoint, data: Any, request_id: str | None) -> Task:
        """A task object from an answer; any shape the converter cannot read is typed."""
        failure: ResponseDecodeError | None = None
        if not isinstance(data, Mapping):
            failure = ResponseDecodeError(
                f"answer has no task object (data is a {type(data).__name__})",
                path=endpoint.path,
                http_status=200,
            )
        else:
            try:
                task = parse_task(endpoint, data)
            except Exception as exc:  # the converter met types the seeds do not document
                failure = ResponseDecodeError(
                    f"task object has the wrong shape ({type(exc).__name__})",
                    path=endpoint.path,
                    http_status=200,
                )
            else:
                if not task.id:
                    failure = ResponseDecodeError(
                        "task object has no task id", path=endpoint.path, http_status=200
                    )
        if failure is not None:
            raise failure
        if (
            request_id
            and "request_id" in attrs.fields_dict(Task)
            and getattr(task, "request_id", None) is None
        ):
            changes: dict[str, Any] = {"request_id": request_id}  # when Task carries it
            task = attrs.evolve(task, **changes)
        self.slots.observe(task)
        self._remember(task)
        return task

    def _task_from(self, endpoint: Endpoint, answer: Answer, external_task_id: str | None) -> Task:
        data = answer.data
        if isinstance(data, list):
            data = data[0] if data else None
        task = self._parse(endpoint, data, answer.request_id)
        if task.external_id is None and external_task_id is not None:
            task = attrs.evolve(task, external_id=external_task_id)
            self._remember(task)
        return task

    # --- creating -----------------------------------------------------------------

    async def create(
        self,
        request: Request,
        *,
        external_task_id: str | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (bounds the waits of the call)
        hold_slot: bool = True,
    ) -> Task:
        """Create a task on the endpoint matching the request's type.

        Every create carries an ``external_task_id`` (yours, or a generated one),
        except on endpoints whose API documents none. After an unclear failure
        (timeout, dropped connection, 5xx, hostile answer) the task is looked up by
        that id before anything is sent again, and a later 1201 for it means "it
        exists": it is looked up patiently and adopted. A task is never created
        twice; where no id can be looked up, the outcome is reported
        (:class:`CreateOutcomeUnknownError`), never re-sent blindly.

        The call first takes a concurrency slot from :attr:`slots` (waiting while
        the pool is full), and a 1303 refusal waits for a slot and tries again. The
        task keeps its slot until it is observed ending (``wait``/``get``/``refresh``
        on this session) or for ``config.slot_ttl`` seconds.

        Args:
            request: A request model.
            external_task_id: Your id for the task; wins over the request's own.
            limiter: A request-rate limiter to share with other calls.
            retry: Retry policy for this call (default: the session's).
            timeout: Seconds the call may wait in all (slot, pauses, lookups);
                default ``config.poll.timeout``.
            hold_slot: Take a slot from :attr:`slots` (a batch that admits on its
                own passes ``False``).

        Returns:
            The task as created, with ``external_id`` set.

        Raises:
            ValidationError: The request breaks a documented limit (nothing sent).
            TypeError: ``request`` is not a task-creating request model.
            SlotTimeoutError: No slot freed before ``timeout`` (nothing created).
            APIError: The gateway refused the request (typed by code; a wrong key
                or route says which setting to check).
            CreateOutcomeUnknownError: The create failed unclearly and the task
                could not be found in time.
            SessionClosedError: The session was closed.
        """
        self._sender.check_open()
        prepared = prepare(
            request, external_task_id=external_task_id, validate=self.config.validate
        )
        deadline = time.monotonic() + (timeout if timeout is not None else self.config.poll.timeout)
        return await self._create_prepared(
            prepared, limiter=limiter, retry=retry, deadline=deadline, hold_slot=hold_slot
        )

    async def _take_slot(self, prepared: Prepared, deadline: float) -> SlotLease:
        remaining = deadline - time.monotonic()
        with anyio.move_on_after(max(0.0, remaining)):
            return await self.slots.acquire(prepared.slots)
        raise SlotTimeoutError(
            f"no concurrency slot freed for {prepared.endpoint.name} in {max(0.0, remaining):g} s "
            f"(max_running={self.slots.limit}); nothing was created",
            timeout=max(0.0, remaining),
            endpoint=prepared.endpoint.name,
        )

    async def _create_prepared(
        self,
        prepared: Prepared,
        *,
        deadline: float,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        hold_slot: bool = True,
        handle: TaskHandle | None = None,
    ) -> Task:
        lease = await self._take_slot(prepared, deadline) if hold_slot else None
        sent = [handle is not None and handle.create_sent]

        def on_send() -> None:
            sent[0] = True
            if handle is not None:
                handle.create_sent = True

        try:
            task = await create_task(
                self._sender,
                prepared,
                url=self._url(prepared.endpoint),
                parse=lambda answer, eid: self._task_from(prepared.endpoint, answer, eid),
                lookup=lambda eid: self._get_on(prepared.endpoint, None, eid, limiter),
                slots=self.slots,
                policy=retry or self.config.retry,
                limiter=limiter,
                deadline=deadline,
                sent_before=sent[0],
                on_send=on_send,
            )
        except BaseException as exc:
            if lease is not None:
                # A typed refusal means nothing was created; an unknown outcome or a
                # cancellation after sending may have left a task holding the slot.
                if sent[0] and not (
                    isinstance(exc, KlingError) and not isinstance(exc, CreateOutcomeUnknownError)
                ):
                    self.slots.bind(lease, task_id=None, external_task_id=prepared.external_task_id)
                else:
                    self.slots.release(lease)
            raise
        if lease is not None:
            self.slots.bind(lease, task_id=task.id, external_task_id=task.external_id)
            if task.is_terminal:
                self.slots.release(lease)
        return task

    def submit(
        self,
        request: Request,
        *,
        external_task_id: str | None = None,
        poll: PollPolicy | None = None,
        timeout: float | None = None,
        raise_on_failure: bool = True,
        on_created: OnCreated | None = None,
    ) -> TaskHandle:
        """Validate a request and choose its external id now; await the handle to run it.

        Nothing is sent until the handle is awaited; ``handle.external_task_id`` is
        known at once, so the task can be found later (``get(external_task_id=...)``)
        even if the awaiting code is cancelled or its process dies.

        Args:
            request: A task-creating request model.
            external_task_id: Your id for the task (one is generated when omitted).
            poll: Polling policy (default: the session's).
            timeout: Overall deadline of the run, seconds (slot, create and wait;
                default ``poll.timeout``).
            raise_on_failure: Raise :class:`TaskFailedError` when the task fails.
            on_created: Called with the task once it exists, before waiting (a
                coroutine function is awaited).

        Returns:
            The handle (awaitable to the terminal task).

        Raises:
            ValidationError: The request breaks a documented limit (nothing sent).
            TypeError: ``request`` is not a task-creating request model.
            SessionClosedError: The session was closed.
        """
        self._sender.check_open()
        prepared = prepare(
            request, external_task_id=external_task_id, validate=self.config.validate
        )

        async def drive(handle: TaskHandle) -> Task:
            return await self._drive(
                handle,
                poll=poll or self.config.poll,
                budget=timeout,
                raise_on_failure=raise_on_failure,
                on_created=on_created,
            )

        return TaskHandle(prepared, drive)

    async def run(
        self,
        request: Request,
        *,
        external_task_id: str | None = None,
        poll: PollPolicy | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (documented overall deadline)
        raise_on_failure: bool = True,
        on_created: OnCreated | None = None,
    ) -> Task:
        """Create a task and wait until it ends: ``await self.submit(...)``.

        Args:
            request: A task-creating request model.
            external_task_id: Your id for the task.
            poll: Polling policy (default: the session's).
            timeout: Overall deadline, seconds (slot, create and wait).
            raise_on_failure: Raise :class:`TaskFailedError` when the task fails.
            on_created: Called with the task once it exists, before waiting.

        Returns:
            The terminal task.

        Raises:
            ValidationError: The request breaks a documented limit.
            SlotTimeoutError: No slot freed before the deadline (nothing created).
            TaskFailedError: The task failed (and ``raise_on_failure``).
            WaitTimeoutError: The deadline passed while the task ran.
            APIError: The gateway refused a request.
        """
        return await self.submit(
            request,
            external_task_id=external_task_id,
            poll=poll,
            timeout=timeout,
            raise_on_failure=raise_on_failure,
            on_created=on_created,
        )

    async def _drive(
        self,
        handle: TaskHandle,
        *,
        poll: PollPolicy,
        budget: float | None,
        raise_on_failure: bool,
        on_created: OnCreated | None,
    ) -> Task:
        deadline = time.monotonic() + (budget if budget is not None else poll.timeout)
        task = handle.task
        if task is None:
            task = await self._create_prepared(handle.prepared, deadline=deadline, handle=handle)
            handle.set_task(task)
            if on_created is not None:
                outcome = on_created(task)
                if inspect.isawaitable(outcome):
                    await outcome
        try:
            task = await self.wait(
                task,
                poll=poll,
                timeout=max(0.0, deadline - time.monotonic()),
                raise_on_failure=raise_on_failure,
            )
        except (TaskFailedError, WaitTimeoutError) as exc:
            handle.set_task(exc.task)
            raise
        handle.set_task(task)
        return task

    # --- reading ------------------------------------------------------------------

    async def get(
        self,
        endpoint: str | Endpoint | Task | None = None,
        task_id: str | None = None,
        *,
        external_task_id: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> Task:
        """Query one task: ``get(task)``, ``get(task_id)``, ``get(external_task_id=...)``,
        or with its family, ``get("text2video", task_id)``.

        Without a family the session uses the one it last saw the id with; for an id
        it never saw (another process created it) it asks each family in table order
        (one query per family at most) and returns the first that knows it.

        Args:
            endpoint: The family (name, alias, path or :class:`Endpoint`) followed by
                an id; or a :class:`Task` (queried again); or a bare task id.
            task_id: The server's task id (after a family).
            external_task_id: Your external id (instead of a task id).
            limiter: A request-rate limiter to share with other calls.

        Returns:
            The task's current state.

        Raises:
            ValueError: Neither or both kinds of id were given.
            NotFoundError: No such task.
            APIError: Any other refusal (after retries of transient failures).
            TransportError: The network kept failing.
        """
        if isinstance(endpoint, Task):
            if task_id is not None or external_task_id is not None:
                raise ValueError("get(task) takes no other id")
            return await self.refresh(endpoint, limiter=limiter)
        if isinstance(endpoint, str) and task_id is None and external_task_id is None:
            endpoint, task_id = None, endpoint  # a bare task id
        if (task_id is None) == (external_task_id is None):
            raise ValueError("pass exactly one of task_id and external_task_id")
        if endpoint is not None:
            return await self._get_on(endpoint_for(endpoint), task_id, external_task_id, limiter)
        return await self._find(task_id, external_task_id, limiter)

    async def _find(
        self, task_id: str | None, external_task_id: str | None, limiter: RateLimiter | None
    ) -> Task:
        ident = task_id or external_task_id or ""
        known = self._known.get(ident)
        order = [endpoint_for(known)] if known else []
        turbo_seen = any(ep.is_turbo for ep in order)
        for ep in ENDPOINTS:
            if ep.is_task and ep not in order and not (ep.is_turbo and turbo_seen):
                order.append(ep)
                turbo_seen = turbo_seen or ep.is_turbo  # one batch query covers both
        for ep in order:
            error: KlingError | None = None
            try:
                return await self._get_on(ep, task_id, external_task_id, limiter)
            except NotFoundError as exc:
                error = exc
            if classify(error, phase="read") is not Verdict.NOT_FOUND:
                raise error
        raise NotFoundError(f"no family knows task {ident!r}", http_status=404, code=1203, path="")

    async def _get_on(
        self,
        ep: Endpoint,
        task_id: str | None,
        external_task_id: str | None,
        limiter: RateLimiter | None,
    ) -> Task:
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
            task = tasks[0]
        else:
            ident = task_id if task_id is not None else external_task_id or ""
            call = Call(
                method="GET",
                url=self._url(ep, ident),
                label=f"{ep.path}/{{id}}",
                kind="query",
                phase="read",
            )
            answer = await self._sender.read(call, limiter=limiter)
            task = self._task_from(ep, answer, None)
        if task.external_id is None and external_task_id is not None:
            task = attrs.evolve(task, external_id=external_task_id)
            self._remember(task)
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
            TransportError: The network kept failing, or the answer was hostile.
        """
        ep = endpoint_for(endpoint)
        if not ep.is_turbo:
            raise ValueError(f"{ep.name} is not a turbo endpoint; use get()")
        if not task_ids and not external_task_ids:
            raise ValueError("pass at least one task id or external task id")
        query = urlencode(
            {"task_ids": ",".join(task_ids), "external_task_ids": ",".join(external_task_ids)}
        )
        call = Call(
            method="GET",
            url=f"{self._roots[Host.TURBO]}{TURBO_TASKS_PATH}?{query}",
            label=TURBO_TASKS_PATH,
            kind="batch_query",
            phase="read",
        )
        answer = await self._sender.read(call, limiter=limiter)
        data = answer.data
        items = data if isinstance(data, list) else [data] if isinstance(data, Mapping) else []
        return [self._parse(ep, item, answer.request_id) for item in items]

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
        ep = endpoint_for(task.endpoint)
        if task.id:
            fresh = await self._get_on(ep, task.id, None, limiter)
        else:
            fresh = await self._get_on(ep, None, task.external_id, limiter)
        if fresh.external_id is None and task.external_id is not None:
            fresh = attrs.evolve(fresh, external_id=task.external_id)
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
        No retry pause outlives the deadline; cancelling the caller (anyio or
        asyncio) stops polling at once.

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
        self._sender.check_open()
        policy = poll or self.config.poll
        deadline = timeout if timeout is not None else policy.timeout
        delays = poll_delays(policy)
        with anyio.move_on_after(deadline):
            while not task.is_terminal:
                await anyio.sleep(next(delays))
                task = await self.refresh(task, limiter=limiter)
        self.slots.observe(task)
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
        self._sender.check_open()
        endpoint = endpoint_for_request(request)
        payload = to_payload(request)
        if self.config.validate:
            problems = validate_payload(endpoint, payload)
            if problems:
                raise ValidationError(problems, endpoint=endpoint.name)
        call = Call(
            method="POST",
            url=self._url(endpoint),
            label=endpoint.path,
            body=_json_bytes(payload),
            kind="create",
            phase="read",
        )
        answer = await self._sender.read(call)
        failure: ResponseDecodeError | None = None
        if isinstance(answer.data, Mapping):
            try:
                return parse_face_session(answer.data)
            except Exception as exc:  # wrong types inside the answer
                failure = ResponseDecodeError(
                    f"identify-face answer has the wrong shape ({type(exc).__name__})",
                    path=endpoint.path,
                )
        raise failure or ResponseDecodeError("identify-face answer has no data", path=endpoint.path)

    # --- downloading --------------------------------------------------------------

    def _base_is_private(self) -> bool:
        """Whether the configured gateway itself is on loopback or a private network."""
        for base in (self.config.base_url, self.config.turbo_base_url):
            host = urlsplit(base).hostname or ""
            if host == "localhost":
                return True
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                continue
            if address.is_loopback or address.is_private or address.is_link_local:
                return True
        return False

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
            SessionClosedError: The session was closed.
        """
        if self.closed:
            raise SessionClosedError("the session is closed; open a new KlingSession")
        self.request_counts["download"] += 1
        options: dict[str, Any] = {}
        if "allow_private" in inspect.signature(download_url).parameters:
            options["allow_private"] = self._base_is_private()
        return await download_url(
            self._sender.transport,
            url,
            path,
            timeout=self.config.timeouts.download,
            expected_size=expected_size,
            expected_sha256=expected_sha256,
            **options,
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

    def batch(
        self,
        *,
        max_running: int = 10,
        max_requests_per_second: float | None = None,
        journal: str | Path | None = None,
        batch_id: str | None = None,
        download_dir: str | Path | None = None,
        max_download_concurrency: int = 4,
        max_units: float | None = None,
        callbacks: CallbackReceiver | None = None,
        fail_fast: bool = False,
        on_event: Callable[[Event], object] | None = None,
        poll: PollPolicy | None = None,
        reconcile_interval: float | None = None,
        schedule: ScheduleTuning | None = None,
        probe_slots: bool = False,
        max_ids_per_query: int = 100,
        seed: int | None = None,
        lookup_patience: float | None = None,
        reconcile_deadline: float = 600.0,
        max_refusals_per_second: float = 5.0,
    ) -> Batch:
        """Open a batch: fan many generations out under the account's limits.

        Every argument is the :class:`kling_async.BatchOptions` field of the same
        name (documented there), with the same default.

        Returns:
            The batch, to use as ``async with session.batch(...) as batch``.

        Raises:
            ValueError: An option is out of range.
        """
        from .batch import Batch, BatchOptions

        options = BatchOptions(
            max_running=max_running,
            max_requests_per_second=max_requests_per_second,
            journal=journal,
            batch_id=batch_id,
            download_dir=download_dir,
            max_download_concurrency=max_download_concurrency,
            max_units=max_units,
            callbacks=callbacks,
            fail_fast=fail_fast,
            on_event=on_event,
            poll=poll,
            reconcile_interval=reconcile_interval,
            schedule=schedule,
            probe_slots=probe_slots,
            max_ids_per_query=max_ids_per_query,
            seed=seed,
            lookup_patience=lookup_patience,
            reconcile_deadline=reconcile_deadline,
            max_refusals_per_second=max_refusals_per_second,
        )
        return Batch(self, options)


def _json_bytes(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
