"""The kinds of rule a table is written in: small factories that return :class:`Rule`.

Each factory takes the field (a wire path, ``[]`` for every list entry), its
parameters, the tier (``blocks`` unless said otherwise), the source and an
optional condition, and returns a rule whose ``says`` text is generated from the
parameters, so the generated documentation can never disagree with the check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from .._media import check_audio_value, is_url
from .._models import Tier
from .._models._json import did_you_mean, show
from ._base import Ctx, Hit, Rule, When, root_of
from ._known_models import KNOWN_MODELS

__all__ = [
    "BLOCKS",
    "WARNS",
    "as_int",
    "as_number",
    "audio",
    "choice",
    "count_at_most",
    "custom",
    "exactly_one",
    "external_id",
    "ignored",
    "int_choice",
    "known_model_name",
    "max_length",
    "not_empty",
    "number_range",
    "required",
    "sdk",
    "seed",
    "undocumented",
    "url",
]

BLOCKS = Tier.BLOCKS
WARNS = Tier.WARNS

_INT_RE = re.compile(r"-?[0-9]+")
_NUMBER_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_ID_WARN_RE = re.compile(r"[\s\x00-\x1f\x7f]")
#: Longest ``external_task_id`` that passes without a warning (no seed sets one).
EXTERNAL_TASK_ID_WARN_LENGTH = 64


def seed(number: str, section: str, words: str) -> str:
    """A source citing a seed: ``seed 000 (Text-to-Video, prompt): at most 2500``.

    Args:
        number: The seed file's first three digits.
        section: The section and field.
        words: What it says, in our words.
    """
    return f"seed {number} ({section}): {words}"


def sdk(reason: str) -> str:
    """A source for a rule the SDK inferred, with its reason."""
    return f"SDK inference: {reason}"


def as_int(value: Any) -> int | None:
    """A JSON integer or a string of digits as an int; ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_RE.fullmatch(value):
        return int(value)
    return None


def as_number(value: Any) -> Decimal | None:
    """A JSON number or a decimal string as an exact Decimal; ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER_RE.fullmatch(value)):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _fmt(number: Decimal | int | float) -> str:
    if isinstance(number, Decimal):
        return format(number.normalize(), "f")
    return f"{number:g}"


def _rule(
    field: str,
    kind: str,
    says: str,
    check: Callable[[Ctx], Iterable[Hit]],
    *,
    source: str,
    tier: Tier,
    when: When | None,
    valued: bool = False,
) -> Rule:
    # ``valued``: the check only looks at values present at ``field``, so a body
    # without its top-level field skips the rule (validation runs on every create).
    return Rule(
        field=field,
        kind=kind,
        says=says,
        tier=tier,
        source=source,
        when=when,
        check=check,
        needs=root_of(field) if valued else None,
    )


def custom(
    field: str,
    kind: str,
    says: str,
    check: Callable[[Ctx], Iterable[Hit]],
    *,
    source: str,
    tier: Tier = BLOCKS,
    when: When | None = None,
    valued: bool = False,
) -> Rule:
    """A rule with its own check (cross-field rules: sums, frames, masks...).

    ``valued``: the check finds nothing unless the field's top-level object is
    set, so bodies without it skip the rule.
    """
    return _rule(field, kind, says, check, source=source, tier=tier, when=when, valued=valued)


def max_length(
    field: str, limit: int, *, source: str, tier: Tier = BLOCKS, when: When | None = None
) -> Rule:
    """At most ``limit`` characters."""

    def check(ctx: Ctx) -> Iterator[Hit]:
        for path, value in ctx.each(field):
            if isinstance(value, str) and len(value) > limit:
                yield Hit(path, value, f"is {len(value)} characters; at most {limit} allowed")

    return _rule(
        field,
        "max_length",
        f"at most {limit} characters",
        check,
        source=source,
        tier=tier,
        when=when,
        valued=True,
    )


def choice(
    field: str,
    allowed: Sequence[str],
    *,
    source: str,
    tier: Tier = BLOCKS,
    when: When | None = None,
    why: str = "",
) -> Rule:
    """One of a fixed list of strings (a did-you-mean hint for near misses)."""
    listed = ", ".join(allowed)

    def check(ctx: Ctx) -> Iterator[Hit]:
        for path, value in ctx.each(field):
            if isinstance(value, str) and value not in allowed:
                yield Hit(
                    path,
                    value,
                    f"{show(value)!r} is not one of {listed}{why}",
                    did_you_mean(value, allowed),
                )

    return _rule(
        field,
        "choice",
        f"one of {listed}{why}",
        check,
        source=source,
        tier=tier,
        when=when,
        valued=True,
    )


def int_choice(
    field: str,
    allowed: Iterable[int],
    *,
    source: str,
    tier: Tier = BLOCKS,
    when: When | None = None,
    unit: str = " seconds",
    why: str = "",
) -> Rule:
    """An integer (JSON integer or string of digits) from a fixed set."""
    values = sorted(set(allowed))
    listed = ", ".join(str(v) for v in values)

    def check(ctx: Ctx) -> Iterator[Hit]:
        for path, value in ctx.each(field):
            number = as_int(value)
            if number is not None and number not in values:
                yield Hit(path, value, f"{number} is not one of {listed}{unit}{why}")

    return _rule(
        field,
        "choice",
        f"one of {listed}{unit}{why}",
        check,
        source=source,
        tier=tier,
        when=when,
        valued=True,
    )


def number_range(
    field: str,
    lo: float | None,
    hi: float | None,
    *,
    source: str,
    tier: Tier = BLOCKS,
    when: When | None = None,
) -> Rule:
    """A number (or integer) within ``[lo, hi]`` (either bound may be ``None``)."""
    if lo is not None and hi is not None:
        says = f"between {lo:g} and {hi:g}"
    elif lo is not None:
        says = f"at least {lo:g}"
    else:
        says = f"at most {hi:g}"

    def check(ctx: Ctx) -> Iterator[Hit]:
        for path, value in ctx.each(field):
            number = as_number(value)
            if number is None:
                continue
            if (lo is not None and number < Decimal(str(lo))) or (
                hi is not None and number > Decimal(str(hi))
            ):
                yield Hit(path, value, f"must be {says}, got {_fmt(number)}")

    return _rule(field, "range", says, check, source=source, tier=tier, when=when, valued=True)


def required(
    field: str,
    *,
    source: str,
    because: str = "",
    tier: Tier = BLOCKS,
    when: When | None = None,
) -> Rule:
    """The field must be set (not absent, null or ``""``); ``[]`` checks every entry."""
    head, sep, tail = field.partition("[]")

    def check(ctx: Ctx) -> Iterator[Hit]:
        paths = [f"{p}{tail}" for p, _ in ctx.entries(head)] if sep else [field]
        for path in paths:
            if ctx.is_unset(path):
                yield Hit(path, None, f"required{because}")

    return _rule(
        field, "required", f"required{because}", check, source=source, tier=tier, when=when
    )


def not_empty(field: str, *, source: str, tier: Tier = BLOCKS, when: When | None = None) -> Rule:
    """A string that is present must not be empty or blank."""

    def check(ctx: Ctx) -> Iterator[Hit]:
        for path, value in ctx.each(field, empty=True):
            if isinstance(value, str) and not value.strip():
                yield Hit(path, value, "must not be empty")

    return _rule(
        field,
        "not_empty",
        "must not be empty",
        check,
        source=source,
        tier=tier,
        when=when,
        valued=True,
    )


def exactly_one(
    a: str,
    b: str,
    *,
    source: str,
    within: str = "",
    tier: Tier = BLOCKS,
    when: When | None = None,
) -> Rule:
    """Exactly one of two fields is set (``within`` a list's entries, e.g. ``face_choose``)."""

    def check(ctx: Ctx) -> Iterator[Hit]:
        prefixes = [f"{p}." for p, _ in ctx.entries(within)] if within else [""]
        for prefix in prefixes:
            has_a, has_b = not ctx.is_unset(prefix + a), not ctx.is_unset(prefix + b)
            if has_a and has_b:
                yield Hit(prefix + b, None, f"give exactly one of {a} and {b}, not both")
            elif not (has_a or has_b):
                yield Hit(prefix + a, None, f"give exactly one of {a} and {b} (both are empty)")

    field = f"{within}[].{a} / {within}[].{b}" if within else f"{a} / {b}"
    return _rule(
        field,
        "exactly_one",
        f"exactly one of {a} and {b}",
        check,
        source=source,
        tier=tier,
        when=when,
    )


def count_at_most(
    field: str,
    limit: int,
    noun: str,
    *,
    source: str,
    tier: Tier = BLOCKS,
    when: When | None = None,
    why: str = "",
    message: str = "{count} {noun}; at most {limit}{why}",
) -> Rule:
    """A list of at most ``limit`` entries (``message`` may use count/noun/limit/why)."""

    def check(ctx: Ctx) -> Iterator[Hit]:
        head, sep, tail = field.partition("[]")
        lists = [(f"{p}{tail}", None) for p, _ in ctx.entries(head)] if sep else [(field, None)]
        for path, _ in lists:
            count = ctx.count(path)
            if count > limit:
                text = message.format(count=count, noun=noun, limit=limit, why=why)
                yield Hit(path, ctx.get(path), text)

    return _rule(
        field, "count", f"at most {limit} {noun}{why}", check, source=source, tier=tier, when=when
    )


def url(field: str, *, source: str, tier: Tier = BLOCKS, when: When | None = None) -> Rule:
    """An ``http://`` or ``https://`` URL."""

    def check(ctx: Ctx) -> Iterator[Hit]:
        for path, value in ctx.each(field):
            if isinstance(value, str) and value.strip() and not is_url(value):
                yield Hit(path, value, "must be an http:// or https:// URL")

    return _rule(
        field,
        "url",
        "an http:// or https:// URL",
        check,
        source=source,
        tier=tier,
        when=when,
        valued=True,
    )


def audio(
    field: str,
    *,
    source: str,
    max_bytes: int | None = None,
    check_format: bool = True,
    tier: Tier = BLOCKS,
    when: When | None = None,
) -> Rule:
    """An audio URL or plain base64 audio (mp3/wav/m4a when ``check_format``)."""
    bits = ["a URL or plain base64 without a data: prefix"]
    if check_format:
        bits.append("MP3, WAV or M4A")
    if max_bytes is not None:
        bits.append(f"at most {max_bytes // (1024 * 1024)} MB")

    def check(ctx: Ctx) -> Iterator[Hit]:
        for path, value in ctx.each(field):
            if isinstance(value, str):
                for problem in check_audio_value(
                    value, path, max_bytes=max_bytes, check_format=check_format
                ):
                    yield Hit(problem.path, value, problem.message)

    return _rule(
        field, "audio", "; ".join(bits), check, source=source, tier=tier, when=when, valued=True
    )


def ignored(field: str, condition: When, *, source: str, effect: str = "is ignored") -> Rule:
    """A field the seeds call *invalid* in a context: sent, with a warning that it is ignored."""

    def check(ctx: Ctx) -> Iterator[Hit]:
        for path, value in ctx.each(field):
            if value == [] or value == {}:
                continue
            yield Hit(path, value, f"{effect} when {condition.says}")

    return _rule(
        field,
        "ignored",
        f"{effect} when {condition.says}",
        check,
        source=source,
        tier=WARNS,
        when=condition,
        valued=True,
    )


def undocumented(field: str, family: str, *, source: str) -> Rule:
    """A field the seeds do not document for this family: sent, with a warning."""

    def check(ctx: Ctx) -> Iterator[Hit]:
        for path, value in ctx.each(field):
            yield Hit(path, value, f"is not documented for {family}; the gateway may ignore it")

    return _rule(
        field,
        "undocumented",
        f"not documented for {family}",
        check,
        source=source,
        tier=WARNS,
        when=None,
        valued=True,
    )


def known_model_name(field: str = "model_name") -> Rule:
    """A ``model_name`` the seeds list; others are sent with a warning."""
    names = sorted(KNOWN_MODELS)

    def check(ctx: Ctx) -> Iterator[Hit]:
        value = ctx.text(field)
        if value is not None and ctx.model is None:
            yield Hit(
                field,
                value,
                "is not a model the seeds list; sent as written, without model-specific checks",
                did_you_mean(value, names),
            )

    return _rule(
        field,
        "known_model",
        "a model name the seeds list",
        check,
        source=sdk("Kling adds and retires models without notice, so unknown names pass"),
        tier=WARNS,
        when=None,
        valued=True,
    )


def external_id(field: str, *, documented_by: str) -> tuple[Rule, Rule]:
    """``external_task_id``: the two values that break lookups block, odd ones warn.

    Args:
        field: ``external_task_id`` or ``options.external_task_id``.
        documented_by: The seeds documenting the field for the family.

    Returns:
        The blocking rule and the warning rule.
    """

    def blocking(ctx: Ctx) -> Iterator[Hit]:
        value = ctx.text(field)
        if value is None:
            return
        if value in (".", "..") or "/" in value or "," in value:
            yield Hit(
                field,
                value,
                "must not be '.' or '..' nor contain '/' or ',': the task is looked up by "
                "this id in a URL path and in a comma-separated query",
            )

    def odd(ctx: Ctx) -> Iterator[Hit]:
        value = ctx.text(field)
        if value is None:
            return
        if len(value) > EXTERNAL_TASK_ID_WARN_LENGTH:
            yield Hit(
                field,
                value,
                f"is {len(value)} characters; ids over {EXTERNAL_TASK_ID_WARN_LENGTH} "
                "may not fit the gateway's storage",
            )
        if _ID_WARN_RE.search(value):
            yield Hit(field, value, "contains whitespace or control characters")

    block = _rule(
        field,
        "id_path_safe",
        "not '.' or '..', without '/' or ','",
        blocking,
        source=f"{documented_by}; seeds 003/004 query a task by this id in the URL path "
        "and seed 002 joins ids with commas in tasks?external_task_ids=",
        tier=BLOCKS,
        when=None,
        valued=True,
    )
    warn = _rule(
        field,
        "id_conventional",
        f"at most {EXTERNAL_TASK_ID_WARN_LENGTH} characters, no whitespace or control characters",
        odd,
        source=sdk(
            "no seed sets a length or character set; long or blank-bearing ids "
            "are unusual and easy to mistype in a lookup"
        ),
        tier=WARNS,
        when=None,
        valued=True,
    )
    return block, warn
