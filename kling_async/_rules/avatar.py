"""Rules of ``videos/avatar/image2video`` (seed 001).

Seed 001 gives this family's fields, requiredness and defaults, and forbids a
``data:`` prefix on base64; every other limit is carried over from the other
families and only warns.
"""

from __future__ import annotations

from .._models import AvatarRequest
from ._base import RuleTable
from ._images import image
from ._kinds import WARNS, audio, choice, exactly_one, max_length, required, seed
from ._shared import PROMPT_MAX, common_rules, unknown_limit_source

__all__ = ["RULES"]

_GUESS = unknown_limit_source("avatar")

RULES = RuleTable(
    family="avatar",
    model=AvatarRequest,
    seeds=("001",),
    rules=(
        required(
            "image",
            because=" (the digital human's picture)",
            source=seed("001", "Digital Human, image", "required"),
        ),
        image(
            "image",
            part="encoding",
            source=seed("001", "Digital Human, image", "base64 must not carry a data: prefix"),
        ),
        image("image", part="content", tier=WARNS, source=_GUESS),
        exactly_one("audio_id", "sound_file", tier=WARNS, source=_GUESS),
        audio("sound_file", check_format=False, tier=WARNS, source=_GUESS),
        max_length("prompt", PROMPT_MAX, tier=WARNS, source=_GUESS),
        choice("mode", ("std", "pro"), tier=WARNS, source=_GUESS),
        *common_rules("seed 001 documents external_task_id for avatar"),
    ),
)
