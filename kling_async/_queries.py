"""The session's read methods: queries, batch queries, list queries, polling, identify-face.

:class:`QueryMethods` is the half of :class:`~kling_async.KlingSession` that creates
nothing and pays nothing; the session inherits it. Each method checks that the
session is open and hands over to the :class:`~kling_async._reads.Reader`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._backends import Backend
from ._config import ClientConfig, PollPolicy
from ._endpoints import Endpoint, endpoint_for
from ._models import IdentifyFaceRequest
from ._ratelimit import RateLimiter
from ._reads import Reader, identify_face
from ._send import Sender
from ._task import FaceSession, Task
from ._transport import Transport

__all__ = ["QueryMethods"]


class QueryMethods:
    """Reading tasks and the session's state; mixed into :class:`~kling_async.KlingSession`."""

    config: ClientConfig
    _sender: Sender
    _reader: Reader

    @property
    def backend(self) -> Backend:
        """The API this session speaks: its routes, ids per query, list query."""
        return self._reader.backend

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
        """Whether ``aclose`` was called (any later use raises ``SessionClosedError``)."""
        return self._sender.closed

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
        it never saw (another process created it) it asks each family in table order,
        at most one query each, and returns the first that knows it.

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
        self._sender.check_open()
        reader = self._reader
        if isinstance(endpoint, Task):
            if task_id is not None or external_task_id is not None:
                raise ValueError("get(task) takes no other id")
            return await reader.refresh(endpoint, limiter)
        if isinstance(endpoint, str) and task_id is None and external_task_id is None:
            endpoint, task_id = None, endpoint  # a bare task id
        if (task_id is None) == (external_task_id is None):
            raise ValueError("pass exactly one of task_id and external_task_id")
        if endpoint is None:
            return await reader.find(task_id, external_task_id, limiter)
        return await reader.get_on(endpoint_for(endpoint), task_id, external_task_id, limiter)

    async def get_many(
        self,
        *,
        task_ids: Sequence[str] = (),
        external_task_ids: Sequence[str] = (),
        endpoint: str | Endpoint = "turbo-text2video",
        limiter: RateLimiter | None = None,
        skip_unreadable: bool = False,
    ) -> list[Task]:
        """Query many turbo tasks at once (``GET tasks``).

        The backend's cap on ids per request (100 on the gateway, 20 on Kling's
        own API) is applied here, and on Kling's own API task ids and external
        ids go in separate requests: a long list costs several requests.

        Args:
            task_ids: Server task ids.
            external_task_ids: External ids.
            endpoint: Turbo family to label the tasks with.
            limiter: A request-rate limiter to share with other calls.
            skip_unreadable: Leave out a task object of the wrong shape (logged
                once a session) instead of failing the whole answer; its task is
                then absent, as an unknown id is.

        Returns:
            The tasks the server knows, each once; unknown ids are simply absent.

        Raises:
            ValueError: No id given, or ``endpoint`` is not a turbo family.
            ConfigurationError: On Kling's own API with a key pair alone (the
                query takes an API key only).
            APIError: The server refused the request.
            TransportError: The network kept failing, or the answer was hostile.
        """
        self._sender.check_open()
        ep = endpoint_for(endpoint)
        if not ep.is_turbo:
            raise ValueError(f"{ep.name} is not a turbo endpoint; use get()")
        if not task_ids and not external_task_ids:
            raise ValueError("pass at least one task id or external task id")
        return await self._reader.get_many(
            ep,
            task_ids=task_ids,
            external_task_ids=external_task_ids,
            limiter=limiter,
            skip_unreadable=skip_unreadable,
        )

    async def list_tasks(
        self,
        endpoint: str | Endpoint,
        *,
        page: int = 1,
        page_size: int = 500,
        limiter: RateLimiter | None = None,
        skip_unreadable: bool = False,
    ) -> list[Task]:
        """List a family's recent tasks of the account, newest first (Kling's own API).

        One request reports up to ``page_size`` tasks (``GET /v1/<path>?pageNum=
        &pageSize=``): the cheapest way to watch many classic tasks. The list
        holds every task of the account in that family, other programs' too,
        and a task may appear only after a short lag.

        Args:
            endpoint: A classic family (name, alias, path or :class:`Endpoint`).
            page: Page number, 1 to 1000.
            page_size: Tasks per page, 1 to 500.
            limiter: A request-rate limiter to share with other calls.
            skip_unreadable: Leave out a task object of the wrong shape (logged
                once a session) instead of failing the whole page: the list
                holds tasks other programs made too.

        Returns:
            The tasks of that page (an empty list past the last one).

        Raises:
            ConfigurationError: The session's backend has no list query (the
                gateway).
            ValueError: The family has no list query (turbo families,
                identify-face), or ``page``/``page_size`` is out of range.
            APIError: The server refused the request.
            TransportError: The network kept failing, or the answer was hostile.
        """
        self._sender.check_open()
        return await self._reader.list_tasks(
            endpoint_for(endpoint),
            page=page,
            page_size=page_size,
            limiter=limiter,
            skip_unreadable=skip_unreadable,
        )

    async def refresh(self, task: Task, *, limiter: RateLimiter | None = None) -> Task:
        """Query a task again (``get(task)``).

        Args:
            task: A task from an earlier call.
            limiter: A request-rate limiter to share with other calls.

        Returns:
            Its current state.

        Raises:
            NotFoundError: The server no longer knows it.
            APIError: Any other refusal.
        """
        self._sender.check_open()
        return await self._reader.refresh(task, limiter)

    async def wait(
        self,
        task: Task,
        *,
        poll: PollPolicy | None = None,
        timeout: float | None = None,
        raise_on_failure: bool = True,
        limiter: RateLimiter | None = None,
    ) -> Task:
        """Poll a task until it ends: a late first poll, then growing jittered intervals.

        No retry pause outlives the deadline; cancelling the caller stops at once.

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
        return await self._reader.wait(
            task,
            policy,
            budget=timeout if timeout is not None else policy.timeout,
            raise_on_failure=raise_on_failure,
            limiter=limiter,
        )

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
        return await identify_face(self._reader, request, validate=self.config.validate)
