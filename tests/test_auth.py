"""Auth strategies: API keys, HS256 tokens from a key pair, renewal, and secrecy."""

from __future__ import annotations

import logging
import warnings

import jwt
import pytest

from kling_async._auth import (
    JWT_PATTERN,
    SCALED_CLOCK_ANCHOR,
    ApiKeyAuth,
    AuthStrategy,
    Credentials,
    JwtAuth,
    scaled_clock,
)
from kling_async._errors import APIError, AuthenticationError, ConfigurationError

ACCESS = "AK-canary-3f9c1e"
SECRET = "SK-canary-b7d2a4-long-enough-for-hmac-sha256"


class Clock:
    """A settable clock (Unix seconds)."""

    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _verify(token: str, *, secret: str = SECRET) -> dict[str, object]:
    """Claims of a token, signature checked with PyJWT (times checked by the tests)."""
    return jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_nbf": False, "require": ["iss", "exp", "nbf"]},
    )


def _refusal(status: int, code: int | None) -> APIError:
    return AuthenticationError("refused", http_status=status, code=code)


async def test_token_has_the_documented_header_claims_and_signature() -> None:
    """Header alg HS256/typ JWT; iss = access key, exp = now + 1800, nbf = now - 5; SK signs."""
    clock = Clock(1_750_000_000.4)
    auth = JwtAuth(ACCESS, SECRET, clock=clock)
    header = (await auth.headers())["Authorization"]
    scheme, _, token = header.partition(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert _verify(token) == {"iss": ACCESS, "exp": 1_750_001_800, "nbf": 1_749_999_995}
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(token, secret="another-secret-key-of-enough-length-0000")


async def test_token_is_shared_until_the_margin_then_renewed() -> None:
    """One token serves until lifetime - margin has passed; then a fresh one is signed."""
    clock = Clock()
    auth = JwtAuth(ACCESS, SECRET, lifetime=1800, margin=300, clock=clock)
    first = auth.token()
    clock.now += 1499
    assert auth.token() == first
    clock.now += 1
    second = auth.token()
    assert second != first
    assert _verify(second)["exp"] == int(clock.now) + 1800


async def test_unauthorized_with_1004_or_1002_drops_the_token_once() -> None:
    """401 with 1004 or 1002 asks for a retry and the next request signs anew."""
    clock = Clock()
    auth = JwtAuth(ACCESS, SECRET, clock=clock)
    first = auth.token()
    clock.now += 10
    assert auth.token() == first
    assert auth.on_unauthorized(_refusal(401, 1004)) is True
    renewed = auth.token()
    assert renewed != first
    assert _verify(renewed)["exp"] == int(clock.now) + 1800
    clock.now += 1
    assert auth.on_unauthorized(_refusal(401, 1002)) is True
    assert auth.token() != renewed


@pytest.mark.parametrize(("status", "code"), [(401, 1001), (401, 1003), (403, 1103), (401, None)])
def test_other_refusals_are_not_worth_a_new_token(status: int, code: int | None) -> None:
    """Empty credentials, not-yet-valid, permission and code-less 401s keep the token."""
    clock = Clock()
    auth = JwtAuth(ACCESS, SECRET, clock=clock)
    first = auth.token()
    clock.now += 1
    assert auth.on_unauthorized(_refusal(status, code)) is False
    assert auth.token() == first


async def test_api_key_is_sent_as_bearer_and_never_retried() -> None:
    """An API key goes out as Bearer <key>; a refused key is not worth a retry."""
    auth = ApiKeyAuth(" key-123 ")
    assert await auth.headers() == {"Authorization": "Bearer key-123"}
    assert auth.on_unauthorized(_refusal(401, 1004)) is False
    assert auth.secrets() == ("key-123",)


def test_both_strategies_meet_the_protocol() -> None:
    """ApiKeyAuth and JwtAuth are AuthStrategy objects for the send layer."""
    assert isinstance(ApiKeyAuth("k"), AuthStrategy)
    assert isinstance(JwtAuth(ACCESS, SECRET), AuthStrategy)


async def test_no_repr_str_or_log_shows_a_key_secret_or_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """repr and str show *** only; nothing is logged; the token is only in the header."""
    caplog.set_level(logging.DEBUG)
    auth = JwtAuth(ACCESS, SECRET)
    token = (await auth.headers())["Authorization"].split()[1]
    key = ApiKeyAuth("api-canary-77")
    credentials = Credentials(where="Kling's own API", api_key=key, key_pair=auth)
    shown = " ".join([repr(auth), str(auth), repr(key), str(key), repr(credentials)])
    assert repr(auth) == "JwtAuth(access_key=***)"
    assert repr(key) == "ApiKeyAuth(api_key=***)"
    for secret in (ACCESS, SECRET, token, "api-canary-77"):
        assert secret not in shown
        assert secret not in caplog.text


@pytest.mark.parametrize("bad", ["", "   ", "line\nbreak", "nul\0byte", "cr\rx"])
def test_unusable_credentials_are_refused_without_echoing_them(bad: str) -> None:
    """Empty keys or ones with CR/LF/NUL raise ConfigurationError naming the setting only."""
    for build, setting in (
        (lambda: JwtAuth(bad, SECRET), "access_key"),
        (lambda: JwtAuth(ACCESS, bad), "secret_key"),
        (lambda: ApiKeyAuth(bad), "api_key"),
    ):
        with pytest.raises(ConfigurationError, match=setting) as caught:
            build()
        if bad.strip():
            assert bad not in str(caught.value)


@pytest.mark.parametrize(("lifetime", "margin"), [(0, 0), (100, 100), (100, -1), (100, 200)])
def test_lifetime_and_margin_must_leave_a_valid_window(lifetime: float, margin: float) -> None:
    """A margin must be >= 0 and below a positive lifetime."""
    with pytest.raises(ConfigurationError):
        JwtAuth(ACCESS, SECRET, lifetime=lifetime, margin=margin)


def test_scaled_clock_stretches_time_around_a_shared_anchor() -> None:
    """At factor 0.001 one real second is 1000 clock seconds; the anchor stays put."""
    real = Clock(SCALED_CLOCK_ANCHOR)
    fast = scaled_clock(0.001, base=real)
    assert fast() == SCALED_CLOCK_ANCHOR
    real.now += 1.5
    assert fast() == pytest.approx(SCALED_CLOCK_ANCHOR + 1500)
    assert scaled_clock(1.0, base=real) is real
    with pytest.raises(ConfigurationError):
        scaled_clock(0.0)


def test_a_token_on_a_scaled_clock_renews_on_that_clock() -> None:
    """With a 0.001 clock, a token signed now is renewed after 1.5 real seconds."""
    real = Clock(SCALED_CLOCK_ANCHOR + 100.0)
    auth = JwtAuth(ACCESS, SECRET, clock=scaled_clock(0.001, base=real))
    first = auth.token()
    real.now += 1.4
    assert auth.token() == first
    real.now += 0.2
    assert auth.token() != first


def test_credentials_pick_the_pair_where_tokens_go_and_the_key_elsewhere() -> None:
    """Legacy routes get the token, API-key-only routes the key; without a key they refuse."""
    pair = JwtAuth(ACCESS, SECRET)
    key = ApiKeyAuth("api-key-1")
    both = Credentials(where="Kling's own API", api_key=key, key_pair=pair)
    assert both.pick(api_key_only=False, what="text2video") is pair
    assert both.pick(api_key_only=True, what="turbo-text2video") is key
    only_key = Credentials(where="x", api_key=key, key_pair=None)
    assert only_key.pick(api_key_only=False, what="text2video") is key
    only_pair = Credentials(where="Kling's own API", api_key=None, key_pair=pair)
    with pytest.raises(ConfigurationError, match="KLING_API_KEY") as caught:
        only_pair.pick(api_key_only=True, what="GET tasks")
    assert "API key only" in str(caught.value)
    assert ACCESS not in str(caught.value)
    with pytest.raises(ConfigurationError):
        Credentials(where="x", api_key=None, key_pair=None)


def test_secrets_name_every_value_a_redactor_must_remove() -> None:
    """Keys, the secret and the current token are listed for redaction."""
    pair = JwtAuth(ACCESS, SECRET)
    credentials = Credentials(where="x", api_key=ApiKeyAuth("api-key-1"), key_pair=pair)
    assert set(credentials.secrets()) == {"api-key-1", ACCESS, SECRET}
    token = pair.token()
    assert token in credentials.secrets()


def test_jwt_pattern_finds_a_token_in_foreign_text() -> None:
    """A token echoed inside a message is found by JWT_PATTERN."""
    token = JwtAuth(ACCESS, SECRET).token()
    text = f"upstream said: token {token} is bad"
    found = JWT_PATTERN.search(text)
    assert found is not None
    assert found.group(0) == token


def test_a_short_secret_key_signs_without_a_warning() -> None:
    """Kling issues the secret key, so PyJWT's short-key warning is not raised at the user."""
    token = JwtAuth(ACCESS, "short").token()  # warnings are errors in this suite
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # only the check below may warn
        claims = jwt.decode(
            token, "short", algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False}
        )
    assert claims["iss"] == ACCESS
