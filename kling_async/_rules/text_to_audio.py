"""Rules of ``audio/text-to-audio`` (seeds 000, 001)."""

from __future__ import annotations

from collections.abc import Iterator

from .._models import TextToAudioRequest
from ._base import Ctx, Hit, RuleTable
from ._kinds import as_number, custom, max_length, number_range, required, seed
from ._shared import common_rules

__all__ = ["RULES"]

_DURATION = seed(
    "000",
    "Text-to-Sound Effect, duration",
    "required float from 3.0 to 10.0 seconds, one decimal place",
)


def _one_decimal(ctx: Ctx) -> Iterator[Hit]:
    for path, value in ctx.each("duration"):
        number = as_number(value)
        if number is None:
            continue
        exponent = number.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < -1:
            yield Hit(path, value, f"at most one decimal place, got {value}")


RULES = RuleTable(
    family="text-to-audio",
    model=TextToAudioRequest,
    seeds=("000", "001"),
    rules=(
        required("prompt", source=seed("000", "Text-to-Sound Effect, prompt", "required")),
        max_length(
            "prompt",
            200,
            source=seed("000", "Text-to-Sound Effect, prompt", "at most 200 characters"),
        ),
        required("duration", because=" (3.0 to 10.0 seconds)", source=_DURATION),
        number_range("duration", 3.0, 10.0, source=_DURATION),
        custom(
            "duration", "precision", "at most one decimal place", _one_decimal, source=_DURATION
        ),
        *common_rules("seeds 000/001 document external_task_id for text-to-audio"),
    ),
)
