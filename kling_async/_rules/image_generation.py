"""Rules of ``images/generations`` (seed 000)."""

from __future__ import annotations

from collections.abc import Iterator

from .._models import ImageGenerationRequest
from ._base import Ctx, Hit, RuleTable
from ._images import image, image_complete, image_webp
from ._kinds import choice, custom, known_model_name, number_range, required, seed
from ._shared import common_rules, prompt_rules, refs_total

__all__ = ["RULES"]

_IMAGE = seed(
    "000",
    "Image Generation, image",
    "URL or base64 without a data: prefix; "
    "jpg/jpeg/png, at most 10 MB, sides of at least 300 px, aspect 1:2.5 to 2.5:1",
)
ASPECTS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9")


def _negative_with_image(ctx: Ctx) -> Iterator[Hit]:
    if ctx.is_set("image") and ctx.is_set("negative_prompt"):
        yield Hit("negative_prompt", None, "not supported with a reference image (image)")


def _reference_needs_image(ctx: Ctx) -> Iterator[Hit]:
    if ctx.is_set("image_reference") and ctx.is_unset("image"):
        yield Hit("image", None, "required when image_reference is set")


RULES = RuleTable(
    family="image-generation",
    model=ImageGenerationRequest,
    seeds=("000",),
    rules=(
        known_model_name(),
        required("prompt", source=seed("000", "Image Generation, prompt", "required")),
        *prompt_rules("000", "Image Generation"),
        image("image", source=_IMAGE),
        image_complete("image", source=_IMAGE),
        image_webp("image"),
        custom(
            "negative_prompt",
            "conflict",
            "not with a reference image",
            _negative_with_image,
            source=seed(
                "000",
                "Image Generation, negative_prompt",
                "not supported for image-to-image (image set)",
            ),
        ),
        custom(
            "image",
            "required",
            "required when image_reference is set",
            _reference_needs_image,
            source=seed("000", "Image Generation, image", "required when image_reference is set"),
        ),
        refs_total(
            "image",
            "fields:image",
            10,
            source=seed(
                "000", "Image Generation, element_list", "subjects plus reference images at most 10"
            ),
        ),
        choice(
            "resolution",
            ("1k", "2k"),
            source=seed("000", "Image Generation, resolution", "enumerated values 1k, 2k"),
        ),
        number_range("n", 1, 9, source=seed("000", "Image Generation, n", "range [1, 9]")),
        choice(
            "aspect_ratio",
            ASPECTS,
            source=seed("000", "Image Generation, aspect_ratio", "enumerated values"),
        ),
        *common_rules("seed 000 documents external_task_id for image generation"),
    ),
)
