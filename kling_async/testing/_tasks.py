"""Task records of the fake gateway and the rules that shape them.

A record holds timestamps, not timers: its status at any moment is computed from
``created``/``started``/``completes``, so ten thousand live tasks cost only memory.
Rendering turns a record into the exact ``data`` objects of the seeds, per family.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from .._endpoints import Endpoint, Shape

__all__ = [
    "FAILED",
    "PROCESSING",
    "SUBMITTED",
    "SUCCEED",
    "TaskRecord",
    "classic_create_data",
    "classic_data",
    "clip_seconds",
    "format_units",
    "life_factor",
    "turbo_create_data",
    "turbo_data",
    "units_for",
]

SUBMITTED = "submitted"
PROCESSING = "processing"
SUCCEED = "succeed"
FAILED = "failed"

_TURBO_STATUS = {
    SUBMITTED: "submitted",
    PROCESSING: "processing",
    SUCCEED: "succeeded",
    FAILED: "failed",
}

#: Families whose ``task_info`` carries ``parent_video: null`` (seeds 000 and 001).
_PARENT_NULL = frozenset(
    {"text2video", "image2video", "omni-video", "image-generation", "omni-image"}
)
#: Families whose video items carry ``watermark_url`` (seeds 000 and 001).
_VIDEO_WATERMARK = frozenset({"text2video", "image2video", "omni-video"})

_MODE_RATE = {"std": 0.6, "pro": 1.0, "4k": 2.0}
_MODE_LIFE = {"std": 1.0, "pro": 1.25, "4k": 1.6}
_TURBO_RATE = {"720p": 0.6, "1080p": 1.0, "4k": 2.0}
_IMAGE_RATE = {"1k": 0.25, "2k": 0.5, "4k": 1.0}

#: Builds a signed media URL: (output id, extension, expiry as Unix ms) -> URL.
UrlMaker = Callable[[str, str, int], str]


def _number(value: Any, default: float) -> float:
    if value is None or isinstance(value, bool) or value == "":
        return default
    try:
        number = float(str(value))
    except ValueError:
        return default
    return number if math.isfinite(number) else default


def _options(payload: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = payload.get(name)
    return value if isinstance(value, Mapping) else {}


def clip_seconds(endpoint: Endpoint, payload: Mapping[str, Any]) -> float:
    """Seconds of media the request asks for (audio: its duration; images: 0).

    Args:
        endpoint: The family.
        payload: The request body.

    Returns:
        The clip length.
    """
    if endpoint.kind == "image":
        return 0.0
    if endpoint.shape is Shape.TURBO:
        return _number(_options(payload, "settings").get("duration"), 5.0)
    if endpoint.kind == "audio":
        return _number(payload.get("duration"), 5.0)
    return _number(payload.get("duration"), 5.0)


def image_count(endpoint: Endpoint, payload: Mapping[str, Any]) -> int:
    """Images a request produces (``n``, or ``series_amount`` for a series).

    Args:
        endpoint: The family.
        payload: The request body.

    Returns:
        The count (0 for non-image families).
    """
    if endpoint.kind != "image":
        return 0
    return endpoint.slots(payload)


def life_factor(endpoint: Endpoint, payload: Mapping[str, Any]) -> float:
    """How much a request stretches its kind's median life (see :class:`FakeConfig`).

    Args:
        endpoint: The family.
        payload: The request body.

    Returns:
        The multiplier (1 for a 5 s std clip, a single image, any audio).
    """
    if endpoint.kind == "image":
        return 1.0 + 0.1 * (image_count(endpoint, payload) - 1)
    if endpoint.kind != "video":
        return 1.0
    seconds = max(1.0, clip_seconds(endpoint, payload))
    mode = str(payload.get("mode") or "std").lower()
    return math.sqrt(seconds / 5.0) * _MODE_LIFE.get(mode, 1.0)


def units_for(endpoint: Endpoint, payload: Mapping[str, Any]) -> float:
    """Units a successful task of this request costs (see :class:`FakeConfig`).

    Args:
        endpoint: The family.
        payload: The request body.

    Returns:
        The units.
    """
    name = endpoint.name
    if endpoint.kind == "audio":
        return 0.25
    if endpoint.kind == "image":
        resolution = str(payload.get("resolution") or "1k").lower()
        return image_count(endpoint, payload) * _IMAGE_RATE.get(resolution, 0.25)
    if endpoint.shape is Shape.TURBO:
        resolution = str(_options(payload, "settings").get("resolution") or "720p").lower()
        return clip_seconds(endpoint, payload) * _TURBO_RATE.get(resolution, 0.6)
    if name == "video-extend":
        return 5.0 * _MODE_RATE["std"]
    if name == "lip-sync":
        choices = payload.get("face_choose")
        first = choices[0] if isinstance(choices, list) and choices else {}
        first = first if isinstance(first, Mapping) else {}
        start = _number(first.get("sound_start_time"), 0.0)
        end = _number(first.get("sound_end_time"), start + 5000.0)
        return 0.5 * max(1, math.ceil(max(0.0, end - start) / 5000.0))
    mode = str(payload.get("mode") or "std").lower()
    rate = _MODE_RATE.get(mode, 0.6)
    if str(payload.get("sound") or "off").lower() == "on":
        rate *= 1.2
    seconds = 5.0 if name == "avatar" else clip_seconds(endpoint, payload)
    return seconds * rate


def format_units(units: float) -> str:
    """Units as the gateway writes them: ``"6"``, ``"0.25"``, ``"1.8"``.

    Args:
        units: The amount.

    Returns:
        The string.
    """
    text = f"{round(units, 4):.4f}".rstrip("0").rstrip(".")
    return text or "0"


class TaskRecord:
    """One task the fake knows, with every timestamp on the fake's monotonic clock."""

    __slots__ = (
        "cache",
        "callback_url",
        "clip",
        "completes",
        "created",
        "endpoint",
        "external_id",
        "fails",
        "first_terminal_seen_at",
        "image_count",
        "key",
        "message",
        "output_ids",
        "parent_video",
        "queries",
        "result_type",
        "slots",
        "started",
        "task_id",
        "units",
        "visible_at",
        "wall_offset",
        "watermark",
    )

    def __init__(
        self,
        *,
        task_id: str,
        external_id: str | None,
        endpoint: Endpoint,
        key: str,
        created: float,
        started: float,
        completes: float,
        visible_at: float,
        wall_offset: float,
        fails: bool,
        message: str,
        units: float,
        slots: int,
        clip: float,
        image_count: int,
        result_type: str,
        watermark: bool,
        callback_url: str | None,
        output_ids: list[str],
        parent_video: dict[str, Any] | None,
    ) -> None:
        self.task_id = task_id
        self.external_id = external_id
        self.endpoint = endpoint
        self.key = key
        self.created = created
        self.started = started
        self.completes = completes
        self.visible_at = visible_at
        #: Add to a monotonic time to get Unix seconds.
        self.wall_offset = wall_offset
        self.fails = fails
        self.message = message
        self.units = units
        self.slots = slots
        self.clip = clip
        self.image_count = image_count
        self.result_type = result_type
        self.watermark = watermark
        self.callback_url = callback_url
        self.output_ids = output_ids
        self.parent_video = parent_video
        self.first_terminal_seen_at: float | None = None
        self.queries = 0
        #: Rendered ``data`` bytes keyed by status (a status's data never changes).
        self.cache: dict[str, bytes] = {}

    def status_at(self, now: float) -> str:
        """The status at a moment of the fake's clock.

        Args:
            now: Fake monotonic time.

        Returns:
            ``submitted``, ``processing``, ``succeed`` or ``failed``.
        """
        if now >= self.completes:
            return FAILED if self.fails else SUCCEED
        if now >= self.started:
            return PROCESSING
        return SUBMITTED

    def ms(self, moment: float) -> int:
        """A fake-clock moment as Unix milliseconds."""
        return int((moment + self.wall_offset) * 1000)

    def updated_ms(self, status: str) -> int:
        """``updated_at`` of the task in a status."""
        if status == SUBMITTED:
            return self.ms(self.created)
        if status == PROCESSING:
            return self.ms(self.started)
        return self.ms(self.completes)

    def expires_ms(self, url_ttl: float) -> int:
        """When the task's result URLs stop working, Unix milliseconds."""
        return self.ms(self.completes + url_ttl)

    def video_duration(self) -> str:
        """The duration string of this task's video outputs."""
        if self.parent_video is not None and self.endpoint.name == "video-extend":
            return f"{_number(self.parent_video.get('duration'), 5.0) + 4.5:.3f}"
        if self.parent_video is not None and self.endpoint.name == "lip-sync":
            return f"{_number(self.parent_video.get('duration'), 5.0):.3f}"
        return f"{self.clip + 0.041:.3f}"


def _task_info(rec: TaskRecord) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if rec.external_id is not None:
        info["external_task_id"] = rec.external_id
    if rec.parent_video is not None:
        info["parent_video"] = rec.parent_video
    elif rec.endpoint.name in _PARENT_NULL:
        info["parent_video"] = None
    return info


def classic_create_data(rec: TaskRecord) -> dict[str, Any]:
    """The ``data`` of a classic create response (seed 000's image2video shape).

    Args:
        rec: The new task.

    Returns:
        The object.
    """
    created = rec.ms(rec.created)
    return {
        "task_id": rec.task_id,
        "task_status": SUBMITTED,
        "created_at": created,
        "updated_at": created,
        "task_info": _task_info(rec),
    }


def _classic_result(rec: TaskRecord, status: str, make_url: UrlMaker, ttl: float) -> dict[str, Any]:
    kind = rec.endpoint.kind
    if status in (SUBMITTED, PROCESSING):
        return {}
    if status == FAILED:
        if kind == "image":
            return {"images": None, "result_type": None, "series_images": None}
        return {"audios": None} if kind == "audio" else {"videos": None}
    expires = rec.expires_ms(ttl)
    if kind == "image":
        items = [
            {
                "index": i,
                "url": make_url(out, "png", expires),
                "watermark_url": make_url(out + "-wm", "png", expires) if rec.watermark else None,
            }
            for i, out in enumerate(rec.output_ids)
        ]
        series = rec.result_type == "series"
        return {
            "result_type": rec.result_type,
            "images": [] if series else items,
            "series_images": items if series else [],
        }
    if kind == "audio":
        return {
            "audios": [
                {
                    "id": out,
                    "url": None,
                    "duration": None,
                    "url_mp3": make_url(out, "mp3", expires),
                    "url_wav": make_url(out, "wav", expires),
                    "duration_mp3": f"{rec.clip + 0.056:.3f}",
                    "duration_wav": f"{rec.clip:.1f}",
                }
                for out in rec.output_ids
            ]
        }
    videos: list[dict[str, Any]] = []
    for out in rec.output_ids:
        item: dict[str, Any] = {
            "id": out,
            "url": make_url(out, "mp4", expires),
            "duration": rec.video_duration(),
        }
        if rec.endpoint.name in _VIDEO_WATERMARK:
            item["watermark_url"] = make_url(out + "-wm", "mp4", expires) if rec.watermark else None
        videos.append(item)
    return {"videos": videos}


def classic_data(rec: TaskRecord, status: str, make_url: UrlMaker, ttl: float) -> dict[str, Any]:
    """The ``data`` of a classic query (and a classic callback body).

    Args:
        rec: The task.
        status: Its status now.
        make_url: Signs media URLs.
        ttl: Seconds result URLs stay valid after the task ends.

    Returns:
        The object, shaped like the seeds for its family.
    """
    data: dict[str, Any] = {
        "task_id": rec.task_id,
        "task_status": status,
        "created_at": rec.ms(rec.created),
        "updated_at": rec.updated_ms(status),
        "task_status_msg": rec.message if status == FAILED else "",
        "task_info": _task_info(rec),
        "task_result": _classic_result(rec, status, make_url, ttl),
    }
    if rec.endpoint.name == "omni-image":
        data["watermark_info"] = {"enabled": rec.watermark}
    if status == SUCCEED:
        data["final_unit_deduction"] = format_units(rec.units)
    elif status == FAILED:
        data["final_unit_deduction"] = "0"
    return data


def turbo_create_data(rec: TaskRecord) -> dict[str, Any]:
    """The ``data`` of a turbo create response (seed 002).

    Args:
        rec: The new task.

    Returns:
        The object.
    """
    created = rec.ms(rec.created)
    return {
        "id": rec.task_id,
        "status": "submitted",
        "message": "",
        "create_time": created,
        "update_time": created,
    }


def turbo_data(rec: TaskRecord, status: str, make_url: UrlMaker, ttl: float) -> dict[str, Any]:
    """One item of a turbo batch query (and a turbo callback body).

    Args:
        rec: The task.
        status: Its status now.
        make_url: Signs media URLs.
        ttl: Seconds result URLs stay valid after the task ends.

    Returns:
        The object, shaped like seed 002.
    """
    data: dict[str, Any] = {
        "id": rec.task_id,
        "status": _TURBO_STATUS[status],
        "message": rec.message if status == FAILED else "",
    }
    if rec.external_id is not None:
        data["external_id"] = rec.external_id
    outputs: list[dict[str, Any]] = []
    billing: list[dict[str, Any]] = []
    if status == SUCCEED:
        expires = rec.expires_ms(ttl)
        outputs = [
            {
                "type": "video",
                "id": out,
                "url": make_url(out, "mp4", expires),
                "duration": rec.video_duration(),
            }
            for out in rec.output_ids
        ]
        billing = [
            {"amount": format_units(rec.units), "charge_type": "unit", "package_type": "video"}
        ]
    data["outputs"] = outputs
    data["billing"] = billing
    data["create_time"] = rec.ms(rec.created)
    data["update_time"] = rec.updated_ms(status)
    return data
