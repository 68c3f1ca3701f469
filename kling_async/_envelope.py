"""Reading an answer: size caps, strict JSON, the envelope's shape, error mapping.

Pure functions over a :class:`~kling_async.HTTPResponse`; nothing here awaits.
Whatever the gateway sends, the result is either a checked envelope or one of the
SDK's own errors for that one request:

* too large (the transport stopped at the cap) → :class:`ResponseTooLargeError`;
* not UTF-8 JSON, a non-finite or absurdly long number, nesting deeper than
  ``max_json_depth``, an envelope field of the wrong type → :class:`ResponseDecodeError`;
* an error status or a non-zero ``code`` → the :class:`APIError` subclass for it,
  with ``request_id``, a capped ``Retry-After`` and, when the answer means a setting
  is wrong, a hint naming the setting (never its value).

Text from the gateway (``message``, ``request_id``) is scrubbed by a
:class:`~kling_async._redact.Redactor` before it reaches an error or a log.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ._backoff import parse_retry_after
from ._classify import Phase, Verdict, classify
from ._config import ENV_API_KEY, ENV_BASE_URL, ENV_ENDPOINT_PATH, ENV_TURBO_BASE_URL, Limits
from ._errors import (
    APIError,
    NotFoundError,
    ResponseDecodeError,
    ResponseTooLargeError,
    make_api_error,
)
from ._redact import Redactor
from ._transport import HTTPResponse

__all__ = ["Answer", "decode_answer", "json_depth", "parse_json"]

KEY_HINT = f"Check the API key ({ENV_API_KEY} / api_key); its value is never shown"
ROUTE_HINT = (
    f"Check the route: {ENV_ENDPOINT_PATH} (endpoint_path) and the base URL "
    f"({ENV_BASE_URL} / {ENV_TURBO_BASE_URL}); their values are never shown"
)
ACCOUNT_HINT = "The account cannot take paid work now: check its balance and resource packs"
LOOKUP_404_HINT = f"If every lookup answers this, check {ENV_ENDPOINT_PATH} and the base URL"

_HINTS = {
    Verdict.HALT_KEY: KEY_HINT,
    Verdict.HALT_ROUTE: ROUTE_HINT,
    Verdict.HALT_ACCOUNT: ACCOUNT_HINT,
}

#: Longest integer literal accepted (task ids are 19 digits; timestamps 13).
_MAX_INT_DIGITS = 40
_CODE = re.compile(r"-?[0-9]{1,9}")


@attrs.frozen(kw_only=True)
class Answer:
    """A successful envelope.

    Attributes:
        data: The envelope's ``data`` (an object, or a list for batch queries).
        request_id: The envelope's ``request_id`` (scrubbed), if any.
        code: The envelope's ``code`` (0, or ``None`` when absent).
    """

    data: Any = attrs.field(repr=False)
    request_id: str | None = None
    code: int | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of float range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:
        raise ValueError(f"integer of {len(text)} digits")
    return int(text)


def json_depth(value: Any) -> int:
    """Deepest nesting of arrays and objects in a parsed JSON value (a scalar is 0).

    Args:
        value: The parsed value.

    Returns:
        The depth (``{"a": [1]}`` is 2).
    """
    depth = 0
    level = [value] if isinstance(value, (dict, list)) else []
    while level:
        depth += 1
        below: list[Any] = []
        push = below.append
        for item in level:
            # Only containers go down a level: scalars cost one type test each.
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, (dict, list)):
                    push(child)
        level = below
    return depth


#: Every digit to ``0``, every other byte to a space: a run of digits stays a run.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
#: A run of digits as long as the longest integer literal accepted (sign included):
#: only a body holding one (in a number or inside a string) needs the decoder that
#: measures each integer. Shorter runs are parsed in C with the same result.
_LONG_RUN = b"0" * _MAX_INT_DIGITS
#: Built once: ``json.loads`` with hooks builds a decoder per call.
_STRICT = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int
)
#: The same rules for a body without a long digit run: integers are parsed in C.
_FAST = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def parse_json(body: bytes, *, max_depth: int) -> Any:
    """Parse strict JSON: UTF-8, finite numbers, short integers, bounded nesting.

    Args:
        body: The bytes.
        max_depth: Deepest nesting accepted.

    Returns:
        The value.

    Raises:
        ValueError: The body is not acceptable JSON (the message says why, never
            quoting the body).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    decoder = _STRICT if _LONG_RUN in body.translate(_DIGITS_ONLY) else _FAST
    try:
        value = decoder.decode(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError as exc:
        reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else "invalid"
        # json's own messages quote a position, never the content; keep the first part.
        raise ValueError(f"not JSON: {reason.split(':')[0][:80]}") from None
    # Each level of nesting opens with a bracket: a body with no more brackets than
    # the cap (most single-task answers) cannot exceed it, and is not walked.
    if body.count(b"{") + body.count(b"[") > max_depth and json_depth(value) > max_depth:
        raise ValueError(f"nested deeper than {max_depth}")
    return value


def _code(value: Any) -> int | str | None:
    """The envelope's ``code`` as an int (``None`` when absent), or what is wrong with it."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _CODE.fullmatch(value.strip()):
        return int(value.strip())
    return f"code is a {type(value).__name__}, not an integer"


def _request_id(value: Any, redactor: Redactor) -> str | tuple[str] | None:
    """The envelope's ``request_id`` (scrubbed), or ``(problem,)``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return (f"request_id is a {type(value).__name__}",)
    return redactor.scrub(str(value), limit=128)


def _fields(envelope: Any, redactor: Redactor) -> tuple[int | None, str | None, Any] | str:
    """``(code, request_id, message)`` of an envelope, or what is wrong with it."""
    if not isinstance(envelope, dict):
        return f"a JSON {type(envelope).__name__}, not an object"
    code = _code(envelope.get("code"))
    if isinstance(code, str):
        return code
    request_id = _request_id(envelope.get("request_id"), redactor)
    if isinstance(request_id, tuple):
        return request_id[0]
    message = envelope.get("message")
    if message is not None and not isinstance(message, str):
        return f"message is a {type(message).__name__}"
    return code, request_id, message


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value if isinstance(value, str) else None


def _error(
    response: HTTPResponse,
    *,
    label: str,
    phase: Phase,
    code: int | None,
    message: Any,
    request_id: str | None,
    redactor: Redactor,
    max_retry_after: float,
) -> APIError:
    text = redactor.scrub(message) if isinstance(message, str) else ""
    args: dict[str, Any] = {
        "http_status": response.status,
        "code": code,
        "message": text or f"HTTP {response.status}",
        "request_id": request_id,
        "retry_after": parse_retry_after(
            _header(response.headers, "Retry-After"), maximum=max_retry_after
        ),
        "path": label,
    }
    error = make_api_error(**args)
    hint = _HINTS.get(classify(error, phase=phase), "")
    if not hint and phase == "read" and isinstance(error, NotFoundError) and code is None:
        hint = LOOKUP_404_HINT
    return make_api_error(**args, hint=hint) if hint else error


def _decode_error_answer(
    response: HTTPResponse,
    *,
    label: str,
    phase: Phase,
    limits: Limits,
    redactor: Redactor,
    max_retry_after: float,
) -> APIError:
    """Map an HTTP >= 400 answer; a body that is not a usable envelope maps by status."""
    code: int | None = None
    message: Any = None
    request_id: str | None = None
    try:
        envelope = parse_json(response.body[: limits.max_error_bytes], max_depth=8)
    except ValueError:
        envelope = None
    if isinstance(envelope, dict):
        raw_code = _code(envelope.get("code"))
        code = raw_code if isinstance(raw_code, int) else None
        message = envelope.get("message")
        raw_id = _request_id(envelope.get("request_id"), redactor)
        request_id = raw_id if isinstance(raw_id, str) else None
    return _error(
        response,
        label=label,
        phase=phase,
        code=code,
        message=message,
        request_id=request_id,
        redactor=redactor,
        max_retry_after=max_retry_after,
    )


def decode_answer(
    response: HTTPResponse,
    *,
    method: str,
    label: str,
    phase: Phase,
    limits: Limits,
    redactor: Redactor,
    max_retry_after: float,
) -> Answer:
    """Check an answer and return its envelope, or the error it stands for.

    Args:
        response: What the transport returned.
        method: HTTP method (for error attributes).
        label: Path under ``/kling/`` (for errors and logs).
        phase: ``"create"`` or ``"read"``: decides which hint a 404 gets.
        limits: Size and depth caps.
        redactor: Scrubs gateway text.
        max_retry_after: Cap of ``Retry-After``, seconds.

    Returns:
        The envelope of a successful answer.

    Raises:
        APIError: An error status or non-zero ``code`` (the subclass for it).
        ResponseTooLargeError: The answer is larger than ``limits.max_answer_bytes``.
        ResponseDecodeError: The answer is not the documented envelope.
    """
    status = response.status
    if status >= 400:
        raise _decode_error_answer(
            response,
            label=label,
            phase=phase,
            limits=limits,
            redactor=redactor,
            max_retry_after=max_retry_after,
        )
    if response.truncated or len(response.body) > limits.max_answer_bytes:
        raise ResponseTooLargeError(
            f"answer larger than {limits.max_answer_bytes} bytes (HTTP {status}); reading stopped",
            limit=limits.max_answer_bytes,
            method=method,
            path=label,
            http_status=status,
        )
    envelope: Any = None
    try:
        envelope = parse_json(response.body, max_depth=limits.max_json_depth)
    except ValueError as exc:
        fields: tuple[int | None, str | None, Any] | str = str(exc)
    else:
        fields = _fields(envelope, redactor)
    if isinstance(fields, str):
        problem = fields
        raise ResponseDecodeError(
            f"answer is not the JSON envelope: {problem} (HTTP {status}, "
            f"{len(response.body)} bytes)",
            method=method,
            path=label,
            http_status=status,
        )
    code, request_id, message = fields
    if code not in (None, 0):
        raise _error(
            response,
            label=label,
            phase=phase,
            code=code,
            message=message,
            request_id=request_id,
            redactor=redactor,
            max_retry_after=max_retry_after,
        )
    if "data" not in envelope:
        raise ResponseDecodeError(
            f"answer has no data (HTTP {status})", method=method, path=label, http_status=status
        )
    return Answer(data=envelope["data"], request_id=request_id, code=code)
