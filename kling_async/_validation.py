"""Validation entry points: one strict path from a JSON object or a model to the wire.

The rules themselves are data (:mod:`kling_async._rules`, one table per family,
listed in ``docs/validation.md``); this module applies them:

* :func:`validate_payload` / :func:`validate_request`: the blocking problems of a
  body or a model (pure; the fake gateway answers 400 / code 1201 with them);
* :func:`check_payload` / :func:`check_request`: blocking problems *and* warnings;
* :func:`build_payload`: the one strict path from a JSON object (CLI ``--json``,
  a JSONL batch line, a dict) to the body to send: refuses with every problem at
  once, warns (:class:`~kling_async.KlingWarning`) on rules the SDK inferred, and
  returns the body exactly as written (only ``null`` fields, meaning "unset", are
  left out);
* :func:`prepare_request`: the same for a model, with optional ``extra_body``
  fields merged in (sent even though the SDK does not know them).

Decisions where the seeds are silent or disagree are recorded as rules with the
``warns`` tier and their reason; see ``docs/validation.md``.
"""

from __future__ import annotations

import copy
import functools
import logging
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from . import _models as m
from ._converter import to_payload
from ._endpoints import ENDPOINTS, Endpoint, endpoint_for, endpoint_for_request
from ._errors import Problem, ValidationError
from ._models import Finding, Tier
from ._models._json import describe_kind, field_kinds
from ._rules import KNOWN_MODELS, KlingWarning, apply_table
from ._rules._kinds import EXTERNAL_TASK_ID_WARN_LENGTH

__all__ = [
    "EXTERNAL_TASK_ID_MAX_LENGTH",
    "PROMPT_MAX_LENGTH",
    "Checked",
    "KlingWarning",
    "build_payload",
    "check_payload",
    "check_request",
    "emit_warnings",
    "model_version",
    "prepare_request",
    "render_rules_markdown",
    "validate_payload",
    "validate_request",
]

logger = logging.getLogger("kling_async")

#: Longest ``prompt`` / ``negative_prompt``.
PROMPT_MAX_LENGTH = 2500
#: Longest ``external_task_id`` that passes without a warning. No seed sets a
#: length, so a longer id is sent (with a :class:`KlingWarning`), never refused.
EXTERNAL_TASK_ID_MAX_LENGTH = EXTERNAL_TASK_ID_WARN_LENGTH

_VERSION_RE = re.compile(r"(?:^|[-_])v?(\d+)(?:[.-](\d+))?(?=$|[-_])", re.IGNORECASE)


@attrs.frozen
class Checked:
    """The outcome of checking a body.

    Attributes:
        problems: Findings that refuse the request (tier ``blocks``).
        warnings: Findings that are sent anyway (tier ``warns``).
    """

    problems: tuple[Finding, ...]
    warnings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """Whether nothing blocks the request."""
        return not self.problems


def check_payload(
    endpoint: Endpoint | str, payload: Any, *, allow_unknown: bool = False
) -> Checked:
    """Check a JSON body against its family's rules: every finding, both tiers.

    Pure: nothing is emitted or logged.

    Args:
        endpoint: The endpoint (or its name, alias or path).
        payload: The body with the API's own field names, as it would be sent.
        allow_unknown: Let fields the SDK does not know through (``extra_body``);
            without it they are refused with a did-you-mean hint.

    Returns:
        The blocking problems and the warnings, each in a stable order.

    Raises:
        KeyError: ``endpoint`` is a name no endpoint has.
    """
    ep = endpoint_for(endpoint)
    findings = apply_table(ep.rules, payload, allow_unknown=allow_unknown)
    return Checked(
        problems=tuple(f for f in findings if f.tier is Tier.BLOCKS),
        warnings=tuple(f for f in findings if f.tier is Tier.WARNS),
    )


def validate_payload(
    endpoint: Endpoint | str, payload: Mapping[str, Any], *, allow_unknown: bool = False
) -> list[Problem]:
    """Check a JSON body and return the problems that refuse it.

    Used by the session before sending and by the fake gateway (which answers
    HTTP 400, code 1201, with the problems). URLs are not fetched; base64 images
    are decoded as far as needed. Warnings are left out: see :func:`check_payload`.

    Args:
        endpoint: The endpoint (or its name, alias or path).
        payload: The body, with the API's own field names, as it would be sent.
        allow_unknown: Let fields the SDK does not know through.

    Returns:
        Every blocking problem found; each is a :class:`~kling_async._models.Finding`
        (path, message, value, rule, tier, source, hint). Empty when it may be sent.

    Raises:
        KeyError: ``endpoint`` is a name no endpoint has.
    """
    return list(check_payload(endpoint, payload, allow_unknown=allow_unknown).problems)


def validate_request(
    request: m.Request, *, payload: Mapping[str, Any] | None = None
) -> list[Problem]:
    """Check a request model and return the problems that refuse it.

    Args:
        request: A request model instance.
        payload: Its body, when the caller already built it with
            :func:`~kling_async._converter.to_payload` (saves building it twice).

    Returns:
        Every blocking problem, with wire-name paths; empty when it may be sent.

    Raises:
        TypeError: ``request`` is not one of the request models.
    """
    ep = endpoint_for_request(request)
    if payload is None:
        payload = to_payload(request)
    return validate_payload(ep, payload)


def check_request(request: m.Request, *, extra_body: Mapping[str, Any] | None = None) -> Checked:
    """Check a request model (plus ``extra_body``): every finding, both tiers.

    Args:
        request: A request model instance.
        extra_body: Fields to merge into the body (see :func:`prepare_request`).

    Returns:
        The blocking problems and the warnings.

    Raises:
        TypeError: ``request`` is not one of the request models.
    """
    ep = endpoint_for_request(request)
    payload = merged_body(to_payload(request), extra_body)
    return check_payload(ep, payload, allow_unknown=extra_body is not None)


def emit_warnings(findings: Iterable[Finding], *, endpoint: str = "") -> None:
    """Emit each warning-tier finding as a :class:`KlingWarning` and a log record.

    Args:
        findings: The findings (blocking ones are ignored).
        endpoint: Endpoint name, for the message.
    """
    for finding in findings:
        if finding.tier is not Tier.WARNS:
            continue
        warning = KlingWarning(finding, endpoint)
        logger.warning("request sent despite an inferred rule: %s", warning)
        warnings.warn(warning, stacklevel=3)


def _drop_nulls(cls: type[Any], obj: Mapping[str, Any]) -> dict[str, Any]:
    kinds = field_kinds(cls)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key not in kinds:
            out[key] = copy.deepcopy(value)
            continue
        if value is None:
            continue
        kind, _ = kinds[key]
        if kind.model is not None and isinstance(value, Mapping):
            out[key] = _drop_nulls(kind.model, value)
        elif kind.item is not None and kind.item.model is not None and isinstance(value, list):
            item_cls = kind.item.model
            out[key] = [_drop_nulls(item_cls, v) if isinstance(v, Mapping) else v for v in value]
        else:
            out[key] = value if isinstance(value, (str, int, float, bool)) else copy.deepcopy(value)
    return out


def build_payload(
    endpoint: Endpoint | str,
    body: Mapping[str, Any],
    *,
    allow_unknown: bool = False,
    warn: bool = True,
) -> tuple[dict[str, Any], list[Finding]]:
    """Turn a JSON object into the body to send, or refuse it.

    The one strict path used by the CLI (``create --json``, ``batch`` JSONL), by
    dict input and, through :func:`prepare_request`, by models: values are never
    coerced; the body returned is the one written, minus ``null`` fields (unset).

    Args:
        endpoint: The endpoint (or its name, alias or path).
        body: The body in the API's own field names.
        allow_unknown: Send fields the SDK does not know (``extra_body=``);
            otherwise they are refused with a did-you-mean hint.
        warn: Emit the warnings (:func:`emit_warnings`); they are returned either way.

    Returns:
        The body to send and the warning-tier findings.

    Raises:
        ValidationError: A rule a seed states is broken, or a value has the wrong
            JSON type; every problem is listed with its path. Nothing is sent.
        KeyError: ``endpoint`` is a name no endpoint has.
    """
    ep = endpoint_for(endpoint)
    checked = check_payload(ep, body, allow_unknown=allow_unknown)
    if checked.problems:
        raise ValidationError(checked.problems, endpoint=ep.name)
    if warn:
        emit_warnings(checked.warnings, endpoint=ep.name)
    return _drop_nulls(ep.request_type, body), list(checked.warnings)


def merged_body(payload: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """``payload`` with ``extra`` merged in (objects merged key by key; ``extra`` wins)."""
    if not extra:
        return payload
    out = dict(payload)
    for key, value in extra.items():
        current = out.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            out[key] = merged_body(current, value)
        else:
            out[key] = value
    return out


def prepare_request(
    request: m.Request,
    *,
    extra_body: Mapping[str, Any] | None = None,
    warn: bool = True,
) -> tuple[dict[str, Any], list[Finding]]:
    """Turn a request model into the body to send, or refuse it.

    Args:
        request: A request model instance.
        extra_body: Fields merged into the body (objects merged key by key), sent
            even when the SDK does not know them; known fields in it are checked
            like any other.
        warn: Emit the warnings; they are returned either way.

    Returns:
        The body to send and the warning-tier findings.

    Raises:
        ValidationError: A documented rule is broken; nothing may be sent.
        TypeError: ``request`` is not one of the request models.
    """
    ep = endpoint_for_request(request)
    payload = merged_body(to_payload(request), extra_body)
    return build_payload(ep, payload, allow_unknown=extra_body is not None, warn=warn)


@functools.lru_cache(maxsize=256)
def model_version(model_name: str) -> tuple[int, int] | None:
    """Read the major and minor version out of a model name.

    ``kling-v1-6`` → (1, 6), ``MaaS_KL_V1.5`` → (1, 5), ``kling-v2-master`` → (2, 0),
    ``kling-v2.6`` → (2, 6), ``MaaS_KeLing_3.0_video`` → (3, 0); names without a
    version (``MaaS_KeLing_O3``) give ``None``. Model-specific rules use the
    versions of the names the seeds list (:data:`kling_async._rules.KNOWN_MODELS`),
    not this guess.

    Args:
        model_name: The ``model_name`` value.

    Returns:
        ``(major, minor)``, or ``None`` when the name carries no version.
    """
    match = _VERSION_RE.search(model_name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


# --- the generated documentation ----------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _fields_section(
    cls: type[Any], prefix: str = "", seen: set[type[Any]] | None = None
) -> list[str]:
    seen = set() if seen is None else seen
    rows: list[str] = []
    nested: list[tuple[str, type[Any]]] = []
    for name, (kind, required) in field_kinds(cls).items():
        rows.append(f"| `{prefix}{name}` | {describe_kind(kind)} | {'yes' if required else ''} |")
        inner = kind.model or (kind.item.model if kind.item is not None else None)
        if inner is not None and inner not in seen:
            nested.append((f"{prefix}{name}{'[]' if kind.item is not None else ''}.", inner))
    for sub_prefix, inner in nested:
        seen.add(inner)
        rows.extend(_fields_section(inner, sub_prefix, seen))
    return rows


def render_rules_markdown() -> str:
    """Render ``docs/validation.md`` from the rule tables and the endpoint table.

    Returns:
        The Markdown text (deterministic: regenerate it with
        ``python scripts/gen_validation_doc.py``).
    """
    out = [
        "# Validation rules",
        "",
        "<!-- Generated by scripts/gen_validation_doc.py from kling_async/_rules; "
        "do not edit by hand. -->",
        "",
        "Every request is checked before it is sent, the same way whether it comes from "
        "a Python model, a dict, `kling-async create --json` or a JSONL batch line.",
        "",
        "- **Types** are strict: JSON booleans only for boolean fields, JSON integers only "
        "for integer fields (`5.0` is not one), floats never truncated, `NaN`/infinities "
        "refused. Numeric *strings* are accepted only where the seeds send strings "
        "(video `duration`, `n`, `series_amount`, `element_id`, shot durations). `null` "
        "means unset and is not sent.",
        "- **Unknown fields** are refused with a did-you-mean hint, unless the caller opts "
        "in with `extra_body=` on `session.create` or `--allow-unknown-fields` on "
        "`kling-async create` (top-level fields; jobs files always refuse them).",
        "- **blocks**: a seed states the rule; the request is refused, with every problem "
        "at once (`ValidationError`).",
        "- **warns**: the SDK inferred the rule (another family's limit, a conflict "
        "between seeds, a field a seed calls *invalid* in a context); the request is "
        "sent and a `KlingWarning` is emitted through `warnings` and the `kling_async` "
        "logger.",
        "- Unknown `model_name` values pass with a warning; model-specific limits apply "
        "only to the model names the seeds list (see the end of this page).",
        "",
    ]
    for ep in ENDPOINTS:
        table = ep.rules
        out += [
            f"## {ep.name}: `POST {ep.path}`",
            "",
            f"Request model `{ep.request_type.__name__}`; seeds {', '.join(table.seeds)}; "
            f"`external_task_id` {'documented' if ep.accepts_external_id else 'not documented'}"
            ".",
            "",
            "| field | type | required by the model |",
            "|---|---|---|",
            *_fields_section(ep.request_type),
            "",
            "| field | rule | tier | applies when | source |",
            "|---|---|---|---|---|",
        ]
        for rule in table.rules:
            when = rule.when.says if rule.when is not None else "always"
            out.append(
                f"| `{_cell(rule.field)}` | {_cell(rule.says)} | {rule.tier.value} "
                f"| {_cell(when)} | {_cell(rule.source)} |"
            )
        out.append("")
    out += [
        "## Model names the seeds list",
        "",
        "| model_name | version | seeds |",
        "|---|---|---|",
    ]
    for known in sorted(KNOWN_MODELS.values(), key=lambda k: k.name.lower()):
        version = ".".join(str(v) for v in known.version) if known.version else "-"
        out.append(f"| `{known.name}` | {version} | {', '.join(known.seeds)} |")
    out.append("")
    return "\n".join(out)
