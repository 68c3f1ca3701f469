"""Rules of ``videos/omni-video`` (seed 001)."""

from __future__ import annotations

from collections.abc import Iterator

from .._models import OmniVideoRequest
from ._base import Ctx, Hit, RuleTable, When
from ._images import image, image_complete, image_webp
from ._kinds import (
    choice,
    count_at_most,
    custom,
    ignored,
    int_choice,
    known_model_name,
    not_empty,
    seed,
    url,
)
from ._shared import (
    DURATIONS,
    EDITING,
    NOT_EDITING,
    VIDEO_ASPECTS,
    common_rules,
    editing_video,
    multi_shot_rules,
    prompt_rules,
    refs_total,
)

__all__ = ["RULES"]

_IMAGES = seed(
    "001",
    "Omni video, image_list",
    "URL or base64; jpg/jpeg/png, at most 10 MB, "
    "sides of at least 300 px, aspect between 1:2.5 and 2.5:1; image_url not empty",
)
_FRAMES = seed(
    "001",
    "Omni video, image_list",
    "type first_frame or end_frame; an end frame "
    "needs a first frame; no end frame with more than 2 images; no frames when a "
    "video is edited",
)
_VIDEO = seed(
    "001",
    "Omni video, video_list",
    "at most one video, by URL; refer_type feature "
    "or base (the default); keep_original_sound yes or no; sound off with a video",
)
_REFS = seed(
    "001",
    "Omni video, image_list/element_list",
    "images plus subjects at most 7, "
    "or 4 with a reference video; at most 3 subjects with a first/end frame",
)

HAS_VIDEO = When(says="video_list has a video", test=lambda c: c.count("video_list") > 0)
NO_VIDEO = When(says="video_list is empty", test=lambda c: c.count("video_list") == 0)


def _frames(ctx: Ctx, kind: str) -> list[str]:
    return [
        f"{path}.type" for path, _ in ctx.entries("image_list") if ctx.get(f"{path}.type") == kind
    ]


def _frame_rules(ctx: Ctx) -> Iterator[Hit]:
    firsts, ends = _frames(ctx, "first_frame"), _frames(ctx, "end_frame")
    for path in firsts[1:]:
        yield Hit(path, "first_frame", "only one first_frame image is allowed")
    for path in ends[1:]:
        yield Hit(path, "end_frame", "only one end_frame image is allowed")
    if ends and not firsts:
        yield Hit(ends[0], "end_frame", "an end_frame needs a first_frame image too")
    images = ctx.count("image_list")
    if ends and images > 2:
        yield Hit(
            ends[0],
            "end_frame",
            f"an end_frame is not supported with more than 2 images ({images} given)",
        )
    frames = sorted(firsts + ends, key=lambda p: int(p.split("[")[1].split("]")[0]))
    if frames and editing_video(ctx):
        yield Hit(
            frames[0],
            None,
            "first/end frames cannot be used with a video to edit (refer_type base, the default)",
        )


def _frame_subjects(ctx: Ctx) -> Iterator[Hit]:
    elements = ctx.count("element_list")
    if (_frames(ctx, "first_frame") or _frames(ctx, "end_frame")) and elements > 3:
        yield Hit(
            "element_list", None, f"{elements} subjects; at most 3 with a first/end frame image"
        )


def _sound_off(ctx: Ctx) -> Iterator[Hit]:
    if ctx.get("sound") == "on":
        yield Hit("sound", "on", "must be 'off' with a reference video (video_list)")


def _aspect_needed(ctx: Ctx) -> Iterator[Hit]:
    if ctx.is_unset("aspect_ratio") and not _frames(ctx, "first_frame") and not editing_video(ctx):
        yield Hit(
            "aspect_ratio", None, "required unless a first_frame image or a video to edit is given"
        )


RULES = RuleTable(
    family="omni-video",
    model=OmniVideoRequest,
    seeds=("001",),
    rules=(
        known_model_name(),
        *prompt_rules("001", "Omni video", negative=False),
        int_choice(
            "duration",
            DURATIONS,
            when=NOT_EDITING,
            source=seed("001", "Omni video, duration", "enumerated values 3 to 15 (seconds)"),
        ),
        ignored(
            "duration",
            EDITING,
            source=seed(
                "001",
                "Omni video, duration",
                "invalid when editing a video: the output keeps the input's length",
            ),
        ),
        *multi_shot_rules("001", prompt_always=True, omni=True),
        count_at_most("video_list", 1, "videos", why=" reference video", source=_VIDEO),
        not_empty("video_list[].video_url", source=_VIDEO),
        url("video_list[].video_url", source=_VIDEO),
        choice("video_list[].refer_type", ("feature", "base"), source=_VIDEO),
        choice("video_list[].keep_original_sound", ("yes", "no"), source=_VIDEO),
        not_empty("image_list[].image_url", source=_IMAGES),
        image("image_list[].image_url", source=_IMAGES),
        image_complete("image_list[].image_url", source=_IMAGES),
        image_webp("image_list[].image_url"),
        choice("image_list[].type", ("first_frame", "end_frame"), source=_FRAMES),
        custom(
            "image_list[].type",
            "frames",
            "frames consistent with each other and the video",
            _frame_rules,
            source=_FRAMES,
        ),
        refs_total(
            "image_list",
            "image_list",
            4,
            why=" with a reference video",
            when=HAS_VIDEO,
            source=_REFS,
        ),
        refs_total(
            "image_list",
            "image_list",
            7,
            why=" without a reference video",
            when=NO_VIDEO,
            source=_REFS,
        ),
        custom(
            "element_list",
            "count",
            "at most 3 subjects with a first/end frame",
            _frame_subjects,
            source=_REFS,
        ),
        choice(
            "sound", ("on", "off"), source=seed("001", "Omni video, sound", "enumerated values")
        ),
        custom(
            "sound",
            "requires",
            "off with a reference video",
            _sound_off,
            when=HAS_VIDEO,
            source=_VIDEO,
        ),
        choice(
            "mode",
            ("std", "pro"),
            source=seed("001", "Omni video, mode", "enumerated values std, pro"),
        ),
        choice(
            "aspect_ratio",
            VIDEO_ASPECTS,
            source=seed("001", "Omni video, aspect_ratio", "enumerated values"),
        ),
        custom(
            "aspect_ratio",
            "required",
            "required without a first frame or video to edit",
            _aspect_needed,
            source=seed(
                "001",
                "Omni video, aspect_ratio",
                "required when neither a first frame nor video editing is used",
            ),
        ),
        *common_rules("seed 001 documents external_task_id for omni-video"),
    ),
)
