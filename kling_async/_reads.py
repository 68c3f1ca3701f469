"""Reading tasks: URLs, queries by id or external id, batch queries, polling.

Every task object that arrives goes through :meth:`Reader.parse`: a shape the
converter cannot read becomes a :class:`ResponseDecodeError` on that one request;
the envelope's ``request_id`` is kept; the slot pool sees terminal tasks (and gives
their slots back); and the task's family is remembered, so ``get(task_id)`` needs
no family for ids this session has seen.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import anyio
import attrs

from ._backoff import poll_delays
from ._classify import Verdict, classify
from ._config import PollPolicy
from ._converter import parse_face_session, parse_task, to_payload
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
    NotFoundError,
    ResponseDecodeError,
    TaskFailedError,
    ValidationError,
    WaitTimeoutError,
)
from ._models import IdentifyFaceRequest
from ._ratelimit import RateLimiter
from ._send import Call, Sender
from ._slots import SlotPool
from ._task import FaceSession, Task
from ._validation import validate_payload

__all__ = ["Reader"]

#: How many ids the reader remembers the family of.
_KNOWN_IDS = 10_000


class Reader:
    """Queries tasks for a session.

    Args:
        sender: The send chain.
        roots: Base of every URL per host (``…/v1/ai/{endpoint_path}/kling/``).
        slots: The session's slot pool.
    """

    def __init__(self, sender: Sender, roots: Mapping[Host, str], slots: SlotPool) -> None:
        self.sender = sender
        self.roots = dict(roots)
        self.slots = slots
        self._known: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Reader({len(self._known)} known ids)"

    def url(self, endpoint: Endpoint, *parts: str) -> str:
        """The URL of an endpoint, with escaped path parts appended.

        Args:
            endpoint: The endpoint.
            *parts: Path segments after its path (an id).

        Returns:
            The absolute URL (holds the endpoint path: never log it).
        """
        tail = "/".join(quote(p, safe="") for p in parts)
        return self.roots[endpoint.host] + endpoint.path + (f"/{tail}" if tail else "")

    def remember(self, task: Task) -> None:
        """Note a task's family under its ids (bounded, oldest forgotten first).

        Args:
            task: A task just seen.
        """
        for key in (task.id, task.external_id):
            if key:
                self._known.pop(key, None)
                self._known[key] = task.endpoint
        while len(self._known) > _KNOWN_IDS:
            del self._known[next(iter(self._known))]

    def parse(self, endpoint: Endpoint, data: Any, request_id: str | None) -> Task:
        """A task object from an answer, checked; see the module notes.

        Args:
            endpoint: The family it belongs to.
            data: The task object as received.
            request_id: The envelope's request id.

        Returns:
            The task.

        Raises:
            ResponseDecodeError: The object is not a task of the documented shape.
        """
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
        self.remember(task)
        return task

    def task_from(self, endpoint: Endpoint, answer: Answer, external_task_id: str | None) -> Task:
        """The task of a single-task answer, with the external id filled in when absent.

        Args:
            endpoint: The family.
            answer: The envelope.
            external_task_id: The id the task was created or looked up with.

        Returns:
            The task.

        Raises:
            ResponseDecodeError: No task object of the documented shape.
        """
        data = answer.data
        if isinstance(data, list):
            data = data[0] if data else None
        task = self.parse(endpoint, data, answer.request_id)
        if task.external_id is None and external_task_id is not None:
            task = attrs.evolve(task, external_id=external_task_id)
            self.remember(task)
        return task

    async def get(
        self,
        target: str | Endpoint | Task | None,
        task_id: str | None,
        external_task_id: str | None,
        limiter: RateLimiter | None,
    ) -> Task:
        """Resolve the forms of ``session.get`` and query the task.

        Args:
            target: A family followed by an id, a :class:`Task`, a bare task id, or
                ``None`` (then ``external_task_id`` alone).
            task_id: The task id after a family.
            external_task_id: The external id.
            limiter: A caller's request-rate limiter.

        Returns:
            The task.

        Raises:
            ValueError: Neither or both kinds of id.
            NotFoundError: No such task.
        """
        if isinstance(target, Task):
            if task_id is not None or external_task_id is not None:
                raise ValueError("get(task) takes no other id")
            return await self.refresh(target, limiter)
        if isinstance(target, str) and task_id is None and external_task_id is None:
            target, task_id = None, target  # a bare task id
        if (task_id is None) == (external_task_id is None):
            raise ValueError("pass exactly one of task_id and external_task_id")
        if target is None:
            return await self.find(task_id, external_task_id, limiter)
        return await self.get_on(endpoint_for(target), task_id, external_task_id, limiter)

    async def get_on(
        self,
        ep: Endpoint,
        task_id: str | None,
        external_task_id: str | None,
        limiter: RateLimiter | None,
    ) -> Task:
        """Query one task of a known family.

        Args:
            ep: The family.
            task_id: The task id, or ``None``.
            external_task_id: The external id, or ``None`` (exactly one of the two).
            limiter: A caller's request-rate limiter.

        Returns:
            The task.

        Raises:
            ValueError: Neither or both ids.
            NotFoundError: No such task.
        """
        if (task_id is None) == (external_task_id is None):
            raise ValueError("pass exactly one of task_id and external_task_id")
        if ep.is_turbo:
            tasks = await self.get_many(
                ep,
                task_ids=[task_id] if task_id else (),
                external_task_ids=[external_task_id] if external_task_id else (),
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
                url=self.url(ep, ident),
                label=f"{ep.path}/{{id}}",
                kind="query",
                phase="read",
            )
            task = self.task_from(ep, await self.sender.read(call, limiter=limiter), None)
        if task.external_id is None and external_task_id is not None:
            task = attrs.evolve(task, external_id=external_task_id)
            self.remember(task)
        return task

    async def find(
        self, task_id: str | None, external_task_id: str | None, limiter: RateLimiter | None
    ) -> Task:
        """Query a task whose family is not given: the remembered one, else each in turn.

        Args:
            task_id: The task id, or ``None``.
            external_task_id: The external id, or ``None``.
            limiter: A caller's request-rate limiter.

        Returns:
            The task.

        Raises:
            NotFoundError: No family knows the id.
        """
        ident = task_id or external_task_id or ""
        known = self._known.get(ident)
        order = [endpoint_for(known)] if known else []
        turbo_seen = any(ep.is_turbo for ep in order)
        for ep in ENDPOINTS:
            if ep.is_task and ep not in order and not (ep.is_turbo and turbo_seen):
                order.append(ep)
                turbo_seen = turbo_seen or ep.is_turbo  # one batch query covers both
        hints: set[str] = set()
        for ep in order:
            error: NotFoundError | None = None
            try:
                return await self.get_on(ep, task_id, external_task_id, limiter)
            except NotFoundError as exc:
                error = exc
            if classify(error, phase="read") is not Verdict.NOT_FOUND:
                raise error
            hints.add(error.hint)
        raise NotFoundError(
            f"no family knows task {ident!r}",
            http_status=404,
            code=1203,
            hint=hints.pop() if len(hints) == 1 else "",  # every family said the same
        )

    async def get_many(
        self,
        ep: Endpoint,
        *,
        task_ids: Sequence[str],
        external_task_ids: Sequence[str],
        limiter: RateLimiter | None,
    ) -> list[Task]:
        """One turbo batch query.

        Args:
            ep: The turbo family to label the tasks with.
            task_ids: Task ids.
            external_task_ids: External ids.
            limiter: A caller's request-rate limiter.

        Returns:
            The tasks the gateway knows.
        """
        query = urlencode(
            {"task_ids": ",".join(task_ids), "external_task_ids": ",".join(external_task_ids)}
        )
        call = Call(
            method="GET",
            url=f"{self.roots[Host.TURBO]}{TURBO_TASKS_PATH}?{query}",
            label=TURBO_TASKS_PATH,
            kind="batch_query",
            phase="read",
        )
        answer = await self.sender.read(call, limiter=limiter)
        data = answer.data
        items = data if isinstance(data, list) else [data] if isinstance(data, Mapping) else []
        return [self.parse(ep, item, answer.request_id) for item in items]

    async def refresh(self, task: Task, limiter: RateLimiter | None) -> Task:
        """Query a task again by its id (or its external id when it has none yet).

        Args:
            task: The task.
            limiter: A caller's request-rate limiter.

        Returns:
            Its current state, keeping the external id known before.
        """
        ep = endpoint_for(task.endpoint)
        if task.id:
            fresh = await self.get_on(ep, task.id, None, limiter)
        else:
            fresh = await self.get_on(ep, None, task.external_id, limiter)
        if fresh.external_id is None and task.external_id is not None:
            fresh = attrs.evolve(fresh, external_id=task.external_id)
        return fresh

    async def wait(
        self,
        task: Task,
        policy: PollPolicy,
        *,
        budget: float,
        raise_on_failure: bool,
        limiter: RateLimiter | None,
    ) -> Task:
        """Poll until the task ends or ``budget`` seconds pass.

        Args:
            task: The task.
            policy: Poll policy.
            budget: Seconds before giving up.
            raise_on_failure: Raise when the task failed.
            limiter: A caller's request-rate limiter.

        Returns:
            The terminal task.

        Raises:
            WaitTimeoutError: Still running at the deadline.
            TaskFailedError: Failed, and ``raise_on_failure``.
        """
        delays = poll_delays(policy)
        with anyio.move_on_after(budget):
            while not task.is_terminal:
                await anyio.sleep(next(delays))
                task = await self.refresh(task, limiter)
        self.slots.observe(task)
        if not task.is_terminal:
            raise WaitTimeoutError(task, budget)
        if task.failed and raise_on_failure:
            raise TaskFailedError(task)
        return task

    async def identify_face(self, request: IdentifyFaceRequest, *, validate: bool) -> FaceSession:
        """Identify-face: validated, sent and retried like a read (it costs nothing).

        Args:
            request: ``video_id`` or ``video_url``.
            validate: Check documented limits first.

        Returns:
            The session id and faces.

        Raises:
            ValidationError: Neither or both of ``video_id`` and ``video_url``.
            ResponseDecodeError: The answer has no face data of the documented shape.
        """
        endpoint = endpoint_for_request(request)
        payload = to_payload(request)
        problems = validate_payload(endpoint, payload) if validate else []
        if problems:
            raise ValidationError(problems, endpoint=endpoint.name)
        call = Call(
            method="POST",
            url=self.url(endpoint),
            label=endpoint.path,
            body=json.dumps(payload, separators=(",", ":"), allow_nan=False).encode(),
            kind="create",
            phase="read",
        )
        answer = await self.sender.read(call)
        failure = ResponseDecodeError("identify-face answer has no data", path=endpoint.path)
        if isinstance(answer.data, Mapping):
            try:
                return parse_face_session(answer.data)
            except Exception as exc:  # wrong types inside the answer
                failure = ResponseDecodeError(
                    f"identify-face answer has the wrong shape ({type(exc).__name__})",
                    path=endpoint.path,
                )
        raise failure
