"""Standard Webhooks signing and verification for task callbacks.

The gateway (and the fake gateway) may sign each callback it POSTs. Three headers
travel with the body:

- ``webhook-id``: a unique message id (the same id on redelivery),
- ``webhook-timestamp``: Unix seconds when it was sent,
- ``webhook-signature``: one or more space-separated ``v1,<base64>`` signatures.

The signed content is ``"{id}.{timestamp}.{raw body}"``, HMAC-SHA256 keyed with the
base64-decoded secret (after its ``whsec_`` prefix). Any one matching signature
passes, so keys can be rotated. Timestamps beyond the tolerance (5 minutes by
default) are refused to stop replays.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from ._errors import WebhookVerificationError

__all__ = [
    "DEFAULT_TOLERANCE",
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "SECRET_PREFIX",
    "sign",
    "signed_headers",
    "verify",
]

#: Header carrying the message id.
HEADER_ID = "webhook-id"
#: Header carrying the Unix timestamp (seconds) of the attempt.
HEADER_TIMESTAMP = "webhook-timestamp"
#: Header carrying the space-separated ``v1,<base64>`` signatures.
HEADER_SIGNATURE = "webhook-signature"
#: Prefix of Standard Webhooks secrets.
SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
#: Seconds a timestamp may lie in the past or future.
DEFAULT_TOLERANCE = 300.0


def _key(secret: str) -> bytes:
    """Decode a secret: base64 after an optional ``whsec_`` prefix."""
    text = secret.strip()
    if text.startswith(SECRET_PREFIX):
        text = text[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not base64 (after the 'whsec_' prefix)") from None
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    content = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, content, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Sign a webhook message the Standard Webhooks way.

    Args:
        secret: The shared secret, ``whsec_<base64>`` (the prefix is optional).
        msg_id: The message id sent as ``webhook-id``.
        timestamp: Unix seconds sent as ``webhook-timestamp``.
        body: The exact raw body.

    Returns:
        The signature, ``"v1,<base64>"``.

    Raises:
        ValueError: The secret is not base64.
    """
    digest = _signature(_key(secret), msg_id, int(timestamp), body)
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(
    secret: str, msg_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """Build the three Standard Webhooks headers for a body.

    Args:
        secret: The shared secret.
        msg_id: A unique message id.
        body: The exact raw body.
        timestamp: Unix seconds (default: now).

    Returns:
        ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``.

    Raises:
        ValueError: The secret is not base64.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(ts),
        HEADER_SIGNATURE: sign(secret, msg_id, ts, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        # Plain dicts are case-sensitive; aiohttp's CIMultiDict is not.
        for key, item in headers.items():
            if key.lower() == name:
                return item
    return value


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a callback's Standard Webhooks signature and timestamp.

    Args:
        secret: The shared secret, ``whsec_<base64>``.
        headers: The request headers (any mapping; names are matched case-insensitively).
        body: The exact raw body, before any JSON decoding.
        tolerance: Seconds the timestamp may differ from ``now``.
        now: The current Unix time (default: the clock).

    Raises:
        WebhookVerificationError: A header is missing, the timestamp is malformed
            or out of tolerance, the secret is unusable, or no signature matches.
    """
    msg_id = _header(headers, HEADER_ID)
    stamp = _header(headers, HEADER_TIMESTAMP)
    signatures = _header(headers, HEADER_SIGNATURE)
    if not msg_id or not stamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp.strip())
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance window")
    try:
        key = _key(secret)
    except ValueError as exc:
        raise WebhookVerificationError(str(exc)) from None
    expected = _signature(key, msg_id, timestamp, body)
    for candidate in signatures.split():
        version, _, encoded = candidate.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            return
    raise WebhookVerificationError("no webhook signature matched")
