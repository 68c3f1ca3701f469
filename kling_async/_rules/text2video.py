"""Rules of ``videos/text2video`` (seeds 000, 003, 004)."""

from __future__ import annotations

from .._models import TextToVideoRequest
from ._base import RuleTable
from ._controls import camera_rules, voice_rules
from ._kinds import choice, known_model_name, number_range, seed
from ._shared import (
    VIDEO_ASPECTS,
    common_rules,
    mode_rules,
    model_duration_rules,
    multi_shot_rules,
    prompt_rules,
    sound_rules,
)

__all__ = ["RULES"]

RULES = RuleTable(
    family="text2video",
    model=TextToVideoRequest,
    seeds=("000", "003", "004"),
    rules=(
        known_model_name(),
        *prompt_rules("000", "Text-to-Video"),
        *model_duration_rules("000"),
        *multi_shot_rules("000", prompt_always=True),
        *sound_rules("000"),
        *voice_rules("000"),
        number_range(
            "cfg_scale", 0, 1, source=seed("003", "Text to Video, cfg_scale", "range [0, 1]")
        ),
        *mode_rules("000"),
        choice(
            "aspect_ratio",
            VIDEO_ASPECTS,
            source=seed("000", "Text-to-Video, aspect_ratio", "enumerated values"),
        ),
        *camera_rules("003"),
        *common_rules("seeds 000/003/004 document external_task_id for text-to-video"),
    ),
)
