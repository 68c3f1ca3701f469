"""What a rule is, what it sees, and how a table of them is applied.

A :class:`Rule` is data: the field it is about (a wire path, ``[]`` standing for
every list entry), the kind of rule, a sentence saying what it requires, its
:class:`~kling_async._models.Tier`, its source, an optional :class:`When`
condition, and the small function that finds violations. A :class:`RuleTable`
is one family's rules plus its request model. :func:`apply_table` first walks the
body with the model as schema (types, unknown fields), then runs every rule whose
condition holds, on values of the right type only, and returns every finding.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import attrs

from .._models import Finding, Tier
from .._models._json import shape_findings
from ._known_models import KnownModel, known_model

__all__ = [
    "INVALID",
    "MISSING",
    "Ctx",
    "Hit",
    "KlingWarning",
    "Rule",
    "RuleTable",
    "When",
    "apply_table",
]


class KlingWarning(UserWarning):
    """A request breaks a rule the SDK inferred; it was sent anyway.

    Emitted through :mod:`warnings` and logged on the ``kling_async`` logger. Turn
    it into an error with ``warnings.simplefilter("error", KlingWarning)``.

    Attributes:
        finding: The finding (path, message, rule, source; tier ``warns``).
        endpoint: Name of the endpoint the request is for.
    """

    def __init__(self, finding: Finding, endpoint: str = "") -> None:
        self.finding = finding
        self.endpoint = endpoint
        where = f"{endpoint}: " if endpoint else ""
        super().__init__(f"{where}{finding} [sent anyway; {finding.source}]")


class _Sentinel(enum.Enum):
    MISSING = "missing"
    INVALID = "invalid"


#: The field is absent (or null).
MISSING = _Sentinel.MISSING
#: The field holds a value of the wrong type (already reported): rules skip it.
INVALID = _Sentinel.INVALID

_SEGMENT_RE = re.compile(r"([^.\[\]]+)|\[(\d*)\]")


class Hit(NamedTuple):
    """One violation a rule found: where, the value, what is wrong, a hint."""

    path: str
    value: Any
    message: str
    hint: str = ""


@attrs.frozen
class Ctx:
    """What a rule sees: the body, which paths are unusable, and the model.

    Attributes:
        payload: The body, as written.
        bad: Paths whose value has the wrong type (reported by the shape pass).
        model: What the SDK knows of ``model_name`` (``None`` when unset/unknown).
        cache: Scratch space shared by the rules of one run (decoded images).
    """

    payload: Mapping[str, Any]
    bad: frozenset[str]
    model: KnownModel | None
    cache: dict[str, Any] = attrs.field(factory=dict, eq=False)

    def get(self, path: str) -> Any:
        """The value at a concrete path, :data:`MISSING` or :data:`INVALID`."""
        if "." not in path and "[" not in path:  # a top-level field: one lookup
            if path in self.bad:
                return INVALID if path in self.payload else MISSING
            value = self.payload.get(path)
            return MISSING if value is None else value
        node: Any = self.payload
        walked = ""
        for name, index in _SEGMENT_RE.findall(path):
            if name:
                walked = f"{walked}.{name}" if walked else name
                if not isinstance(node, Mapping) or name not in node:
                    return MISSING
                node = node[name]
            else:
                walked = f"{walked}[{index}]"
                if not isinstance(node, list) or int(index) >= len(node):
                    return MISSING
                node = node[int(index)]
            if walked in self.bad:
                return INVALID
        return MISSING if node is None else node

    def is_set(self, path: str) -> bool:
        """Whether the field holds a usable value other than ``""``."""
        value = self.get(path)
        return value is not MISSING and value is not INVALID and value != ""

    def is_unset(self, path: str) -> bool:
        """Whether the field is absent, null or ``""`` (an invalid value is "set")."""
        value = self.get(path)
        return value is MISSING or value == ""

    def flag(self, path: str) -> bool:
        """Whether the field is the JSON boolean ``true``."""
        return self.get(path) is True

    def text(self, path: str) -> str | None:
        """The field's string value, ``None`` when unset, ``""`` or invalid."""
        value = self.get(path)
        return value if isinstance(value, str) and value else None

    def entries(self, path: str) -> list[tuple[str, Any]]:
        """``(path, entry)`` of every usable entry of a list field."""
        value = self.get(path)
        if not isinstance(value, list):
            return []
        out = []
        for i, item in enumerate(value):
            item_path = f"{path}[{i}]"
            if item is not None and item_path not in self.bad:
                out.append((item_path, item))
        return out

    def count(self, path: str) -> int:
        """How many entries a list field has (0 when unset or invalid)."""
        value = self.get(path)
        return len(value) if isinstance(value, list) else 0

    def each(self, pattern: str, *, empty: bool = False) -> Iterator[tuple[str, Any]]:
        """Every ``(concrete path, value)`` matching ``pattern`` (``a[].b``) that is set.

        Args:
            pattern: A wire path; ``[]`` stands for every entry of a list.
            empty: Also yield ``""`` values.
        """
        head, sep, tail = pattern.partition("[]")
        if not sep:
            value = self.get(pattern)
            if value is not MISSING and value is not INVALID and (empty or value != ""):
                yield pattern, value
            return
        for item_path, _ in self.entries(head):
            yield from self.each(f"{item_path}{tail}", empty=empty)


@attrs.frozen(kw_only=True)
class When:
    """A condition under which a rule applies.

    Attributes:
        says: The condition in words (``multi_shot is true``), for the docs.
        test: The condition itself.
    """

    says: str
    test: Callable[[Ctx], bool] = attrs.field(eq=False)


@attrs.frozen(kw_only=True)
class Rule:
    """One documented (or inferred) rule about one field.

    Attributes:
        field: Wire path the rule is about (``multi_prompt[].duration``).
        kind: Short name of the kind of rule (``max_length``, ``choice``...).
        says: What the rule requires, in words.
        tier: ``blocks`` (a seed states it) or ``warns`` (the SDK infers it).
        source: The seed file and section, or the SDK's reason.
        when: Condition for the rule to apply; ``None`` for always.
        check: Finds the violations in a body.
        needs: The top-level field that must hold a value for the rule to find
            anything (``None``: the rule may fire on an absent field, as
            ``required`` does); bodies without it skip the rule.
    """

    field: str
    kind: str
    says: str
    tier: Tier
    source: str
    when: When | None = None
    check: Callable[[Ctx], Iterable[Hit]] = attrs.field(eq=False, repr=False)
    needs: str | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class RuleTable:
    """The rules of one endpoint family.

    Attributes:
        family: The endpoint's name in the endpoint table (``text2video``...).
        model: The request model class (the schema of the body).
        seeds: The seed files that document the family.
        rules: The rules, applied in this order.
    """

    family: str
    model: type[Any]
    seeds: tuple[str, ...]
    rules: tuple[Rule, ...]


def _field_of(path: str) -> str:
    return re.sub(r"\[\d+\]", "[]", path)


def apply_table(table: RuleTable, payload: Any, *, allow_unknown: bool = False) -> list[Finding]:
    """Check a body against a family's table and return every finding.

    Shape problems (wrong JSON types, unknown or missing fields) come first, then
    the rules in table order. A rule never sees a value of the wrong type, and a
    finding already made at a path by an earlier rule is not repeated.

    Args:
        table: The family's rule table.
        payload: The body as written (a non-object is one finding).
        allow_unknown: Let fields the model does not know through.

    Returns:
        Every finding, blocking and warning ones alike.
    """
    shape = shape_findings(table.model, payload, allow_unknown=allow_unknown)
    findings = list(shape.findings)
    if not isinstance(payload, Mapping):
        return findings
    name = payload.get("model_name")
    ctx = Ctx(
        payload=payload,
        bad=frozenset(shape.bad),
        model=known_model(name)
        if isinstance(name, str) and "model_name" not in shape.bad
        else None,
    )
    seen = {(f.path, f.message) for f in findings}
    for rule in table.rules:
        if rule.needs is not None and payload.get(rule.needs) is None:
            continue  # a rule about a value, and the body has none there
        if rule.when is not None and not rule.when.test(ctx):
            continue
        for hit in rule.check(ctx):
            if (hit.path, hit.message) in seen:
                continue
            seen.add((hit.path, hit.message))
            findings.append(
                Finding(
                    hit.path,
                    hit.message,
                    value=hit.value,
                    rule=rule.kind,
                    tier=rule.tier,
                    source=rule.source,
                    hint=hit.hint,
                )
            )
    return findings


def root_of(field: str) -> str:
    """The top-level field a wire path lives under (``a[].b`` → ``a``)."""
    return re.split(r"[.\[]", field, maxsplit=1)[0]


def field_of(path: str) -> str:
    """The rule field a concrete path belongs to (``a[2].b`` → ``a[].b``)."""
    return _field_of(path)
