"""``/__fake__/...``: introspection and control of a fake running in another process.

- ``GET /__fake__/stats``: every figure (``FakeGateway.stats``),
- ``POST /__fake__/reset``: forget everything,
- ``GET /__fake__/tasks``: one record per task,
- ``POST /__fake__/inject`` ``{"fault", "count", "on"}``: schedule a fault,
- ``POST /__fake__/advance`` ``{"seconds"}``: move the fake's clock.

These routes are never faulted, rate-limited or authenticated.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

__all__ = ["AdminRoutes", "Controls"]


class Controls(Protocol):
    """What the admin routes drive (the gateway's in-process methods)."""

    def stats(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...

    def task_records(self) -> list[dict[str, Any]]: ...

    def inject(self, fault: str, *, count: int = 1, on: str = "create") -> None: ...

    def advance(self, seconds: float) -> None: ...


class AdminRoutes:
    """Serves ``/__fake__/...`` over HTTP by calling :class:`Controls`.

    Args:
        controls: The gateway.
    """

    def __init__(self, controls: Controls) -> None:
        self._controls = controls

    def add_to(self, router: web.UrlDispatcher) -> None:
        """Register every admin route.

        Args:
            router: The application's router.
        """
        router.add_get("/__fake__/stats", self.stats)
        router.add_post("/__fake__/reset", self.reset)
        router.add_get("/__fake__/tasks", self.tasks)
        router.add_post("/__fake__/inject", self.inject)
        router.add_post("/__fake__/advance", self.advance)

    async def stats(self, _: web.Request) -> web.Response:
        """Every figure, as JSON."""
        return web.json_response(self._controls.stats())

    async def reset(self, _: web.Request) -> web.Response:
        """Forget every task and figure."""
        self._controls.reset()
        return web.json_response({"ok": True})

    async def tasks(self, _: web.Request) -> web.Response:
        """One record per task, as JSON."""
        return web.json_response({"tasks": self._controls.task_records()})

    async def inject(self, request: web.Request) -> web.Response:
        """Schedule a fault; 400 with the reason for a bad one."""
        try:
            body = await request.json()
            self._controls.inject(
                str(body["fault"]),
                count=int(body.get("count", 1)),
                on=str(body.get("on", "create")),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def advance(self, request: web.Request) -> web.Response:
        """Move the clock; 400 with the reason for a bad amount."""
        try:
            body = await request.json()
            self._controls.advance(float(body["seconds"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True})
