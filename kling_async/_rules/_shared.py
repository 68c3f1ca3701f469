"""Conditions and rule groups several families share (prompts, multi-shot, ids, camera).

Each group is a function of the family's seed citation, returning rules; the
family tables splice them in, so a shared rule is written once and still cites
the seed that documents it for that family.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from ._base import INVALID, MISSING, Ctx, Hit, Rule, When
from ._kinds import (
    WARNS,
    as_int,
    as_number,
    choice,
    count_at_most,
    custom,
    external_id,
    ignored,
    int_choice,
    max_length,
    number_range,
    required,
    sdk,
    seed,
    url,
)

__all__ = [
    "EDITING",
    "MULTI_SHOT",
    "NOT_EDITING",
    "NOT_MULTI_SHOT",
    "PROMPT_MAX",
    "VIDEO_ASPECTS",
    "callback_rules",
    "common_rules",
    "editing_video",
    "model_duration_rules",
    "multi_shot_rules",
    "refs_total",
    "sound_rules",
    "task_seconds",
]

PROMPT_MAX = 2500
SHOT_PROMPT_MAX = 512
VIDEO_ASPECTS = ("16:9", "9:16", "1:1")
DURATIONS = tuple(range(3, 16))
OLD_DURATIONS = (5, 10)
DEFAULT_SECONDS = 5


def _shot_type(ctx: Ctx) -> str | None:
    return ctx.text("shot_type")


MULTI_SHOT = When(says="multi_shot is true", test=lambda c: c.flag("multi_shot"))
NOT_MULTI_SHOT = When(says="multi_shot is not true", test=lambda c: not c.flag("multi_shot"))
CUSTOMIZE = When(
    says="multi_shot is true and shot_type is customize",
    test=lambda c: c.flag("multi_shot") and _shot_type(c) == "customize",
)
INTELLIGENCE = When(
    says="multi_shot is true and shot_type is intelligence",
    test=lambda c: c.flag("multi_shot") and _shot_type(c) == "intelligence",
)
PROMPT_UNUSED = When(
    says="multi_shot is true and shot_type is not intelligence",
    test=lambda c: c.flag("multi_shot") and _shot_type(c) != "intelligence",
)
MODEL_V1 = When(
    says="model_name is a version-1 model",
    test=lambda c: c.model is not None and c.model.version is not None and c.model.version[0] == 1,
)
NOT_MODEL_V1 = When(says="model_name is not a version-1 model", test=lambda c: not MODEL_V1.test(c))
MODEL_V2 = When(
    says="model_name is a version-2 model",
    test=lambda c: c.model is not None and c.model.version is not None and c.model.version[0] == 2,
)
MODEL_BEFORE_2_6 = When(
    says="model_name is a model before 2.6",
    test=lambda c: c.model is not None and c.model.version is not None and c.model.version < (2, 6),
)


def editing_video(ctx: Ctx) -> bool:
    """Whether an omni-video body edits a video (``refer_type`` ``base``, the default)."""
    for path, _ in ctx.entries("video_list"):
        refer = ctx.get(f"{path}.refer_type")
        if refer is MISSING or refer == "" or refer == "base":
            return True
    return False


EDITING = When(
    says="a video_list entry is the video to edit (refer_type base, the default)",
    test=editing_video,
)
NOT_EDITING = When(says="no video is edited", test=lambda c: not editing_video(c))


def task_seconds(ctx: Ctx) -> int | None:
    """The task's duration in seconds (5 when unset); ``None`` if unusable."""
    value = ctx.get("duration")
    if value is MISSING or value == "":
        return DEFAULT_SECONDS
    if value is INVALID:
        return None
    seconds = as_int(value)
    return seconds if seconds in DURATIONS else None


def common_rules(documented_by: str, *, options: bool = False) -> tuple[Rule, ...]:
    """``external_task_id`` and ``callback_url`` (under ``options.`` on turbo)."""
    prefix = "options." if options else ""
    return (
        *external_id(f"{prefix}external_task_id", documented_by=documented_by),
        *callback_rules(f"{prefix}callback_url", documented_by),
    )


def callback_rules(field: str, documented_by: str) -> tuple[Rule, ...]:
    """A callback URL the server can POST to."""
    return (
        url(
            field,
            source=f"{documented_by}: the server notifies this address by an HTTP POST "
            "(callback protocol)",
        ),
    )


def multi_shot_rules(sec: str, *, prompt_always: bool, omni: bool = False) -> tuple[Rule, ...]:
    """``prompt`` / ``multi_shot`` / ``shot_type`` / ``multi_prompt`` of a video family.

    Args:
        sec: Seed citation prefix, e.g. ``"000"``.
        prompt_always: Whether a single-shot body needs a prompt.
        omni: Omni-video, whose seed enumerates ``customize`` only.
    """
    where = "Omni video" if omni else "Text/Image-to-Video"
    rules: list[Rule] = []
    if prompt_always:
        rules.append(
            required(
                "prompt",
                because=" unless multi_shot is true with shot_type customize",
                when=NOT_MULTI_SHOT,
                source=seed(sec, f"{where}, prompt", "must be filled in when multi_shot is false"),
            )
        )
    rules += [
        required(
            "prompt",
            because=" when shot_type is intelligence",
            when=INTELLIGENCE,
            source=seed(
                sec, f"{where}, prompt", "must be filled in when shot_type is intelligence"
            ),
        ),
        ignored(
            "prompt",
            PROMPT_UNUSED,
            source=seed(sec, f"{where}, multi_shot", "when true, the prompt parameter is invalid"),
        ),
        required(
            "shot_type",
            because=" when multi_shot is true (customize or intelligence)",
            when=MULTI_SHOT,
            source=seed(
                "001",
                "Omni video, shot_type",
                "required when multi_shot is true; "
                "without it a multi-shot body has no usable content (seed 000)",
            ),
        ),
        choice(
            "shot_type",
            ("customize", "intelligence"),
            when=MULTI_SHOT,
            source=seed(sec, f"{where}, shot_type", "enumerated values"),
        ),
    ]
    if omni:
        rules.append(
            choice(
                "shot_type",
                ("customize",),
                when=MULTI_SHOT,
                tier=WARNS,
                source=seed(
                    "001",
                    "Omni video, shot_type",
                    "enumerates customize only, yet its prompt row mentions intelligence",
                ),
            )
        )
    shots = seed(
        sec,
        f"{where}, multi_prompt",
        "1 to 6 shots of at most 512 characters, each "
        "at least 1 s and at most the task, adding up to the task's duration",
    )
    rules += [
        ignored(
            "shot_type",
            NOT_MULTI_SHOT,
            source=seed(sec, f"{where}, multi_shot", "when false, shot_type is invalid"),
        ),
        ignored(
            "multi_prompt",
            NOT_MULTI_SHOT,
            source=seed(sec, f"{where}, multi_shot", "when false, multi_prompt is invalid"),
        ),
        custom(
            "multi_prompt",
            "required",
            "required (1 to 6 shots) when shot_type is customize",
            lambda c: (
                [Hit("multi_prompt", None, "required (1 to 6 shots) when shot_type is customize")]
                if c.count("multi_prompt") == 0 and c.get("multi_prompt") is not INVALID
                else []
            ),
            when=CUSTOMIZE,
            source=seed(
                sec, f"{where}, multi_prompt", "must not be empty when shot_type is customize"
            ),
        ),
        count_at_most("multi_prompt", 6, "shots", when=MULTI_SHOT, why=" allowed", source=shots),
        custom(
            "multi_prompt[].index",
            "unique",
            "each shot number used once",
            _unique_index,
            when=MULTI_SHOT,
            source=seed(sec, f"{where}, multi_prompt", "index is the shot's number"),
        ),
        required("multi_prompt[].prompt", because=" for every shot", when=MULTI_SHOT, source=shots),
        max_length("multi_prompt[].prompt", SHOT_PROMPT_MAX, when=MULTI_SHOT, source=shots),
        required("multi_prompt[].duration", when=MULTI_SHOT, source=shots),
        number_range("multi_prompt[].duration", 1, None, when=MULTI_SHOT, source=shots),
        custom(
            "multi_prompt[].duration",
            "shot_within_task",
            "each shot at most the task's duration",
            _shot_within_task,
            when=MULTI_SHOT,
            source=shots,
        ),
        custom(
            "multi_prompt[].duration",
            "sum",
            "shot durations add up to the task's duration",
            _shots_sum,
            when=MULTI_SHOT,
            source=shots,
        ),
    ]
    return tuple(rules)


def _unique_index(ctx: Ctx) -> Iterator[Hit]:
    seen: set[int] = set()
    for path, value in ctx.each("multi_prompt[].index"):
        number = as_int(value)
        if number is None:
            continue
        if number in seen:
            yield Hit(path, value, f"shot index {number} is used twice")
        seen.add(number)


def _shot_seconds(ctx: Ctx) -> list[tuple[str, Decimal | None]]:
    out: list[tuple[str, Decimal | None]] = []
    for path, _ in ctx.entries("multi_prompt"):
        value = ctx.get(f"{path}.duration")
        number = None if value is MISSING or value is INVALID else as_number(value)
        out.append((f"{path}.duration", number))
    return out


def _shot_within_task(ctx: Ctx) -> Iterator[Hit]:
    total = task_seconds(ctx)
    if total is None or editing_video(ctx):
        return
    for path, seconds in _shot_seconds(ctx):
        if seconds is not None and seconds >= 1 and seconds > total:
            yield Hit(
                path,
                ctx.get(path),
                f"shot lasts {seconds.normalize():f} s, longer than the task duration {total} s",
            )


def _shots_sum(ctx: Ctx) -> Iterator[Hit]:
    total = task_seconds(ctx)
    shots = _shot_seconds(ctx)
    if total is None or not shots or ctx.count("multi_prompt") != len(shots):
        return
    if any(seconds is None for _, seconds in shots) or editing_video(ctx):
        return
    added = sum((s for _, s in shots if s is not None), Decimal(0))
    if added != total:
        path = shots[-1][0]
        yield Hit(
            path,
            ctx.get(path),
            f"shot durations add up to {added.normalize():f}, task duration is {total}",
        )


def sound_rules(sec: str, *, by_model: bool = True) -> tuple[Rule, ...]:
    """``sound`` on/off, and ``on`` only for models 2.6 and later."""
    rules = [choice("sound", ("on", "off"), source=seed(sec, "sound", "enumerated values"))]
    if by_model:
        rules.append(
            custom(
                "sound",
                "model_limit",
                "'on' needs a model of version 2.6 or later",
                lambda c: (
                    [Hit("sound", "on", "'on' needs a model of version 2.6 or later")]
                    if c.get("sound") == "on"
                    else []
                ),
                when=MODEL_BEFORE_2_6,
                source=seed(sec, "sound", "only V2.6 and later models support it"),
            )
        )
    return tuple(rules)


def model_duration_rules(sec: str) -> tuple[Rule, ...]:
    """``duration``: 3-15 s, 5 or 10 s on version-1 models, a warning on 2.x outside 5/10."""
    return (
        int_choice(
            "duration",
            DURATIONS,
            when=NOT_MODEL_V1,
            source=seed(sec, "duration", "enumerated values 3 to 15 (seconds)"),
        ),
        int_choice(
            "duration",
            OLD_DURATIONS,
            when=MODEL_V1,
            why=" (version-1 models)",
            source=seed("004", "duration", "enumerated values 5 and 10 for V1, V1.5, V1.6"),
        ),
        int_choice(
            "duration",
            OLD_DURATIONS,
            when=MODEL_V2,
            why=" (version-2 models)",
            tier=WARNS,
            source=seed(
                "003",
                "duration",
                "lists 5 and 10 for the V1.6 to V2.6 models, "
                "while seed 000 lists 3 to 15 with a capability map for v3 only",
            ),
        ),
    )


def mode_rules(sec: str) -> tuple[Rule, ...]:
    """``mode`` std/pro/4k; version-1 models std/pro; 4k on 2.x warns."""
    return (
        choice("mode", ("std", "pro", "4k"), source=seed(sec, "mode", "enumerated values")),
        custom(
            "mode",
            "model_limit",
            "4k not on version-1 models",
            lambda c: (
                [Hit("mode", "4k", "4k is not available for version-1 models (std or pro)")]
                if c.get("mode") == "4k"
                else []
            ),
            when=MODEL_V1,
            source=seed("004", "mode", "enumerated values std, pro"),
        ),
        custom(
            "mode",
            "model_limit",
            "4k not documented for version-2 models",
            lambda c: (
                [Hit("mode", "4k", "4k is documented for v3 models only")]
                if c.get("mode") == "4k"
                else []
            ),
            when=MODEL_V2,
            tier=WARNS,
            source=seed(
                "003",
                "mode",
                "std and pro for V1.6 to V2.6; seed 000's capability map shows 4k for v3",
            ),
        ),
    )


def refs_total(
    image_field: str,
    images: str,
    limit: int,
    *,
    source: str,
    why: str = "",
    when: When | None = None,
) -> Rule:
    """Subjects (``element_list``) plus images at most ``limit``.

    Args:
        image_field: Where to report when there are no subjects.
        images: How to count images: a list field, or ``fields:a,b`` (set fields).
        limit: The documented maximum.
        source: The seed citation.
        why: Context appended to the message.
        when: Condition.
    """

    def count_images(ctx: Ctx) -> int:
        if images.startswith("fields:"):
            return sum(1 for name in images[7:].split(",") if ctx.is_set(name))
        return ctx.count(images)

    def check(ctx: Ctx) -> Iterator[Hit]:
        elements, pictures = ctx.count("element_list"), count_images(ctx)
        if elements + pictures > limit:
            path = "element_list" if elements else image_field
            yield Hit(
                path,
                None,
                f"{elements} subject(s) + {pictures} image(s) = "
                f"{elements + pictures}; at most {limit} together{why}",
            )

    return custom(
        "element_list + images",
        "count",
        f"subjects plus images at most {limit}{why}",
        check,
        source=source,
        when=when,
    )


def prompt_rules(sec: str, section: str, *, negative: bool = True) -> tuple[Rule, ...]:
    """``prompt`` (and ``negative_prompt``) at most 2500 characters."""
    rules = [
        max_length(
            "prompt",
            PROMPT_MAX,
            source=seed(sec, f"{section}, prompt", "must not exceed 2500 characters"),
        )
    ]
    if negative:
        rules.append(
            max_length(
                "negative_prompt",
                PROMPT_MAX,
                source=seed(sec, f"{section}, negative_prompt", "must not exceed 2500 characters"),
            )
        )
    return tuple(rules)


def unknown_limit_source(family: str) -> str:
    """Source text for a limit carried over to a family whose seed does not state it."""
    return sdk(
        f"the seeds do not state this limit for {family}; it is carried over from "
        "the other families"
    )
