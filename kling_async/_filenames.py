"""File names for outputs: readable, safe on every common file system, collision-free.

Keys and ids come from jobs files and gateway answers, so they may hold ``/``,
``..``, control characters, a thousand characters, or only differ in case.
:func:`safe_stem` keeps a readable prefix made of ``[A-Za-z0-9._-]`` and, whenever
that prefix is not exactly the original, appends a short hash of the original::

    "clip-07"   -> "clip-07"              (kept as is)
    "a/b"       -> "a_b-c14cddc033f6"     (never the same as "a_b")
    ".."        -> "_-5ec1f7e700f3"       (no leading dot, no "..")
    "Clip"      -> "Clip-82337888d764"    (case-insensitive disks: not "clip")

Why collision-free: a name kept as is never ends in ``-`` plus 12 hex digits (such
names are hashed too), and every hashed name does, so a kept name never equals a
hashed one; two hashed names meet only if 48-bit hashes collide. Names with
upper-case letters are hashed because macOS and Windows disks treat ``Clip`` and
``clip`` as one file; so are Windows device names (``CON``, ``nul.txt``...).
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["MAX_STEM", "output_name", "safe_stem"]

#: The longest stem :func:`safe_stem` returns.
MAX_STEM = 80
_HASH_CHARS = 12
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_DOTS = re.compile(r"\.{2,}")
_HASHED_LOOK = re.compile(r"-[0-9a-f]{12}\Z")
_EXT = re.compile(r"[a-z0-9]{1,8}")
_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{n}" for n in range(1, 10)}
    | {f"LPT{n}" for n in range(1, 10)}
)


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]


def safe_stem(name: str) -> str:
    """A file-name stem for ``name``: readable, safe, and distinct for distinct names.

    Args:
        name: A job key, task id or external id (any string).

    Returns:
        ``name`` itself when it is already a safe stem (only ``[A-Za-z0-9._-]``, no
        upper case, no leading dot or dash, no ``..``, no trailing dot, at most
        :data:`MAX_STEM` characters); otherwise a sanitized prefix plus ``-`` and 12
        hex digits of the original's SHA-256. Never empty, never more than
        :data:`MAX_STEM` characters.
    """
    cleaned = _DOTS.sub("_", _UNSAFE.sub("_", name)).lstrip(".-").rstrip(".")
    kept = (
        cleaned == name
        and 0 < len(name) <= MAX_STEM
        and name == name.lower()
        and not _HASHED_LOOK.search(name)
        and name.split(".", 1)[0].upper() not in _DEVICES
    )
    if kept:
        return name
    if cleaned.split(".", 1)[0].upper() in _DEVICES:
        cleaned = f"_{cleaned}"
    prefix = cleaned[: MAX_STEM - _HASH_CHARS - 1] or "_"
    return f"{prefix}-{_digest(name)}"


def _extension(ext: str) -> str:
    cleaned = ext.strip().lstrip(".").lower()
    return cleaned if _EXT.fullmatch(cleaned) else "bin"


def output_name(key: str, index: int, count: int, ext: str) -> str:
    """The file name of one output of a job: by key, numbered when there are several.

    Args:
        key: The job key.
        index: The output's position (from 0).
        count: How many outputs the job has.
        ext: The extension, with or without a dot (``"mp4"``); anything but 1-8
            letters and digits becomes ``bin``.

    Returns:
        ``{stem}.{ext}`` for a single output, ``{stem}-{index + 1}.{ext}`` for
        several, where ``stem`` is :func:`safe_stem` of the key. Caveat: a job ``a``
        with several outputs and a job ``a-1`` with one output of the same type
        would share ``a-1.{ext}``; callers that write both into one folder must
        check their names for duplicates.

    Raises:
        ValueError: ``index`` is not in ``range(count)``.
    """
    if not 0 <= index < count:
        raise ValueError(f"output index {index} is not in range({count})")
    stem = safe_stem(key)
    suffix = _extension(ext)
    return f"{stem}.{suffix}" if count == 1 else f"{stem}-{index + 1}.{suffix}"
