"""Tiers: what the seeds state is refused, what the SDK guesses is sent with a warning.

Covers every clause where a seed calls a field *invalid* (ignored) in a context, the
false refusals issue 12 lists, unknown models, did-you-mean hints, unknown fields
and the strict JSON types (nothing coerced, anywhere).
"""

from __future__ import annotations

import base64
import json
import logging
import struct
import warnings
import zlib
from typing import Any

import pytest

from kling_async import KlingWarning, ValidationError
from kling_async._models import Finding, Tier
from kling_async._validation import build_payload, check_payload, validate_payload

URL = "https://example.com/a.png"


def _png(width: int = 640, height: int = 360) -> bytes:
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


def _jpeg(width: int = 600, height: int = 800) -> bytes:
    def segment(marker: int, payload: bytes) -> bytes:
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload

    return b"".join(
        [
            b"\xff\xd8",
            segment(0xDB, b"\x00" + bytes(range(1, 65))),
            segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"),
            segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            b"\x12\x34\xff\xd9",
        ]
    )


def b64(data: bytes) -> str:
    """Plain base64."""
    return base64.b64encode(data).decode("ascii")


def sent_with_warnings(endpoint: str, body: dict[str, Any]) -> list[Finding]:
    """Build the body: it must be sent unchanged, and the warnings are returned."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        payload, found = build_payload(endpoint, body)
    assert json.dumps(payload, sort_keys=True) == json.dumps(body, sort_keys=True)
    emitted = [w.message for w in caught if isinstance(w.message, KlingWarning)]
    assert [w.finding for w in emitted] == found
    assert all(f.tier is Tier.WARNS for f in found)
    return found


def refused(endpoint: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """Build the body: it must be refused; the (path, message) pairs are returned."""
    with pytest.raises(ValidationError) as info:
        build_payload(endpoint, body, warn=False)
    return [(p.path, p.message) for p in info.value.problems]


# --- every clause where a seed calls a field invalid -----------------------------------------

SHOTS = [{"index": 1, "prompt": "a", "duration": "5"}]

INVALID_CLAUSES = [
    # seed 000 (text2video, image2video) and 001 (omni): prompt invalid when multi_shot true
    (
        "text2video",
        {"multi_shot": True, "shot_type": "customize", "prompt": "x", "multi_prompt": SHOTS},
        "prompt",
    ),
    (
        "image2video",
        {
            "image": URL,
            "multi_shot": True,
            "shot_type": "customize",
            "prompt": "x",
            "multi_prompt": SHOTS,
        },
        "prompt",
    ),
    (
        "omni-video",
        {
            "multi_shot": True,
            "shot_type": "customize",
            "prompt": "x",
            "multi_prompt": SHOTS,
            "aspect_ratio": "16:9",
        },
        "prompt",
    ),
    # seeds 000/001: shot_type and multi_prompt invalid when multi_shot false
    ("text2video", {"prompt": "x", "shot_type": "customize"}, "shot_type"),
    ("text2video", {"prompt": "x", "multi_shot": False, "multi_prompt": SHOTS * 7}, "multi_prompt"),
    ("image2video", {"image": URL, "shot_type": "bogus"}, "shot_type"),
    ("omni-video", {"prompt": "x", "aspect_ratio": "1:1", "multi_prompt": SHOTS}, "multi_prompt"),
    # seed 001 omni-image: n invalid for series, series_amount invalid for single
    ("omni-image", {"prompt": "x", "result_type": "series", "n": 12}, "n"),
    ("omni-image", {"prompt": "x", "result_type": "single", "series_amount": 1}, "series_amount"),
    ("omni-image", {"prompt": "x", "series_amount": 30}, "series_amount"),
    # seed 001 omni-video: duration invalid when editing a video (refer_type base)
    (
        "omni-video",
        {"prompt": "x", "duration": 20, "video_list": [{"video_url": URL, "refer_type": "base"}]},
        "duration",
    ),
    (
        "omni-video",
        {"prompt": "x", "duration": "7", "video_list": [{"video_url": URL}]},
        "duration",
    ),
]


@pytest.mark.parametrize(("endpoint", "body", "field"), INVALID_CLAUSES)
def test_invalid_clause_is_sent_with_a_warning(
    endpoint: str, body: dict[str, Any], field: str
) -> None:
    """A field a seed calls invalid in this context is sent as written, with one warning."""
    found = sent_with_warnings(endpoint, body)
    assert [f.path for f in found] == [field]
    assert "ignored" in found[0].message
    assert found[0].source.startswith("seed 00")


# --- issue 12's false refusals, now passes or warnings ------------------------------------------

FORMER_REFUSALS = [
    (
        "text2video",
        {
            "multi_shot": True,
            "shot_type": "customize",
            "multi_prompt": [
                {"index": 1, "prompt": "a", "duration": "2.5"},
                {"index": 2, "prompt": "b", "duration": "2.5"},
            ],
        },
        [],
    ),
    (
        "turbo-text2video",
        {"prompt": "x", "settings": {"resolution": "4k"}},
        ["settings.resolution"],
    ),
    (
        "turbo-text2video",
        {"prompt": "x", "settings": {"aspect_ratio": "4:3"}},
        ["settings.aspect_ratio"],
    ),
    ("turbo-text2video", {"prompt": "x", "settings": {"duration": 20}}, ["settings.duration"]),
    ("text2video", {"prompt": "x", "external_task_id": "e" * 65}, ["external_task_id"]),
    ("text2video", {"prompt": "x", "external_task_id": "my job 1"}, ["external_task_id"]),
    (
        "turbo-text2video",
        {"prompt": "x", "options": {"external_task_id": "a b"}},
        ["options.external_task_id"],
    ),
    (
        "image2video",
        {
            "image": URL,
            "duration": "10",
            "dynamic_masks": [{"mask": URL, "trajectories": [{"x": i, "y": i} for i in range(78)]}],
        },
        ["dynamic_masks[0].trajectories"],
    ),
    ("avatar", {"image": URL}, ["audio_id"]),
    (
        "avatar",
        {"image": URL, "audio_id": "a", "sound_file": URL, "mode": "ultra"},
        ["sound_file", "mode"],
    ),
    (
        "avatar",
        {"image": b64(_png(100, 100)), "audio_id": "a", "prompt": "p" * 2600},
        ["image", "prompt"],
    ),
    (
        "text2video",
        {"model_name": "kling-v9-hyper", "prompt": "x", "duration": "15"},
        ["model_name"],
    ),
]


@pytest.mark.parametrize(("endpoint", "body", "warned"), FORMER_REFUSALS)
def test_former_false_refusals_are_sent(
    endpoint: str, body: dict[str, Any], warned: list[str]
) -> None:
    """Every false refusal issue 12 lists is now sent, at most with warnings."""
    assert [f.path for f in sent_with_warnings(endpoint, body)] == warned


def test_77_points_still_block_for_5_second_videos() -> None:
    """Seed 003 states the 77-point cap for 5 s videos (the default duration): refused."""
    body = {
        "image": URL,
        "dynamic_masks": [{"mask": URL, "trajectories": [{"x": i, "y": i} for i in range(78)]}],
    }
    assert refused("image2video", body) == [
        ("dynamic_masks[0].trajectories", "78 points; 2 to 77 allowed")
    ]


def test_slash_comma_and_dots_in_external_id_block() -> None:
    """The ids that would break a lookup by URL path or comma-joined query are refused."""
    for value in (".", "..", "a/b", "a,b"):
        [(path, message)] = refused("text2video", {"prompt": "x", "external_task_id": value})
        assert path == "external_task_id"
        assert "'/' or ','" in message


def test_empty_external_id_counts_as_unset() -> None:
    """The seeds' own examples send external_task_id "" : it passes and is sent as written."""
    assert (
        sent_with_warnings("text-to-audio", {"prompt": "x", "duration": 3, "external_task_id": ""})
        == []
    )


def test_model_specific_limits_apply_only_to_listed_models() -> None:
    """kling-v1 (seed 004) takes 5 or 10 s; an unknown model takes what the seeds allow."""
    assert refused("text2video", {"model_name": "kling-v1", "prompt": "x", "duration": "7"}) == [
        ("duration", "7 is not one of 5, 10 seconds (version-1 models)")
    ]
    found = sent_with_warnings(
        "text2video", {"model_name": "kling-v1-9", "prompt": "x", "duration": "7"}
    )
    assert [f.path for f in found] == ["model_name"]


def test_version_2_duration_outside_5_and_10_warns() -> None:
    """Seeds 000 and 003 disagree for 2.x models: 7 s is sent with a warning."""
    found = sent_with_warnings(
        "text2video", {"model_name": "kling-v2-6", "prompt": "x", "duration": "7"}
    )
    assert [(f.path, f.rule) for f in found] == [("duration", "choice")]


# --- did-you-mean, unknown fields ----------------------------------------------------------------


def test_misspelt_field_is_refused_with_a_suggestion() -> None:
    """An unknown field is refused (the API would ignore it) and a close name is suggested."""
    with pytest.raises(ValidationError) as info:
        build_payload("text2video", {"promt": "a fox"})
    [problem, *_] = info.value.problems
    assert isinstance(problem, Finding)
    assert (problem.path, problem.message, problem.hint) == (
        "promt",
        "unknown field",
        "did you mean 'prompt'?",
    )
    assert "did you mean 'prompt'?" in str(info.value)


def test_misspelt_nested_field_and_enum_value_get_suggestions() -> None:
    """Suggestions reach nested fields and enum values too."""
    body = {
        "prompt": "x",
        "multi_shot": True,
        "shot_type": "customise",
        "multi_prompt": [{"index": 1, "prompt": "a", "duraton": "5"}],
    }
    problems = validate_payload("text2video", body)
    hints = {p.path: p.hint for p in problems if isinstance(p, Finding)}
    assert hints["multi_prompt[0].duraton"] == "did you mean 'duration'?"
    assert hints["shot_type"] == "did you mean 'customize'?"


def test_unknown_fields_pass_when_allowed() -> None:
    """allow_unknown sends unknown fields as written; known fields are still checked."""
    body = {"prompt": "x", "seed": 42, "extra": {"nested": [1, 2.5, None]}}
    payload, found = build_payload("text2video", body, allow_unknown=True)
    assert payload == body
    assert found == []
    assert refused_allowing("text2video", {"prompt": "x", "duration": 5.0, "seed": 1}) == [
        "duration"
    ]


def refused_allowing(endpoint: str, body: dict[str, Any]) -> list[str]:
    """Paths of the problems when unknown fields are allowed."""
    with pytest.raises(ValidationError) as info:
        build_payload(endpoint, body, allow_unknown=True, warn=False)
    return [p.path for p in info.value.problems]


def test_unknown_fields_must_still_be_json() -> None:
    """Pass-through values may not hide NaN or infinity (the body would not be JSON)."""
    assert refused_allowing("text2video", {"prompt": "x", "extra": [1, float("nan")]}) == ["extra"]


# --- strict types: nothing coerced --------------------------------------------------------------

COERCION_PROBES = [
    (
        "text2video",
        {"prompt": "x", "watermark_info": {"enabled": "false"}},
        "watermark_info.enabled",
    ),
    (
        "turbo-text2video",
        {"prompt": "x", "options": {"watermark_info": {"enabled": "no"}}},
        "options.watermark_info.enabled",
    ),
    ("text2video", {"prompt": "x", "multi_shot": "false"}, "multi_shot"),
    ("text2video", {"prompt": "x", "multi_shot": 0}, "multi_shot"),
    (
        "image2video",
        {
            "image": URL,
            "dynamic_masks": [
                {"mask": URL, "trajectories": [{"x": 10.9, "y": 1}, {"x": 1, "y": 2}]}
            ],
        },
        "dynamic_masks[0].trajectories[0].x",
    ),
    ("text2video", {"prompt": "x", "duration": 5.0}, "duration"),
    ("text2video", {"prompt": "x", "cfg_scale": float("nan")}, "cfg_scale"),
    ("text2video", {"prompt": "x", "cfg_scale": float("inf")}, "cfg_scale"),
    ("text2video", {"prompt": "x", "cfg_scale": 10**400}, "cfg_scale"),
    ("image-generation", {"prompt": "x", "n": 10**30}, "n"),
    (
        "lip-sync",
        {
            "session_id": "s",
            "face_choose": [
                {
                    "face_id": "0",
                    "audio_id": "a",
                    "sound_start_time": "0",
                    "sound_end_time": 3000,
                    "sound_insert_time": 0,
                }
            ],
        },
        "face_choose[0].sound_start_time",
    ),
    ("text2video", {"prompt": "x", "camera_control": "zoom"}, "camera_control"),
    (
        "text2video",
        {
            "prompt": "x",
            "multi_shot": True,
            "shot_type": "customize",
            "multi_prompt": {"prompt": "a"},
        },
        "multi_prompt",
    ),
    ("omni-video", {"prompt": "x", "aspect_ratio": "1:1", "video_list": [7]}, "video_list[0]"),
    ("text-to-audio", {"prompt": "x", "duration": True}, "duration"),
]


@pytest.mark.parametrize(("endpoint", "body", "path"), COERCION_PROBES)
def test_wrong_json_types_are_refused_not_coerced(
    endpoint: str, body: dict[str, Any], path: str
) -> None:
    """A value of the wrong JSON type is refused, named by its path, never converted."""
    assert path in [p for p, _ in refused(endpoint, body)]


def test_nulls_mean_unset_and_are_not_sent() -> None:
    """A null field is unset: it is checked as absent and left out of the body."""
    payload, _ = build_payload(
        "text2video",
        {"prompt": "x", "duration": None, "camera_control": {"type": "forward_up", "config": None}},
    )
    assert payload == {"prompt": "x", "camera_control": {"type": "forward_up"}}


# --- images ------------------------------------------------------------------------------------


def test_truncated_base64_images_are_refused() -> None:
    """A PNG without its IEND chunk or a JPEG without its EOI marker is cut short: refused."""
    for data in (_png()[:-12], _jpeg()[:-2]):
        [(path, message)] = refused("image2video", {"image": b64(data)})
        assert path == "image"
        assert "cut short" in message
    assert sent_with_warnings("image2video", {"image": b64(_png())}) == []
    assert sent_with_warnings("image2video", {"image": b64(_jpeg())}) == []


def test_webp_is_sent_with_a_warning() -> None:
    """WebP is not a documented format: sent, with a warning naming the field."""
    webp = b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8 " + b"\x00" * 22
    found = sent_with_warnings("image-generation", {"prompt": "x", "image": b64(webp)})
    assert [(f.path, f.rule) for f in found] == [("image", "image_format")]


def test_findings_never_hold_payloads() -> None:
    """Long values (base64, prompts) are redacted to their length in a finding."""
    data = b64(_png(100, 100))
    [problem] = validate_payload("image2video", {"image": data, "prompt": "p"})
    assert isinstance(problem, Finding)
    assert problem.value is None or data not in str(problem.value)
    [long_prompt] = validate_payload("text2video", {"prompt": "p" * 2501})
    assert isinstance(long_prompt, Finding)
    assert long_prompt.value == "<2501 characters>"
    assert "ppppp" not in repr(long_prompt)


# --- emission ------------------------------------------------------------------------------


def test_warnings_go_through_warnings_and_the_logger(caplog: pytest.LogCaptureFixture) -> None:
    """A guess emits a KlingWarning and a log record on the kling_async logger."""
    caplog.set_level(logging.WARNING, logger="kling_async")
    with pytest.warns(KlingWarning, match="settings.resolution"):
        build_payload("turbo-text2video", {"prompt": "x", "settings": {"resolution": "2160p"}})
    assert any("settings.resolution" in r.getMessage() for r in caplog.records)


def test_check_payload_separates_tiers() -> None:
    """check_payload returns blocking problems and warnings apart, emitting nothing."""
    checked = check_payload("omni-image", {"prompt": "p" * 2501, "result_type": "series", "n": 40})
    assert [p.path for p in checked.problems] == ["prompt"]
    assert [w.path for w in checked.warnings] == ["n"]
    assert not checked.ok
