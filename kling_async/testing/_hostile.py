"""Hostile answers: bodies a broken or malicious gateway could send with HTTP 200.

Each builder is a pure function of the normal answer's bytes, so the same request
always gets the same hostile body (see ``FAULTS`` in :mod:`._config` for the list).
The huge answers are streamed in chunks: the fake never holds one in memory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "NON_JSON_BODY",
    "bad_code_body",
    "deep_body",
    "huge_chunks",
    "rewrite_body",
]

#: Not JSON, and not even UTF-8.
NON_JSON_BODY = b"\xff\xfeupstream answered: <<not json>>\x00\x81"
_CHUNK = 64 * 1024
_NON_FINITE = (math.nan, math.inf, -math.inf)


def bad_code_body() -> bytes:
    """``{"code": "²"}``: looks like a digit, parses as no integer."""
    return json.dumps({"code": "²"}, ensure_ascii=False).encode()


def deep_body(depth: int, request_id: str) -> bytes:
    """A success envelope whose ``data`` is ``depth`` nested arrays.

    Args:
        depth: Nesting depth.
        request_id: The envelope's request id.

    Returns:
        Valid JSON bytes.
    """
    head = b'{"code":0,"message":"SUCCEED","request_id":"' + request_id.encode() + b'","data":'
    return head + b"[" * depth + b"]" * depth + b"}"


def _nan_index(data: Any) -> Any:
    marked = False

    def walk(value: Any) -> Any:
        nonlocal marked
        if isinstance(value, list):
            out = []
            for item in value:
                if isinstance(item, dict):
                    item = {**{k: walk(v) for k, v in item.items()}, "index": "nan"}
                    marked = True
                else:
                    item = walk(item)
                out.append(item)
            return out
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    result = walk(data)
    if not marked and isinstance(result, dict):
        result["index"] = "nan"
    return result


def _is_number_text(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_id(key: str) -> bool:
    return key == "id" or key.endswith("_id")


def _non_finite(data: Any) -> Any:
    counter = 0

    def walk(value: Any, key: str = "") -> Any:
        nonlocal counter
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, (int, float)):
            counter += 1
            return _NON_FINITE[counter % 3]
        if isinstance(value, str):
            # Ids stay intact, so the answer still names the task it is about.
            numeric = bool(value) and not _is_id(key) and _is_number_text(value)
            return "1e999" if numeric else value
        if isinstance(value, list):
            return [walk(item, key) for item in value]
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        return value

    return walk(data)


def _wrong_type(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _wrong_type(v) for k, v in value.items()}
    if isinstance(value, bool):
        return "perhaps"
    if isinstance(value, (int, float)):
        return "not a number"
    if isinstance(value, str):
        return {"unexpected": [value]}
    if isinstance(value, list):
        return "not a list"
    return ["null", "was", "here"]


def _wrong_types(data: Any) -> Any:
    # Keep the outer shape (an object, or a list of objects) so the damage is nested.
    if isinstance(data, list):
        return [_wrong_type(item) if isinstance(item, dict) else item for item in data]
    return _wrong_type(data)


#: ``data`` rewriters of the JSON-shape faults.
_REWRITERS: dict[str, Callable[[Any], Any]] = {
    "nan_index": _nan_index,
    "non_finite": _non_finite,
    "wrong_types": _wrong_types,
}


def rewrite_body(fault: str, body: bytes) -> bytes:
    """The normal answer with its ``data`` spoiled by ``fault``.

    Args:
        fault: ``nan_index``, ``non_finite`` or ``wrong_types``.
        body: The normal success envelope.

    Returns:
        The spoiled envelope (``code``, ``message``, ``request_id`` unchanged;
        ``non_finite`` uses the bare tokens ``NaN`` and ``Infinity``, which Python
        accepts and strict JSON parsers refuse).

    Raises:
        KeyError: ``fault`` rewrites nothing.
    """
    envelope = json.loads(body)
    envelope["data"] = _REWRITERS[fault](envelope.get("data"))
    return json.dumps(envelope, separators=(",", ":"), allow_nan=True).encode()


def huge_chunks(body: bytes, size: int) -> Iterator[bytes]:
    """A valid JSON answer padded to ``size`` bytes, in chunks.

    A JSON object body gets a ``"padding"`` member of spaces first, so a client
    that reads it whole still finds the normal answer inside; any other body (a
    media file) is followed by zero bytes.

    Args:
        body: The normal answer.
        size: Total bytes to send (at least the normal answer's length).

    Yields:
        Chunks of at most 64 KiB, adding up to ``max(size, len(body))`` bytes.
    """
    if body.startswith(b"{") and body.endswith(b"}"):
        head, tail, filler = b'{"padding":"', b'",' + body[1:], b" "
    else:
        head, tail, filler = body, b"", b"\x00"
    remaining = max(0, size - len(head) - len(tail))
    yield head
    block = filler * _CHUNK
    while remaining > 0:
        step = min(remaining, _CHUNK)
        yield block[:step]
        remaining -= step
    if tail:
        yield tail
