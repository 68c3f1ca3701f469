"""The one cattrs converter that owns the wire format, and the answer parsers.

Requests: a model unstructures to the exact JSON body (``None`` fields dropped,
values as given); a JSON body structures into a model only when every value has
the right JSON type: the converter refuses, it never coerces (``"false"`` stays
refused rather than becoming ``True``, ``10.9`` is never truncated to ``10``).

Answers: :func:`parse_task` and :func:`parse_face_session` read a task object
tolerantly (numbers as strings, unknown fields, odd values dropped or kept in
``raw``) but never raise anything but :class:`~kling_async.ResponseDecodeError`,
and only when the task's id is missing or unusable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import attrs
import cattrs

from . import _models
from ._endpoints import Endpoint, Shape
from ._errors import ResponseDecodeError, ValidationError
from ._models._json import field_kinds, shape_findings
from ._task import (
    AudioOutput,
    Charge,
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
    "encode_body",
    "parse_face_session",
    "parse_task",
    "request_from_payload",
    "to_payload",
]

T = TypeVar("T")

converter = cattrs.Converter()


def _is_request_model(cls: Any) -> bool:
    return attrs.has(cls) and getattr(cls, "__module__", "").startswith(_models.__name__)


#: Values a body carries as they are (most of a request's fields).
_AS_IS = frozenset({str, int, float, bool, type(None)})


def _unstructure(obj: Any) -> Any:
    if type(obj) in _AS_IS:
        return obj
    if attrs.has(type(obj)):
        return {
            name: _unstructure(value)
            for name in field_kinds(type(obj))
            if (value := getattr(obj, name)) is not None
        }
    if isinstance(obj, list):
        return [_unstructure(item) for item in obj]
    return obj


def _build(cls: type[Any], obj: Mapping[str, Any]) -> Any:
    """Build a model from a body whose shape was already checked."""
    kwargs: dict[str, Any] = {}
    for name, (kind, _) in field_kinds(cls).items():
        if name not in obj or obj[name] is None:
            continue
        value = obj[name]
        if kind.model is not None:
            value = _build(kind.model, value)
        elif kind.item is not None and kind.item.model is not None:
            item_cls = kind.item.model
            value = [_build(item_cls, item) for item in value]
        elif kind.item is not None:
            value = list(value)
        kwargs[name] = value
    return cls(**kwargs)


def _structure(obj: Any, cls: type[Any]) -> Any:
    shape = shape_findings(cls, obj)
    if shape.findings:
        raise ValidationError(shape.findings, endpoint=cls.__name__)
    return _build(cls, obj)


converter.register_unstructure_hook_factory(_is_request_model, lambda _cls: _unstructure)
converter.register_structure_hook_factory(
    _is_request_model, lambda cls: lambda obj, _: _structure(obj, cls)
)


def to_payload(request: _models.Request) -> dict[str, Any]:
    """Turn a request model into its JSON body, leaving out unset fields.

    Args:
        request: A request model instance.

    Returns:
        The body as a JSON-ready dict, values exactly as given.
    """
    result: dict[str, Any] = converter.unstructure(request)
    return result


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """Encode a checked body as the JSON bytes to send (compact, UTF-8, no NaN).

    Args:
        payload: A body from :func:`to_payload` or ``build_payload``.

    Returns:
        The request body.

    Raises:
        ValueError: The body holds a value JSON cannot carry (NaN, infinity);
            checked bodies never do.
    """
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def request_from_payload(request_type: type[T], payload: Mapping[str, Any]) -> T:
    """Build a request model from a JSON body, refusing (never coercing) wrong types.

    Only the body's shape is checked here (JSON types, unknown and missing
    fields); the family's rules are checked by
    :func:`kling_async._validation.validate_request` or ``build_payload``.

    Args:
        request_type: The model class.
        payload: The body, in the API's own field names.

    Returns:
        The model instance.

    Raises:
        ValidationError: A field is unknown (with a did-you-mean hint) or of the
            wrong JSON type; every problem is listed with its path.
    """
    result: T = converter.structure(payload, request_type)
    return result


# --- answers -------------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # what json.loads builds: no ABC check needed
        return value
    return value if isinstance(value, Mapping) else _EMPTY


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _text(value: Any) -> str | None:
    """A string, or an integer id written as digits; ``None`` for anything else."""
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # beyond the int-to-str digit limit
            return None
    return None


def _str(value: Any) -> str | None:
    """A non-empty string; ``None`` for anything else (URLs, messages are never numbers)."""
    return value if isinstance(value, str) and value else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def _video(item: Mapping[str, Any]) -> VideoOutput:
    return VideoOutput(
        id=_text(item.get("id")),
        url=_str(item.get("url")),
        duration=_float(item.get("duration")),
        watermark_url=_str(item.get("watermark_url")),
    )


def _image(item: Mapping[str, Any], position: int) -> ImageOutput:
    index = _int(item.get("index"))
    return ImageOutput(
        index=position if index is None else index,
        url=_str(item.get("url")),
        watermark_url=_str(item.get("watermark_url")),
    )


def _audio(item: Mapping[str, Any]) -> AudioOutput:
    return AudioOutput(
        id=_text(item.get("id")),
        url=_str(item.get("url")),
        duration=_float(item.get("duration")),
        url_mp3=_str(item.get("url_mp3")),
        url_wav=_str(item.get("url_wav")),
        duration_mp3=_float(item.get("duration_mp3")),
        duration_wav=_float(item.get("duration_wav")),
    )


def _entries(value: Any) -> list[Mapping[str, Any]]:
    if not value or not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _watermark(value: Any) -> _models.WatermarkInfo | None:
    if not isinstance(value, Mapping):
        return None
    enabled = value.get("enabled")
    return _models.WatermarkInfo(enabled=enabled if isinstance(enabled, bool) else None)


def _first(data: Mapping[str, Any], result: Mapping[str, Any], key: str) -> Any:
    value = data.get(key)
    return result.get(key) if value is None or value == "" else value


def _task_id(data: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = data.get(key)
        if value is None or value == "":
            continue
        text = _text(value)
        if text is None:
            raise ResponseDecodeError(f"the task's {key} is not a string or an integer")
        return text
    raise ResponseDecodeError(f"the task object has no {' or '.join(keys)}")


def _classic_outputs(
    result: Mapping[str, Any],
) -> tuple[
    tuple[VideoOutput, ...],
    tuple[ImageOutput, ...],
    tuple[ImageOutput, ...],
    tuple[AudioOutput, ...],
]:
    """Videos, images, series images and audios of a classic ``task_result``."""
    return (
        tuple(_video(v) for v in _entries(result.get("videos"))),
        tuple(_image(v, i) for i, v in enumerate(_entries(result.get("images")))),
        tuple(_image(v, i) for i, v in enumerate(_entries(result.get("series_images")))),
        tuple(_audio(v) for v in _entries(result.get("audios"))),
    )


#: Outputs of a task still running: its ``task_result`` is empty.
_NO_OUTPUTS = ((), (), (), ())


def _classic_task(
    endpoint: str, data: Mapping[str, Any], request_id: str | None, external_id: str | None
) -> Task:
    info = _mapping(data.get("task_info"))
    result = _mapping(data.get("task_result"))
    parent = info.get("parent_video")
    raw_status = data.get("task_status")
    try:
        task_id = _task_id(data, "task_id")
    except ResponseDecodeError:
        task_id = _task_id(info, "task_id")  # seed 003 puts it in task_info once
    # A running task's result is empty (most queries): nothing to read in it.
    videos, images, series_images, audios = _classic_outputs(result) if result else _NO_OUTPUTS
    units = data.get("final_unit_deduction")
    watermark = data.get("watermark_info")
    return Task(
        id=task_id,
        endpoint=endpoint,
        status=TaskStatus.parse(raw_status),
        raw_status=raw_status if isinstance(raw_status, str) else "",
        external_id=_text(info.get("external_task_id"))
        or _text(data.get("external_task_id"))
        or external_id,
        message=_str(data.get("task_status_msg")) or "",
        # Seeds 003/004 print the times inside task_result; the others beside it.
        created_at=ms_to_datetime(_first(data, result, "created_at")),
        updated_at=ms_to_datetime(_first(data, result, "updated_at")),
        videos=videos,
        images=images,
        series_images=series_images,
        audios=audios,
        units=None if units is None else _float(units),
        parent_video=ParentVideo(
            id=_text(parent.get("id")),
            url=_str(parent.get("url")),
            duration=_float(parent.get("duration")),
        )
        if isinstance(parent, Mapping)
        else None,
        request_id=request_id,
        result_type=_str(result.get("result_type")) if result else None,
        watermark_info=None if watermark is None else _watermark(watermark),
        raw=data,
    )


def _turbo_task(
    endpoint: str, data: Mapping[str, Any], request_id: str | None, external_id: str | None
) -> Task:
    videos: list[VideoOutput] = []
    images: list[ImageOutput] = []
    audios: list[AudioOutput] = []
    outputs = data.get("outputs")
    if outputs:  # none while the task runs
        for item in _entries(outputs):
            kind = item.get("type")
            kind = kind.lower() if isinstance(kind, str) else "video"
            if kind == "image":
                images.append(_image(item, len(images)))
            elif kind == "audio":
                audios.append(_audio(item))
            else:
                videos.append(_video(item))
    lines = data.get("billing")
    billing = (
        tuple(
            Charge(
                amount=_float(charge.get("amount")),
                charge_type=_str(charge.get("charge_type")),
                package_type=_str(charge.get("package_type")),
            )
            for charge in _entries(lines)
        )
        if lines
        else ()
    )
    amounts = [c.amount for c in billing if c.amount is not None]
    raw_status = data.get("status")
    watermark = data.get("watermark_info")
    return Task(
        id=_task_id(data, "id", "task_id"),
        endpoint=endpoint,
        status=TaskStatus.parse(raw_status),
        raw_status=raw_status if isinstance(raw_status, str) else "",
        external_id=_text(data.get("external_id"))
        or _text(data.get("external_task_id"))
        or external_id,
        message=_str(data.get("message")) or "",
        created_at=ms_to_datetime(data.get("create_time")),
        updated_at=ms_to_datetime(data.get("update_time")),
        videos=tuple(videos),
        images=tuple(images),
        audios=tuple(audios),
        units=math.fsum(amounts) if amounts else None,
        request_id=request_id,
        watermark_info=None if watermark is None else _watermark(watermark),
        billing=billing,
        raw=data,
    )


def parse_task(
    endpoint: Endpoint | str,
    data: Any,
    *,
    request_id: str | None = None,
    external_id: str | None = None,
) -> Task:
    """Normalise a task object (the envelope's ``data``, or a callback body).

    The shape is taken from the endpoint when given, else guessed from the keys.
    Hostile input never raises a foreign exception: ill-typed optional fields are
    dropped (the whole object stays in ``Task.raw``).

    Args:
        endpoint: The endpoint (or its name) the task belongs to.
        data: The task object.
        request_id: The envelope's ``request_id``, kept on the task.
        external_id: The ``external_task_id`` the caller used (turbo answers may
            not repeat it), used when the object carries none.

    Returns:
        The task.

    Raises:
        ResponseDecodeError: ``data`` is not an object, or has no usable task id.
    """
    if type(data) is not dict and not isinstance(data, Mapping):
        raise ResponseDecodeError("the task is not a JSON object")
    if isinstance(endpoint, Endpoint):
        name, turbo = endpoint.name, endpoint.shape is Shape.TURBO
    else:
        name, turbo = endpoint, "task_id" not in data and ("id" in data or "status" in data)
    request_id = request_id if isinstance(request_id, str) and request_id else None
    if turbo:
        return _turbo_task(name, data, request_id, external_id)
    return _classic_task(name, data, request_id, external_id)


def parse_face_session(data: Any) -> FaceSession:
    """Normalise identify-face's ``data``.

    Args:
        data: The envelope's ``data``.

    Returns:
        The session id and faces (faces without an id are skipped).

    Raises:
        ResponseDecodeError: ``data`` is not an object or has no session id.
    """
    if not isinstance(data, Mapping):
        raise ResponseDecodeError("identify-face answer is not a JSON object")
    session_id = _text(data.get("session_id"))
    if session_id is None:
        raise ResponseDecodeError("identify-face answer has no session_id")
    faces = []
    for item in _entries(data.get("face_data")):
        face_id = _text(item.get("face_id"))
        if face_id is None:
            continue
        faces.append(
            Face(
                face_id=face_id,
                face_image=_str(item.get("face_image")),
                start_time=_int(item.get("start_time")),
                end_time=_int(item.get("end_time")),
            )
        )
    return FaceSession(session_id=session_id, faces=tuple(faces), raw=data)
