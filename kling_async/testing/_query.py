"""Query routes: one classic task by id or external id, or a turbo list of tasks.

A task stays invisible to both for ``lookup_lag`` after its create (404 with code
1203 for a single query, absent from a list), as an eventually consistent gateway
would keep it; its external id is nonetheless taken at once (see the create route).
"""

from __future__ import annotations

from aiohttp import web

from ._routes import Route
from ._spoil import Spoiler
from ._state import FakeState
from ._tasks import FAILED, SUCCEED, TaskRecord

__all__ = ["QueryHandler"]

_TERMINAL = frozenset({SUCCEED, FAILED})


def _split_ids(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class QueryHandler:
    """The ``query`` and ``batch`` actions.

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
        store = state.store
        store.counts["batch_queries"] += 1
        fault, early = await self._spoiler.before(request, "batch")
        if early is not None:
            return early
        query = request.query
        task_ids = _split_ids(query.get("task_ids", ""))
        external_ids = _split_ids(query.get("external_task_ids", ""))
        if not task_ids and not external_ids:
            return state.answers.invalid(
                "task_ids or external_task_ids: at least one id is required"
            )
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
