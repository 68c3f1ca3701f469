"""Query routes: one classic task by id or external id, many by id, or a family's list.

* ``query``: ``GET <family path>/{id}``, one task (either API);
* ``batch``: the gateway's ``GET tasks?task_ids=..&external_task_ids=..``;
* ``tasks``: Kling's ``GET /tasks?task_ids=..`` or ``?external_task_ids=..``
  (one kind per query, at most ``official_max_query_ids`` ids);
* ``list``: Kling's ``GET /v1/<family path>?pageNum=&pageSize=``, the account's
  tasks of that family, newest first (pageNum 1-1000, pageSize 1-500, default 30).

A task stays invisible to all of them for ``lookup_lag`` after its create (404 with
code 1203 for a single query, absent from a list), as an eventually consistent
gateway would keep it; its external id is nonetheless taken at once (see the
create route).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiohttp import web

from ._routes import Route
from ._spoil import Spoiler
from ._state import FakeState
from ._tasks import FAILED, SUCCEED, TaskRecord

__all__ = ["QueryHandler"]

_TERMINAL = frozenset({SUCCEED, FAILED})


#: The list query's bounds and default page size (Kling's documentation).
_MAX_PAGE_NUMBER = 1000
_MAX_PAGE_SIZE = 500
_DEFAULT_PAGE_SIZE = 30


def _split_ids(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _page_param(query: Mapping[str, str], name: str, default: int, top: int) -> int | str:
    """An integer query parameter within ``1..top``, or the problem with it."""
    raw = query.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        return f"{name}: must be an integer from 1 to {top}"
    if not 1 <= value <= top:
        return f"{name}: must be an integer from 1 to {top}"
    return value


class QueryHandler:
    """The ``query``, ``batch``, ``tasks`` and ``list`` actions.

    Args:
        state: The fake's shared state.
        spoiler: Acts out faults.
    """

    def __init__(self, state: FakeState, spoiler: Spoiler) -> None:
        self._state = state
        self._spoiler = spoiler

    @staticmethod
    def _seen(rec: TaskRecord, status: str, now: float, delivered: bool) -> None:
        """Count a query of ``rec``; note the first intact answer that showed its end."""
        rec.queries += 1
        if delivered and status in _TERMINAL and rec.first_terminal_seen_at is None:
            rec.first_terminal_seen_at = now

    async def query(
        self, request: web.Request, route: Route, ident: str, key: str
    ) -> web.StreamResponse:
        """``GET <family path>/{id}``: one task of that family, by either id.

        Args:
            request: The request.
            route: Its row (names the family).
            ident: Task id or external task id.
            key: The caller's key.

        Returns:
            The response.
        """
        state = self._state
        store = state.store
        store.counts["queries"] += 1
        fault, early = await self._spoiler.before(request, "query")
        if early is not None:
            return early
        rec = store.find(key, ident)
        now = state.clock.now()
        if rec is None or rec.endpoint is not route.endpoint or now < rec.visible_at:
            return state.answers.not_found(1203, "Task not found")
        status = rec.status_at(now)
        self._seen(rec, status, now, fault is None)
        body = state.answers.ok(state.render(rec, status))
        return await self._spoiler.finish(request, body, fault)

    async def batch(
        self, request: web.Request, _route: Route, _ident: str, key: str
    ) -> web.StreamResponse:
        """``GET tasks?task_ids=a,b&external_task_ids=c``: the visible turbo tasks among them.

        Args:
            request: The request.
            _route: Its row.
            _ident: Unused (the ids are in the query string).
            key: The caller's key.

        Returns:
            The response: a list, possibly empty, never a 404.
        """
        state = self._state
        state.store.counts["batch_queries"] += 1
        fault, early = await self._spoiler.before(request, "batch")
        if early is not None:
            return early
        task_ids = _split_ids(request.query.get("task_ids", ""))
        external_ids = _split_ids(request.query.get("external_task_ids", ""))
        if not task_ids and not external_ids:
            return state.answers.invalid(
                "task_ids or external_task_ids: at least one id is required"
            )
        return await self._many(request, key, task_ids, external_ids, fault)

    async def tasks(
        self, request: web.Request, _route: Route, _ident: str, key: str
    ) -> web.StreamResponse:
        """Kling's ``GET /tasks``: ``task_ids`` or ``external_task_ids``, not both, capped.

        Args:
            request: The request.
            _route: Its row.
            _ident: Unused (the ids are in the query string).
            key: The caller's account.

        Returns:
            The response: a list, possibly empty (unknown ids are simply absent).
        """
        state = self._state
        state.store.counts["batch_queries"] += 1
        fault, early = await self._spoiler.before(request, "batch")
        if early is not None:
            return early
        task_ids = _split_ids(request.query.get("task_ids", ""))
        external_ids = _split_ids(request.query.get("external_task_ids", ""))
        if bool(task_ids) == bool(external_ids):
            return state.answers.invalid(
                "task_ids or external_task_ids: exactly one of the two is required"
            )
        cap = state.config.official_max_query_ids
        if len(task_ids) + len(external_ids) > cap:
            name = "task_ids" if task_ids else "external_task_ids"
            return state.answers.invalid(f"{name}: at most {cap} ids per query")
        return await self._many(request, key, task_ids, external_ids, fault)

    async def _many(
        self,
        request: web.Request,
        key: str,
        task_ids: Sequence[str],
        external_ids: Sequence[str],
        fault: str | None,
    ) -> web.StreamResponse:
        """The visible turbo tasks of ``key`` among the ids, as a list answer."""
        state = self._state
        store = state.store
        store.counts["batch_query_ids"] += len(task_ids) + len(external_ids)
        now = state.clock.now()
        found: dict[str, TaskRecord] = {}
        candidates = [store.tasks.get(i) for i in task_ids]
        candidates += [store.by_external.get((key, e)) for e in external_ids]
        for rec in candidates:
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
            parts.append(state.render(rec, status))
        return await self._spoiler.finish(request, state.answers.ok_list(parts), fault)

    async def list_tasks(
        self, request: web.Request, route: Route, _ident: str, key: str
    ) -> web.StreamResponse:
        """``GET <family path>?pageNum=&pageSize=``: one page of the family's tasks, newest first.

        Args:
            request: The request.
            route: Its row (names the family).
            _ident: Unused.
            key: The caller's account.

        Returns:
            The response: a list, possibly empty (a page past the last task).
        """
        state = self._state
        store = state.store
        store.counts["list_queries"] += 1
        fault, early = await self._spoiler.before(request, "list")
        if early is not None:
            return early
        number = _page_param(request.query, "pageNum", 1, _MAX_PAGE_NUMBER)
        size = _page_param(request.query, "pageSize", _DEFAULT_PAGE_SIZE, _MAX_PAGE_SIZE)
        if isinstance(number, str):
            return state.answers.invalid(number)
        if isinstance(size, str):
            return state.answers.invalid(size)
        family = route.endpoint.name if route.endpoint is not None else ""
        records = store.listing(key, family)
        now = state.clock.now()
        # Creation and visibility are in creation order: hidden tasks are the newest.
        end = len(records)
        while end and records[end - 1].visible_at > now:
            end -= 1
        stop = max(0, end - (number - 1) * size)
        page = records[max(0, stop - size) : stop][::-1]
        store.counts["list_query_tasks"] += len(page)
        parts = []
        for rec in page:
            status = rec.status_at(now)
            self._seen(rec, status, now, fault is None)
            parts.append(state.render(rec, status))
        return await self._spoiler.finish(request, state.answers.ok_list(parts), fault)
