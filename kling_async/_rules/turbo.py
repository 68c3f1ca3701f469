"""Rules of the two 3.0-turbo endpoints on the second host (seed 002).

Seed 002 gives defaults for ``settings`` but no enumerations, so values other
than the ones the SDK knows are sent with a warning, never refused.
"""

from __future__ import annotations

from collections.abc import Iterator

from .._models import TurboImageToVideoRequest, TurboTextToVideoRequest
from ._base import Ctx, Hit, Rule, RuleTable
from ._images import image, image_complete, image_webp
from ._kinds import (
    WARNS,
    choice,
    custom,
    int_choice,
    max_length,
    required,
    sdk,
    seed,
)
from ._shared import DURATIONS, PROMPT_MAX, VIDEO_ASPECTS, common_rules

__all__ = ["IMAGE_RULES", "TEXT_RULES"]

_KNOWN = sdk(
    "seed 002 gives defaults (720p, 16:9, 5) but no list of values; these are the "
    "values the other families document"
)
_CONTENTS = seed(
    "002",
    "图生视频 (image-to-video), contents",
    "required; entries of type prompt or first_frame; the first frame is required",
)
_DOCUMENTED = "seed 002 documents options.external_task_id for the turbo endpoints"


def _settings_rules(*, aspect: bool) -> tuple[Rule, ...]:
    rules = [
        choice("settings.resolution", ("720p", "1080p"), tier=WARNS, source=_KNOWN),
        int_choice("settings.duration", DURATIONS, tier=WARNS, source=_KNOWN),
    ]
    if aspect:
        rules.insert(1, choice("settings.aspect_ratio", VIDEO_ASPECTS, tier=WARNS, source=_KNOWN))
    return tuple(rules)


def _need_contents(ctx: Ctx) -> Iterator[Hit]:
    value = ctx.get("contents")
    if (isinstance(value, list) or ctx.is_unset("contents")) and ctx.count("contents") == 0:
        yield Hit("contents", None, "required: a first_frame image and optionally a prompt")


def _by_type(ctx: Ctx, kind: str) -> list[str]:
    return [path for path, _ in ctx.entries("contents") if ctx.get(f"{path}.type") == kind]


def _entry_fields(ctx: Ctx) -> Iterator[Hit]:
    for path in _by_type(ctx, "prompt"):
        if ctx.is_unset(f"{path}.text"):
            yield Hit(f"{path}.text", None, "required for a prompt entry")
    for path in _by_type(ctx, "first_frame"):
        if ctx.is_unset(f"{path}.url"):
            yield Hit(f"{path}.url", None, "required for a first_frame entry")


def _one_first_frame(ctx: Ctx) -> Iterator[Hit]:
    frames = _by_type(ctx, "first_frame")
    if ctx.count("contents") and not frames:
        yield Hit("contents", None, "a first_frame entry (with a url) is required")
    for path in frames[1:]:
        yield Hit(f"{path}.type", "first_frame", "only one first_frame entry is allowed")


TEXT_RULES = RuleTable(
    family="turbo-text2video",
    model=TurboTextToVideoRequest,
    seeds=("002",),
    rules=(
        required("prompt", source=seed("002", "文生视频 (text-to-video), prompt", "required")),
        max_length(
            "prompt",
            PROMPT_MAX,
            tier=WARNS,
            source=sdk("seed 002 states no length; the other families allow 2500 characters"),
        ),
        *_settings_rules(aspect=True),
        *common_rules(_DOCUMENTED, options=True),
    ),
)

IMAGE_RULES = RuleTable(
    family="turbo-image2video",
    model=TurboImageToVideoRequest,
    seeds=("002",),
    rules=(
        custom("contents", "required", "required", _need_contents, source=_CONTENTS),
        required("contents[].type", because=" (prompt, first_frame)", source=_CONTENTS),
        choice("contents[].type", ("prompt", "first_frame"), source=_CONTENTS),
        custom(
            "contents[].text / contents[].url",
            "required",
            "text for a prompt, url for a first_frame",
            _entry_fields,
            source=_CONTENTS,
        ),
        custom(
            "contents[].type",
            "count",
            "exactly one first_frame entry",
            _one_first_frame,
            source=_CONTENTS,
        ),
        max_length(
            "contents[].text",
            PROMPT_MAX,
            tier=WARNS,
            source=sdk("seed 002 states no length; the other families allow 2500 characters"),
        ),
        image(
            "contents[].url",
            part="encoding",
            source=seed(
                "002",
                "图生视频, contents.type=first_frame",
                "the first frame image (URL or base64)",
            ),
        ),
        image(
            "contents[].url",
            part="content",
            tier=WARNS,
            source=sdk(
                "seed 002 states no image limits for turbo; the other families' limits apply"
            ),
        ),
        image_complete("contents[].url", source=_CONTENTS),
        image_webp("contents[].url"),
        *_settings_rules(aspect=False),
        *common_rules(_DOCUMENTED, options=True),
    ),
)
