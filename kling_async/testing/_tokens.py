"""How the fake checks callers of Kling's own API: API keys, or HS256 tokens.

A token is verified with PyJWT the way Kling documents it: header
``{"alg": "HS256", "typ": "JWT"}``, ``iss`` naming a known access key, a signature
made with that key's secret key, ``nbf`` <= now < ``exp``. Refusals use Kling's
codes: 1001 empty, 1002 invalid (malformed, unknown issuer, wrong signature,
missing claims; also a token on a route that takes API keys only), 1003 not yet
valid, 1004 expired. No message repeats the credential.

Token times are read on a clock that follows the fake's: Unix seconds, stretched
by the token time scale around :data:`~kling_async._auth.SCALED_CLOCK_ANCHOR`
(exactly what :func:`kling_async._auth.scaled_clock` computes on the client) and
moved by :meth:`FakeGateway.advance`.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Mapping

import attrs
import jwt

from .._auth import SCALED_CLOCK_ANCHOR

__all__ = ["KEY", "TOKEN", "Caller", "KeyPairAccount", "TokenChecker", "check_token", "scaled_unix"]

#: Schemes a caller can prove itself with.
KEY = "key"
TOKEN = "token"  # noqa: S105  (a scheme name, not a secret)

_SHORT_KEY_WARNING: type[Warning] = getattr(
    getattr(jwt, "warnings", None), "InsecureKeyLengthWarning", UserWarning
)


@attrs.frozen
class Caller:
    """Who sent a request, and how they proved it.

    Attributes:
        account: The account (quotas, task visibility and external ids are per account).
        scheme: ``key`` (an API key) or ``token`` (a JWT).
        credential: A short digest of the credential (tells tokens apart, never
            reveals one).
    """

    account: str
    scheme: str = KEY
    credential: str = attrs.field(default="", repr=False)


@attrs.frozen
class KeyPairAccount:
    """An access key's secret key and the account it acts for.

    Attributes:
        secret_key: The HMAC key its tokens are signed with.
        account: The account.
    """

    secret_key: str = attrs.field(repr=False)
    account: str = attrs.field(repr=False)


def scaled_unix(now: float, scale: float) -> float:
    """A fake-clock moment as Unix seconds on a clock running ``1 / scale`` as fast.

    Args:
        now: Unix seconds of the fake's clock (real time plus every advance).
        scale: The token time scale (1: real seconds).

    Returns:
        The stretched Unix seconds.
    """
    if scale == 1.0:
        return now
    return SCALED_CLOCK_ANCHOR + (now - SCALED_CLOCK_ANCHOR) / scale


def _claim_time(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def check_token(
    token: str, pairs: Mapping[str, KeyPairAccount], clock: Callable[[], float]
) -> Caller | tuple[int, str]:
    """Verify a bearer token as Kling's API does.

    Args:
        token: The value after ``Bearer``.
        pairs: Known access keys.
        clock: Unix seconds for ``exp`` and ``nbf`` (see :func:`scaled_unix`).

    Returns:
        The caller, or ``(code, message)`` of the refusal.
    """
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return 1002, "Authorization is invalid: the token is malformed"
    if header.get("alg") != "HS256":
        return 1002, "Authorization is invalid: the token must be signed with HS256"
    issuer = claims.get("iss")
    pair = pairs.get(issuer) if isinstance(issuer, str) else None
    if pair is None:
        return 1002, "Authorization is invalid: the issuer is not a known access key"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", _SHORT_KEY_WARNING)
            claims = jwt.decode(
                token,
                pair.secret_key,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_nbf": False, "require": ["exp", "nbf"]},
            )
    except jwt.InvalidSignatureError:
        return 1002, "Authorization is invalid: the signature does not match"
    except jwt.InvalidTokenError:
        return 1002, "Authorization is invalid: exp and nbf are required"
    expires, not_before = _claim_time(claims.get("exp")), _claim_time(claims.get("nbf"))
    if expires is None or not_before is None:
        return 1002, "Authorization is invalid: exp and nbf must be numbers"
    now = clock()
    if now >= expires:
        return 1004, "Authorization is expired"
    if now < not_before:
        return 1003, "Authorization is not yet valid"
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    return Caller(pair.account, TOKEN, digest)


class TokenChecker:
    """:func:`check_token` with a memory of tokens whose signature already checked out.

    Verifying a signature costs far more than the rest of a fake request, and a
    client sends the same token for many minutes; a remembered token only has its
    times checked again. The memory is forgotten whole when full.

    Args:
        pairs: Known access keys.
        clock: Unix seconds for ``exp`` and ``nbf``.
        capacity: Tokens remembered at most.
    """

    __slots__ = ("_clock", "_known", "_pairs", "capacity")

    def __init__(
        self,
        pairs: Mapping[str, KeyPairAccount],
        clock: Callable[[], float],
        *,
        capacity: int = 1024,
    ) -> None:
        self._pairs = dict(pairs)
        self._clock = clock
        self.capacity = capacity
        self._known: dict[str, tuple[Caller, float, float]] = {}

    def __repr__(self) -> str:
        return f"TokenChecker({len(self._pairs)} pairs, {len(self._known)} remembered)"

    def __call__(self, token: str) -> Caller | tuple[int, str]:
        """Verify a bearer token (see :func:`check_token`).

        Args:
            token: The value after ``Bearer``.

        Returns:
            The caller, or ``(code, message)`` of the refusal.
        """
        known = self._known.get(token)
        if known is None:
            checked = check_token(token, self._pairs, self._clock)
            if isinstance(checked, Caller):
                claims = jwt.decode(token, options={"verify_signature": False})
                if len(self._known) >= self.capacity:
                    self._known.clear()
                self._known[token] = (checked, float(claims["exp"]), float(claims["nbf"]))
            return checked
        caller, expires, not_before = known
        now = self._clock()
        if now >= expires:
            return 1004, "Authorization is expired"
        if now < not_before:
            return 1003, "Authorization is not yet valid"
        return caller
