"""The session's read methods: queries, batch queries, polling, identify-face.

:class:`QueryMethods` is the half of :class:`~kling_async.KlingSession` that creates
nothing and pays nothing; the session inherits it. Each method checks that the
session is open and hands over to the :class:`~kling_async._reads.Reader`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._config import ClientConfig, PollPolicy
from ._endpoints import Endpoint, endpoint_for
from ._models import IdentifyFaceRequest
from ._ratelimit import RateLimiter
from ._reads import Reader
from ._send import Sender
from ._task import FaceSession, Task

__all__ = ["QueryMethods"]


class QueryMethods:
    """Reading tasks; mixed into :class:`~kling_async.KlingSession`."""

    config: ClientConfig
    _sender: Sender
    _reader: Reader

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
        return await self._reader.get(endpoint, task_id, external_task_id, limiter)

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
        self._sender.check_open()
        ep = endpoint_for(endpoint)
        if not ep.is_turbo:
            raise ValueError(f"{ep.name} is not a turbo endpoint; use get()")
        if not task_ids and not external_task_ids:
            raise ValueError("pass at least one task id or external task id")
        return await self._reader.get_many(
            ep, task_ids=task_ids, external_task_ids=external_task_ids, limiter=limiter
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
        return await self._reader.identify_face(request, validate=self.config.validate)
