"""Rules of ``videos/image2video`` (seeds 000, 003, 004)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .._models import ImageToVideoRequest
from ._base import Ctx, Hit, RuleTable, When
from ._controls import camera_rules, voice_rules
from ._images import image, image_complete, image_webp, mask_geometry
from ._kinds import (
    WARNS,
    choice,
    count_at_most,
    custom,
    known_model_name,
    number_range,
    required,
    seed,
)
from ._shared import (
    VIDEO_ASPECTS,
    common_rules,
    mode_rules,
    model_duration_rules,
    multi_shot_rules,
    prompt_rules,
    refs_total,
    sound_rules,
    task_seconds,
)

__all__ = ["RULES"]

_IMAGES = seed(
    "000",
    "Image-to-Video, image/image_tail",
    "URL or base64 without a data: "
    "prefix; jpg/jpeg/png, at most 10 MB, sides of at least 300 px, aspect between "
    "1:2.5 and 2.5:1",
)
_BRUSH = seed(
    "003",
    "Image to Video, dynamic_masks",
    "up to 6 groups, each a mask and a trajectory; masks follow the image's format rules",
)
_TRAJECTORY = seed(
    "003",
    "Image to Video, trajectories",
    "coordinate count in [2, 77] for a 5 s "
    "video; x and y are pixel coordinates from the image's bottom-left corner",
)

FIVE_SECONDS = When(says="the video lasts 5 s", test=lambda c: task_seconds(c) == 5)
NOT_FIVE_SECONDS = When(says="the video does not last 5 s", test=lambda c: task_seconds(c) != 5)


def _no_image(ctx: Ctx) -> Iterator[Hit]:
    if ctx.is_unset("image") and ctx.is_unset("image_tail"):
        yield Hit("image", None, "image or image_tail is required (both are empty)")


def _points(low: int, high: int | None, extra: str = "") -> Callable[[Ctx], Iterator[Hit]]:
    def check(ctx: Ctx) -> Iterator[Hit]:
        for path, _ in ctx.entries("dynamic_masks"):
            count = ctx.count(f"{path}.trajectories")
            if not ctx.is_set(f"{path}.trajectories"):
                continue
            if count < low or (high is not None and count > high):
                yield Hit(f"{path}.trajectories", None, f"{count} points; 2 to 77 allowed{extra}")

    return check


RULES = RuleTable(
    family="image2video",
    model=ImageToVideoRequest,
    seeds=("000", "003", "004"),
    rules=(
        known_model_name(),
        custom(
            "image / image_tail",
            "required",
            "image or image_tail (not both empty)",
            _no_image,
            source=seed(
                "000", "Image-to-Video, image", "image and image_tail cannot both be empty"
            ),
        ),
        image("image", source=_IMAGES),
        image("image_tail", source=_IMAGES),
        image_complete("image", source=_IMAGES),
        image_complete("image_tail", source=_IMAGES),
        image_webp("image"),
        image_webp("image_tail"),
        *prompt_rules("000", "Image-to-Video"),
        *model_duration_rules("000"),
        *multi_shot_rules("000", prompt_always=False),
        refs_total(
            "image",
            "fields:image,image_tail",
            10,
            source=seed(
                "000", "Image-to-Video, element_list", "subjects plus reference images at most 10"
            ),
        ),
        *sound_rules("000"),
        *voice_rules("000"),
        number_range(
            "cfg_scale", 0, 1, source=seed("003", "Image to Video, cfg_scale", "range [0, 1]")
        ),
        *mode_rules("000"),
        choice(
            "aspect_ratio",
            VIDEO_ASPECTS,
            source=seed("000", "Image-to-Video, aspect_ratio", "enumerated values"),
        ),
        image("static_mask", dimensions=False, source=_BRUSH),
        count_at_most("dynamic_masks", 6, "groups", why=" allowed", source=_BRUSH),
        required("dynamic_masks[].mask", source=_BRUSH),
        image("dynamic_masks[].mask", dimensions=False, source=_BRUSH),
        required("dynamic_masks[].trajectories", because=" (2 to 77 points)", source=_BRUSH),
        custom(
            "dynamic_masks[].trajectories",
            "count",
            "at least 2 points",
            _points(2, None),
            source=_TRAJECTORY,
        ),
        custom(
            "dynamic_masks[].trajectories",
            "count",
            "at most 77 points for a 5 s video",
            _points(0, 77),
            when=FIVE_SECONDS,
            source=_TRAJECTORY,
        ),
        custom(
            "dynamic_masks[].trajectories",
            "count",
            "at most 77 points (stated for 5 s)",
            _points(0, 77, "; the cap is stated for 5 s videos"),
            when=NOT_FIVE_SECONDS,
            tier=WARNS,
            source=_TRAJECTORY,
        ),
        number_range("dynamic_masks[].trajectories[].x", 0, None, source=_TRAJECTORY),
        number_range("dynamic_masks[].trajectories[].y", 0, None, source=_TRAJECTORY),
        mask_geometry(
            source=seed(
                "003",
                "Image to Video, static_mask/dynamic_masks",
                "masks have the input image's aspect ratio and one resolution",
            )
        ),
        *camera_rules("003"),
        *common_rules("seeds 000/003/004 document external_task_id for image-to-video"),
    ),
)
