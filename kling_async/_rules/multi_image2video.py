"""Rules of ``videos/multi-image2video`` (seed 003)."""

from __future__ import annotations

from collections.abc import Iterator

from .._models import MultiImageToVideoRequest
from ._base import INVALID, Ctx, Hit, RuleTable
from ._images import image, image_complete, image_webp
from ._kinds import choice, count_at_most, custom, int_choice, known_model_name, not_empty, seed
from ._kinds import required as required_field
from ._shared import VIDEO_ASPECTS, common_rules, prompt_rules

__all__ = ["RULES"]

_IMAGES = seed(
    "003",
    "Multi-Image Reference, image_list",
    "1 to 4 images, URL or base64; "
    "jpg/jpeg/png, at most 10 MB, sides of at least 300 px, aspect 1:2.5 to 2.5:1",
)


def _need_images(ctx: Ctx) -> Iterator[Hit]:
    if ctx.get("image_list") is not INVALID and ctx.count("image_list") == 0:
        yield Hit("image_list", None, "required (1 to 4 images)")


RULES = RuleTable(
    family="multi-image2video",
    model=MultiImageToVideoRequest,
    seeds=("003",),
    rules=(
        known_model_name(),
        custom("image_list", "required", "1 to 4 images", _need_images, source=_IMAGES),
        count_at_most("image_list", 4, "images", why=" allowed", source=_IMAGES),
        not_empty("image_list[].image", source=_IMAGES),
        image("image_list[].image", source=_IMAGES),
        image_complete("image_list[].image", source=_IMAGES),
        image_webp("image_list[].image"),
        required_field("prompt", source=seed("003", "Multi-Image Reference, prompt", "required")),
        *prompt_rules("003", "Multi-Image Reference"),
        int_choice(
            "duration",
            (5, 10),
            why=" (multi-image-to-video)",
            source=seed("003", "Multi-Image Reference, duration", "enumerated values 5, 10"),
        ),
        choice(
            "mode",
            ("std", "pro"),
            source=seed("003", "Multi-Image Reference, mode", "enumerated values std, pro"),
        ),
        choice(
            "aspect_ratio",
            VIDEO_ASPECTS,
            source=seed("003", "Multi-Image Reference, aspect_ratio", "enumerated values"),
        ),
        *common_rules("seed 003 documents external_task_id for multi-image-to-video"),
    ),
)
