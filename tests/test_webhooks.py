"""Standard Webhooks signing and verification (kling_async._webhooks)."""

from __future__ import annotations

import pytest

from kling_async._errors import WebhookVerificationError
from kling_async._webhooks import sign, signed_headers, verify

# The published test vector (API-NOTES.md).
SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
MSG_ID = "9876543210"
TIMESTAMP = 1781080794
BODY = (
    b'{"id":"1234567890","status":"succeeded","message":"",'
    b'"create_time":1781080778802,"update_time":1781080794151}'
)
EXPECTED = "v1,UsKlJP00XoQyOn410NM9xv34sP+Gl0jnOO9Lcpr7NJ4="


def _headers(signature: str = EXPECTED, timestamp: int = TIMESTAMP) -> dict[str, str]:
    return {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_sign_matches_published_vector() -> None:
    """sign() reproduces the published Standard Webhooks test vector exactly."""
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_sign_accepts_secret_without_prefix() -> None:
    """The ``whsec_`` prefix is optional: the bare base64 key signs the same."""
    assert sign(SECRET.removeprefix("whsec_"), MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_sign_rejects_non_base64_secret() -> None:
    """A secret that is not base64 raises ValueError rather than signing garbage."""
    with pytest.raises(ValueError, match="base64"):
        sign("whsec_not*base64!", MSG_ID, TIMESTAMP, BODY)


def test_verify_accepts_published_vector() -> None:
    """verify() passes the published vector when the clock is at its timestamp."""
    verify(SECRET, _headers(), BODY, now=TIMESTAMP)


def test_verify_accepts_any_matching_signature_during_rotation() -> None:
    """Several space-separated signatures pass when any one matches (key rotation)."""
    rotated = f"v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v2,whatever {EXPECTED}"
    verify(SECRET, _headers(rotated), BODY, now=TIMESTAMP)


def test_verify_matches_header_names_case_insensitively() -> None:
    """Header names are matched case-insensitively even in a plain dict."""
    headers = {key.title(): value for key, value in _headers().items()}
    verify(SECRET, headers, BODY, now=TIMESTAMP)


def test_verify_rejects_tampered_body() -> None:
    """A body changed after signing fails verification."""
    with pytest.raises(WebhookVerificationError, match="no webhook signature matched"):
        verify(SECRET, _headers(), BODY.replace(b"succeeded", b"failed"), now=TIMESTAMP)


def test_verify_rejects_wrong_secret() -> None:
    """A signature made with another secret fails verification."""
    other = "whsec_" + "b3RoZXJzZWNyZXRvdGhlcnNlY3JldA=="
    with pytest.raises(WebhookVerificationError):
        verify(other, _headers(), BODY, now=TIMESTAMP)


@pytest.mark.parametrize("offset", [-301, 301])
def test_verify_rejects_timestamp_outside_tolerance(offset: int) -> None:
    """Timestamps more than five minutes away from now are refused (replay guard)."""
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(SECRET, _headers(), BODY, now=TIMESTAMP + offset)


def test_verify_honours_custom_tolerance() -> None:
    """A wider tolerance accepts an older timestamp."""
    verify(SECRET, _headers(), BODY, now=TIMESTAMP + 600, tolerance=700)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_rejects_missing_header(missing: str) -> None:
    """Each of the three headers is required."""
    headers = _headers()
    del headers[missing]
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify(SECRET, headers, BODY, now=TIMESTAMP)


def test_verify_rejects_non_integer_timestamp() -> None:
    """A malformed timestamp is refused, not crashed on."""
    headers = _headers()
    headers["webhook-timestamp"] = "yesterday"
    with pytest.raises(WebhookVerificationError, match="integer"):
        verify(SECRET, headers, BODY, now=TIMESTAMP)


def test_verify_rejects_malformed_signature_entries() -> None:
    """Signatures without a version, or with broken base64, never match."""
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, _headers("v1,@@@ nocomma v1,"), BODY, now=TIMESTAMP)


def test_verify_reports_unusable_secret_as_verification_error() -> None:
    """A broken secret on the receiving side surfaces as WebhookVerificationError."""
    with pytest.raises(WebhookVerificationError, match="base64"):
        verify("whsec_***", _headers(), BODY, now=TIMESTAMP)


def test_signed_headers_round_trip() -> None:
    """signed_headers() produces the three headers that verify() accepts."""
    headers = signed_headers(SECRET, "msg_1", b'{"task_id":"1"}', timestamp=1_700_000_000)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    verify(SECRET, headers, b'{"task_id":"1"}', now=1_700_000_000)


def test_signed_headers_default_to_current_time() -> None:
    """Without a timestamp, signed_headers() uses the clock, so verify() accepts it now."""
    verify(SECRET, signed_headers(SECRET, "msg_2", b"{}"), b"{}")
