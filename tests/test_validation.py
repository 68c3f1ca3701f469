"""Client-side validation: every documented limit fails when broken and passes when kept.

Cases are table-driven: each names an endpoint, a body in wire names, and the exact
problems expected (path and a fragment of the message); an empty list means the body
must pass. Images are real PNG/JPEG bytes built here with zlib and struct.
"""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path
from typing import Any

import attrs
import pytest
from test_models import SEED_MODELS, SEED_TEXTS, seed_payload

from kling_async._converter import to_payload
from kling_async._endpoints import ENDPOINTS, endpoint_for_request
from kling_async._errors import Problem, ValidationError
from kling_async._media import (
    IMAGE_MAX_BYTES,
    SOUND_FILE_MAX_BYTES,
    ImageInfo,
    audio_format,
    base64_decoded_size,
    check_image,
    check_image_value,
    decode_base64,
    encode_file,
    encode_image,
    image_info,
    looks_like_base64,
)
from kling_async._models import (
    CameraConfig,
    CameraControl,
    ImageRef,
    MultiImageToVideoRequest,
    Shot,
    TextToVideoRequest,
)
from kling_async._validation import (
    EXTERNAL_TASK_ID_MAX_LENGTH,
    model_version,
    validate_payload,
    validate_request,
)

URL = "https://example.com/picture.png"


# --- real media built in the test ----------------------------------------------------------


def make_png(width: int, height: int) -> bytes:
    """A valid 8-bit greyscale PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = (b"\x00" + b"\x80" * width) * height
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _segment(marker: int, payload: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def make_jpeg(width: int, height: int, *, exif_bytes: int = 0, sof: int = 0xC0) -> bytes:
    """A structurally valid baseline (or other SOFn) JPEG: SOI, APPn, DQT, SOF, DHT, SOS, EOI.

    ``exif_bytes`` pads APP1 segments before the frame header, as cameras do.
    """
    parts = [b"\xff\xd8", _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")]
    while exif_bytes > 0:
        size = min(exif_bytes, 65000)
        parts.append(_segment(0xE1, b"Exif\x00\x00" + b"\x00" * size))
        exif_bytes -= size
    parts.append(_segment(0xDB, b"\x00" + bytes(range(1, 65))))
    parts.append(_segment(sof, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"))
    parts.append(_segment(0xC4, b"\x00" + b"\x00" * 15 + b"\x01" + b"\x00"))
    parts.append(_segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"))
    parts.append(b"\x12\x34\xff\x00\x56" + b"\xff\xd9")
    return b"".join(parts)


def b64(data: bytes) -> str:
    """Plain base64, as the API wants it."""
    return base64.b64encode(data).decode("ascii")


PNG_OK = b64(make_png(640, 360))
JPEG_OK = b64(make_jpeg(600, 800))
WAV = b"RIFF" + struct.pack("<I", 34) + b"WAVEfmt " + b"\x00" * 26  # 42 bytes: no base64 padding


def oversize_b64(limit: int) -> str:
    """Base64 of a valid PNG header followed by filler, decoding to limit + 1 bytes."""
    head = make_png(640, 360)[:33]  # signature + IHDR: 33 bytes, a multiple of 3
    filler = (limit + 1 - len(head) + 2) // 3 * 4
    return b64(head) + "A" * filler


# --- the table of cases ----------------------------------------------------------------------


@attrs.frozen
class Case:
    """One body and the exact problems it must produce ([] = valid)."""

    id: str
    endpoint: str
    payload: dict[str, Any]
    expected: list[tuple[str, str]] = attrs.field(factory=list)


def shots(*durations: Any, prompt: str = "a shot") -> list[dict[str, Any]]:
    """multi_prompt entries with the given durations."""
    return [{"index": i + 1, "prompt": prompt, "duration": d} for i, d in enumerate(durations)]


def multi(*durations: Any, total: Any = "5", **extra: Any) -> dict[str, Any]:
    """A customize multi-shot text-to-video body."""
    return {
        "multi_shot": True,
        "shot_type": "customize",
        "multi_prompt": shots(*durations),
        "duration": total,
        **extra,
    }


def lip(**face: Any) -> dict[str, Any]:
    """A lip-sync body with one face, overriding its fields (None removes one)."""
    entry = {
        "face_id": "0",
        "audio_id": "a1",
        "sound_start_time": 0,
        "sound_end_time": 5000,
        "sound_insert_time": 0,
    }
    entry.update(face)
    return {"session_id": "s1", "face_choose": [{k: v for k, v in entry.items() if v is not None}]}


def omni(**extra: Any) -> dict[str, Any]:
    """An omni-video body with a prompt and an aspect ratio."""
    return {"prompt": "x", "aspect_ratio": "16:9", **extra}


def imgs(n: int) -> list[dict[str, str]]:
    """n omni-video reference images (no frame type)."""
    return [{"image_url": URL} for _ in range(n)]


def els(n: int) -> list[dict[str, Any]]:
    """n element references."""
    return [{"element_id": 100 + i} for i in range(n)]


def turbo_i2v(*contents: dict[str, Any]) -> dict[str, Any]:
    """A turbo image-to-video body."""
    return {"contents": list(contents)}


def traj(n: int) -> list[dict[str, int]]:
    """A trajectory of n points."""
    return [{"x": i, "y": i} for i in range(n)]


def masks(*groups: dict[str, Any]) -> dict[str, Any]:
    """An image-to-video body with dynamic masks."""
    return {"image": URL, "dynamic_masks": list(groups)}


P2500 = "p" * 2500
P2501 = "p" * 2501
FIRST = {"image_url": URL, "type": "first_frame"}
END = {"image_url": URL, "type": "end_frame"}

CASES = [
    # prompt and negative_prompt <= 2500
    Case("prompt-2500", "text2video", {"prompt": P2500}),
    Case(
        "prompt-2501",
        "text2video",
        {"prompt": P2501},
        [("prompt", "2501 characters; at most 2500")],
    ),
    Case("negative-2500", "text2video", {"prompt": "x", "negative_prompt": P2500}),
    Case(
        "negative-2501",
        "image2video",
        {"image": URL, "negative_prompt": P2501},
        [("negative_prompt", "at most 2500")],
    ),
    Case("omni-prompt-2501", "omni-video", omni(prompt=P2501), [("prompt", "at most 2500")]),
    Case(
        "extend-prompt-2501",
        "video-extend",
        {"video_id": "v", "prompt": P2501},
        [("prompt", "at most 2500")],
    ),
    Case("prompt-required", "text2video", {}, [("prompt", "required")]),
    Case("prompt-empty-is-unset", "text2video", {"prompt": ""}, [("prompt", "required")]),
    Case(
        "prompt-not-string",
        "text2video",
        {"prompt": 12},
        [("prompt", "must be a string, got a number")],
    ),
    # multi-shot
    Case("multi-ok", "text2video", multi("2", 3)),
    Case("multi-one-shot", "text2video", multi(5)),
    Case("multi-6-shots", "text2video", multi(1, 1, 1, 1, 1, 1, total=6)),
    Case(
        "multi-7-shots",
        "text2video",
        multi(1, 1, 1, 1, 1, 1, 1, total=7),
        [("multi_prompt", "7 shots; at most 6")],
    ),
    Case("multi-no-shots", "text2video", multi(), [("multi_prompt", "required (1 to 6 shots)")]),
    Case(
        "multi-shot-prompt-513",
        "text2video",
        {**multi(5), "multi_prompt": [{"index": 1, "prompt": "s" * 513, "duration": 5}]},
        [("multi_prompt[0].prompt", "at most 512")],
    ),
    Case(
        "multi-shot-prompt-512",
        "text2video",
        {**multi(5), "multi_prompt": [{"index": 1, "prompt": "s" * 512, "duration": 5}]},
    ),
    Case(
        "multi-shot-prompt-missing",
        "text2video",
        {**multi(5), "multi_prompt": [{"index": 1, "duration": 5}]},
        [("multi_prompt[0].prompt", "required for every shot")],
    ),
    Case(
        "multi-shot-duration-0",
        "text2video",
        multi(0, 5),
        [("multi_prompt[0].duration", "at least 1")],
    ),
    Case(
        "multi-shot-longer-than-task",
        "text2video",
        multi(6, total=5),
        [
            ("multi_prompt[0].duration", "longer than the task duration 5"),
            ("multi_prompt[0].duration", "add up to 6, task duration is 5"),
        ],
    ),
    Case(
        "multi-sum-mismatch",
        "text2video",
        multi("2", 5),
        [("multi_prompt[1].duration", "shot durations add up to 7, task duration is 5")],
    ),
    Case("multi-sum-default-duration", "text2video", {**multi(2, 3), "duration": None}),
    Case("multi-sum-10", "text2video", multi(4, 6, total="10")),
    # Issue 12: shot durations need not be whole ("2.5" passes), so the message says number.
    Case(
        "multi-shot-duration-text",
        "text2video",
        multi("two", 3),
        [("multi_prompt[0].duration", "must be a number, got 'two'")],
    ),
    Case("multi-shot-duration-fraction", "text2video", multi("2.5", "2.5")),
    Case(
        "multi-shot-duration-missing",
        "text2video",
        {**multi(5), "multi_prompt": [{"prompt": "a"}]},
        [("multi_prompt[0].duration", "required")],
    ),
    Case(
        "multi-duplicate-index",
        "text2video",
        {
            **multi(2, 3),
            "multi_prompt": [
                {"index": 1, "prompt": "a", "duration": 2},
                {"index": 1, "prompt": "b", "duration": 3},
            ],
        },
        [("multi_prompt[1].index", "used twice")],
    ),
    Case(
        "multi-shot-type-missing",
        "text2video",
        {**multi(5), "shot_type": None},
        [("shot_type", "required when multi_shot is true")],
    ),
    Case(
        "multi-shot-type-bad",
        "text2video",
        {**multi(5), "shot_type": "auto"},
        [("shot_type", "'auto' is not one of customize, intelligence")],
    ),
    Case(
        "multi-intelligence-needs-prompt",
        "text2video",
        {"multi_shot": True, "shot_type": "intelligence"},
        [("prompt", "required when shot_type is intelligence")],
    ),
    Case(
        "multi-intelligence-ok",
        "text2video",
        {"multi_shot": True, "shot_type": "intelligence", "prompt": "story"},
    ),
    # Issue 12: the seeds call these fields *invalid* (ignored) without multi_shot: sent,
    # with a warning (see test_rules_tiers.py), no longer refused.
    Case(
        "multi-prompt-without-multi-shot", "text2video", {"prompt": "x", "multi_prompt": shots(5)}
    ),
    Case("shot-type-without-multi-shot", "text2video", {"prompt": "x", "shot_type": "customize"}),
    Case(
        "multi-shot-not-bool",
        "text2video",
        {"prompt": "x", "multi_shot": "true"},
        [("multi_shot", "must be true or false")],
    ),
    Case("multi-shot-image2video", "image2video", {"image": URL, **multi(3, 2)}),
    Case(
        "multi-shot-omni",
        "omni-video",
        omni(prompt="", **multi(3, 3, total=5)),
        [("multi_prompt[1].duration", "add up to 6, task duration is 5")],
    ),
    Case("image2video-prompt-optional", "image2video", {"image": URL}),
    Case(
        "omni-prompt-required",
        "omni-video",
        omni(prompt=""),
        [("prompt", "required unless multi_shot")],
    ),
    # duration
    Case("duration-3", "text2video", {"prompt": "x", "duration": "3"}),
    Case("duration-15-int", "text2video", {"prompt": "x", "duration": 15}),
    Case(
        "duration-16",
        "text2video",
        {"prompt": "x", "duration": "16"},
        [("duration", "16 is not one of 3, 4, 5")],
    ),
    Case(
        "duration-2",
        "image2video",
        {"image": URL, "duration": 2},
        [("duration", "2 is not one of")],
    ),
    Case(
        "duration-text",
        "text2video",
        {"prompt": "x", "duration": "five"},
        [("duration", "must be a whole number, got 'five'")],
    ),
    Case(
        "duration-fraction",
        "text2video",
        {"prompt": "x", "duration": 5.5},
        [("duration", "must be a whole number, got 5.5")],
    ),
    # Issue 12: 5.0 is not a JSON integer; refused by the models and the validator alike.
    Case(
        "duration-float-whole",
        "text2video",
        {"prompt": "x", "duration": 5.0},
        [("duration", "must be a whole number, got 5.0")],
    ),
    Case(
        "duration-bool",
        "text2video",
        {"prompt": "x", "duration": True},
        [("duration", "got a boolean")],
    ),
    Case(
        "duration-old-model-7",
        "text2video",
        {"model_name": "kling-v1-6", "prompt": "x", "duration": "7"},
        [("duration", "7 is not one of 5, 10 seconds (version-1 models)")],
    ),
    Case(
        "duration-old-model-10",
        "text2video",
        {"model_name": "kling-v1-6", "prompt": "x", "duration": "10"},
    ),
    Case(
        "duration-maas-v1-5",
        "image2video",
        {"model_name": "MaaS_KL_V1.5", "image": URL, "duration": 3},
        [("duration", "not one of 5, 10")],
    ),
    Case(
        "duration-maas-keling-v1-6",
        "image2video",
        {"model_name": "MaaS_KeLing_V1.6", "image": URL, "duration": "8"},
        [("duration", "not one of 5, 10")],
    ),
    Case("duration-v3-7", "text2video", {"model_name": "kling-v3", "prompt": "x", "duration": "7"}),
    Case(
        "duration-unknown-model-7",
        "text2video",
        {"model_name": "MaaS_KeLing_O3", "prompt": "x", "duration": 7},
    ),
    Case(
        "duration-multi-image-7",
        "multi-image2video",
        {"image_list": [{"image": URL}], "prompt": "x", "duration": "7"},
        [("duration", "not one of 5, 10 seconds (multi-image-to-video)")],
    ),
    Case(
        "duration-multi-image-10",
        "multi-image2video",
        {"image_list": [{"image": URL}], "prompt": "x", "duration": "10"},
    ),
    Case("duration-omni-12", "omni-video", omni(duration=12)),
    Case("duration-omni-20", "omni-video", omni(duration=20), [("duration", "not one of")]),
    # mode
    Case(
        "mode-bad",
        "text2video",
        {"prompt": "x", "mode": "ultra"},
        [("mode", "'ultra' is not one of std, pro, 4k")],
    ),
    Case("mode-4k-v3", "text2video", {"model_name": "kling-v3", "prompt": "x", "mode": "4k"}),
    Case("mode-4k-image2video", "image2video", {"image": URL, "mode": "4k"}),
    Case(
        "mode-4k-old",
        "text2video",
        {"model_name": "kling-v1", "prompt": "x", "mode": "4k"},
        [("mode", "4k is not available for version-1 models")],
    ),
    Case("mode-4k-omni", "omni-video", omni(mode="4k"), [("mode", "not one of std, pro")]),
    Case("mode-std-omni", "omni-video", omni(mode="std")),
    Case(
        "mode-4k-multi-image",
        "multi-image2video",
        {"image_list": [{"image": URL}], "prompt": "x", "mode": "4k"},
        [("mode", "not one of std, pro")],
    ),
    # Issue 12: seed 001 states no mode values for avatar: a warning, not a refusal.
    Case("mode-4k-avatar", "avatar", {"image": URL, "audio_id": "a", "mode": "4k"}),
    Case("mode-pro-avatar", "avatar", {"image": URL, "audio_id": "a", "mode": "pro"}),
    # aspect ratios
    Case("aspect-video-9-16", "text2video", {"prompt": "x", "aspect_ratio": "9:16"}),
    Case(
        "aspect-video-4-3",
        "text2video",
        {"prompt": "x", "aspect_ratio": "4:3"},
        [("aspect_ratio", "'4:3' is not one of 16:9, 9:16, 1:1")],
    ),
    Case(
        "aspect-multi-image-typo",
        "multi-image2video",
        {"image_list": [{"image": URL}], "prompt": "x", "aspect_ratio": "16:09"},
        [("aspect_ratio", "not one of")],
    ),
    Case("aspect-image-21-9", "image-generation", {"prompt": "x", "aspect_ratio": "21:9"}),
    Case(
        "aspect-image-auto",
        "image-generation",
        {"prompt": "x", "aspect_ratio": "auto"},
        [("aspect_ratio", "'auto' is not one of")],
    ),
    Case("aspect-omni-image-auto", "omni-image", {"prompt": "x", "aspect_ratio": "auto"}),
    Case(
        "aspect-omni-image-5-4",
        "omni-image",
        {"prompt": "x", "aspect_ratio": "5:4"},
        [("aspect_ratio", "not one of")],
    ),
    Case(
        "aspect-omni-required",
        "omni-video",
        {"prompt": "x"},
        [("aspect_ratio", "required unless a first_frame")],
    ),
    Case("aspect-omni-first-frame", "omni-video", {"prompt": "x", "image_list": [FIRST]}),
    Case(
        "aspect-omni-edit-video", "omni-video", {"prompt": "x", "video_list": [{"video_url": URL}]}
    ),
    # sound
    Case(
        "sound-bad",
        "text2video",
        {"prompt": "x", "sound": "yes"},
        [("sound", "'yes' is not one of on, off")],
    ),
    Case(
        "sound-on-v2-5",
        "text2video",
        {"model_name": "kling-v2-5-turbo", "prompt": "x", "sound": "on"},
        [("sound", "version 2.6 or later")],
    ),
    Case("sound-on-v2-6", "text2video", {"model_name": "kling-v2.6", "prompt": "x", "sound": "on"}),
    Case("sound-off-v1", "text2video", {"model_name": "kling-v1", "prompt": "x", "sound": "off"}),
    # cfg_scale
    # Issue 12: cfg_scale is a float; the numeric string "0.5" is now refused.
    Case("cfg-ok", "text2video", {"prompt": "x", "cfg_scale": 0.5}),
    Case(
        "cfg-string",
        "text2video",
        {"prompt": "x", "cfg_scale": "0.5"},
        [("cfg_scale", "must be a number, got '0.5'")],
    ),
    Case("cfg-bounds", "image2video", {"image": URL, "cfg_scale": 1}),
    Case(
        "cfg-high",
        "text2video",
        {"prompt": "x", "cfg_scale": 1.5},
        [("cfg_scale", "must be between 0 and 1, got 1.5")],
    ),
    Case(
        "cfg-low",
        "video-extend",
        {"video_id": "v", "cfg_scale": -0.1},
        [("cfg_scale", "between 0 and 1")],
    ),
    Case(
        "cfg-text",
        "text2video",
        {"prompt": "x", "cfg_scale": "high"},
        [("cfg_scale", "must be a number, got 'high'")],
    ),
    # camera control
    Case(
        "camera-simple-ok",
        "text2video",
        {
            "prompt": "x",
            "camera_control": {"type": "simple", "config": {"horizontal": 0, "zoom": -10}},
        },
    ),
    Case(
        "camera-type-bad",
        "text2video",
        {"prompt": "x", "camera_control": {"type": "zoom_in"}},
        [("camera_control.type", "not one of simple, down_back")],
    ),
    Case(
        "camera-simple-no-config",
        "text2video",
        {"prompt": "x", "camera_control": {"type": "simple"}},
        [("camera_control.config", "required when type is simple")],
    ),
    Case(
        "camera-two-axes",
        "image2video",
        # Issue 12: axes are floats; the string "2" of the original case is refused now.
        {"image": URL, "camera_control": {"type": "simple", "config": {"pan": 3, "tilt": 2}}},
        [
            (
                "camera_control.config",
                "exactly one of horizontal, vertical, pan, tilt, roll, zoom must be non-zero "
                "(found 2: pan, tilt)",
            )
        ],
    ),
    Case(
        "camera-all-zero",
        "text2video",
        {"prompt": "x", "camera_control": {"type": "simple", "config": {"pan": 0}}},
        [("camera_control.config", "found none")],
    ),
    Case(
        "camera-out-of-range",
        "text2video",
        {"prompt": "x", "camera_control": {"type": "simple", "config": {"roll": 11}}},
        [("camera_control.config.roll", "between -10 and 10, got 11")],
    ),
    Case(
        "camera-other-with-config",
        "text2video",
        {"prompt": "x", "camera_control": {"type": "down_back", "config": {"zoom": 1}}},
        [("camera_control.config", "only allowed with type simple, not down_back")],
    ),
    Case(
        "camera-other-ok", "text2video", {"prompt": "x", "camera_control": {"type": "forward_up"}}
    ),
    # image-to-video images
    Case(
        "i2v-no-image",
        "image2video",
        {"prompt": "x"},
        [("image", "image or image_tail is required")],
    ),
    Case("i2v-tail-only", "image2video", {"image_tail": URL}),
    Case("i2v-both-frames", "image2video", {"image": PNG_OK, "image_tail": JPEG_OK}),
    # motion brush
    Case("masks-6", "image2video", masks(*[{"mask": URL, "trajectories": traj(2)}] * 6)),
    Case(
        "masks-7",
        "image2video",
        masks(*[{"mask": URL, "trajectories": traj(2)}] * 7),
        [("dynamic_masks", "7 groups; at most 6")],
    ),
    Case(
        "traj-1",
        "image2video",
        masks({"mask": URL, "trajectories": traj(1)}),
        [("dynamic_masks[0].trajectories", "1 points; 2 to 77")],
    ),
    Case("traj-77", "image2video", masks({"mask": URL, "trajectories": traj(77)})),
    Case(
        "traj-78",
        "image2video",
        masks({"mask": URL, "trajectories": traj(78)}),
        [("dynamic_masks[0].trajectories", "78 points")],
    ),
    # Issue 12: x and y are JSON integers; the string "3" is refused too now.
    Case(
        "traj-point-types",
        "image2video",
        masks({"mask": URL, "trajectories": [{"x": 1.5, "y": "3"}, {"x": -1, "y": 2}]}),
        [
            ("dynamic_masks[0].trajectories[0].x", "whole number, got 1.5"),
            ("dynamic_masks[0].trajectories[0].y", "whole number, got '3'"),
            ("dynamic_masks[0].trajectories[1].x", "at least 0"),
        ],
    ),
    Case(
        "traj-point-never-truncated",
        "image2video",
        masks({"mask": URL, "trajectories": [{"x": 10.9, "y": 1}, {"x": 10.0, "y": 2}]}),
        [
            ("dynamic_masks[0].trajectories[0].x", "whole number, got 10.9"),
            ("dynamic_masks[0].trajectories[1].x", "whole number, got 10.0"),
        ],
    ),
    Case(
        "mask-missing",
        "image2video",
        masks({"trajectories": traj(2)}),
        [("dynamic_masks[0].mask", "required")],
    ),
    Case(
        "traj-missing",
        "image2video",
        masks({"mask": URL}),
        [("dynamic_masks[0].trajectories", "required (2 to 77 points)")],
    ),
    # element_list + images <= 10
    Case("i2v-refs-10", "image2video", {"image": URL, "image_tail": URL, "element_list": els(8)}),
    Case(
        "i2v-refs-11",
        "image2video",
        {"image": URL, "image_tail": URL, "element_list": els(9)},
        [("element_list", "9 subject(s) + 2 image(s) = 11; at most 10")],
    ),
    Case(
        "imagegen-refs-10",
        "image-generation",
        {"prompt": "x", "image": URL, "element_list": els(9)},
    ),
    Case(
        "imagegen-refs-11",
        "image-generation",
        {"prompt": "x", "image": URL, "element_list": els(10)},
        [("element_list", "at most 10")],
    ),
    Case(
        "omni-image-refs-11",
        "omni-image",
        {"prompt": "x", "image_list": [{"image": URL}] * 6, "element_list": els(5)},
        [("element_list", "5 subject(s) + 6 image(s) = 11")],
    ),
    Case(
        "omni-image-images-11",
        "omni-image",
        {"prompt": "x", "image_list": [{"image": URL}] * 11},
        [("image_list", "0 subject(s) + 11 image(s)")],
    ),
    Case(
        "element-id-text",
        "image-generation",
        {"prompt": "x", "element_list": [{"element_id": "abc"}]},
        [("element_list[0].element_id", "whole number, got 'abc'")],
    ),
    Case(
        "element-id-string-number",
        "image-generation",
        {"prompt": "x", "element_list": [{"element_id": "160"}]},
    ),
    Case(
        "element-id-missing",
        "omni-image",
        {"prompt": "x", "element_list": [{}]},
        [("element_list[0].element_id", "required")],
    ),
    # omni-video references
    Case("omni-7-refs", "omni-video", omni(image_list=imgs(4), element_list=els(3))),
    Case(
        "omni-8-refs",
        "omni-video",
        omni(image_list=imgs(5), element_list=els(3)),
        [("element_list", "= 8; at most 7 together without a reference video")],
    ),
    Case(
        "omni-8-images",
        "omni-video",
        omni(image_list=imgs(8)),
        [("image_list", "0 subject(s) + 8 image(s)")],
    ),
    Case(
        "omni-4-refs-video",
        "omni-video",
        omni(
            image_list=imgs(2),
            element_list=els(2),
            video_list=[{"video_url": URL, "refer_type": "feature"}],
        ),
    ),
    Case(
        "omni-5-refs-video",
        "omni-video",
        omni(
            image_list=imgs(3),
            element_list=els(2),
            video_list=[{"video_url": URL, "refer_type": "feature"}],
        ),
        [("element_list", "= 5; at most 4 together with a reference video")],
    ),
    Case(
        "omni-2-videos",
        "omni-video",
        omni(video_list=[{"video_url": URL}, {"video_url": URL}]),
        [("video_list", "2 videos; at most 1")],
    ),
    Case(
        "omni-sound-on-video",
        "omni-video",
        omni(sound="on", video_list=[{"video_url": URL}]),
        [("sound", "must be 'off' with a reference video")],
    ),
    Case("omni-sound-off-video", "omni-video", omni(sound="off", video_list=[{"video_url": URL}])),
    Case("omni-sound-on-no-video", "omni-video", omni(sound="on")),
    Case(
        "omni-frame-type-bad",
        "omni-video",
        omni(image_list=[{"image_url": URL, "type": "last_frame"}]),
        [("image_list[0].type", "not one of first_frame, end_frame")],
    ),
    Case(
        "omni-end-without-first",
        "omni-video",
        omni(image_list=[END]),
        [("image_list[0].type", "end_frame needs a first_frame")],
    ),
    Case("omni-first-and-end", "omni-video", {"prompt": "x", "image_list": [FIRST, END]}),
    Case(
        "omni-two-first",
        "omni-video",
        {"prompt": "x", "image_list": [FIRST, FIRST]},
        [("image_list[1].type", "only one first_frame")],
    ),
    Case(
        "omni-end-with-3-images",
        "omni-video",
        {"prompt": "x", "image_list": [FIRST, END, {"image_url": URL}]},
        [("image_list[1].type", "not supported with more than 2 images (3 given)")],
    ),
    Case(
        "omni-frames-4-elements",
        "omni-video",
        {"prompt": "x", "image_list": [FIRST], "element_list": els(4)},
        [("element_list", "4 subjects; at most 3 with a first/end frame")],
    ),
    Case(
        "omni-frame-with-base-video",
        "omni-video",
        {
            "prompt": "x",
            "image_list": [FIRST],
            "video_list": [{"video_url": URL, "refer_type": "base"}],
        },
        [("image_list[0].type", "cannot be used with a video to edit")],
    ),
    Case(
        "omni-frame-with-default-video",
        "omni-video",
        {"prompt": "x", "image_list": [FIRST], "video_list": [{"video_url": URL}]},
        [("image_list[0].type", "refer_type base, the default")],
    ),
    Case(
        "omni-frame-with-feature-video",
        "omni-video",
        {
            "prompt": "x",
            "image_list": [FIRST],
            "video_list": [
                {"video_url": URL, "refer_type": "feature", "keep_original_sound": "yes"}
            ],
        },
    ),
    Case(
        "omni-refer-type-bad",
        "omni-video",
        omni(video_list=[{"video_url": URL, "refer_type": "style"}]),
        [("video_list[0].refer_type", "not one of feature, base")],
    ),
    Case(
        "omni-keep-sound-bad",
        "omni-video",
        omni(video_list=[{"video_url": URL, "keep_original_sound": "true"}]),
        [("video_list[0].keep_original_sound", "not one of yes, no")],
    ),
    Case(
        "omni-video-url-empty",
        "omni-video",
        omni(video_list=[{"video_url": ""}]),
        [("video_list[0].video_url", "must not be empty")],
    ),
    Case(
        "omni-video-url-not-url",
        "omni-video",
        omni(video_list=[{"video_url": "clip.mp4"}]),
        [("video_list[0].video_url", "http:// or https:// URL")],
    ),
    Case(
        "omni-image-url-empty",
        "omni-video",
        omni(image_list=[{"image_url": ""}]),
        [("image_list[0].image_url", "must not be empty")],
    ),
    # multi-image-to-video
    Case("multi-image-4", "multi-image2video", {"image_list": [{"image": URL}] * 4, "prompt": "x"}),
    Case(
        "multi-image-5",
        "multi-image2video",
        {"image_list": [{"image": URL}] * 5, "prompt": "x"},
        [("image_list", "5 images; at most 4")],
    ),
    Case(
        "multi-image-0",
        "multi-image2video",
        {"image_list": [], "prompt": "x"},
        [("image_list", "required (1 to 4 images)")],
    ),
    Case(
        "multi-image-prompt",
        "multi-image2video",
        {"image_list": [{"image": URL}]},
        [("prompt", "required")],
    ),
    # video-extend, identify-face
    Case("extend-ok", "video-extend", {"video_id": "v1", "prompt": "on"}),
    Case("extend-no-id", "video-extend", {"prompt": "x"}, [("video_id", "required")]),
    Case("face-video-id", "identify-face", {"video_id": "v1"}),
    Case("face-video-url", "identify-face", {"video_url": URL}),
    Case(
        "face-both",
        "identify-face",
        {"video_id": "v1", "video_url": URL},
        [("video_url", "exactly one of video_id and video_url, not both")],
    ),
    Case(
        "face-none",
        "identify-face",
        {},
        [("video_id", "exactly one of video_id and video_url (both are empty)")],
    ),
    Case(
        "face-url-not-url",
        "identify-face",
        {"video_url": "file.mp4"},
        [("video_url", "http:// or https:// URL")],
    ),
    # lip-sync
    # Issue 12: volumes are floats; the original case's string "2" is refused now.
    Case("lip-ok", "lip-sync", lip(sound_volume=2, original_audio_volume=0)),
    Case(
        "lip-volume-string",
        "lip-sync",
        lip(sound_volume="2"),
        [("face_choose[0].sound_volume", "must be a number, got '2'")],
    ),
    Case(
        "lip-sound-file-url", "lip-sync", lip(audio_id=None, sound_file="https://example.com/a.mp3")
    ),
    Case("lip-sound-file-wav", "lip-sync", lip(audio_id=None, sound_file=b64(WAV))),
    Case("lip-session", "lip-sync", {**lip(), "session_id": ""}, [("session_id", "required")]),
    Case(
        "lip-two-faces",
        "lip-sync",
        {**lip(), "face_choose": lip()["face_choose"] * 2},
        [("face_choose", "2 faces; exactly one")],
    ),
    Case(
        "lip-no-face",
        "lip-sync",
        {**lip(), "face_choose": []},
        [("face_choose", "exactly one face")],
    ),
    Case("lip-face-id", "lip-sync", lip(face_id=None), [("face_choose[0].face_id", "required")]),
    Case(
        "lip-both-audio",
        "lip-sync",
        lip(sound_file=URL),
        [("face_choose[0].sound_file", "not both")],
    ),
    Case(
        "lip-no-audio",
        "lip-sync",
        lip(audio_id=None),
        [("face_choose[0].audio_id", "both are empty")],
    ),
    # Issue 12: times are JSON integers (seed 003: long); the original "3000" is refused now.
    Case("lip-clip-2000", "lip-sync", lip(sound_start_time=1000, sound_end_time=3000)),
    Case("lip-clip-60000", "lip-sync", lip(sound_end_time=60000)),
    Case(
        "lip-clip-1999",
        "lip-sync",
        lip(sound_end_time=1999),
        [("face_choose[0].sound_end_time", "lasts 1999 ms; it must last 2000 to 60000 ms")],
    ),
    Case(
        "lip-clip-60001",
        "lip-sync",
        lip(sound_end_time=60001),
        [("face_choose[0].sound_end_time", "lasts 60001 ms")],
    ),
    Case(
        "lip-start-negative",
        "lip-sync",
        lip(sound_start_time=-1),
        [("face_choose[0].sound_start_time", "at least 0")],
    ),
    Case(
        "lip-start-text",
        "lip-sync",
        lip(sound_start_time="soon"),
        [("face_choose[0].sound_start_time", "whole number, got 'soon'")],
    ),
    Case(
        "lip-start-fraction",
        "lip-sync",
        lip(sound_start_time=0.5),
        [("face_choose[0].sound_start_time", "whole number, got 0.5")],
    ),
    Case(
        "lip-insert-missing",
        "lip-sync",
        lip(sound_insert_time=None),
        [("face_choose[0].sound_insert_time", "required")],
    ),
    Case(
        "lip-volume-high",
        "lip-sync",
        lip(sound_volume=2.5),
        [("face_choose[0].sound_volume", "between 0 and 2, got 2.5")],
    ),
    Case(
        "lip-original-low",
        "lip-sync",
        lip(original_audio_volume=-1),
        [("face_choose[0].original_audio_volume", "between 0 and 2")],
    ),
    Case(
        "lip-sound-not-audio",
        "lip-sync",
        lip(audio_id=None, sound_file=PNG_OK),
        [("face_choose[0].sound_file", "MP3, WAV or M4A")],
    ),
    Case(
        "lip-sound-data-prefix",
        "lip-sync",
        lip(audio_id=None, sound_file="data:audio/wav;base64," + b64(WAV)),
        [("face_choose[0].sound_file", "'data:' prefix")],
    ),
    Case(
        "lip-sound-too-big",
        "lip-sync",
        lip(audio_id=None, sound_file=b64(WAV) + "A" * (SOUND_FILE_MAX_BYTES // 3 * 4)),
        [("face_choose[0].sound_file", "at most 5 MB")],
    ),
    # avatar
    Case("avatar-ok", "avatar", {"image": PNG_OK, "sound_file": URL, "prompt": "sing"}),
    Case("avatar-no-image", "avatar", {"audio_id": "a"}, [("image", "required")]),
    # Issue 12: seed 001 does not state "exactly one audio" for avatar: warnings now.
    Case("avatar-both-audio", "avatar", {"image": URL, "audio_id": "a", "sound_file": URL}),
    Case("avatar-no-audio", "avatar", {"image": URL}),
    # image generation
    Case("imagegen-prompt", "image-generation", {"n": 1}, [("prompt", "required")]),
    Case("imagegen-n-9", "image-generation", {"prompt": "x", "n": "9"}),
    Case(
        "imagegen-n-10",
        "image-generation",
        {"prompt": "x", "n": 10},
        [("n", "between 1 and 9, got 10")],
    ),
    Case(
        "imagegen-n-0",
        "image-generation",
        {"prompt": "x", "n": "0"},
        [("n", "between 1 and 9, got 0")],
    ),
    Case(
        "imagegen-n-fraction",
        "image-generation",
        {"prompt": "x", "n": 1.5},
        [("n", "whole number")],
    ),
    Case("imagegen-resolution-2k", "image-generation", {"prompt": "x", "resolution": "2k"}),
    Case(
        "imagegen-resolution-4k",
        "image-generation",
        {"prompt": "x", "resolution": "4k"},
        [("resolution", "'4k' is not one of 1k, 2k")],
    ),
    Case(
        "imagegen-negative-with-image",
        "image-generation",
        {"prompt": "x", "image": URL, "negative_prompt": "no"},
        [("negative_prompt", "not supported with a reference image")],
    ),
    Case(
        "imagegen-negative-without-image",
        "image-generation",
        {"prompt": "x", "negative_prompt": "no"},
    ),
    Case(
        "imagegen-reference-needs-image",
        "image-generation",
        {"prompt": "x", "image_reference": "subject"},
        [("image", "required when image_reference is set")],
    ),
    # omni-image
    Case(
        "omni-image-ok",
        "omni-image",
        {"prompt": "x", "resolution": "4k", "result_type": "series", "series_amount": "9"},
    ),
    Case("omni-image-prompt", "omni-image", {"resolution": "1k"}, [("prompt", "required")]),
    Case(
        "omni-image-resolution",
        "omni-image",
        {"prompt": "x", "resolution": "8k"},
        [("resolution", "not one of 1k, 2k, 4k")],
    ),
    Case(
        "omni-image-result-type",
        "omni-image",
        {"prompt": "x", "result_type": "group"},
        [("result_type", "not one of single, series")],
    ),
    # Issue 12: series_amount is only read for result_type series (seed 001: invalid for
    # single, the default), so these cases now say series; with single it only warns.
    Case(
        "omni-image-series-1",
        "omni-image",
        {"prompt": "x", "result_type": "series", "series_amount": 1},
        [("series_amount", "between 2 and 9, got 1")],
    ),
    Case(
        "omni-image-series-10",
        "omni-image",
        {"prompt": "x", "result_type": "series", "series_amount": 10},
        [("series_amount", "between 2 and 9")],
    ),
    Case("omni-image-series-ignored", "omni-image", {"prompt": "x", "series_amount": 10}),
    Case("omni-image-n-ignored", "omni-image", {"prompt": "x", "result_type": "series", "n": 10}),
    Case("omni-image-n-10", "omni-image", {"prompt": "x", "n": 10}, [("n", "between 1 and 9")]),
    Case(
        "omni-image-image-empty",
        "omni-image",
        {"prompt": "x", "image_list": [{"image": ""}]},
        [("image_list[0].image", "must not be empty")],
    ),
    # text-to-audio
    Case("audio-200", "text-to-audio", {"prompt": "a" * 200, "duration": 3}),
    Case(
        "audio-201",
        "text-to-audio",
        {"prompt": "a" * 201, "duration": 3},
        [("prompt", "201 characters; at most 200")],
    ),
    Case("audio-prompt-missing", "text-to-audio", {"duration": 3}, [("prompt", "required")]),
    # Issue 12: duration is a float (seed 000); numeric strings are refused now.
    Case("audio-duration-bounds", "text-to-audio", {"prompt": "x", "duration": 10.0}),
    Case("audio-duration-decimal", "text-to-audio", {"prompt": "x", "duration": 7.5}),
    Case(
        "audio-duration-low",
        "text-to-audio",
        {"prompt": "x", "duration": 2.9},
        [("duration", "between 3 and 10, got 2.9")],
    ),
    Case(
        "audio-duration-high",
        "text-to-audio",
        {"prompt": "x", "duration": 10.1},
        [("duration", "between 3 and 10")],
    ),
    Case(
        "audio-duration-two-decimals",
        "text-to-audio",
        {"prompt": "x", "duration": 3.25},
        [("duration", "at most one decimal place, got 3.25")],
    ),
    Case(
        "audio-duration-trailing-zero",
        "text-to-audio",
        {"prompt": "x", "duration": "3.50"},
        [("duration", "must be a number, got '3.50'")],
    ),
    Case(
        "audio-duration-text",
        "text-to-audio",
        {"prompt": "x", "duration": "long"},
        [("duration", "must be a number, got 'long'")],
    ),
    Case(
        "audio-duration-missing",
        "text-to-audio",
        {"prompt": "x"},
        [("duration", "required (3.0 to 10.0 seconds)")],
    ),
    # turbo text-to-video
    Case(
        "turbo-t2v-ok",
        "turbo-text2video",
        {
            "prompt": "x",
            # Issue 12: settings.duration is an int (seed 002); "15" is refused now.
            "settings": {"resolution": "720p", "aspect_ratio": "1:1", "duration": 15},
        },
    ),
    Case("turbo-t2v-prompt", "turbo-text2video", {"settings": {}}, [("prompt", "required")]),
    # Issue 12: seed 002 gives defaults, no enumerations: these warn, they are not refused.
    Case(
        "turbo-t2v-resolution",
        "turbo-text2video",
        {"prompt": "x", "settings": {"resolution": "4k"}},
    ),
    Case(
        "turbo-t2v-aspect", "turbo-text2video", {"prompt": "x", "settings": {"aspect_ratio": "4:3"}}
    ),
    Case("turbo-t2v-duration", "turbo-text2video", {"prompt": "x", "settings": {"duration": 20}}),
    Case(
        "turbo-t2v-duration-string",
        "turbo-text2video",
        {"prompt": "x", "settings": {"duration": "15"}},
        [("settings.duration", "must be a whole number, got '15'")],
    ),
    Case(
        "turbo-t2v-settings-type",
        "turbo-text2video",
        {"prompt": "x", "settings": "hd"},
        [("settings", "must be an object, got a string")],
    ),
    Case(
        "turbo-t2v-external-id",
        "turbo-text2video",
        {"prompt": "x", "options": {"external_task_id": "a,b"}},
        [("options.external_task_id", "'/' or ','")],
    ),
    Case(
        "turbo-t2v-callback",
        "turbo-text2video",
        {"prompt": "x", "options": {"callback_url": "example.com/hook"}},
        [("options.callback_url", "http:// or https://")],
    ),
    # turbo image-to-video
    Case(
        "turbo-i2v-ok",
        "turbo-image2video",
        turbo_i2v({"type": "first_frame", "url": PNG_OK}, {"type": "prompt", "text": "run"}),
    ),
    Case(
        "turbo-i2v-empty",
        "turbo-image2video",
        turbo_i2v(),
        [("contents", "required: a first_frame image")],
    ),
    Case(
        "turbo-i2v-no-frame",
        "turbo-image2video",
        turbo_i2v({"type": "prompt", "text": "run"}),
        [("contents", "a first_frame entry (with a url) is required")],
    ),
    Case(
        "turbo-i2v-two-frames",
        "turbo-image2video",
        turbo_i2v({"type": "first_frame", "url": URL}, {"type": "first_frame", "url": URL}),
        [("contents[1].type", "only one first_frame")],
    ),
    Case(
        "turbo-i2v-type-bad",
        "turbo-image2video",
        turbo_i2v({"type": "first_frame", "url": URL}, {"type": "video", "url": URL}),
        [("contents[1].type", "'video' is not one of prompt, first_frame")],
    ),
    Case(
        "turbo-i2v-type-missing",
        "turbo-image2video",
        turbo_i2v({"type": "first_frame", "url": URL}, {"text": "x"}),
        [("contents[1].type", "required (prompt, first_frame)")],
    ),
    Case(
        "turbo-i2v-prompt-no-text",
        "turbo-image2video",
        turbo_i2v({"type": "first_frame", "url": URL}, {"type": "prompt"}),
        [("contents[1].text", "required for a prompt entry")],
    ),
    Case(
        "turbo-i2v-frame-no-url",
        "turbo-image2video",
        turbo_i2v({"type": "first_frame"}),
        [("contents[0].url", "required for a first_frame entry")],
    ),
    # voices
    Case(
        "voices-2",
        "text2video",
        {
            "prompt": "<<<voice_1>>> says hi to <<<voice_2>>>",
            "sound": "on",
            "voice_list": [{"voice_id": "a"}, {"voice_id": "b"}],
        },
    ),
    Case(
        "voices-3",
        "image2video",
        {
            "image": URL,
            "sound": "on",
            "voice_list": [{"voice_id": "a"}, {"voice_id": "b"}, {"voice_id": "c"}],
        },
        [("voice_list", "3 voices; at most 2")],
    ),
    Case(
        "voices-sound-off",
        "text2video",
        {"prompt": "x", "voice_list": [{"voice_id": "a"}]},
        [("sound", "must be 'on' when voice_list is used")],
    ),
    Case(
        "voices-bad-reference",
        "text2video",
        {"prompt": "<<<voice_3>>> sings", "sound": "on", "voice_list": [{"voice_id": "a"}]},
        [("prompt", "refers to <<<voice_3>>> but voice_list has 1 voice(s)")],
    ),
    Case(
        "voices-shot-reference",
        "text2video",
        {**multi(5), "multi_prompt": [{"prompt": "<<<voice_1>>> hi", "duration": 5}]},
        [("multi_prompt[0].prompt", "refers to <<<voice_1>>> but voice_list has 0")],
    ),
    Case(
        "voices-empty-id",
        "text2video",
        {"prompt": "x", "sound": "on", "voice_list": [{"voice_id": ""}]},
        [("voice_list[0].voice_id", "must not be empty")],
    ),
    # external_task_id, callback_url, watermark_info, model_name
    Case("external-id-empty-is-unset", "text2video", {"prompt": "x", "external_task_id": ""}),
    Case(
        "external-id-64",
        "text2video",
        {"prompt": "x", "external_task_id": "e" * EXTERNAL_TASK_ID_MAX_LENGTH},
    ),
    # Issue 12: no seed sets a length or character set: long ids and spaces only warn;
    # '/', ',', '.' and '..' still block (URL path, comma-joined turbo query).
    Case("external-id-65", "text2video", {"prompt": "x", "external_task_id": "e" * 65}),
    Case(
        "external-id-slash",
        "omni-image",
        {"prompt": "x", "external_task_id": "batch/1"},
        [("external_task_id", "nor contain '/' or ','")],
    ),
    Case(
        "external-id-dot-dot",
        "text2video",
        {"prompt": "x", "external_task_id": ".."},
        [("external_task_id", "must not be '.' or '..'")],
    ),
    Case("external-id-space", "lip-sync", {**lip(), "external_task_id": "my job"}),
    Case(
        "external-id-number",
        "text-to-audio",
        {"prompt": "x", "duration": 3, "external_task_id": 42},
        [("external_task_id", "must be a string, got a number")],
    ),
    Case("callback-empty-is-unset", "image-generation", {"prompt": "x", "callback_url": ""}),
    Case(
        "callback-ok",
        "avatar",
        {"image": URL, "audio_id": "a", "callback_url": "http://127.0.0.1:8080/hook"},
    ),
    Case(
        "callback-bad",
        "video-extend",
        {"video_id": "v", "callback_url": "ftp://example.com"},
        [("callback_url", "http:// or https://")],
    ),
    Case("watermark-ok", "text2video", {"prompt": "x", "watermark_info": {"enabled": False}}),
    Case(
        "watermark-bad",
        "omni-image",
        {"prompt": "x", "watermark_info": {"enabled": "yes"}},
        [("watermark_info.enabled", "must be true or false")],
    ),
    Case(
        "model-name-type",
        "text2video",
        {"prompt": "x", "model_name": 3},
        [("model_name", "must be a string")],
    ),
    # shape of the body
    Case(
        "unknown-field", "text2video", {"prompt": "x", "promt": "y"}, [("promt", "unknown field")]
    ),
    Case(
        "unknown-nested-field",
        "text2video",
        {**multi(5), "multi_prompt": [{"prompt": "a", "duration": 5, "seconds": 5}]},
        [("multi_prompt[0].seconds", "unknown field")],
    ),
    Case(
        "list-not-list",
        "omni-image",
        {"prompt": "x", "image_list": {"image": URL}},
        [("image_list", "must be a list, got an object")],
    ),
    Case(
        "entry-not-object",
        "omni-image",
        {"prompt": "x", "element_list": [5]},
        [("element_list[0]", "must be an object, got a number")],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_documented_limit(case: Case) -> None:
    """The body yields exactly the expected problems, with precise paths and rule names."""
    problems = validate_payload(case.endpoint, case.payload)
    assert [p.path for p in problems] == [path for path, _ in case.expected], problems
    for problem, (_, fragment) in zip(problems, case.expected, strict=True):
        assert fragment in problem.message, problem


def test_every_endpoint_has_a_passing_and_a_failing_case() -> None:
    """Each endpoint with a request body is exercised both ways by the table."""
    names = {ep.name for ep in ENDPOINTS}
    passing = {c.endpoint for c in CASES if not c.expected}
    failing = {c.endpoint for c in CASES if c.expected}
    assert passing == names
    assert failing == names


def test_all_problems_are_listed_at_once() -> None:
    """Validation does not stop at the first problem: every broken rule is reported."""
    payload = {
        "model_name": "kling-v1",
        "prompt": "p" * 2501,
        "negative_prompt": "n" * 3000,
        "duration": "7",
        "mode": "4k",
        "aspect_ratio": "4:3",
        "sound": "on",
        "cfg_scale": 2,
        "camera_control": {"type": "simple", "config": {"pan": 20}},
        "external_task_id": "x" * 100,
        "callback_url": "nowhere",
        "extra": 1,
    }
    problems = validate_payload("videos/text2video", payload)
    assert [p.path for p in problems] == [
        "extra",
        "prompt",
        "negative_prompt",
        "duration",
        "sound",
        "cfg_scale",
        "mode",
        "aspect_ratio",
        "camera_control.config.pan",
        # Issue 12: an over-long external_task_id only warns now.
        "callback_url",
    ]


def test_problems_render_as_path_and_rule() -> None:
    """A problem prints as 'path: rule', the form the gateway's 1201 message carries."""
    [problem] = validate_payload("text2video", multi("2", 5))
    assert (
        str(problem) == "multi_prompt[1].duration: shot durations add up to 7, task duration is 5"
    )


def test_non_object_body_is_one_problem() -> None:
    """A JSON body that is not an object is reported, never crashes the validator."""
    assert validate_payload("text2video", ["prompt"]) == [  # type: ignore[arg-type]
        Problem("(body)", "must be a JSON object, got a list")
    ]


@pytest.mark.parametrize(
    "payload",
    [
        {"prompt": None, "multi_shot": None, "multi_prompt": None, "camera_control": None},
        {"multi_shot": True, "shot_type": "customize", "multi_prompt": [None, "x", 3]},
        {"camera_control": [], "voice_list": "a", "prompt": ["x"]},
        {"prompt": "x", "duration": {"s": 5}, "cfg_scale": [1], "mode": 4},
    ],
)
def test_garbage_never_crashes(payload: dict[str, Any]) -> None:
    """Arbitrary JSON (as the fake gateway receives it) yields problems, not exceptions."""
    assert validate_payload("text2video", payload)


def test_unknown_endpoint_name_raises_key_error() -> None:
    """An endpoint name nobody has is a programming error, not a problem list."""
    with pytest.raises(KeyError):
        validate_payload("videos/nothing", {})


# --- seeds ---------------------------------------------------------------------------------

#: Seed examples that carry placeholders where an image goes ("xxx", "${Your image1}").
PLACEHOLDER_IMAGES = {
    "000-image-generation": ["image"],
    "001-omni-image-2": ["image_list[0].image", "image_list[1].image"],
    "003-multi-image2video": [f"image_list[{i}].image" for i in range(4)],
}


def _fill_placeholders(payload: dict[str, Any]) -> dict[str, Any]:
    out = dict(payload)
    if "image" in out:
        out["image"] = URL
    if "image_list" in out:
        out["image_list"] = [{"image": URL} for _ in out["image_list"]]
    return out


@pytest.mark.parametrize("name", sorted(SEED_TEXTS))
def test_seed_example_passes_validation(name: str) -> None:
    """Every seed example is valid, except placeholder images, which are named precisely."""
    payload = seed_payload(name)
    endpoint = endpoint_for_request(SEED_MODELS[name])
    problems = validate_payload(endpoint, payload)
    assert [p.path for p in problems] == PLACEHOLDER_IMAGES.get(name, [])
    assert all(
        "URL or plain base64" in p.message or "JPG/JPEG or PNG" in p.message for p in problems
    )
    if name in PLACEHOLDER_IMAGES:
        assert validate_payload(endpoint, _fill_placeholders(payload)) == []


@pytest.mark.parametrize("name", sorted(SEED_TEXTS))
def test_validate_request_agrees_with_validate_payload(name: str) -> None:
    """validate_request on the model gives the same problems as on its wire body."""
    model = SEED_MODELS[name]
    expected = validate_payload(endpoint_for_request(model), to_payload(model))
    assert validate_request(model) == expected
    assert validate_request(model, payload=to_payload(model)) == expected


def test_validate_request_reports_model_problems() -> None:
    """A model breaking several limits gets them all, with wire-name paths."""
    request = TextToVideoRequest(
        multi_shot=True,
        shot_type="customize",
        multi_prompt=[
            Shot(index=1, prompt="a", duration="3"),
            Shot(index=2, prompt="b", duration=3),
        ],
        duration="5",
        camera_control=CameraControl(type="simple", config=CameraConfig(pan=1, zoom=1)),
    )
    assert [p.path for p in validate_request(request)] == [
        "multi_prompt[1].duration",
        "camera_control.config",
    ]


def test_validate_request_rejects_non_models() -> None:
    """Passing something that is not a request model is a TypeError."""
    with pytest.raises(TypeError):
        validate_request({"prompt": "x"})  # type: ignore[arg-type]


def test_validate_request_checks_local_images() -> None:
    """Base64 images in a model are decoded and checked, with the list index in the path."""
    request = MultiImageToVideoRequest(
        image_list=[ImageRef(image=PNG_OK), ImageRef(image=b64(make_png(200, 200)))],
        prompt="x",
    )
    [problem] = validate_request(request)
    assert problem.path == "image_list[1].image"
    assert "200x200 px" in problem.message


# --- model versions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("kling-v1", (1, 0)),
        ("kling-v1-5", (1, 5)),
        ("kling-v1-6", (1, 6)),
        ("MaaS_KL_V1", (1, 0)),
        ("MaaS_KL_V1.5", (1, 5)),
        ("MaaS_KeLing_V1.6", (1, 6)),
        ("kling-v2-master", (2, 0)),
        ("kling-v2-1-master", (2, 1)),
        ("MaaS_KL_V2.1_Master", (2, 1)),
        ("kling-v2-5-turbo", (2, 5)),
        ("kling-v2.6", (2, 6)),
        ("MaaS_KeLing_V2.6", (2, 6)),
        ("kling-v3", (3, 0)),
        ("MaaS_KeLing_3.0_video", (3, 0)),
        ("MaaS_KeLing_O3", None),
    ],
)
def test_model_version(name: str, version: tuple[int, int] | None) -> None:
    """Model names of both naming schemes give their version (or None)."""
    assert model_version(name) == version


# --- media helpers -------------------------------------------------------------------------


def test_image_info_reads_png() -> None:
    """PNG width and height come from IHDR; size is the byte count."""
    data = make_png(640, 360)
    assert image_info(data) == ImageInfo(format="png", width=640, height=360, size=len(data))


@pytest.mark.parametrize("sof", [0xC0, 0xC1, 0xC2])
def test_image_info_reads_jpeg(sof: int) -> None:
    """JPEG width and height come from the SOFn segment (baseline, extended, progressive)."""
    data = make_jpeg(1024, 768, sof=sof)
    assert image_info(data) == ImageInfo(format="jpeg", width=1024, height=768, size=len(data))


def test_image_info_skips_large_exif() -> None:
    """A JPEG whose frame header follows 100 KB of EXIF is still read."""
    data = make_jpeg(500, 400, exif_bytes=100_000)
    assert (image_info(data).width, image_info(data).height) == (500, 400)


def test_image_info_unknown_format() -> None:
    """Bytes that are neither PNG nor JPEG have no format and no dimensions."""
    assert image_info(b"GIF89a" + b"\x00" * 20) == ImageInfo(
        format=None, width=None, height=None, size=26
    )


def test_check_image_accepts_limits_exactly() -> None:
    """300 px sides and a 2.5:1 or 1:2.5 aspect are allowed."""
    assert check_image(make_png(300, 300)) == []
    assert check_image(make_png(750, 300)) == []
    assert check_image(make_jpeg(300, 750)) == []


def test_check_image_too_small() -> None:
    """A side under 300 px is a problem naming the field and both dimensions."""
    [problem] = check_image(make_png(299, 600), field="image_tail")
    assert problem.path == "image_tail"
    assert "299x600 px" in problem.message
    assert "at least 300 px" in problem.message


def test_check_image_wrong_aspect() -> None:
    """An aspect beyond 2.5:1 (either way) is a problem."""
    [wide] = check_image(make_png(751, 300))
    [tall] = check_image(make_jpeg(300, 751))
    assert "between 1:2.5 and 2.5:1" in wide.message
    assert "between 1:2.5 and 2.5:1" in tall.message


def test_check_image_too_big() -> None:
    """More than 10 MB is a problem, reported along with any other."""
    data = make_png(100, 100) + b"\x00" * IMAGE_MAX_BYTES
    problems = check_image(data)
    assert [p.message.split(";")[0] for p in problems] == [
        f"image is {len(data)} bytes",
        "image is 100x100 px",
    ]


def test_check_image_wrong_format() -> None:
    """GIF (or anything not JPG/PNG) is refused."""
    [problem] = check_image(b"GIF89a" + b"\x00" * 100)
    assert "JPG/JPEG or PNG" in problem.message


def test_check_image_corrupt_header() -> None:
    """A PNG signature without IHDR is reported as unreadable, not crashed on."""
    [problem] = check_image(b"\x89PNG\r\n\x1a\n")
    assert "cannot read" in problem.message


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("data:image/png;base64," + PNG_OK, "must not carry a 'data:' prefix"),
        ("DATA:image/jpeg;base64," + JPEG_OK, "'data:' prefix"),
        ("not base64!", "must be an http(s) URL or plain base64 image data"),
        ("/home/me/cat.png", "encode the file with kling_async.encode_image"),
        ("www.example.com/cat.png", "add the https:// scheme"),
        (b64(make_png(200, 800)), "200x800 px"),
        (b64(b"GIF89a" + b"\x00" * 30), "JPG/JPEG or PNG"),
        (oversize_b64(IMAGE_MAX_BYTES), "at most 10 MB"),
    ],
)
def test_image_value_problems(value: str, fragment: str) -> None:
    """Wire image values: data: prefixes, non-base64, bad images and oversize are named."""
    problems, _ = check_image_value(value, "image")
    assert any(fragment in p.message for p in problems), problems
    assert all(value[:60] not in p.message for p in problems)  # never quotes the data


@pytest.mark.parametrize(
    "value", [URL, "HTTP://EXAMPLE.COM/A.JPG", PNG_OK, JPEG_OK, PNG_OK.rstrip("=")]
)
def test_image_value_accepted(value: str) -> None:
    """URLs (never fetched) and base64 of valid images, padded or not, pass."""
    problems, _ = check_image_value(value, "image")
    assert problems == []


def test_image_value_finds_jpeg_frame_after_large_exif() -> None:
    """Base64 JPEGs whose SOF lies beyond the decoded prefix are decoded in full."""
    value = b64(make_jpeg(320, 200, exif_bytes=120_000))
    problems, info = check_image_value(value, "image")
    assert info is not None
    assert (info.width, info.height) == (320, 200)
    assert [p.message.split(";")[0] for p in problems] == ["image is 320x200 px"]


def test_image_problems_in_payload_carry_the_path() -> None:
    """A data: prefix on omni-video's second image is reported at image_list[1].image_url."""
    payload = omni(
        image_list=[{"image_url": URL}, {"image_url": "data:image/png;base64," + PNG_OK}]
    )
    [problem] = validate_payload("omni-video", payload)
    assert problem.path == "image_list[1].image_url"
    assert "data:" in problem.message


def test_masks_must_match_image_aspect_and_each_other() -> None:
    """Motion-brush masks: same aspect as the image, same resolution as each other."""
    payload = {
        "image": b64(make_png(1280, 720)),
        "static_mask": b64(make_png(640, 360)),
        "dynamic_masks": [
            {"mask": b64(make_png(640, 360)), "trajectories": traj(2)},
            {"mask": b64(make_png(320, 180)), "trajectories": traj(2)},
            {"mask": b64(make_png(600, 600)), "trajectories": traj(2)},
        ],
    }
    problems = validate_payload("image2video", payload)
    assert [(p.path, p.message.split(";")[1].strip()[:24]) for p in problems] == [
        ("dynamic_masks[1].mask", "all masks must have the "),
        ("dynamic_masks[2].mask", "its aspect ratio must ma"),
        ("dynamic_masks[2].mask", "all masks must have the "),
    ]


def test_small_masks_are_allowed() -> None:
    """Masks are not held to the 300 px minimum: only to the image's aspect."""
    payload = {"image": b64(make_png(1280, 720)), "static_mask": b64(make_png(160, 90))}
    assert validate_payload("image2video", payload) == []


def test_encode_image_from_path_and_bytes(tmp_path: Path) -> None:
    """encode_image gives plain base64 (no data: prefix, no newlines) of the file's bytes."""
    data = make_jpeg(800, 600)
    path = tmp_path / "frame.jpg"
    path.write_bytes(data)
    for source in (path, str(path), data, bytearray(data), memoryview(data)):
        encoded = encode_image(source)
        assert not encoded.startswith("data:")
        assert "\n" not in encoded
        assert base64.b64decode(encoded) == data


def test_encode_image_checks_limits(tmp_path: Path) -> None:
    """A too-small image raises ValidationError naming the field; check=False skips it."""
    data = make_png(100, 100)
    with pytest.raises(ValidationError) as info:
        encode_image(data, field="image_tail")
    assert [p.path for p in info.value.problems] == ["image_tail"]
    assert base64.b64decode(encode_image(data, check=False)) == data


def test_encode_file(tmp_path: Path) -> None:
    """encode_file base64-encodes any file, e.g. audio for sound_file."""
    path = tmp_path / "voice.wav"
    path.write_bytes(WAV)
    assert encode_file(path) == b64(WAV)
    assert encode_file(WAV) == b64(WAV)
    assert validate_payload("lip-sync", lip(audio_id=None, sound_file=encode_file(path))) == []


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("QUJD", True),
        ("QUI=", True),
        ("QUI", True),
        ("Q", False),
        ("", False),
        ("==", False),
        ("QU JD", False),
        ("QUJD\n", False),
        ("QU-_", False),
        ("data:image/png;base64,QUJD", False),
    ],
)
def test_looks_like_base64(value: str, ok: bool) -> None:
    """Only the standard alphabet with optional padding counts as base64."""
    assert looks_like_base64(value) is ok


def test_decode_base64_and_size() -> None:
    """decode_base64 accepts missing padding, refuses garbage, and sizes match."""
    for data in (b"", b"a", b"ab", b"abc", b"abcd", make_png(300, 300)):
        text = b64(data)
        if data:
            assert decode_base64(text) == data
            assert decode_base64(text.rstrip("=")) == data
        assert base64_decoded_size(text) == len(data)
    with pytest.raises(ValueError, match="not well-formed base64"):
        decode_base64("not base64!")


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"ID3\x04\x00" + b"\x00" * 10, "mp3"),
        (b"\xff\xfb\x90\x00" + b"\x00" * 10, "mp3"),
        (WAV, "wav"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00", "m4a"),
        (b"OggS\x00\x02" + b"\x00" * 10, None),
    ],
)
def test_audio_format(data: bytes, kind: str | None) -> None:
    """MP3, WAV and M4A are recognised from their first bytes; others are not."""
    assert audio_format(data) == kind
