"""mkdocs hook: fill the API reference pages from the packages' ``__all__``.

A reference page holds a marker line such as ``<!-- api: session -->``; this hook
replaces it with one mkdocstrings directive per public name of that group. The
names come from ``kling_async.__all__`` and ``kling_async.testing.__all__``, read
statically with griffe (nothing is imported), and each is put in the group of the
module that defines it. So a name added to ``__all__`` appears in the reference on
the next build without anyone editing a page, and a name whose module no group
claims lands under "Other names" on the overview page rather than nowhere.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import griffe

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- api: (?P<group>[a-z-]+) -->$", re.MULTILINE)

# Group -> prefixes of the modules whose definitions it documents (first match wins).
GROUPS: dict[str, tuple[str, ...]] = {
    "errors": ("kling_async._errors", "kling_async._journal_errors"),
    "session": (
        "kling_async._session",
        "kling_async._config",
        "kling_async._transport",
        "kling_async._ratelimit",
        "kling_async._backoff",
        "kling_async._slots",
        "kling_async._send",
        "kling_async._families",
        "kling_async._handles",
        "kling_async._classify",
    ),
    "requests": (
        "kling_async._models",
        "kling_async._endpoints",
        "kling_async._validation",
        "kling_async._rules",
        "kling_async._media",
    ),
    "tasks": ("kling_async._task", "kling_async._download"),
    "batches": (
        "kling_async.batch",
        "kling_async._schedule",
        "kling_async._journal",
        "kling_async._report",
    ),
    "callbacks": ("kling_async._callbacks", "kling_async._webhooks", "kling_async._webapp"),
    "coordination": ("kling_async.coordination", "kling_async._coordination"),
}

# Names shown first in their group, in this order; the rest follow alphabetically.
FIRST: dict[str, tuple[str, ...]] = {
    "session": ("KlingSession", "Family", "ClientConfig", "PollPolicy", "RetryPolicy", "Timeouts"),
    "requests": ("Request", "TextToVideoRequest", "ImageToVideoRequest", "validate_request"),
    "tasks": ("Task", "TaskStatus"),
    "batches": ("Batch", "JobHandle", "JobResult", "BatchSummary", "Event", "EventKind"),
    "callbacks": ("CallbackReceiver", "CallbackEvent"),
    "errors": ("KlingError",),
    "testing": ("run_fake_gateway", "FakeGateway", "FakeConfig"),
}

# Public functions documented with a group while not (yet) exported at the root.
EXTRA: dict[str, tuple[str, ...]] = {

}


@functools.cache
def _package() -> griffe.Module:
    loaded = griffe.load("kling_async", search_paths=[str(ROOT)], allow_inspection=False)
    if not isinstance(loaded, griffe.Module):
        raise TypeError("kling_async did not load as a module")
    return loaded


def _exports(module: griffe.Module) -> list[tuple[str, str]]:
    """(public name, path of its definition) for every name in the module's ``__all__``."""
    pairs = []
    for name in module.exports or ():
        member = module.members.get(str(name))
        if member is None:
            continue
        target = member.target_path if member.is_alias else member.path
        pairs.append((str(name), target))
    return pairs


def _group_of(name: str, target: str) -> str:
    if name.endswith(("Error", "Warning")):
        return "errors"
    for group, prefixes in GROUPS.items():
        if any(target == p or target.startswith(p + ".") for p in prefixes):
            return group
    return "other"


@functools.cache
def _directives() -> dict[str, list[str]]:
    """Group -> the identifiers to render, in page order."""
    package = _package()
    grouped: dict[str, list[str]] = {}
    exported_targets = set()
    for name, target in _exports(package):
        grouped.setdefault(_group_of(name, target), []).append(name)
        exported_targets.add(target)
    testing = package.members["testing"]
    if not isinstance(testing, griffe.Module):
        raise TypeError("kling_async.testing did not load as a module")
    grouped["testing"] = [name for name, _ in _exports(testing)]

    ordered: dict[str, list[str]] = {}
    for group, names in grouped.items():
        first = [n for n in FIRST.get(group, ()) if n in names]
        rest = sorted((n for n in names if n not in first), key=str.lower)
        prefix = "kling_async.testing." if group == "testing" else "kling_async."
        ordered[group] = [prefix + n for n in first + rest]
    for group, paths in EXTRA.items():
        extra = [p for p in paths if p not in exported_targets]
        ordered.setdefault(group, []).extend(extra)
    return ordered


def _render(group: str) -> str:
    paths = _directives().get(group, [])
    if not paths:
        return "*No public name belongs here yet.*" if group != "other" else ""
    return "\n\n".join(f"::: {path}" for path in paths)


def on_page_markdown(markdown: str, /, **_: Any) -> str:
    """Replace every ``<!-- api: GROUP -->`` marker with the group's directives."""
    return MARKER.sub(lambda match: _render(match.group("group")), markdown)
