"""Auth strategies: what each request carries to prove who sends it.

Two schemes reach the Kling API, both as ``Authorization: Bearer <value>``:

* an **API key**, sent as is (the gateway's only scheme; accepted on every route of
  Kling's own API): :class:`ApiKeyAuth`;
* an **access key and secret key** pair, turned into a short-lived JSON Web Token
  (HS256, claims ``iss`` = access key, ``exp`` = now + lifetime, ``nbf`` = now - 5 s,
  signed with the secret key) that is renewed before it expires:
  :class:`JwtAuth`. Kling's legacy ``/v1/...`` routes take it; its newer routes
  take API keys only.

A strategy answers two questions for the send layer: which headers go on the next
request (:meth:`AuthStrategy.headers`), and, after a 401, whether fresh credentials
are worth one more attempt (:meth:`AuthStrategy.on_unauthorized`).

No key, secret or token is ever part of a ``repr``, a ``str``, a log record or an
error message written here: reprs show ``***``, errors name the setting only.
:data:`JWT_PATTERN` finds a token in foreign text so a redactor can remove it.

Time is read from a clock function, never from ``time.time`` directly, so a client
talking to a fake whose clock runs faster (see :func:`scaled_clock`) renews its
tokens on that clock.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

import jwt

from ._errors import APIError, ConfigurationError

__all__ = [
    "DEFAULT_TOKEN_LIFETIME",
    "DEFAULT_TOKEN_MARGIN",
    "ENV_API_KEY",
    "JWT_PATTERN",
    "NOT_BEFORE_SLACK",
    "RENEWABLE_CODES",
    "SCALED_CLOCK_ANCHOR",
    "ApiKeyAuth",
    "AuthStrategy",
    "Clock",
    "Credentials",
    "JwtAuth",
    "scaled_clock",
    "sign_hs256",
]

#: The variable that gives an API key (named in messages, never read here).
ENV_API_KEY = "KLING_API_KEY"
#: Seconds a token is valid for (Kling's documented example: 30 minutes).
DEFAULT_TOKEN_LIFETIME = 1800.0
#: Seconds before expiry at which a token is replaced by a fresh one.
DEFAULT_TOKEN_MARGIN = 300.0
#: Seconds a token's ``nbf`` lies in the past, so a server clock slightly behind
#: ours still accepts it (Kling's documented example uses 5).
NOT_BEFORE_SLACK = 5
#: Envelope codes of a 401 after which a renewed token may succeed: 1002 (the token
#: is not accepted; one signed a moment ago may be) and 1004 (it has expired).
RENEWABLE_CODES = frozenset({1002, 1004})
#: A JSON Web Token in any text: three base64url parts, the first one a JSON object.
JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

#: Reads the current time as Unix seconds.
Clock = Callable[[], float]

#: The moment :func:`scaled_clock` leaves in place (2023-11-14T22:13:20Z), so two
#: processes scaling the same way agree on the time without talking to each other.
SCALED_CLOCK_ANCHOR = 1_700_000_000.0

_HEADER = {"alg": "HS256", "typ": "JWT"}
#: PyJWT >= 2.10 warns about HMAC keys shorter than 32 bytes; older versions lack it.
_SHORT_KEY_WARNING: type[Warning] = getattr(
    getattr(jwt, "warnings", None), "InsecureKeyLengthWarning", UserWarning
)


def sign_hs256(claims: Mapping[str, object], secret: str) -> str:
    """Sign ``claims`` as a compact HS256 JWT with the header Kling documents.

    PyJWT's warning about keys under 32 bytes is silenced here: the secret key is
    issued by Kling, so its length is not the user's to change.

    Args:
        claims: The payload.
        secret: The HMAC key.

    Returns:
        The token.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _SHORT_KEY_WARNING)
        return jwt.encode(dict(claims), secret, algorithm="HS256", headers=_HEADER)


def _check_secret(value: str, setting: str) -> str:
    """A credential that can travel in a header, or a :class:`ConfigurationError`."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{setting} is empty")
    if any(ch in value for ch in "\r\n\0"):
        raise ConfigurationError(f"{setting} holds a line break or NUL (the value is not shown)")
    return value.strip()


def scaled_clock(
    factor: float, *, anchor: float = SCALED_CLOCK_ANCHOR, base: Clock = time.time
) -> Clock:
    """A clock whose seconds pass ``1 / factor`` times as fast as ``base``'s.

    For a server whose clock is time-scaled (the embedded fake with ``time_scale``
    0.001 lives a 1800 s token in 1.8 real seconds): give :class:`JwtAuth` this
    clock with the same factor and it renews on the server's schedule. Both sides
    stretch time around the same fixed ``anchor``, so they agree without sharing
    a starting moment.

    Args:
        factor: The server's time scale (``1.0`` returns ``base`` itself).
        anchor: The moment left unchanged, Unix seconds.
        base: The real clock.

    Returns:
        The scaled clock, Unix seconds.

    Raises:
        ConfigurationError: ``factor`` is not a positive finite number.
    """
    if not (isinstance(factor, (int, float)) and 0 < factor < float("inf")):
        raise ConfigurationError(f"factor must be a positive finite number, got {factor!r}")
    if factor == 1.0:
        return base

    def now() -> float:
        return anchor + (base() - anchor) / factor

    return now


@runtime_checkable
class AuthStrategy(Protocol):
    """How the send layer authorizes a request and reacts to a refusal."""

    async def headers(self) -> Mapping[str, str]:
        """The headers that prove who sends the next request.

        Returns:
            ``{"Authorization": "Bearer ..."}`` (never log them).
        """
        ...

    def on_unauthorized(self, error: APIError) -> bool:
        """Decide after a refusal whether fresh credentials deserve one more attempt.

        The caller sends the request again at most once after a ``True``.

        Args:
            error: The refusal (HTTP 401 or an authentication code).

        Returns:
            ``True`` when credentials were renewed and a retry may succeed.
        """
        ...


class ApiKeyAuth:
    """Sends an API key as ``Authorization: Bearer <key>``.

    Args:
        api_key: The key (never shown).
        setting: The setting's name for error messages.

    Raises:
        ConfigurationError: The key is empty or holds a line break or NUL.
    """

    __slots__ = ("_headers", "_key")

    def __init__(self, api_key: str, *, setting: str = "api_key") -> None:
        self._key = _check_secret(api_key, setting)
        self._headers: Mapping[str, str] = {"Authorization": f"Bearer {self._key}"}

    def __repr__(self) -> str:
        return "ApiKeyAuth(api_key=***)"

    __str__ = __repr__

    async def headers(self) -> Mapping[str, str]:
        """The ``Authorization`` header with the key.

        Returns:
            The headers (never log them).
        """
        return self._headers

    def on_unauthorized(self, error: APIError) -> bool:
        """A refused key stays refused: never worth a retry.

        Args:
            error: The refusal.

        Returns:
            ``False``.
        """
        return False

    def secrets(self) -> tuple[str, ...]:
        """Values a redactor must remove from foreign text.

        Returns:
            The key.
        """
        return (self._key,)


class JwtAuth:
    """Signs short-lived HS256 tokens from an access key and a secret key.

    The token is cached and replaced once less than ``margin`` seconds of its
    ``lifetime`` remain, so concurrent requests share it and a request never
    leaves with a token about to expire. After a 401 with code 1002 or 1004
    (:meth:`on_unauthorized`) the cached token is dropped and the next request
    carries a fresh one.

    Args:
        access_key: The access key, the token's ``iss`` (never shown).
        secret_key: The secret key, the HMAC key (never shown).
        lifetime: Seconds from signing to ``exp``.
        margin: Seconds before ``exp`` at which the token is renewed.
        clock: Current Unix time in seconds (see :func:`scaled_clock`).

    Raises:
        ConfigurationError: A key is empty or holds a line break or NUL, or
            ``margin`` is negative or not below ``lifetime``.
    """

    __slots__ = ("_access", "_clock", "_expires", "_secret", "_token", "lifetime", "margin")

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        lifetime: float = DEFAULT_TOKEN_LIFETIME,
        margin: float = DEFAULT_TOKEN_MARGIN,
        clock: Clock = time.time,
    ) -> None:
        self._access = _check_secret(access_key, "access_key")
        self._secret = _check_secret(secret_key, "secret_key")
        if not (0 < lifetime < float("inf")):
            raise ConfigurationError(f"lifetime must be a positive number, got {lifetime!r}")
        if not (0 <= margin < lifetime):
            raise ConfigurationError(
                f"margin must be >= 0 and below lifetime ({lifetime!r}), got {margin!r}"
            )
        self.lifetime = lifetime
        self.margin = margin
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0

    def __repr__(self) -> str:
        return "JwtAuth(access_key=***)"

    __str__ = __repr__

    def token(self) -> str:
        """The current token, signed anew when none is cached or it is due for renewal.

        Returns:
            The compact JWT (never log it).
        """
        now = self._clock()
        if self._token is None or now >= self._expires - self.margin:
            issued = int(now)
            expires = issued + int(self.lifetime)
            claims = {"iss": self._access, "exp": expires, "nbf": issued - NOT_BEFORE_SLACK}
            self._token = sign_hs256(claims, self._secret)
            self._expires = float(expires)
        return self._token

    async def headers(self) -> Mapping[str, str]:
        """The ``Authorization`` header with a valid token.

        Returns:
            The headers (never log them).
        """
        return {"Authorization": f"Bearer {self.token()}"}

    def on_unauthorized(self, error: APIError) -> bool:
        """Drop the cached token after a 401 that a fresh token may cure.

        Args:
            error: The refusal.

        Returns:
            ``True`` for HTTP 401 with code 1002 (not accepted) or 1004 (expired):
            the next :meth:`headers` signs a new token. ``False`` otherwise.
        """
        if error.http_status != 401 or error.code not in RENEWABLE_CODES:
            return False
        self._token = None
        return True

    def secrets(self) -> tuple[str, ...]:
        """Values a redactor must remove from foreign text.

        Returns:
            The access key, the secret key and the cached token, if any.
        """
        values = (self._access, self._secret)
        return (*values, self._token) if self._token else values


class Credentials:
    """The strategies of one configuration, picked per route.

    A key pair signs tokens for the routes that take them; an API key, when set,
    serves the routes that refuse tokens, and every route when there is no pair.

    Args:
        where: How messages name the API (``Kling's own API``).
        api_key: The API key's strategy, if a key is set.
        key_pair: The key pair's strategy, if a pair is set.

    Raises:
        ConfigurationError: Neither is given.
    """

    __slots__ = ("api_key", "key_pair", "where")

    def __init__(self, *, where: str, api_key: ApiKeyAuth | None, key_pair: JwtAuth | None) -> None:
        if api_key is None and key_pair is None:
            raise ConfigurationError(f"no credentials for {where}")
        self.where = where
        self.api_key = api_key
        self.key_pair = key_pair

    def __repr__(self) -> str:
        held = [name for name in ("api_key", "key_pair") if getattr(self, name) is not None]
        return f"Credentials({'+'.join(held)})"

    def pick(self, *, api_key_only: bool, what: str) -> AuthStrategy:
        """The strategy for one route.

        Args:
            api_key_only: Whether the route refuses tokens.
            what: The route's name for the error message.

        Returns:
            The key pair's strategy where tokens are taken, else the API key's.

        Raises:
            ConfigurationError: The route takes an API key only and none is set.
        """
        if api_key_only or self.key_pair is None:
            if self.api_key is not None:
                return self.api_key
            raise ConfigurationError(
                f"{what} on {self.where} takes an API key only: set api_key "
                f"({ENV_API_KEY}); the access/secret key pair is refused there"
            )
        return self.key_pair

    def secrets(self) -> tuple[str, ...]:
        """Every value a redactor must remove (keys, secret, the current token).

        Returns:
            The values.
        """
        found: list[str] = []
        for strategy in (self.api_key, self.key_pair):
            if strategy is not None:
                found.extend(strategy.secrets())
        return tuple(found)
