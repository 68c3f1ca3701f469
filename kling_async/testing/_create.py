"""Create routes: store a new task (or, for identify-face, answer at once).

A create is checked in the gateway's order: faults that strike first, the body
(JSON object, then the documented rules, the very ones the SDK checks), references
to earlier work (video-extend, lip-sync), the external id (a second create with a
known one is refused with 1201 at once, lookup lag or not), then the concurrency
quota. Only then is the task stored; faults drawn earlier may still spoil the answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .._endpoints import Endpoint, Shape
from .._validation import validate_payload
from ._answers import dumps
from ._callbacks import CallbackDispatcher
from ._routes import Route
from ._spoil import Spoiler
from ._state import FakeState
from ._store import FaceSessionRecord
from ._tasks import (
    SUCCEED,
    TaskRecord,
    classic_create_data,
    clip_seconds,
    image_count,
    life_factor,
    turbo_create_data,
    units_for,
)

__all__ = ["CreateHandler"]

#: An extended video may not exceed this many seconds (seed 003).
_MAX_EXTENDED_SECONDS = 180.0
#: Seconds one extension adds.
_EXTENSION_SECONDS = 4.5


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


class CreateHandler:
    """The ``create`` and ``face`` actions.

    Args:
        state: The fake's shared state.
        spoiler: Acts out faults.
        callbacks: Schedules callbacks of new tasks.
    """

    def __init__(self, state: FakeState, spoiler: Spoiler, callbacks: CallbackDispatcher) -> None:
        self._state = state
        self._spoiler = spoiler
        self._callbacks = callbacks

    async def create(
        self, request: web.Request, route: Route, _ident: str, key: str
    ) -> web.StreamResponse:
        """``POST <family path>``: validate, store, answer with the new task.

        Args:
            request: The request.
            route: Its row (names the family).
            _ident: Unused (create routes carry no id).
            key: The caller's key.

        Returns:
            The response.
        """
        state = self._state
        store, answers = state.store, state.answers
        store.counts["create_requests"] += 1
        endpoint = _endpoint_of(route)
        fault, early = await self._spoiler.before(request, "create")
        if early is not None:
            return early
        payload = await self._payload(request, endpoint)
        if isinstance(payload, web.Response):
            return payload
        parent, refusal = self._parent(endpoint, payload, key)
        if refusal is not None:
            return refusal
        external_id = _text(_field(payload, endpoint, "external_task_id"))
        if external_id is not None and (key, external_id) in store.by_external:
            # Counted: this create would have made a second, paid task for one id.
            store.counts["duplicate_external_ids"] += 1
            where = "options.external_task_id" if endpoint.is_turbo else "external_task_id"
            return answers.invalid(f"{where}: the external_task_id already exists")
        now = state.clock.now()
        store.advance(now)
        slots = endpoint.slots(payload)
        quota = state.config.max_running
        if quota is not None and store.running_slots.get(key, 0) + slots > quota:
            return answers.concurrency_limited()
        rec = self._new_task(endpoint, payload, key, external_id, parent, now, slots)
        store.add(rec)
        if rec.callback_url is not None:
            if self._callbacks.allowed(rec.callback_url):
                self._callbacks.schedule(rec)
            else:
                store.counts["callbacks_skipped"] += 3
                rec.callback_url = None
        data = turbo_create_data(rec) if endpoint.shape is Shape.TURBO else classic_create_data(rec)
        return await self._spoiler.finish(request, answers.ok(dumps(data)), fault)

    async def identify_face(
        self, request: web.Request, route: Route, _ident: str, key: str
    ) -> web.StreamResponse:
        """``POST videos/identify-face``: a face session at once, no task.

        Args:
            request: The request.
            route: Its row.
            _ident: Unused.
            key: The caller's key.

        Returns:
            The response.
        """
        state = self._state
        store, answers = state.store, state.answers
        store.counts["identify_face"] += 1
        fault, early = await self._spoiler.before(request, "face")
        if early is not None:
            return early
        payload = await self._payload(request, _endpoint_of(route))
        if isinstance(payload, web.Response):
            return payload
        video_id, video_url = _text(payload.get("video_id")), _text(payload.get("video_url"))
        if video_id is not None:
            source = self._known_video(key, video_id)
            if source is None:
                return answers.invalid(
                    "video_id: no video with this id was generated by this account"
                )
            video = state.video_object(source, video_id)
        elif video_url is not None:
            video = {"id": store.next_id(), "url": video_url, "duration": "5.041"}
        else:
            return answers.invalid("video_id or video_url: exactly one is required")
        session_id = store.next_id()
        store.sessions[session_id] = FaceSessionRecord(
            session_id=session_id, key=key, face_ids=("0",), video=video
        )
        expires = state.clock.unix_ms(state.clock.now() + state.url_ttl)
        data = {
            "session_id": session_id,
            "face_data": [
                {
                    "face_id": "0",
                    "face_image": state.media_url(f"{session_id}-face0", "png", expires),
                    "start_time": 0,
                    "end_time": int(float(video["duration"]) * 1000),
                }
            ],
        }
        return await self._spoiler.finish(request, answers.ok(dumps(data)), fault)

    # --- checks ---------------------------------------------------------------------

    async def _payload(
        self, request: web.Request, endpoint: Endpoint
    ) -> dict[str, Any] | web.Response:
        """Parse and validate a create body: the payload, or the 400 to send."""
        answers = self._state.answers
        raw = await request.read()
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return answers.bad_body("not valid JSON")
        if not isinstance(payload, dict):
            return answers.bad_body("expected a JSON object")
        # The very rules the SDK checks before sending (one source of truth). Fields
        # nobody documented are ignored, as the API does with a misspelled one.
        problems = [
            str(problem) for problem in validate_payload(endpoint, payload, allow_unknown=True)
        ]
        if problems:
            return answers.invalid("; ".join(problems))
        return payload

    def _parent(
        self, endpoint: Endpoint, payload: Mapping[str, Any], key: str
    ) -> tuple[dict[str, Any] | None, web.Response | None]:
        """The earlier work a create refers to (``parent_video``), or the refusal."""
        state = self._state
        invalid = state.answers.invalid
        if endpoint.name == "video-extend":
            source = self._known_video(key, payload.get("video_id"))
            if source is None:
                return None, invalid(
                    "video_id: no video with this id was generated by this account"
                )
            parent = state.video_object(source, str(payload.get("video_id")))
            if float(parent["duration"]) + _EXTENSION_SECONDS > _MAX_EXTENDED_SECONDS:
                return None, invalid("video_id: an extended video cannot exceed 3 minutes")
            return parent, None
        if endpoint.name == "lip-sync":
            session = state.store.sessions.get(str(payload.get("session_id") or ""))
            if session is None or session.key != key:
                return None, invalid("session_id: no such face session (call identify-face first)")
            choices = payload.get("face_choose")
            for index, choice in enumerate(choices if isinstance(choices, list) else ()):
                face_id = choice.get("face_id") if isinstance(choice, Mapping) else None
                if str(face_id) not in session.face_ids:
                    return None, invalid(
                        f"face_choose[{index}].face_id: no such face in the session"
                    )
            return session.video, None
        return None, None

    def _known_video(self, key: str, video_id: Any) -> TaskRecord | None:
        """The finished task of ``key`` that produced ``video_id``, or ``None``."""
        rec = self._state.store.videos.get(str(video_id)) if video_id else None
        if rec is None or rec.key != key or rec.status_at(self._state.clock.now()) != SUCCEED:
            return None
        return rec

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
        state = self._state
        store, cfg = state.store, state.config
        to_processing, life = store.draw_timing(endpoint.kind, life_factor(endpoint, payload))
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
            started=now + to_processing,
            completes=now + life,
            visible_at=now + state.lookup_lag,
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


def _endpoint_of(route: Route) -> Endpoint:
    """The family a create route serves."""
    if route.endpoint is None:  # pragma: no cover - the route table always sets it
        raise LookupError(f"route {route.method} {route.path} names no endpoint")
    return route.endpoint
