"""Scrubbing text the SDK did not write before it reaches a log, an error or an event.

A gateway's ``message``, ``request_id`` or a task's status text is foreign text: a
misbehaving or hostile gateway may echo the request back, including the API key,
the endpoint path segment or a whole base64 image. :class:`Redactor` removes those
(the configured secrets by value; a JSON Web Token anywhere, whatever signed it,
since a renewed token is in no list; an echoed ``Authorization`` value whatever its
token; base64-looking runs by shape, shown as length and hash only), drops control
characters and bounds the length.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from ._auth import JWT_PATTERN

__all__ = ["MAX_FOREIGN_TEXT", "Redactor", "describe_base64"]

#: Longest piece of foreign text kept, characters.
MAX_FOREIGN_TEXT = 300

#: A run this long of base64 alphabet is treated as a payload, not as words.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{64,}={0,2}")
#: Short text that no pattern here can match (no dot for a token, no space for a
#: credential, too short for a base64 run, no control character): a request id.
_PLAIN = re.compile(r"[A-Za-z0-9_-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: An echoed ``Authorization`` value (whatever the token), or a header line holding one.
_CREDENTIALS = re.compile(r"(?i)\b(?:authorization\s*[:=]\s*)?(?:bearer|basic|token|digest)\s+\S+")


def describe_base64(value: str) -> str:
    """A short stand-in for a base64 payload: its length and a hash prefix.

    Args:
        value: The payload.

    Returns:
        ``<base64: N chars, sha256 0123456789ab>``.
    """
    digest = hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:12]
    return f"<base64: {len(value)} chars, sha256 {digest}>"


class Redactor:
    """Removes configured secrets and payloads from foreign text.

    Args:
        secrets: Values that must never appear (API key, access and secret keys,
            endpoint path segment...). Empty values are ignored. Tokens need no
            entry: every JSON Web Token is removed by its shape.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is removed whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"

    def scrub(self, text: object, *, limit: int = MAX_FOREIGN_TEXT) -> str:
        """Make foreign text safe to log or raise.

        Args:
            text: Anything; non-strings are shown by type name only.
            limit: Longest result, characters (longer text is cut with ``...``).

        Returns:
            The text without secrets, tokens, base64 runs or control characters.
        """
        if text is None:
            return ""
        if not isinstance(text, str):
            return f"<{type(text).__name__}>"
        out = text
        for secret in self._secrets:
            if secret in out:
                out = out.replace(secret, "***")
        if _PLAIN.fullmatch(out) is not None and len(out) <= limit:
            return out  # a request id's shape: nothing below could match it
        out = JWT_PATTERN.sub("<token>", out)
        out = _CREDENTIALS.sub("<credentials>", out)
        out = _BASE64_RUN.sub(lambda m: describe_base64(m.group(0)), out)
        out = _CONTROL.sub(" ", out)
        if len(out) > limit:
            out = out[: max(0, limit - 3)] + "..."
        return out
