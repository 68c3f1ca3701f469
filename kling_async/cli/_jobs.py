"""Request bodies from JSON: one checking function for jobs files and ``create`` alike.

:func:`request_from_json` is the only way a command turns a JSON object into a
request model: every documented limit is checked (all problems at once, with wire
names), then the model is built strictly. Nothing is sent for a body with problems.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .._converter import request_from_payload
from .._endpoints import ENDPOINTS, Endpoint, endpoint_for
from .._errors import Problem, ValidationError
from .._models import Request
from .._validation import build_payload

__all__ = [
    "Job",
    "LineProblem",
    "describe",
    "load_jobs",
    "parse_job_line",
    "read_body",
    "request_from_json",
]


@attrs.frozen(kw_only=True)
class LineProblem:
    """Why one line of a jobs file cannot run.

    Attributes:
        line: 1-based line number.
        field: Where (wire name), or ``(line)`` for the line as a whole.
        message: The rule that was broken.
    """

    line: int
    field: str
    message: str

    def format(self, source: str) -> str:
        """``source:line: field: message``, compiler-style.

        Args:
            source: The file name to show.

        Returns:
            The text.
        """
        return f"{source}:{self.line}: {self.field}: {self.message}"


@attrs.frozen(kw_only=True)
class Job:
    """One job of a batch, parsed and checked.

    Attributes:
        line: 1-based line number in the jobs file (position, for the demo).
        key: The job's stable key (given, or ``line-<n>``).
        endpoint: The endpoint family.
        request: The request model.
        notes: Warnings about the line: rules the SDK inferred, which do not
            stop the job from being sent.
    """

    line: int
    key: str
    endpoint: Endpoint
    request: Request = attrs.field(repr=False)
    notes: tuple[LineProblem, ...] = ()


def describe(problem: Problem) -> str:
    """A problem's message with its hint, if it has one (``did you mean 'prompt'?``).

    Args:
        problem: A validation problem or finding.

    Returns:
        The text.
    """
    hint = getattr(problem, "hint", "")
    return f"{problem.message} ({hint})" if hint else problem.message


def request_from_json(
    endpoint: Endpoint, fields: Mapping[str, Any]
) -> tuple[Request | None, list[Problem], list[Problem]]:
    """Check a JSON body against its family's rules, then build the request model.

    The one strict path (:func:`~kling_async._validation.build_payload`): every
    problem at once, values never coerced, ``null`` fields left out.

    Args:
        endpoint: The endpoint family.
        fields: The body, in the API's own field names.

    Returns:
        The request (``None`` when refused), every blocking problem, and the
        warnings (rules the SDK inferred: the body is sent anyway).
    """
    try:
        payload, warnings = build_payload(endpoint, fields, warn=False)
        request: Request = request_from_payload(endpoint.request_type, payload)
    except ValidationError as exc:
        return None, list(exc.problems), []
    return request, [], list(warnings)


def _key_of(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        text = str(value).strip()
        return text or None
    return None


def parse_job_line(line_no: int, text: str) -> tuple[Job | None, list[LineProblem]]:
    """Parse and check one JSONL line.

    Args:
        line_no: Its 1-based number.
        text: The line (not blank).

    Returns:
        The job (``None`` when it has problems) and every problem found.
    """

    def bad(field: str, message: str) -> tuple[None, list[LineProblem]]:
        return None, [LineProblem(line=line_no, field=field, message=message)]

    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return bad("(line)", f"malformed JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(obj, dict):
        return bad("(line)", f"must be a JSON object, got {type(obj).__name__}")
    fields = dict(obj)
    name = fields.pop("endpoint", None)
    if not isinstance(name, str) or not name.strip():
        return bad("endpoint", "required: the family's path under /kling/ (videos/text2video...)")
    try:
        endpoint = endpoint_for(name)
    except KeyError:
        valid = ", ".join(ep.path for ep in ENDPOINTS if ep.is_task)
        return bad("endpoint", f"unknown endpoint {name!r}; expected one of: {valid}")
    if not endpoint.is_task:
        return bad("endpoint", f"{endpoint.path} creates no task; it cannot run in a batch")
    problems: list[LineProblem] = []
    raw_key = fields.pop("key", None)
    key = _key_of(raw_key)
    if raw_key is not None and key is None:
        problems.append(
            LineProblem(line=line_no, field="key", message="must be a non-empty string")
        )
    request, found, warnings = request_from_json(endpoint, fields)
    problems.extend(LineProblem(line=line_no, field=p.path, message=describe(p)) for p in found)
    if problems or request is None:
        return None, problems
    notes = tuple(
        LineProblem(line=line_no, field=w.path, message=f"{describe(w)} (sent anyway)")
        for w in warnings
    )
    job = Job(
        line=line_no, key=key or f"line-{line_no}", endpoint=endpoint, request=request, notes=notes
    )
    return job, []


def load_jobs(lines: Iterable[str]) -> tuple[list[Job], list[LineProblem]]:
    """Parse a whole jobs file; blank lines are skipped.

    Keys must be unique: a repeated key is reported on every line after the first.

    Args:
        lines: The file's lines.

    Returns:
        The valid jobs and every problem of every line, in line order.
    """
    jobs: list[Job] = []
    problems: list[LineProblem] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        job, found = parse_job_line(number, text)
        problems.extend(found)
        if job is None:
            continue
        first = seen.get(job.key)
        if first is not None:
            problems.append(
                LineProblem(
                    line=number, field="key", message=f"{job.key!r} is already used on line {first}"
                )
            )
            continue
        seen[job.key] = number
        jobs.append(job)
    return jobs, problems


def read_body(value: str) -> Any:
    """Read a ``--json`` value: inline JSON, ``@file.json``, or ``@-`` for stdin.

    Args:
        value: The argument.

    Returns:
        The decoded JSON value.

    Raises:
        OSError: The file cannot be read.
        UnicodeDecodeError: The file is not UTF-8.
        json.JSONDecodeError: The text is not JSON.
    """
    if value == "@-":
        text = sys.stdin.read()
    elif value.startswith("@"):
        text = Path(value[1:]).read_text(encoding="utf-8")
    else:
        text = value
    return json.loads(text)
