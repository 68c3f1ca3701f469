"""Rules of ``images/omni-image`` (seed 001)."""

from __future__ import annotations

from .._models import OmniImageRequest
from ._base import RuleTable, When
from ._images import image, image_complete, image_webp
from ._kinds import choice, ignored, known_model_name, not_empty, number_range, required, seed
from ._shared import common_rules, prompt_rules, refs_total
from .image_generation import ASPECTS

__all__ = ["RULES"]

_IMAGES = seed(
    "001",
    "Omni image, image_list",
    "URL or base64; jpg/jpeg/png, at most 10 MB, "
    "sides of at least 300 px, aspect 1:2.5 to 2.5:1; not empty",
)
SERIES = When(says="result_type is series", test=lambda c: c.get("result_type") == "series")
SINGLE = When(
    says="result_type is single (the default)", test=lambda c: c.get("result_type") != "series"
)

RULES = RuleTable(
    family="omni-image",
    model=OmniImageRequest,
    seeds=("001",),
    rules=(
        known_model_name(),
        required("prompt", source=seed("001", "Omni image, prompt", "required")),
        *prompt_rules("001", "Omni image", negative=False),
        not_empty("image_list[].image", source=_IMAGES),
        image("image_list[].image", source=_IMAGES),
        image_complete("image_list[].image", source=_IMAGES),
        image_webp("image_list[].image"),
        refs_total(
            "image_list",
            "image_list",
            10,
            source=seed(
                "001", "Omni image, element_list", "subjects plus reference images at most 10"
            ),
        ),
        choice(
            "resolution",
            ("1k", "2k", "4k"),
            source=seed("001", "Omni image, resolution", "enumerated values 1k, 2k, 4k"),
        ),
        choice(
            "result_type",
            ("single", "series"),
            source=seed("001", "Omni image, result_type", "enumerated values single, series"),
        ),
        number_range("n", 1, 9, when=SINGLE, source=seed("001", "Omni image, n", "range [1, 9]")),
        ignored(
            "n", SERIES, source=seed("001", "Omni image, n", "invalid when result_type is series")
        ),
        number_range(
            "series_amount",
            2,
            9,
            when=SERIES,
            source=seed("001", "Omni image, series_amount", "range [2, 9]"),
        ),
        ignored(
            "series_amount",
            SINGLE,
            source=seed("001", "Omni image, series_amount", "invalid when result_type is single"),
        ),
        choice(
            "aspect_ratio",
            (*ASPECTS, "auto"),
            source=seed("001", "Omni image, aspect_ratio", "enumerated values, auto included"),
        ),
        *common_rules("seed 001 documents external_task_id for omni-image"),
    ),
)
