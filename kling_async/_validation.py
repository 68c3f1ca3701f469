"""Client-side validation of every documented limit, as pure functions over wire dicts.

:func:`validate_payload` checks a JSON body (the API's own field names) for one
endpoint and returns *every* problem found, each with its path in wire names
(``multi_prompt[1].duration``, ``options.external_task_id``, ``image_list[0].type``).
The session runs it before sending (unless ``ClientConfig.validate`` is off), and
the fake gateway runs the same function to answer HTTP 400 / code 1201.
:func:`validate_request` does the same for a request model.

Decisions where the seeds are silent or disagree (see ``docs/validation.md``):

* Empty strings in optional fields count as unset (the seeds' own examples send
  ``"external_task_id": ""`` and ``"callback_url": ""``). In list entries and in
  required fields an empty string is a problem.
* Numbers may arrive as JSON numbers or numeric strings; both are normalised
  before checking, and non-numeric strings are reported.
* ``duration`` accepts 3 to 15 seconds; only models the seeds document as older
  (version below 2: ``kling-v1``, ``kling-v1-5``, ``kling-v1-6``, ``MaaS_KL_V1*``,
  ``MaaS_KeLing_V1.6``) and multi-image-to-video are held to 5 or 10. An unset
  ``model_name`` is not assumed to be the documented default ``kling-v1``.
* ``sound: "on"`` is refused for models before 2.6 ("only V2.6 and above") and
  ``mode: "4k"`` for version-1 models; parameters a model merely ignores
  (``cfg_scale`` on 2.x) are not flagged.
* ``external_task_id``: at most :data:`EXTERNAL_TASK_ID_MAX_LENGTH` characters,
  no whitespace, ``/`` or ``,``: the SDK looks tasks up by it in a URL path and in
  turbo's comma-separated batch query.
* Image values that are ``http(s)`` URLs are not fetched; anything else must be
  plain base64 and is decoded and checked (format, size, dimensions, aspect).
* Fields the model classes do not know are reported as unknown.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from . import _models as m
from ._converter import to_payload
from ._endpoints import Endpoint, endpoint_for, endpoint_for_request
from ._errors import Problem
from ._media import (
    SOUND_FILE_MAX_BYTES,
    ImageInfo,
    check_audio_value,
    check_image_value,
    is_url,
)

__all__ = [
    "EXTERNAL_TASK_ID_MAX_LENGTH",
    "PROMPT_MAX_LENGTH",
    "model_version",
    "validate_payload",
    "validate_request",
]

#: Longest ``prompt`` / ``negative_prompt``.
PROMPT_MAX_LENGTH = 2500
#: Longest prompt of one shot of ``multi_prompt``.
SHOT_PROMPT_MAX_LENGTH = 512
#: Longest text-to-audio prompt.
AUDIO_PROMPT_MAX_LENGTH = 200
#: Longest ``external_task_id`` the SDK accepts (not documented by the API; chosen to
#: fit usual id columns while leaving room for a batch id plus a hashed job key).
EXTERNAL_TASK_ID_MAX_LENGTH = 64

_VIDEO_ASPECTS = ("16:9", "9:16", "1:1")
_IMAGE_ASPECTS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9")
_OMNI_IMAGE_ASPECTS = (*_IMAGE_ASPECTS, "auto")
_SOUND = ("on", "off")
_MODES_V3 = ("std", "pro", "4k")
_MODES = ("std", "pro")
_SHOT_TYPES = ("customize", "intelligence")
_CAMERA_TYPES = ("simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward")
_CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")
_OMNI_FRAME_TYPES = ("first_frame", "end_frame")
_REFER_TYPES = ("feature", "base")
_YES_NO = ("yes", "no")
_IMAGE_RESOLUTIONS = ("1k", "2k")
_OMNI_IMAGE_RESOLUTIONS = ("1k", "2k", "4k")
_RESULT_TYPES = ("single", "series")
_TURBO_RESOLUTIONS = ("720p", "1080p")
_TURBO_CONTENT_TYPES = ("prompt", "first_frame")
_DURATIONS = frozenset(range(3, 16))
_OLD_DURATIONS = frozenset({5, 10})
_DEFAULT_DURATION = 5

# Compiled once: validation runs on every create.
_VERSION_RE = re.compile(r"(?:^|[-_])v?(\d+)(?:[.-](\d+))?(?=$|[-_])", re.IGNORECASE)
_VOICE_REF_RE = re.compile(r"<<<voice_(\d+)>>>")
_BAD_ID_CHARS_RE = re.compile(r"[\s/,\x00-\x1f\x7f]")

_Problems = list[Problem]


def _fields(cls: type[Any]) -> frozenset[str]:
    return frozenset(a.name for a in attrs.fields(cls))


_KEYS_SHOT = _fields(m.Shot)
_KEYS_CAMERA = _fields(m.CameraControl)
_KEYS_CAMERA_CONFIG = _fields(m.CameraConfig)
_KEYS_DYNAMIC_MASK = _fields(m.DynamicMask)
_KEYS_POINT = _fields(m.TrajectoryPoint)
_KEYS_ELEMENT = _fields(m.Element)
_KEYS_VOICE = _fields(m.VoiceRef)
_KEYS_IMAGE_REF = _fields(m.ImageRef)
_KEYS_OMNI_IMAGE = _fields(m.OmniImageRef)
_KEYS_VIDEO_REF = _fields(m.VideoRef)
_KEYS_FACE = _fields(m.FaceChoice)
_KEYS_WATERMARK = _fields(m.WatermarkInfo)
_KEYS_TURBO_SETTINGS = _fields(m.TurboSettings)
_KEYS_TURBO_OPTIONS = _fields(m.TurboOptions)
_KEYS_TURBO_CONTENT = _fields(m.TurboContent)


# --- primitives -------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _one_of(allowed: Sequence[str]) -> str:
    return ", ".join(allowed)


def _unknown(p: _Problems, obj: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
    for key in obj:
        if key not in allowed:
            p.append(Problem(f"{prefix}{key}", "unknown field"))


def _absent(obj: Mapping[str, Any], key: str) -> bool:
    """Whether a field is unset (missing, null or ``""``), as opposed to merely invalid."""
    value = obj.get(key)
    return value is None or value == ""


def _text(
    p: _Problems,
    obj: Mapping[str, Any],
    key: str,
    path: str,
    *,
    max_len: int | None = None,
    required: str | None = None,
) -> str | None:
    """Return a string field, ``None`` when unset or ``""``; ``required`` is the reason."""
    value = obj.get(key)
    if value is None or value == "":
        if required is not None:
            p.append(Problem(path, f"required{required}"))
        return None
    if not isinstance(value, str):
        p.append(Problem(path, f"must be a string, got {_kind(value)}"))
        return None
    if max_len is not None and len(value) > max_len:
        p.append(Problem(path, f"is {len(value)} characters; at most {max_len} allowed"))
    return value


def _entry_text(p: _Problems, obj: Mapping[str, Any], key: str, path: str) -> str | None:
    """A string that must be present and non-empty (list entries, ids)."""
    value = obj.get(key)
    if value is None:
        p.append(Problem(path, "required"))
        return None
    if not isinstance(value, str):
        p.append(Problem(path, f"must be a string, got {_kind(value)}"))
        return None
    if not value.strip():
        p.append(Problem(path, "must not be empty"))
        return None
    return value


def _enum(
    p: _Problems, obj: Mapping[str, Any], key: str, path: str, allowed: Sequence[str]
) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        p.append(Problem(path, f"must be one of {_one_of(allowed)}, got {_kind(value)}"))
        return None
    if value not in allowed:
        p.append(Problem(path, f"{_show(value)} is not one of {_one_of(allowed)}"))
        return None
    return value


def _to_number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _number(
    p: _Problems,
    value: Any,
    path: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    integer: bool = False,
) -> float | int | None:
    """Normalise a number (JSON number or numeric string) and check its range."""
    number = _to_number(value)
    if number is None:
        what = "a whole number" if integer else "a number"
        p.append(
            Problem(
                path,
                f"must be {what}, got {_show(value) if isinstance(value, str) else _kind(value)}",
            )
        )
        return None
    if integer and isinstance(number, float):
        if not number.is_integer():
            p.append(Problem(path, f"must be a whole number, got {number:g}"))
            return None
        number = int(number)
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        if lo is not None and hi is not None:
            rule = f"must be between {lo:g} and {hi:g}"
        elif lo is not None:
            rule = f"must be at least {lo:g}"
        else:
            rule = f"must be at most {hi:g}"
        p.append(Problem(path, f"{rule}, got {number:g}"))
        return None
    return number


def _opt_number(
    p: _Problems,
    obj: Mapping[str, Any],
    key: str,
    path: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    integer: bool = False,
) -> float | int | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    return _number(p, value, path, lo=lo, hi=hi, integer=integer)


def _req_int(
    p: _Problems, obj: Mapping[str, Any], key: str, path: str, *, lo: int | None = None
) -> int | None:
    value = obj.get(key)
    if value is None or value == "":
        p.append(Problem(path, "required"))
        return None
    number = _number(p, value, path, lo=lo, integer=True)
    return None if number is None else int(number)


def _obj(p: _Problems, value: Any, path: str) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    p.append(Problem(path, f"must be an object, got {_kind(value)}"))
    return None


def _list(p: _Problems, obj: Mapping[str, Any], key: str, path: str) -> list[Any] | None:
    """Return a list field (``None`` when unset); anything but a list is a problem."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        p.append(Problem(path, f"must be a list, got {_kind(value)}"))
        return None
    return value


def _bool(p: _Problems, obj: Mapping[str, Any], key: str, path: str) -> bool | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        p.append(Problem(path, f"must be true or false, got {_kind(value)}"))
        return None
    return value


@functools.lru_cache(maxsize=256)
def model_version(model_name: str) -> tuple[int, int] | None:
    """Read the major and minor version out of a model name.

    ``kling-v1-6`` → (1, 6), ``MaaS_KL_V1.5`` → (1, 5), ``kling-v2-master`` → (2, 0),
    ``kling-v2.6`` → (2, 6), ``MaaS_KeLing_3.0_video`` → (3, 0); names without a
    version (``MaaS_KeLing_O3``) give ``None``.

    Args:
        model_name: The ``model_name`` value.

    Returns:
        ``(major, minor)``, or ``None`` when the name carries no version.
    """
    match = _VERSION_RE.search(model_name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


# --- shared field groups ----------------------------------------------------------------


def _model(p: _Problems, payload: Mapping[str, Any]) -> tuple[int, int] | None:
    name = _text(p, payload, "model_name", "model_name")
    return None if name is None else model_version(name.strip())


def _external_id(p: _Problems, obj: Mapping[str, Any], path: str) -> None:
    value = _text(p, obj, "external_task_id", path)
    if value is None:
        return
    if len(value) > EXTERNAL_TASK_ID_MAX_LENGTH:
        p.append(
            Problem(
                path, f"is {len(value)} characters; at most {EXTERNAL_TASK_ID_MAX_LENGTH} allowed"
            )
        )
    if _BAD_ID_CHARS_RE.search(value):
        p.append(
            Problem(
                path,
                "must not contain whitespace, control characters, '/' or ',' "
                "(it is used to look the task up in a URL)",
            )
        )


def _callback(p: _Problems, obj: Mapping[str, Any], path: str) -> None:
    value = _text(p, obj, "callback_url", path)
    if value is not None and not is_url(value):
        p.append(Problem(path, "must be an http:// or https:// URL"))


def _watermark(p: _Problems, obj: Mapping[str, Any], path: str) -> None:
    value = obj.get("watermark_info")
    if value is None:
        return
    info = _obj(p, value, path)
    if info is not None:
        _unknown(p, info, _KEYS_WATERMARK, f"{path}.")
        _bool(p, info, "enabled", f"{path}.enabled")


def _common(p: _Problems, payload: Mapping[str, Any]) -> None:
    """``external_task_id``, ``callback_url`` and ``watermark_info`` of classic bodies."""
    _external_id(p, payload, "external_task_id")
    _callback(p, payload, "callback_url")
    _watermark(p, payload, "watermark_info")


def _duration(
    p: _Problems,
    obj: Mapping[str, Any],
    key: str,
    path: str,
    allowed: frozenset[int],
    why: str = "",
) -> int | None:
    """Return the task's duration in seconds (the default 5 when unset), ``None`` if bad."""
    value = obj.get(key)
    if value is None or value == "":
        return _DEFAULT_DURATION
    number = _number(p, value, path, integer=True)
    if number is None:
        return None
    seconds = int(number)
    if seconds not in allowed:
        listed = ", ".join(str(s) for s in sorted(allowed))
        p.append(Problem(path, f"{seconds} is not one of {listed} seconds{why}"))
        return None
    return seconds


def _video_duration(
    p: _Problems, payload: Mapping[str, Any], version: tuple[int, int] | None
) -> int | None:
    if version is not None and version[0] < 2:
        return _duration(p, payload, "duration", "duration", _OLD_DURATIONS, " (version-1 models)")
    return _duration(p, payload, "duration", "duration", _DURATIONS)


def _mode(
    p: _Problems, payload: Mapping[str, Any], version: tuple[int, int] | None, allow_4k: bool
) -> None:
    mode = _enum(p, payload, "mode", "mode", _MODES_V3 if allow_4k else _MODES)
    if mode == "4k" and version is not None and version[0] < 2:
        p.append(Problem("mode", "4k is not available for version-1 models (std or pro)"))


def _sound(p: _Problems, payload: Mapping[str, Any], version: tuple[int, int] | None) -> str | None:
    sound = _enum(p, payload, "sound", "sound", _SOUND)
    if sound == "on" and version is not None and version < (2, 6):
        p.append(Problem("sound", "'on' needs a model of version 2.6 or later"))
    return sound


def _prompts(
    p: _Problems, payload: Mapping[str, Any], *, required: str | None = None
) -> str | None:
    prompt = _text(p, payload, "prompt", "prompt", max_len=PROMPT_MAX_LENGTH, required=required)
    _text(p, payload, "negative_prompt", "negative_prompt", max_len=PROMPT_MAX_LENGTH)
    return prompt


def _multi_shot(
    p: _Problems,
    payload: Mapping[str, Any],
    total: int | None,
    *,
    prompt_required: bool,
) -> list[tuple[str, str]]:
    """Check multi_shot / shot_type / multi_prompt; return the shots' (path, prompt)."""
    multi = _bool(p, payload, "multi_shot", "multi_shot") is True
    shot_type = _enum(p, payload, "shot_type", "shot_type", _SHOT_TYPES)
    shots = _list(p, payload, "multi_prompt", "multi_prompt")
    if not multi:
        if shot_type is not None:
            p.append(Problem("shot_type", "only used when multi_shot is true"))
        if shots:
            p.append(Problem("multi_prompt", "only used when multi_shot is true"))
        if prompt_required and _absent(payload, "prompt"):
            p.append(
                Problem("prompt", "required unless multi_shot is true with shot_type customize")
            )
        return []
    if payload.get("shot_type") in (None, ""):
        p.append(
            Problem("shot_type", "required when multi_shot is true (customize or intelligence)")
        )
    if shot_type == "intelligence" and _absent(payload, "prompt"):
        p.append(Problem("prompt", "required when shot_type is intelligence"))
    if shot_type == "customize" and not shots:
        p.append(Problem("multi_prompt", "required (1 to 6 shots) when shot_type is customize"))
    if not shots:
        return []
    if len(shots) > 6:
        p.append(Problem("multi_prompt", f"{len(shots)} shots; at most 6 allowed"))
    texts: list[tuple[str, str]] = []
    durations: list[int] = []
    bad_duration = False
    seen_index: set[int] = set()
    for i, raw in enumerate(shots):
        path = f"multi_prompt[{i}]"
        shot = _obj(p, raw, path)
        if shot is None:
            bad_duration = True
            continue
        _unknown(p, shot, _KEYS_SHOT, f"{path}.")
        if shot.get("index") is not None:
            index = _number(p, shot["index"], f"{path}.index", lo=0, integer=True)
            if index is not None:
                if int(index) in seen_index:
                    p.append(Problem(f"{path}.index", f"shot index {int(index)} is used twice"))
                seen_index.add(int(index))
        text = _text(
            p,
            shot,
            "prompt",
            f"{path}.prompt",
            max_len=SHOT_PROMPT_MAX_LENGTH,
            required=" for every shot",
        )
        if text is not None:
            texts.append((f"{path}.prompt", text))
        seconds = _req_int(p, shot, "duration", f"{path}.duration", lo=1)
        if seconds is None:
            bad_duration = True
            continue
        if total is not None and seconds > total:
            p.append(
                Problem(
                    f"{path}.duration",
                    f"shot lasts {seconds} s, longer than the task duration {total} s",
                )
            )
        durations.append(seconds)
    if total is not None and not bad_duration and sum(durations) != total:
        last = len(shots) - 1
        p.append(
            Problem(
                f"multi_prompt[{last}].duration",
                f"shot durations add up to {sum(durations)}, task duration is {total}",
            )
        )
    return texts


def _voices(
    p: _Problems, payload: Mapping[str, Any], sound: str | None, texts: Sequence[tuple[str, str]]
) -> None:
    voices = _list(p, payload, "voice_list", "voice_list")
    count = 0
    if voices:
        count = len(voices)
        if count > 2:
            p.append(Problem("voice_list", f"{count} voices; at most 2 per task"))
        for i, raw in enumerate(voices):
            voice = _obj(p, raw, f"voice_list[{i}]")
            if voice is not None:
                _unknown(p, voice, _KEYS_VOICE, f"voice_list[{i}].")
                _entry_text(p, voice, "voice_id", f"voice_list[{i}].voice_id")
        if sound != "on":
            p.append(Problem("sound", "must be 'on' when voice_list is used"))
    for where, text in texts:
        if "<<<voice_" not in text:
            continue
        for ref in _VOICE_REF_RE.findall(text):
            if not 1 <= int(ref) <= count:
                p.append(
                    Problem(
                        where, f"refers to <<<voice_{ref}>>> but voice_list has {count} voice(s)"
                    )
                )


def _camera(p: _Problems, payload: Mapping[str, Any]) -> None:
    raw = payload.get("camera_control")
    if raw is None:
        return
    control = _obj(p, raw, "camera_control")
    if control is None:
        return
    _unknown(p, control, _KEYS_CAMERA, "camera_control.")
    kind = _enum(p, control, "type", "camera_control.type", _CAMERA_TYPES)
    config = control.get("config")
    if kind is not None and kind != "simple":
        if config is not None and config != {}:
            p.append(Problem("camera_control.config", f"only allowed with type simple, not {kind}"))
        return
    if config is None:
        if kind == "simple":
            p.append(Problem("camera_control.config", "required when type is simple"))
        return
    cfg = _obj(p, config, "camera_control.config")
    if cfg is None:
        return
    _unknown(p, cfg, _KEYS_CAMERA_CONFIG, "camera_control.config.")
    non_zero: list[str] = []
    valid = True
    for axis in _CAMERA_AXES:
        value = cfg.get(axis)
        if value is None:
            continue
        number = _number(p, value, f"camera_control.config.{axis}", lo=-10, hi=10)
        if number is None:
            valid = False
        elif number != 0:
            non_zero.append(axis)
    if valid and len(non_zero) != 1:
        found = f"{len(non_zero)}: {', '.join(non_zero)}" if non_zero else "none"
        p.append(
            Problem(
                "camera_control.config",
                f"exactly one of {', '.join(_CAMERA_AXES)} must be non-zero (found {found})",
            )
        )


def _elements(p: _Problems, payload: Mapping[str, Any]) -> int:
    elements = _list(p, payload, "element_list", "element_list")
    if not elements:
        return 0
    for i, raw in enumerate(elements):
        path = f"element_list[{i}]"
        element = _obj(p, raw, path)
        if element is not None:
            _unknown(p, element, _KEYS_ELEMENT, f"{path}.")
            _req_int(p, element, "element_id", f"{path}.element_id")
    return len(elements)


def _image(
    p: _Problems, value: str | None, path: str, *, dimensions: bool = True
) -> ImageInfo | None:
    if value is None:
        return None
    problems, info = check_image_value(value, path, dimensions=dimensions)
    p.extend(problems)
    return info


def _too_many_refs(
    p: _Problems, elements: int, images: int, limit: int, image_field: str, why: str = ""
) -> None:
    if elements + images > limit:
        path = "element_list" if elements else image_field
        p.append(
            Problem(
                path,
                f"{elements} subject(s) + {images} image(s) = {elements + images}; "
                f"at most {limit} together{why}",
            )
        )


# --- families -----------------------------------------------------------------------------


def _with_prompt(prompt: str | None, shots: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return shots if prompt is None else [("prompt", prompt), *shots]


def _text2video(p: _Problems, payload: Mapping[str, Any]) -> None:
    version = _model(p, payload)
    prompt = _prompts(p, payload)
    total = _video_duration(p, payload, version)
    shot_texts = _multi_shot(p, payload, total, prompt_required=True)
    sound = _sound(p, payload, version)
    _voices(p, payload, sound, _with_prompt(prompt, shot_texts))
    _opt_number(p, payload, "cfg_scale", "cfg_scale", lo=0, hi=1)
    _mode(p, payload, version, allow_4k=True)
    _enum(p, payload, "aspect_ratio", "aspect_ratio", _VIDEO_ASPECTS)
    _camera(p, payload)
    _common(p, payload)


def _same_aspect(a: ImageInfo, b: ImageInfo) -> bool:
    if not (a.width and a.height and b.width and b.height):
        return True
    return abs(a.width * b.height - b.width * a.height) <= 0.01 * a.width * b.height


def _masks(p: _Problems, payload: Mapping[str, Any], image: ImageInfo | None) -> None:
    masks: list[tuple[str, ImageInfo]] = []
    static = _text(p, payload, "static_mask", "static_mask")
    info = _image(p, static, "static_mask", dimensions=False)
    if info is not None:
        masks.append(("static_mask", info))
    groups = _list(p, payload, "dynamic_masks", "dynamic_masks")
    if groups:
        if len(groups) > 6:
            p.append(Problem("dynamic_masks", f"{len(groups)} groups; at most 6 allowed"))
        for i, raw in enumerate(groups):
            path = f"dynamic_masks[{i}]"
            group = _obj(p, raw, path)
            if group is None:
                continue
            _unknown(p, group, _KEYS_DYNAMIC_MASK, f"{path}.")
            mask = _entry_text(p, group, "mask", f"{path}.mask")
            info = _image(p, mask, f"{path}.mask", dimensions=False)
            if info is not None:
                masks.append((f"{path}.mask", info))
            points = _list(p, group, "trajectories", f"{path}.trajectories")
            if points is None:
                if "trajectories" not in group:
                    p.append(Problem(f"{path}.trajectories", "required (2 to 77 points)"))
                continue
            if not 2 <= len(points) <= 77:
                p.append(Problem(f"{path}.trajectories", f"{len(points)} points; 2 to 77 allowed"))
            for j, raw_point in enumerate(points):
                point_path = f"{path}.trajectories[{j}]"
                point = _obj(p, raw_point, point_path)
                if point is not None:
                    _unknown(p, point, _KEYS_POINT, f"{point_path}.")
                    _req_int(p, point, "x", f"{point_path}.x", lo=0)
                    _req_int(p, point, "y", f"{point_path}.y", lo=0)
    first: tuple[str, ImageInfo] | None = None
    for path, info in masks:
        if image is not None and not _same_aspect(image, info):
            p.append(
                Problem(
                    path,
                    f"mask is {info.width}x{info.height} px; its aspect ratio must match "
                    f"the image ({image.width}x{image.height} px)",
                )
            )
        if first is None:
            first = (path, info)
        elif (info.width, info.height) != (first[1].width, first[1].height):
            p.append(
                Problem(
                    path,
                    f"mask is {info.width}x{info.height} px; all masks must have the same "
                    f"resolution ({first[0]} is {first[1].width}x{first[1].height} px)",
                )
            )


def _image2video(p: _Problems, payload: Mapping[str, Any]) -> None:
    version = _model(p, payload)
    image = _text(p, payload, "image", "image")
    tail = _text(p, payload, "image_tail", "image_tail")
    if _absent(payload, "image") and _absent(payload, "image_tail"):
        p.append(Problem("image", "image or image_tail is required (both are empty)"))
    info = _image(p, image, "image")
    _image(p, tail, "image_tail")
    # Prompt is optional for a single shot: seeds 003/004 say so (seed 000 disagrees).
    prompt = _prompts(p, payload)
    total = _video_duration(p, payload, version)
    shot_texts = _multi_shot(p, payload, total, prompt_required=False)
    elements = _elements(p, payload)
    _too_many_refs(p, elements, (image is not None) + (tail is not None), 10, "image")
    sound = _sound(p, payload, version)
    _voices(p, payload, sound, _with_prompt(prompt, shot_texts))
    _opt_number(p, payload, "cfg_scale", "cfg_scale", lo=0, hi=1)
    _mode(p, payload, version, allow_4k=True)
    _enum(p, payload, "aspect_ratio", "aspect_ratio", _VIDEO_ASPECTS)
    _masks(p, payload, info)
    _camera(p, payload)
    _common(p, payload)


def _omni_video(p: _Problems, payload: Mapping[str, Any]) -> None:
    version = _model(p, payload)
    _text(p, payload, "prompt", "prompt", max_len=PROMPT_MAX_LENGTH)
    total = _video_duration(p, payload, version)
    _multi_shot(p, payload, total, prompt_required=True)

    videos = _list(p, payload, "video_list", "video_list") or []
    if len(videos) > 1:
        p.append(Problem("video_list", f"{len(videos)} videos; at most 1 reference video"))
    base_video = False
    for i, raw in enumerate(videos):
        path = f"video_list[{i}]"
        video = _obj(p, raw, path)
        if video is None:
            continue
        _unknown(p, video, _KEYS_VIDEO_REF, f"{path}.")
        url = _entry_text(p, video, "video_url", f"{path}.video_url")
        if url is not None and not is_url(url):
            p.append(Problem(f"{path}.video_url", "must be an http:// or https:// URL"))
        # An unset refer_type means "base" (the video to edit), per the seed.
        refer = _enum(p, video, "refer_type", f"{path}.refer_type", _REFER_TYPES)
        if refer == "base" or (refer is None and not video.get("refer_type")):
            base_video = True
        _enum(p, video, "keep_original_sound", f"{path}.keep_original_sound", _YES_NO)
    has_video = bool(videos)

    images = _list(p, payload, "image_list", "image_list") or []
    first_frames: list[int] = []
    end_frames: list[int] = []
    for i, raw in enumerate(images):
        path = f"image_list[{i}]"
        ref = _obj(p, raw, path)
        if ref is None:
            continue
        _unknown(p, ref, _KEYS_OMNI_IMAGE, f"{path}.")
        _image(p, _entry_text(p, ref, "image_url", f"{path}.image_url"), f"{path}.image_url")
        kind = _enum(p, ref, "type", f"{path}.type", _OMNI_FRAME_TYPES)
        if kind == "first_frame":
            first_frames.append(i)
        elif kind == "end_frame":
            end_frames.append(i)
    for i in first_frames[1:]:
        p.append(Problem(f"image_list[{i}].type", "only one first_frame image is allowed"))
    for i in end_frames[1:]:
        p.append(Problem(f"image_list[{i}].type", "only one end_frame image is allowed"))
    if end_frames and not first_frames:
        p.append(
            Problem(
                f"image_list[{end_frames[0]}].type", "an end_frame needs a first_frame image too"
            )
        )
    if end_frames and len(images) > 2:
        p.append(
            Problem(
                f"image_list[{end_frames[0]}].type",
                f"an end_frame is not supported with more than 2 images ({len(images)} given)",
            )
        )
    frames = first_frames + end_frames
    if frames and base_video:
        p.append(
            Problem(
                f"image_list[{min(frames)}].type",
                "first/end frames cannot be used with a video to edit "
                "(refer_type base, the default)",
            )
        )

    elements = _elements(p, payload)
    if has_video:
        _too_many_refs(p, elements, len(images), 4, "image_list", " with a reference video")
    else:
        _too_many_refs(p, elements, len(images), 7, "image_list", " without a reference video")
    if first_frames and elements > 3:
        p.append(
            Problem("element_list", f"{elements} subjects; at most 3 with a first/end frame image")
        )

    sound = _enum(p, payload, "sound", "sound", _SOUND)
    if sound == "on" and has_video:
        p.append(Problem("sound", "must be 'off' with a reference video (video_list)"))
    _enum(p, payload, "mode", "mode", _MODES)
    aspect = _enum(p, payload, "aspect_ratio", "aspect_ratio", _VIDEO_ASPECTS)
    if aspect is None and not payload.get("aspect_ratio") and not first_frames and not base_video:
        p.append(
            Problem(
                "aspect_ratio", "required unless a first_frame image or a video to edit is given"
            )
        )
    _common(p, payload)


def _video_extend(p: _Problems, payload: Mapping[str, Any]) -> None:
    _text(p, payload, "video_id", "video_id", required=" (the id of a generated video)")
    _prompts(p, payload)
    _opt_number(p, payload, "cfg_scale", "cfg_scale", lo=0, hi=1)
    _common(p, payload)


def _multi_image2video(p: _Problems, payload: Mapping[str, Any]) -> None:
    _model(p, payload)
    images = _list(p, payload, "image_list", "image_list")
    if not images:
        p.append(Problem("image_list", "required (1 to 4 images)"))
    else:
        if len(images) > 4:
            p.append(Problem("image_list", f"{len(images)} images; at most 4 allowed"))
        for i, raw in enumerate(images):
            path = f"image_list[{i}]"
            ref = _obj(p, raw, path)
            if ref is not None:
                _unknown(p, ref, _KEYS_IMAGE_REF, f"{path}.")
                _image(p, _entry_text(p, ref, "image", f"{path}.image"), f"{path}.image")
    _prompts(p, payload, required="")
    _duration(p, payload, "duration", "duration", _OLD_DURATIONS, " (multi-image-to-video)")
    _enum(p, payload, "mode", "mode", _MODES)
    _enum(p, payload, "aspect_ratio", "aspect_ratio", _VIDEO_ASPECTS)
    _common(p, payload)


def _one_of_two(
    p: _Problems, obj: Mapping[str, Any], a: str, b: str, prefix: str = ""
) -> str | None:
    """Exactly one of ``a`` and ``b``; returns the one set (``None`` if not exactly one)."""
    valid_a = _text(p, obj, a, f"{prefix}{a}") is not None
    valid_b = _text(p, obj, b, f"{prefix}{b}") is not None
    has_a, has_b = not _absent(obj, a), not _absent(obj, b)
    if has_a and has_b:
        p.append(Problem(f"{prefix}{b}", f"give exactly one of {a} and {b}, not both"))
        return None
    if not (has_a or has_b):
        p.append(Problem(f"{prefix}{a}", f"give exactly one of {a} and {b} (both are empty)"))
        return None
    if (has_a and not valid_a) or (has_b and not valid_b):
        return None
    return a if has_a else b


def _identify_face(p: _Problems, payload: Mapping[str, Any]) -> None:
    chosen = _one_of_two(p, payload, "video_id", "video_url")
    if chosen == "video_url" and not is_url(payload["video_url"]):
        p.append(Problem("video_url", "must be an http:// or https:// URL"))


def _lip_sync(p: _Problems, payload: Mapping[str, Any]) -> None:
    _text(p, payload, "session_id", "session_id", required=" (from identify-face)")
    faces = _list(p, payload, "face_choose", "face_choose")
    if not faces:
        p.append(Problem("face_choose", "required: exactly one face"))
    else:
        if len(faces) > 1:
            p.append(Problem("face_choose", f"{len(faces)} faces; exactly one is supported"))
        for i, raw in enumerate(faces):
            path = f"face_choose[{i}]"
            face = _obj(p, raw, path)
            if face is None:
                continue
            _unknown(p, face, _KEYS_FACE, f"{path}.")
            _text(p, face, "face_id", f"{path}.face_id", required=" (from identify-face)")
            if _one_of_two(p, face, "audio_id", "sound_file", f"{path}.") == "sound_file":
                p.extend(
                    check_audio_value(
                        face["sound_file"], f"{path}.sound_file", max_bytes=SOUND_FILE_MAX_BYTES
                    )
                )
            start = _req_int(p, face, "sound_start_time", f"{path}.sound_start_time", lo=0)
            end = _req_int(p, face, "sound_end_time", f"{path}.sound_end_time", lo=0)
            _req_int(p, face, "sound_insert_time", f"{path}.sound_insert_time", lo=0)
            if start is not None and end is not None and not 2000 <= end - start <= 60000:
                p.append(
                    Problem(
                        f"{path}.sound_end_time",
                        f"the clipped audio lasts {end - start} ms; it must last 2000 to 60000 ms",
                    )
                )
            _opt_number(p, face, "sound_volume", f"{path}.sound_volume", lo=0, hi=2)
            _opt_number(
                p, face, "original_audio_volume", f"{path}.original_audio_volume", lo=0, hi=2
            )
    _external_id(p, payload, "external_task_id")
    _callback(p, payload, "callback_url")


def _avatar(p: _Problems, payload: Mapping[str, Any]) -> None:
    _image(
        p, _text(p, payload, "image", "image", required=" (the digital human's picture)"), "image"
    )
    if _one_of_two(p, payload, "audio_id", "sound_file") == "sound_file":
        p.extend(check_audio_value(payload["sound_file"], "sound_file", check_format=False))
    _text(p, payload, "prompt", "prompt", max_len=PROMPT_MAX_LENGTH)
    _enum(p, payload, "mode", "mode", _MODES)
    _external_id(p, payload, "external_task_id")
    _callback(p, payload, "callback_url")


def _image_generation(p: _Problems, payload: Mapping[str, Any]) -> None:
    _model(p, payload)
    _prompts(p, payload, required="")
    image = _text(p, payload, "image", "image")
    _image(p, image, "image")
    if image is not None and payload.get("negative_prompt"):
        p.append(Problem("negative_prompt", "not supported with a reference image (image)"))
    if image is None and _text(p, payload, "image_reference", "image_reference") is not None:
        p.append(Problem("image", "required when image_reference is set"))
    elements = _elements(p, payload)
    _too_many_refs(p, elements, image is not None, 10, "image")
    _enum(p, payload, "resolution", "resolution", _IMAGE_RESOLUTIONS)
    _opt_number(p, payload, "n", "n", lo=1, hi=9, integer=True)
    _enum(p, payload, "aspect_ratio", "aspect_ratio", _IMAGE_ASPECTS)
    _common(p, payload)


def _omni_image(p: _Problems, payload: Mapping[str, Any]) -> None:
    _model(p, payload)
    _text(p, payload, "prompt", "prompt", max_len=PROMPT_MAX_LENGTH, required="")
    images = _list(p, payload, "image_list", "image_list") or []
    for i, raw in enumerate(images):
        path = f"image_list[{i}]"
        ref = _obj(p, raw, path)
        if ref is not None:
            _unknown(p, ref, _KEYS_IMAGE_REF, f"{path}.")
            _image(p, _entry_text(p, ref, "image", f"{path}.image"), f"{path}.image")
    elements = _elements(p, payload)
    _too_many_refs(p, elements, len(images), 10, "image_list")
    _enum(p, payload, "resolution", "resolution", _OMNI_IMAGE_RESOLUTIONS)
    _enum(p, payload, "result_type", "result_type", _RESULT_TYPES)
    _opt_number(p, payload, "n", "n", lo=1, hi=9, integer=True)
    _opt_number(p, payload, "series_amount", "series_amount", lo=2, hi=9, integer=True)
    _enum(p, payload, "aspect_ratio", "aspect_ratio", _OMNI_IMAGE_ASPECTS)
    _common(p, payload)


def _text_to_audio(p: _Problems, payload: Mapping[str, Any]) -> None:
    _text(p, payload, "prompt", "prompt", max_len=AUDIO_PROMPT_MAX_LENGTH, required="")
    value = payload.get("duration")
    if value is None or value == "":
        p.append(Problem("duration", "required (3.0 to 10.0 seconds)"))
    else:
        seconds = _number(p, value, "duration", lo=3.0, hi=10.0)
        if seconds is not None:
            try:
                exponent = Decimal(str(value).strip()).normalize().as_tuple().exponent
            except InvalidOperation:  # pragma: no cover - _number accepted it
                exponent = 0
            if isinstance(exponent, int) and exponent < -1:
                p.append(Problem("duration", f"at most one decimal place, got {value}"))
    _external_id(p, payload, "external_task_id")
    _callback(p, payload, "callback_url")


def _turbo_settings(p: _Problems, payload: Mapping[str, Any]) -> None:
    raw = payload.get("settings")
    if raw is None:
        return
    settings = _obj(p, raw, "settings")
    if settings is None:
        return
    _unknown(p, settings, _KEYS_TURBO_SETTINGS, "settings.")
    _enum(p, settings, "resolution", "settings.resolution", _TURBO_RESOLUTIONS)
    _enum(p, settings, "aspect_ratio", "settings.aspect_ratio", _VIDEO_ASPECTS)
    _duration(p, settings, "duration", "settings.duration", _DURATIONS)


def _turbo_options(p: _Problems, payload: Mapping[str, Any]) -> None:
    raw = payload.get("options")
    if raw is None:
        return
    options = _obj(p, raw, "options")
    if options is None:
        return
    _unknown(p, options, _KEYS_TURBO_OPTIONS, "options.")
    _external_id(p, options, "options.external_task_id")
    _callback(p, options, "options.callback_url")
    _watermark(p, options, "options.watermark_info")


def _turbo_text2video(p: _Problems, payload: Mapping[str, Any]) -> None:
    _text(p, payload, "prompt", "prompt", max_len=PROMPT_MAX_LENGTH, required="")
    _turbo_settings(p, payload)
    _turbo_options(p, payload)


def _turbo_image2video(p: _Problems, payload: Mapping[str, Any]) -> None:
    contents = _list(p, payload, "contents", "contents")
    if not contents:
        p.append(Problem("contents", "required: a first_frame image and optionally a prompt"))
    else:
        first_frames: list[int] = []
        for i, raw in enumerate(contents):
            path = f"contents[{i}]"
            item = _obj(p, raw, path)
            if item is None:
                continue
            _unknown(p, item, _KEYS_TURBO_CONTENT, f"{path}.")
            if item.get("type") is None or item.get("type") == "":
                p.append(Problem(f"{path}.type", f"required ({_one_of(_TURBO_CONTENT_TYPES)})"))
                continue
            kind = _enum(p, item, "type", f"{path}.type", _TURBO_CONTENT_TYPES)
            if kind == "prompt":
                _text(
                    p,
                    item,
                    "text",
                    f"{path}.text",
                    max_len=PROMPT_MAX_LENGTH,
                    required=" for a prompt entry",
                )
            elif kind == "first_frame":
                first_frames.append(i)
                url = _text(p, item, "url", f"{path}.url", required=" for a first_frame entry")
                _image(p, url, f"{path}.url")
        if not first_frames:
            p.append(Problem("contents", "a first_frame entry (with a url) is required"))
        for i in first_frames[1:]:
            p.append(Problem(f"contents[{i}].type", "only one first_frame entry is allowed"))
    _turbo_settings(p, payload)
    _turbo_options(p, payload)


_Validator = Callable[[_Problems, Mapping[str, Any]], None]

_VALIDATORS: dict[type[Any], _Validator] = {
    m.TextToVideoRequest: _text2video,
    m.ImageToVideoRequest: _image2video,
    m.OmniVideoRequest: _omni_video,
    m.VideoExtendRequest: _video_extend,
    m.MultiImageToVideoRequest: _multi_image2video,
    m.IdentifyFaceRequest: _identify_face,
    m.LipSyncRequest: _lip_sync,
    m.AvatarRequest: _avatar,
    m.ImageGenerationRequest: _image_generation,
    m.OmniImageRequest: _omni_image,
    m.TextToAudioRequest: _text_to_audio,
    m.TurboTextToVideoRequest: _turbo_text2video,
    m.TurboImageToVideoRequest: _turbo_image2video,
}
_TOP_KEYS: dict[type[Any], frozenset[str]] = {cls: _fields(cls) for cls in _VALIDATORS}


# --- entry points -------------------------------------------------------------------------


def validate_payload(endpoint: Endpoint | str, payload: Mapping[str, Any]) -> list[Problem]:
    """Check a JSON body against every documented limit of its endpoint.

    Pure and side-effect free: used by the session before sending and by the fake
    gateway (which answers HTTP 400, code 1201, with the problems). URLs are not
    fetched; base64 images are decoded and checked.

    Args:
        endpoint: The endpoint (or its name, alias or path).
        payload: The body, with the API's own field names, as it would be sent.

    Returns:
        Every problem found, in a stable order; empty when the body is valid.

    Raises:
        KeyError: ``endpoint`` is a name no endpoint has.
    """
    ep = endpoint_for(endpoint)
    if not isinstance(payload, Mapping):
        return [Problem("(body)", f"must be a JSON object, got {_kind(payload)}")]
    problems: list[Problem] = []
    cls = ep.request_type
    _unknown(problems, payload, _TOP_KEYS[cls], "")
    _VALIDATORS[cls](problems, payload)
    return problems


def validate_request(
    request: m.Request, *, payload: Mapping[str, Any] | None = None
) -> list[Problem]:
    """Check a request model against every documented limit of its endpoint.

    Args:
        request: A request model instance.
        payload: Its body, when the caller already built it with
            :func:`~kling_async._converter.to_payload` (saves building it twice).

    Returns:
        Every problem found, with wire-name paths; empty when the request is valid.

    Raises:
        TypeError: ``request`` is not one of the request models.
    """
    ep = endpoint_for_request(request)
    if payload is None:
        payload = to_payload(request)
    return validate_payload(ep, payload)
