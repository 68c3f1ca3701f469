"""The strict JSON type system shared by the request models and the rule engine.

One set of type checks serves both ways into a request:

* a Python model checks its own fields when it is built (``__attrs_post_init__``),
  so ``TextToVideoRequest(multi_shot="false")`` raises at once, naming the field;
* a JSON object (the CLI's ``--json``, a JSONL batch line, a dict from the caller)
  is walked with the model class as its schema by :func:`shape_findings`.

Nothing is ever coerced: a JSON boolean is the only boolean, a JSON integer the
only integer (``5.0`` is not one), floats are never truncated, ``NaN`` and
infinities are refused, and numeric *strings* are accepted only where the seeds
show the API taking strings (see :data:`IntLike` and :data:`NumberLike`).

:class:`Finding` is the problem type the whole validation speaks: a
:class:`~kling_async.Problem` (path and message) that also carries the value (in
a redacted, printable form), the rule, its tier and its source.
"""

from __future__ import annotations

import difflib
import enum
import math
import re
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Union

import attrs

from .._errors import Problem, ValidationError

__all__ = [
    "INT64_MAX",
    "Finding",
    "IntLike",
    "NumberLike",
    "Tier",
    "describe_kind",
    "did_you_mean",
    "field_kinds",
    "media_repr",
    "shape_findings",
    "show",
]

#: An integer the API takes either as a JSON integer or as a string of digits
#: (the seeds send ``"duration": "5"``, ``"n": "9"``, ``"element_id": "160"``).
IntLike = Union[int, str]
#: A number the API takes as a JSON number or as a decimal string (shot durations,
#: which the seeds write as ``"duration": "2"``).
NumberLike = Union[float, str]

#: Largest magnitude of an integer field (the seeds call ids and times ``long``).
INT64_MAX = 2**63 - 1
#: How deep an unknown (pass-through) value may nest before it is refused.
MAX_DEPTH = 64

_INT_TEXT_RE = re.compile(r"-?[0-9]+")
_NUMBER_TEXT_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_SHOW_MAX = 32


class Tier(str, enum.Enum):
    """How hard a rule bites.

    ``BLOCKS``: a seed states the rule; breaking it refuses the request (nothing is
    sent). ``WARNS``: the SDK inferred the rule (from another model's limits, a
    safety margin, a field the seeds call ignored); breaking it emits a
    :class:`~kling_async.KlingWarning` and the request is still sent.
    """

    BLOCKS = "blocks"
    WARNS = "warns"


def show(value: Any) -> Any:
    """A value as it may appear in a finding: scalars as is, long text redacted.

    Strings longer than a few dozen characters (prompts, base64 images, signed
    URLs) are replaced by their length, so no payload, secret or image can leak
    into a message, a log line or an exception.

    Args:
        value: Any JSON value.

    Returns:
        The value itself (``None``, booleans, numbers, short strings) or a short
        description (``"<2501 characters>"``, ``"<list of 3 items>"``).
    """
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= _SHOW_MAX else f"<{len(value)} characters>"
    if isinstance(value, Mapping):
        return f"<object of {len(value)} fields>"
    if isinstance(value, (list, tuple)):
        return f"<list of {len(value)} items>"
    return f"<{type(value).__name__}>"


def _quoted(value: Any) -> str:
    shown = show(value)
    return repr(shown) if isinstance(value, str) and shown == value else str(shown)


def media_repr(value: Any) -> str:
    """``repr`` of a media field (base64 or signed URL): its length, never its content."""
    return repr(show(value))


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """A ``did you mean`` hint for a misspelt name or value (difflib), or ``""``.

    Args:
        word: What was written.
        choices: What is allowed.

    Returns:
        ``"did you mean 'prompt'?"`` or the empty string when nothing is close.
    """
    if not isinstance(word, str) or len(word) > 64:
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close and word.lower() in (c.lower() for c in choices):
        close = [next(c for c in choices if c.lower() == word.lower())]
    return f"did you mean {close[0]!r}?" if close else ""


@attrs.frozen(eq=False)
class Finding(Problem):
    """A problem found by validation, with what is needed to act on it.

    Compares equal to a plain :class:`~kling_async.Problem` with the same path and
    message, so code written against problems keeps working.

    Attributes:
        path: Where, in wire names (``multi_prompt[1].duration``).
        message: The rule that was broken, in words.
        value: The offending value, redacted by :func:`show` (long strings become
            their length; nothing secret or large is kept).
        rule: Short name of the rule kind (``type``, ``max_length``, ``choice``...).
        tier: :attr:`Tier.BLOCKS` (refused) or :attr:`Tier.WARNS` (sent anyway).
        source: Where the rule comes from: a seed file and section, or the SDK's
            reason for a rule it inferred.
        hint: A suggestion (``did you mean 'prompt'?``), or ``""``.
    """

    value: Any = attrs.field(default=None, kw_only=True, converter=show)
    rule: str = attrs.field(default="", kw_only=True)
    tier: Tier = attrs.field(default=Tier.BLOCKS, kw_only=True)
    source: str = attrs.field(default="", kw_only=True)
    hint: str = attrs.field(default="", kw_only=True)

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Finding):
            return (self.path, self.message, self.tier, self.rule) == (
                other.path,
                other.message,
                other.tier,
                other.rule,
            )
        if isinstance(other, Problem):
            return (self.path, self.message) == (other.path, other.message)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.path, self.message))

    @property
    def blocks(self) -> bool:
        """Whether this finding refuses the request."""
        return self.tier is Tier.BLOCKS


# --- kinds: what a field's annotation allows --------------------------------------------


class Kind(enum.Enum):
    """The JSON shapes a field can take."""

    STR = "a string"
    BOOL = "true or false"
    INT = "a whole number"
    NUMBER = "a number"
    INT_OR_TEXT = "a whole number (or a string of digits)"
    NUMBER_OR_TEXT = "a number (or a decimal string)"
    LIST = "a list"
    OBJECT = "an object"


@attrs.frozen
class FieldKind:
    """What one field of a model accepts.

    Attributes:
        kind: The JSON shape.
        optional: Whether ``None`` (unset) is allowed.
        item: For lists, what each item accepts.
        model: For objects, the nested model class.
    """

    kind: Kind
    optional: bool = False
    item: FieldKind | None = None
    model: type[Any] | None = None


def _kind_of(annotation: Any) -> FieldKind:
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is Union or type(annotation).__name__ == "UnionType":
        optional = type(None) in args
        members = frozenset(a for a in args if a is not type(None))
        if len(members) == 1:
            inner = _kind_of(next(iter(members)))
            return attrs.evolve(inner, optional=optional)
        if members == {int, str}:
            return FieldKind(Kind.INT_OR_TEXT, optional)
        if members == {float, str}:
            return FieldKind(Kind.NUMBER_OR_TEXT, optional)
        raise TypeError(f"unsupported union in a request model: {annotation!r}")
    if origin is list:
        return FieldKind(Kind.LIST, item=_kind_of(args[0]))
    if annotation is str:
        return FieldKind(Kind.STR)
    if annotation is bool:
        return FieldKind(Kind.BOOL)
    if annotation is int:
        return FieldKind(Kind.INT)
    if annotation is float:
        return FieldKind(Kind.NUMBER)
    if isinstance(annotation, type) and attrs.has(annotation):
        return FieldKind(Kind.OBJECT, model=annotation)
    raise TypeError(f"unsupported type in a request model: {annotation!r}")


_KINDS: dict[type[Any], dict[str, tuple[FieldKind, bool]]] = {}


def field_kinds(cls: type[Any]) -> dict[str, tuple[FieldKind, bool]]:
    """The kinds of a model's fields, from its annotations.

    Args:
        cls: A request model class.

    Returns:
        ``{field name: (kind, required)}`` in declaration order; ``required`` is
        true for fields without a default.
    """
    cached = _KINDS.get(cls)
    if cached is None:
        hints = typing.get_type_hints(cls)
        cached = {
            a.name: (_kind_of(hints[a.name]), a.default is attrs.NOTHING) for a in attrs.fields(cls)
        }
        _KINDS[cls] = cached
    return cached


def describe_kind(kind: FieldKind) -> str:
    """A field kind in words (``a list of Shot objects``), for docs and messages.

    Args:
        kind: The field kind.

    Returns:
        The description.
    """
    if kind.kind is Kind.LIST and kind.item is not None:
        if kind.item.kind is Kind.OBJECT and kind.item.model is not None:
            return f"a list of {kind.item.model.__name__} objects"
        return f"a list of {describe_kind(kind.item)} values"
    if kind.kind is Kind.OBJECT and kind.model is not None:
        return f"a {kind.model.__name__} object"
    return kind.kind.value


# --- value checks -----------------------------------------------------------------------


def _item(kind: FieldKind) -> FieldKind:
    if kind.item is None:  # pragma: no cover - _kind_of always sets it for lists
        raise TypeError("a list kind without an item kind")
    return kind.item


def _model(kind: FieldKind) -> type[Any]:
    if kind.model is None:  # pragma: no cover - _kind_of always sets it for objects
        raise TypeError("an object kind without a model")
    return kind.model


def _what(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _got(value: Any) -> str:
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, float):
        return repr(value)
    return _what(value)


def _as_string_hint(value: str, pattern: re.Pattern[str]) -> str:
    return " (a string: send the number itself)" if pattern.fullmatch(value) else ""


def _int_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str):
            return f"must be a whole number, got {_got(value)}" + _as_string_hint(
                value, _NUMBER_TEXT_RE
            )
        if isinstance(value, float):
            return f"must be a whole number, got {value!r}"
        return f"must be a whole number, got {_what(value)}"
    if abs(value) > INT64_MAX:
        return "must fit in a 64-bit integer"
    return None


def _number_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            return f"must be a number, got {_got(value)}" + _as_string_hint(value, _NUMBER_TEXT_RE)
        return f"must be a number, got {_what(value)}"
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return "must be a finite number within the range of a double"
        return None
    if not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    return None


def _scalar_problem(value: Any, kind: Kind) -> str | None:
    """Why ``value`` is not of a scalar kind, or ``None`` when it is."""
    if kind is Kind.STR:
        return None if isinstance(value, str) else f"must be a string, got {_what(value)}"
    if kind is Kind.BOOL:
        if isinstance(value, bool):
            return None
        return f"must be true or false, got {_got(value)}"
    if kind is Kind.INT:
        return _int_problem(value)
    if kind is Kind.NUMBER:
        return _number_problem(value)
    if kind is Kind.INT_OR_TEXT:
        if isinstance(value, str):
            if _INT_TEXT_RE.fullmatch(value) and abs(int(value)) <= INT64_MAX:
                return None
            return f"must be a whole number, got {_got(value)}"
        return _int_problem(value)
    if kind is Kind.NUMBER_OR_TEXT:
        if isinstance(value, str):
            return (
                None
                if _NUMBER_TEXT_RE.fullmatch(value)
                else (f"must be a number, got {_got(value)}")
            )
        return _number_problem(value)
    raise AssertionError(kind)  # pragma: no cover - lists and objects are handled apart


def _type_finding(path: str, value: Any, message: str) -> Finding:
    return Finding(path, message, value=value, rule="type", source="the field's documented type")


@attrs.define
class Shape:
    """The outcome of walking a JSON object against a model.

    Attributes:
        findings: Type problems, unknown fields and missing required fields.
        bad: Paths whose value is unusable (rules skip them and what they hold).
    """

    findings: list[Finding] = attrs.field(factory=list)
    bad: set[str] = attrs.field(factory=set)

    def add(self, finding: Finding) -> None:
        """Record a problem and mark its path unusable."""
        self.findings.append(finding)
        self.bad.add(finding.path)


def _json_problem(value: Any, depth: int = 0) -> str | None:
    """Why a pass-through value is not plain JSON, or ``None``."""
    stack: list[tuple[Any, int]] = [(value, depth)]
    while stack:
        item, level = stack.pop()
        if level > MAX_DEPTH:
            return f"nests deeper than {MAX_DEPTH} levels"
        if item is None or isinstance(item, (str, bool)):
            continue
        if isinstance(item, int):
            if abs(item) > INT64_MAX:
                return "holds an integer beyond 64 bits"
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return "holds a number that is not finite"
            continue
        if isinstance(item, Mapping):
            for key, sub in item.items():
                if not isinstance(key, str):
                    return "holds an object key that is not a string"
                stack.append((sub, level + 1))
            continue
        if isinstance(item, (list, tuple)):
            stack.extend((sub, level + 1) for sub in item)
            continue
        return f"holds {_what(item)}, which is not JSON"
    return None


def _walk(
    shape: Shape,
    cls: type[Any],
    obj: Mapping[str, Any],
    prefix: str,
    *,
    allow_unknown: bool,
) -> None:
    kinds = field_kinds(cls)
    for key, value in obj.items():
        path = f"{prefix}{key}"
        if not isinstance(key, str) or key not in kinds:
            if not isinstance(key, str):
                shape.add(_type_finding(f"{prefix}{key!r}", key, "field names must be strings"))
            elif allow_unknown:
                problem = _json_problem(value)
                if problem is not None:
                    shape.add(_type_finding(path, value, problem))
            else:
                shape.add(
                    Finding(
                        path,
                        "unknown field",
                        value=value,
                        rule="known_field",
                        source="the fields the seeds document for this object",
                        hint=did_you_mean(key, list(kinds)),
                    )
                )
            continue
        kind, required = kinds[key]
        _check(shape, kind, value, path, required=required, allow_unknown=allow_unknown)
    for key, (_, required) in kinds.items():
        if required and key not in obj:
            shape.add(
                Finding(
                    f"{prefix}{key}",
                    "required",
                    rule="required",
                    source="the field's documented shape",
                )
            )


def _check(
    shape: Shape,
    kind: FieldKind,
    value: Any,
    path: str,
    *,
    required: bool,
    allow_unknown: bool,
) -> None:
    if value is None:
        if required:
            shape.add(
                Finding(path, "required", rule="required", source="the field's documented shape")
            )
        return
    if kind.kind is Kind.LIST:
        if not isinstance(value, list):
            shape.add(_type_finding(path, value, f"must be a list, got {_what(value)}"))
            return
        item_kind = _item(kind)
        for i, item in enumerate(value):
            item_path = f"{path}[{i}]"
            if item is None:
                shape.add(_type_finding(item_path, item, f"must be {describe_kind(item_kind)}"))
                continue
            _check(shape, item_kind, item, item_path, required=True, allow_unknown=allow_unknown)
        return
    if kind.kind is Kind.OBJECT:
        if not isinstance(value, Mapping):
            shape.add(_type_finding(path, value, f"must be an object, got {_what(value)}"))
            return
        _walk(shape, _model(kind), value, f"{path}.", allow_unknown=allow_unknown)
        return
    problem = _scalar_problem(value, kind.kind)
    if problem is not None:
        shape.add(_type_finding(path, value, problem))


def shape_findings(cls: type[Any], payload: Any, *, allow_unknown: bool = False) -> Shape:
    """Walk a JSON body with a model class as its schema.

    Reports every value of the wrong JSON type, every field the model does not
    know (with a did-you-mean hint; pass-through when ``allow_unknown``, which
    still refuses non-JSON values), and every missing required nested field.

    Args:
        cls: The request model class.
        payload: The body (anything; a non-object is one problem).
        allow_unknown: Let fields the model does not know through.

    Returns:
        The findings and the set of unusable paths.
    """
    shape = Shape()
    if not isinstance(payload, Mapping):
        shape.add(_type_finding("(body)", payload, f"must be a JSON object, got {_what(payload)}"))
        return shape
    _walk(shape, cls, payload, "", allow_unknown=allow_unknown)
    return shape


# --- Python models check themselves ---------------------------------------------------------


def _instance_problems(obj: Any) -> Iterator[Finding]:
    for name, (kind, required) in field_kinds(type(obj)).items():
        value = getattr(obj, name)
        if value is None:
            if required:
                yield Finding(name, "required", rule="required", source="the field's shape")
            continue
        yield from _python_value(kind, value, name)


def _python_value(kind: FieldKind, value: Any, path: str) -> Iterator[Finding]:
    if kind.kind is Kind.LIST:
        if not isinstance(value, list):
            yield _type_finding(path, value, f"must be a list, got {_what(value)}")
            return
        for i, item in enumerate(value):
            yield from _python_value(_item(kind), item, f"{path}[{i}]")
        return
    if kind.kind is Kind.OBJECT:
        if not isinstance(value, kind.model or ()):
            name = kind.model.__name__ if kind.model is not None else "object"
            yield _type_finding(path, value, f"must be a {name}, got {_what(value)}")
        return
    problem = _scalar_problem(value, kind.kind)
    if problem is not None:
        yield _type_finding(path, value, problem)


class CheckedModel:
    """Mixin of every request model: wrong types are refused when it is built.

    Raises:
        ValidationError: From ``__init__``, listing every ill-typed field with its
            path (``multi_prompt[0]``, ``duration``...). Values are never coerced.
    """

    __slots__ = ()

    def __attrs_post_init__(self) -> None:
        problems = list(_instance_problems(self))
        if problems:
            raise ValidationError(problems, endpoint=type(self).__name__)
