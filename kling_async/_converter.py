"""The one cattrs converter that owns the wire format.

Requests unstructure to the exact JSON body (``None`` fields dropped, values as
given). Responses structure leniently: numbers may arrive as strings, unknown
fields are ignored, a missing or odd value becomes ``None`` rather than an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, Union

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn
from cattrs.strategies import configure_union_passthrough

from . import _models
from ._endpoints import Endpoint, Shape
from ._errors import Problem, ValidationError
from ._task import (
    AudioOutput,
    Face,
    FaceSession,
    ImageOutput,
    ParentVideo,
    Task,
    TaskStatus,
    VideoOutput,
    ms_to_datetime,
)

__all__ = [
    "converter",
    "parse_face_session",
    "parse_task",
    "request_from_payload",
    "to_payload",
]

T = TypeVar("T")

converter = cattrs.Converter()
configure_union_passthrough(Union[str, int, float, bool, None], converter)


def _is_request_model(cls: Any) -> bool:
    return attrs.has(cls) and getattr(cls, "__module__", "") == _models.__name__


converter.register_unstructure_hook_factory(
    _is_request_model,
    lambda cls: make_dict_unstructure_fn(cls, converter, _cattrs_omit_if_default=True),
)
converter.register_structure_hook_factory(
    _is_request_model,
    lambda cls: make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True),
)


def _lenient_float(value: Any, _: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _lenient_int(value: Any, _: Any) -> int | None:
    number = _lenient_float(value, None)
    return None if number is None else int(number)


def _lenient_str(value: Any, _: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


_OUTPUT_TYPES = (VideoOutput, ImageOutput, AudioOutput, ParentVideo, Face)
# Output models get their own lenient primitive hooks so request structuring
# (strict, used by the CLI) is not loosened.
_lenient = cattrs.Converter()
_lenient.register_structure_hook(Union[float, None], _lenient_float)
_lenient.register_structure_hook(Union[int, None], _lenient_int)
_lenient.register_structure_hook(Union[str, None], _lenient_str)
_lenient.register_structure_hook(str, lambda v, _: "" if v is None else str(v))
for _cls in _OUTPUT_TYPES:
    converter.register_structure_hook(_cls, make_dict_structure_fn(_cls, _lenient))


def to_payload(request: _models.Request) -> dict[str, Any]:
    """Turn a request model into its JSON body, leaving out unset fields.

    Args:
        request: A request model instance.

    Returns:
        The body as a JSON-ready dict.
    """
    result: dict[str, Any] = converter.unstructure(request)
    return result


def request_from_payload(request_type: type[T], payload: Mapping[str, Any]) -> T:
    """Build a request model from a JSON body (used by the CLI's JSONL input).

    Args:
        request_type: The model class.
        payload: The body, in the API's own field names.

    Returns:
        The model instance.

    Raises:
        ValidationError: A field is unknown or of the wrong type; every problem is
            listed with its path.
    """
    try:
        return converter.structure(dict(payload), request_type)
    except cattrs.ClassValidationError as exc:
        problems = [
            Problem(path=path.lstrip("$.") or "(body)", message=_describe(err))
            for err, path in _flatten(exc, "$")
        ]
        raise ValidationError(problems, endpoint=request_type.__name__) from None
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            [Problem("(body)", str(exc))], endpoint=request_type.__name__
        ) from None


def _flatten(exc: BaseException, path: str) -> list[tuple[BaseException, str]]:
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return [(exc, f"{path}.{key}") for key in sorted(exc.extra_fields)]
    if isinstance(exc, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        out: list[tuple[BaseException, str]] = []
        for sub in exc.exceptions:
            note = next(
                (
                    n
                    for n in getattr(sub, "__notes__", [])
                    if hasattr(n, "name") or hasattr(n, "index")
                ),
                None,
            )
            sub_path = path
            if note is not None and hasattr(note, "name"):
                sub_path = f"{path}.{note.name}"
            elif note is not None and hasattr(note, "index"):
                sub_path = f"{path}[{note.index}]"
            out.extend(_flatten(sub, sub_path))
        return out
    return [(exc, path)]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return "unknown field"
    if isinstance(exc, KeyError):
        return "required field is missing"
    return f"wrong type ({exc})"


def _tuple_of(cls: type[T], value: Any) -> tuple[T, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(converter.structure(item, cls) for item in value if isinstance(item, Mapping))


def _str_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _classic_task(endpoint: str, data: Mapping[str, Any]) -> Task:
    info: Mapping[str, Any] = _mapping(data.get("task_info"))
    result: Mapping[str, Any] = _mapping(data.get("task_result"))
    parent = info.get("parent_video")
    raw_status = str(data.get("task_status") or "")
    return Task(
        id=str(data.get("task_id") or info.get("task_id") or ""),
        endpoint=endpoint,
        status=TaskStatus.parse(raw_status),
        raw_status=raw_status,
        external_id=_str_or_none(info.get("external_task_id") or data.get("external_task_id")),
        message=str(data.get("task_status_msg") or ""),
        created_at=ms_to_datetime(data.get("created_at")),
        updated_at=ms_to_datetime(data.get("updated_at")),
        videos=_tuple_of(VideoOutput, result.get("videos")),
        images=_tuple_of(ImageOutput, result.get("images")),
        series_images=_tuple_of(ImageOutput, result.get("series_images")),
        audios=_tuple_of(AudioOutput, result.get("audios")),
        units=_lenient_float(data.get("final_unit_deduction"), None),
        parent_video=converter.structure(parent, ParentVideo)
        if isinstance(parent, Mapping)
        else None,
        raw=data,
    )


def _turbo_task(endpoint: str, data: Mapping[str, Any]) -> Task:
    videos: list[VideoOutput] = []
    images: list[ImageOutput] = []
    audios: list[AudioOutput] = []
    outputs = data.get("outputs")
    for item in outputs if isinstance(outputs, list) else ():
        if not isinstance(item, Mapping):
            continue
        kind = str(item.get("type") or "video").lower()
        if kind == "image":
            images.append(
                converter.structure({"url": item.get("url"), "index": len(images)}, ImageOutput)
            )
        elif kind == "audio":
            audios.append(converter.structure(item, AudioOutput))
        else:
            videos.append(converter.structure(item, VideoOutput))
    units: float | None = None
    billing = data.get("billing")
    for charge in billing if isinstance(billing, list) else ():
        amount = _lenient_float(charge.get("amount"), None) if isinstance(charge, Mapping) else None
        if amount is not None:
            units = (units or 0.0) + amount
    raw_status = str(data.get("status") or "")
    return Task(
        id=str(data.get("id") or data.get("task_id") or ""),
        endpoint=endpoint,
        status=TaskStatus.parse(raw_status),
        raw_status=raw_status,
        external_id=_str_or_none(data.get("external_task_id") or data.get("external_id")),
        message=str(data.get("message") or ""),
        created_at=ms_to_datetime(data.get("create_time")),
        updated_at=ms_to_datetime(data.get("update_time")),
        videos=tuple(videos),
        images=tuple(images),
        audios=tuple(audios),
        units=units,
        raw=data,
    )


def parse_task(endpoint: Endpoint | str, data: Mapping[str, Any]) -> Task:
    """Normalise a task object (the envelope's ``data``, or a callback body).

    The shape is taken from the endpoint when given, else guessed from the keys.

    Args:
        endpoint: The endpoint (or its name) the task belongs to.
        data: The task object.

    Returns:
        The task.
    """
    if isinstance(endpoint, Endpoint):
        name, turbo = endpoint.name, endpoint.shape is Shape.TURBO
    else:
        name, turbo = endpoint, "task_id" not in data and ("id" in data or "status" in data)
    return _turbo_task(name, data) if turbo else _classic_task(name, data)


def parse_face_session(data: Mapping[str, Any]) -> FaceSession:
    """Normalise identify-face's ``data``.

    Args:
        data: The envelope's ``data``.

    Returns:
        The session id and faces.
    """
    return FaceSession(
        session_id=str(data.get("session_id") or ""),
        faces=_tuple_of(Face, data.get("face_data")),
        raw=data,
    )
