"""Reading tasks: URLs, queries by id or external id, batch queries, list queries, polling.

Where each request goes is read from the session's
:class:`~kling_async._backends.Backend`: a family's path and host, whether it is
queried by path or through the multi-task query, whether that query may mix id
kinds and how many ids it takes, and whether a family's tasks can be listed. The
reader has no branch per backend.

Every task object that arrives goes through :meth:`Reader.parse`: a shape the
converter cannot read becomes a :class:`ResponseDecodeError` on that one request;
the envelope's ``request_id`` is kept; the slot pool sees terminal tasks (and gives
their slots back); and the task's family is remembered, so ``get(task_id)`` needs
no family for ids this session has seen.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import anyio
import attrs

from ._backends import Backend, FamilyRoute, QueryBy
from ._backoff import poll_delays
from ._classify import Verdict, classify
from ._config import PollPolicy
from ._converter import parse_face_session, parse_task, to_payload
from ._endpoints import Endpoint, Host, endpoint_for, endpoint_for_request
from ._envelope import Answer
from ._errors import (
    ConfigurationError,
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
from ._task import EARLY_SUCCESS_CHECKS, FaceSession, Task, early_success
from ._validation import validate_payload

logger = logging.getLogger("kling_async")

__all__ = ["Reader", "id_queries", "identify_face", "list_query"]

#: A path segment that :func:`urllib.parse.quote` would leave as it is.
_SAFE_PART = re.compile(r"[A-Za-z0-9_.~-]+")
#: A comma-separated list of such segments (``urlencode`` leaves them but the commas).
_SAFE_IDS = re.compile(r"[A-Za-z0-9_.~,-]*")
#: How many ids the reader remembers the family of.
_KNOWN_IDS = 10_000


class Reader:
    """Queries tasks for a session.

    Args:
        sender: The send chain.
        backend: The API's route table.
        roots: Base of every URL per host (``…/v1/ai/{endpoint_path}/kling/`` on
            the gateway, ``https://host/`` on Kling's own API).
        slots: The session's slot pool.
    """

    def __init__(
        self, sender: Sender, backend: Backend, roots: Mapping[Host, str], slots: SlotPool
    ) -> None:
        self.sender = sender
        self.backend = backend
        self.roots = dict(roots)
        self.slots = slots
        self._known: dict[str, str] = {}
        #: Task objects of multi-task answers left out for their shape.
        self.skipped = 0

    def __repr__(self) -> str:
        return f"Reader({self.backend.name}, {len(self._known)} known ids)"

    def route(self, endpoint: Endpoint) -> FamilyRoute:
        """The family's row on this backend.

        Args:
            endpoint: The family.

        Returns:
            Its path, host and how it is queried.
        """
        return self.backend.route(endpoint)

    def url(self, endpoint: Endpoint, *parts: str) -> str:
        """The URL of a family's route, with escaped path parts appended.

        Args:
            endpoint: The family.
            *parts: Path segments after its path (an id).

        Returns:
            The absolute URL (holds the endpoint path: never log it).
        """
        return self._url(self.route(endpoint), parts)

    def _url(self, route: FamilyRoute, parts: Sequence[str]) -> str:
        base = self.roots[route.host] + route.path
        if not parts:
            return base
        return (
            base
            + "/"
            + "/".join(p if _SAFE_PART.fullmatch(p) else quote(p, safe="") for p in parts)
        )

    def check_auth(self, endpoint: Endpoint) -> None:
        """Refuse now a family whose route the configured credentials cannot use.

        Args:
            endpoint: The family.

        Raises:
            ConfigurationError: Its route takes an API key only and none is set.
        """
        route = self.route(endpoint)
        self.sender.auth_for(
            api_key_only=route.api_key_only, what=f"{endpoint.name} ({route.path})"
        )

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
        problem: str | None = None
        if type(data) is not dict and not isinstance(data, Mapping):
            problem = f"answer has no task object (data is a {type(data).__name__})"
        else:
            try:
                task = parse_task(endpoint, data, request_id=request_id)
            except Exception as exc:  # the converter met types the seeds do not document
                problem = f"task object has the wrong shape ({type(exc).__name__})"
            else:
                if not task.id:
                    problem = "task object has no task id"
        if problem is not None:
            raise ResponseDecodeError(problem, path=self.route(endpoint).path, http_status=200)
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
        route = self.route(ep)
        if route.query_by is QueryBy.TASKS:
            tasks = await self.get_many(
                ep,
                task_ids=[task_id] if task_id else (),
                external_task_ids=[external_task_id] if external_task_id else (),
                limiter=limiter,
            )
            if not tasks:
                raise NotFoundError(
                    "task not found", http_status=200, code=1203, path=self.backend.tasks_path
                )
            task = tasks[0]
        else:
            ident = task_id if task_id is not None else external_task_id or ""
            call = Call(
                method="GET",
                url=self._url(route, (ident,)),
                label=route.path + "/{id}",
                kind="query",
                phase="read",
                api_key_only=route.api_key_only,
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

        Families whose route the configured credentials cannot use (Kling's
        API-key-only routes with a key pair alone) are skipped.

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
        by_tasks = any(self.route(ep).query_by is QueryBy.TASKS for ep in order)
        for route in self.backend.routes:
            ep, many = route.endpoint, route.query_by is QueryBy.TASKS
            if ep.is_task and ep not in order and not (many and by_tasks):
                order.append(ep)
                by_tasks = by_tasks or many  # one multi-task query covers them all
        order = [ep for ep in order if self._usable(ep)]
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

    def _usable(self, ep: Endpoint) -> bool:
        """Whether the configured credentials can query this family's tasks."""
        route = self.route(ep)
        only = (
            self.backend.tasks_api_key_only
            if route.query_by is QueryBy.TASKS
            else route.api_key_only
        )
        try:
            self.sender.auth_for(api_key_only=only, what=ep.name)
        except ConfigurationError:
            return False
        return True

    async def get_many(
        self,
        ep: Endpoint,
        *,
        task_ids: Sequence[str],
        external_task_ids: Sequence[str],
        limiter: RateLimiter | None,
        skip_unreadable: bool = False,
    ) -> list[Task]:
        """The backend's multi-task query (``GET tasks``), as many requests as it needs.

        The ids are split into requests of at most the backend's
        ``max_ids_per_query``, and by kind where the backend takes one kind per
        request (Kling's own API).

        Args:
            ep: The family to label the tasks with.
            task_ids: Task ids.
            external_task_ids: External ids.
            limiter: A caller's request-rate limiter.
            skip_unreadable: Leave out task objects of the wrong shape instead
                of failing the whole answer.

        Returns:
            The tasks the server knows, each once, in answer order.
        """
        backend = self.backend
        found: dict[str, Task] = {}
        for params in id_queries(backend, task_ids, external_task_ids):
            call = Call(
                method="GET",
                url=f"{self.roots[Host.TURBO]}{backend.tasks_path}?{_query_string(params)}",
                label=backend.tasks_path,
                kind="batch_query",
                phase="read",
                api_key_only=backend.tasks_api_key_only,
            )
            answer = await self.sender.read(call, limiter=limiter)
            for task in self._items(ep, answer, skip_unreadable):
                found.setdefault(task.id, task)
        return list(found.values())

    def _items(self, ep: Endpoint, answer: Answer, skip_unreadable: bool) -> list[Task]:
        """The tasks of a multi-task answer; see :func:`_tasks_in`."""
        tasks, skipped = _tasks_in(answer, lambda item: self.parse(ep, item, answer.request_id))
        if skipped and not skip_unreadable:
            raise skipped[0]
        if skipped and not self.skipped:
            logger.warning("a multi-task answer held a task object of an unexpected shape; skipped")
        self.skipped += len(skipped)
        return tasks

    async def list_tasks(
        self,
        ep: Endpoint,
        *,
        page: int,
        page_size: int,
        limiter: RateLimiter | None,
        skip_unreadable: bool = False,
    ) -> list[Task]:
        """One page of a family's recent tasks, newest first (Kling's list query).

        Args:
            ep: The family.
            page: Page number, from 1.
            page_size: Tasks per page.
            limiter: A caller's request-rate limiter.
            skip_unreadable: Leave out task objects of the wrong shape instead
                of failing the whole page.

        Returns:
            The tasks of that page (fewer than ``page_size`` on the last one).

        Raises:
            ConfigurationError: The backend has no list query.
            ValueError: The family has none there, or a number is out of range.
        """
        route = self.route(ep)
        query = list_query(self.backend, route, page=page, page_size=page_size)
        call = Call(
            method="GET",
            url=f"{self.roots[route.host]}{route.list_path}?{query}",
            label=route.list_path or "",
            kind="list_query",
            phase="read",
            api_key_only=route.api_key_only,
        )
        return self._items(ep, await self.sender.read(call, limiter=limiter), skip_unreadable)

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
            The terminal task ("succeeded" without any output is asked again
            up to three times: a server may store the result a moment late).

        Raises:
            WaitTimeoutError: Still running at the deadline.
            TaskFailedError: Failed, and ``raise_on_failure``.
        """
        delays = poll_delays(policy)
        early = 0  # "succeeded" answers without outputs: asked again, a few times
        with anyio.move_on_after(budget):
            while not task.is_terminal or (early_success(task) and early < EARLY_SUCCESS_CHECKS):
                early += task.is_terminal
                await anyio.sleep(next(delays))
                task = await self.refresh(task, limiter)
        self.slots.observe(task)
        if not task.is_terminal:
            raise WaitTimeoutError(task, budget)
        if task.failed and raise_on_failure:
            raise TaskFailedError(task)
        return task


def _tasks_in(
    answer: Answer, parse: Callable[[Any], Task]
) -> tuple[list[Task], list[ResponseDecodeError]]:
    """The tasks of a multi-task answer (a lone object counts as one), and the errors
    of the objects that are not tasks of the documented shape (a caller may leave those
    out rather than lose the page: a list holds other programs' tasks too).
    """
    data = answer.data
    items = data if isinstance(data, list) else [data] if isinstance(data, Mapping) else []
    tasks: list[Task] = []
    errors: list[ResponseDecodeError] = []
    for item in items:
        try:
            tasks.append(parse(item))
        except ResponseDecodeError as exc:
            errors.append(exc)
    return tasks, errors


def id_queries(
    backend: Backend, task_ids: Sequence[str], external_task_ids: Sequence[str]
) -> list[dict[str, str]]:
    """The query strings of a backend's multi-task query for these ids.

    At most ``backend.max_ids_per_query`` ids each; one id kind each where the
    backend does not mix them (Kling's own API); where it does (the gateway) both
    parameters are always present, as the gateway has always been asked.

    Args:
        backend: The API.
        task_ids: Task ids.
        external_task_ids: External ids.

    Returns:
        One parameter mapping per request (none without ids).
    """
    cap = backend.max_ids_per_query
    kinds = {"task_ids": list(task_ids), "external_task_ids": list(external_task_ids)}
    if backend.mixed_id_query:
        pairs = [(kind, ident) for kind, ids in kinds.items() for ident in ids]
        return [
            {kind: ",".join(i for k, i in pairs[at : at + cap] if k == kind) for kind in kinds}
            for at in range(0, len(pairs), cap)
        ]
    return [
        {kind: ",".join(ids[at : at + cap])}
        for kind, ids in kinds.items()
        for at in range(0, len(ids), cap)
    ]


def _query_string(params: Mapping[str, str]) -> str:
    """``urlencode(params)``, without its per-character work for plain id lists."""
    if all(_SAFE_IDS.fullmatch(value) for value in params.values()):
        # Ids of safe characters joined by commas: only the commas need escaping.
        return "&".join(f"{key}={value.replace(',', '%2C')}" for key, value in params.items())
    return urlencode(params)


def list_query(backend: Backend, route: FamilyRoute, *, page: int, page_size: int) -> str:
    """The query string of a family's list query, checked against the backend's bounds.

    Args:
        backend: The API.
        route: The family's row.
        page: Page number, from 1.
        page_size: Tasks per page.

    Returns:
        ``pageNum=..&pageSize=..``.

    Raises:
        ConfigurationError: The backend has no list query.
        ValueError: The family has none there, or a number is out of range.
    """
    if backend.list_page_size is None:
        raise ConfigurationError(
            f"{backend.title} has no list query: use get() or get_many() "
            "(Kling's own API has one: backend='kling')"
        )
    name = route.endpoint.name
    if route.list_path is None:
        raise ValueError(f"{name} has no list query on {backend.title}")
    if not 1 <= page <= backend.max_list_page:
        raise ValueError(f"page must be from 1 to {backend.max_list_page}, got {page!r}")
    if not 1 <= page_size <= backend.list_page_size:
        raise ValueError(f"page_size must be from 1 to {backend.list_page_size}, got {page_size!r}")
    return urlencode({"pageNum": page, "pageSize": page_size})


async def identify_face(
    reader: Reader, request: IdentifyFaceRequest, *, validate: bool
) -> FaceSession:
    """Identify-face: validated, sent and retried like a read (it costs nothing).

    Args:
        reader: The session's reader.
        request: ``video_id`` or ``video_url``.
        validate: Check documented limits first.

    Returns:
        The session id and faces.

    Raises:
        ValidationError: Neither or both of ``video_id`` and ``video_url``.
        ResponseDecodeError: The answer has no face data of the documented shape.
    """
    endpoint = endpoint_for_request(request)
    route = reader.route(endpoint)
    payload = to_payload(request)
    problems = validate_payload(endpoint, payload) if validate else []
    if problems:
        raise ValidationError(problems, endpoint=endpoint.name)
    call = Call(
        method="POST",
        url=reader.url(endpoint),
        label=route.path,
        body=json.dumps(payload, separators=(",", ":"), allow_nan=False).encode(),
        kind="create",
        phase="read",
        api_key_only=route.api_key_only,
    )
    answer = await reader.sender.read(call)
    failure = ResponseDecodeError("identify-face answer has no data", path=route.path)
    if isinstance(answer.data, Mapping):
        try:
            return parse_face_session(answer.data)
        except Exception as exc:  # wrong types inside the answer
            failure = ResponseDecodeError(
                f"identify-face answer has the wrong shape ({type(exc).__name__})",
                path=route.path,
            )
    raise failure
