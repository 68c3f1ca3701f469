"""Rule groups for the camera and voice controls of text- and image-to-video."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ._base import INVALID, MISSING, Ctx, Hit, Rule
from ._kinds import as_number, choice, count_at_most, custom, not_empty, number_range, seed

__all__ = ["CAMERA_AXES", "CAMERA_TYPES", "camera_rules", "voice_rules"]

CAMERA_TYPES = ("simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward")
CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")
_VOICE_REF_RE = re.compile(r"<<<voice_(\d+)>>>")


def voice_rules(sec: str) -> tuple[Rule, ...]:
    """``voice_list`` and ``<<<voice_N>>>`` references (seed 000, image-to-video prompt)."""
    source = seed(
        sec,
        "Image-to-Video, prompt",
        "at most 2 voices per task, referenced as "
        "<<<voice_N>>> in voice_list order, and sound must be on",
    )
    return (
        count_at_most("voice_list", 2, "voices", why=" per task", source=source),
        not_empty("voice_list[].voice_id", source=source),
        custom(
            "sound",
            "requires",
            "'on' when voice_list is used",
            lambda c: (
                [Hit("sound", c.get("sound"), "must be 'on' when voice_list is used")]
                if c.count("voice_list") and c.get("sound") not in ("on", INVALID)
                else []
            ),
            source=source,
        ),
        custom(
            "prompt / multi_prompt[].prompt",
            "voice_refs",
            "<<<voice_N>>> refers to an entry of voice_list",
            _voice_refs,
            source=source,
        ),
    )


def _voice_refs(ctx: Ctx) -> Iterator[Hit]:
    count = ctx.count("voice_list")
    texts = list(ctx.each("prompt"))
    if ctx.flag("multi_shot"):
        texts += list(ctx.each("multi_prompt[].prompt"))
    for path, text in texts:
        if not isinstance(text, str) or "<<<voice_" not in text:
            continue
        for ref in _VOICE_REF_RE.findall(text):
            if not 1 <= int(ref) <= count:
                yield Hit(
                    path, None, f"refers to <<<voice_{ref}>>> but voice_list has {count} voice(s)"
                )


def camera_rules(sec: str) -> tuple[Rule, ...]:
    """``camera_control``: type, config for ``simple`` only, one non-zero axis in [-10, 10]."""
    source = seed(
        sec,
        "camera_control",
        "type enum; config required for simple and left out "
        "otherwise; exactly one axis non-zero, each in [-10, 10]",
    )
    return (
        choice("camera_control.type", CAMERA_TYPES, source=source),
        custom(
            "camera_control.config",
            "required",
            "required when type is simple",
            lambda c: (
                [Hit("camera_control.config", None, "required when type is simple")]
                if c.get("camera_control.type") == "simple"
                and c.get("camera_control.config") is MISSING
                else []
            ),
            source=source,
            valued=True,
        ),
        custom(
            "camera_control.config",
            "forbidden",
            "only with type simple",
            _camera_extra,
            source=source,
            valued=True,
        ),
        *(
            number_range(f"camera_control.config.{axis}", -10, 10, source=source)
            for axis in CAMERA_AXES
        ),
        custom(
            "camera_control.config",
            "exactly_one",
            "exactly one axis non-zero",
            _camera_one_axis,
            source=source,
            valued=True,
        ),
    )


def _camera_extra(ctx: Ctx) -> Iterator[Hit]:
    kind = ctx.get("camera_control.type")
    config = ctx.get("camera_control.config")
    if (
        isinstance(kind, str)
        and kind in CAMERA_TYPES
        and kind != "simple"
        and config not in (MISSING, INVALID, {})
    ):
        yield Hit("camera_control.config", None, f"only allowed with type simple, not {kind}")


def _camera_one_axis(ctx: Ctx) -> Iterator[Hit]:
    kind = ctx.get("camera_control.type")
    config = ctx.get("camera_control.config")
    if config is MISSING or config is INVALID or (kind is not MISSING and kind != "simple"):
        return
    non_zero: list[str] = []
    for axis in CAMERA_AXES:
        value = ctx.get(f"camera_control.config.{axis}")
        if value is MISSING:
            continue
        number = as_number(value) if value is not INVALID else None
        if number is None or not -10 <= number <= 10:
            return
        if number != 0:
            non_zero.append(axis)
    if len(non_zero) != 1:
        found = f"{len(non_zero)}: {', '.join(non_zero)}" if non_zero else "none"
        yield Hit(
            "camera_control.config",
            None,
            f"exactly one of {', '.join(CAMERA_AXES)} must be non-zero (found {found})",
        )
