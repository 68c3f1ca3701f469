"""The send chain: short layers around the one transport seam, one concern each.

:meth:`Sender.send` makes one attempt::

    closed check → pick credentials → rate limit → count → authorize (headers) →
    exchange (the seam, foreign exceptions translated) → decode (caps, strict
    JSON, envelope, error mapping) → log

Credentials are picked per route from the session's
:class:`~kling_async._auth.Credentials`: a key pair's token where the route takes
tokens, the API key where it takes keys only. When a 401 makes the strategy renew
its credentials (:meth:`~kling_async._auth.AuthStrategy.on_unauthorized`: an
expired or refused token), the same request is sent exactly once more, within the
same attempt: a request refused as unauthorized did nothing, so even a create is
safe to send again.

:meth:`Sender.read` wraps it in the retry loop of a request that creates
nothing (a query, a lookup, identify-face). Creates have their own loop
(:mod:`kling_async._create`) because their failures may have cost money. Both ask
:func:`~kling_async._classify.classify` what a failure means.

Nothing here logs a URL, a header or a body: a request is shown by its method and
its label (the route's path, no host or endpoint path), a gateway's text only
after scrubbing.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Mapping
from types import MappingProxyType

import anyio
import attrs

from . import _telemetry
from ._auth import AuthStrategy, Credentials, JwtAuth
from ._backends import ENV_ACCESS_KEY, ENV_SECRET_KEY
from ._backoff import backoff_delay, pause_seconds
from ._classify import Phase, Verdict, classify
from ._config import ClientConfig, RetryPolicy
from ._envelope import Answer, decode_answer
from ._errors import (
    APIError,
    AuthenticationError,
    KlingError,
    RateLimitedError,
    SessionClosedError,
    TransportError,
    make_api_error,
)
from ._ratelimit import RateLimiter
from ._redact import Redactor
from ._transport import HTTPRequest, HTTPResponse, Transport

__all__ = ["Call", "Sender"]

logger = logging.getLogger("kling_async")

#: Failures of a read that are worth another attempt.
_READ_RETRY = (Verdict.RETRY, Verdict.RATE_LIMITED, Verdict.NO_SLOT)
#: Headers of every API request besides the credentials.
_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
#: What a refused token tells the user to check (never a value).
PAIR_HINT = (
    f"Check the access/secret key pair ({ENV_ACCESS_KEY} / access_key, {ENV_SECRET_KEY} / "
    "secret_key) and this machine's clock; their values are never shown"
)


@attrs.frozen(kw_only=True)
class Call:
    """One logical request, before authorization.

    Attributes:
        method: ``GET`` or ``POST``.
        url: Absolute URL (holds the endpoint path: never shown).
        label: The route's path with ids replaced (``videos/text2video/{id}`` on the
            gateway, ``v1/videos/text2video/{id}`` on Kling's own API).
        body: JSON bytes, or ``None``.
        kind: Counter to bump: ``create``, ``query``, ``batch_query`` or ``list_query``.
        phase: ``create`` when the request may create a paid task.
        api_key_only: Whether the route refuses tokens (Kling's newer routes).
    """

    method: str
    url: str = attrs.field(repr=False)
    label: str
    body: bytes | None = attrs.field(repr=False, default=None)
    kind: str
    phase: Phase
    api_key_only: bool = False


class _FirstOpen:
    """Whether a session of this process has opened (its warm-up is once per process)."""

    done = False


_first_open = _FirstOpen()


class Sender:
    """Sends calls through a transport, one attempt or with read retries.

    Args:
        transport: The seam.
        config: The session's configuration (caps, retry policy).
        redactor: Scrubs gateway text.
        credentials: The auth strategies (default: built from ``config``; build
            them once per session, tokens are cached inside).
    """

    def __init__(
        self,
        transport: Transport,
        config: ClientConfig,
        redactor: Redactor,
        credentials: Credentials | None = None,
    ) -> None:
        self.transport = transport
        self.config = config
        self.redactor = redactor
        self.credentials = credentials if credentials is not None else config.credentials()
        self.closed = False
        self.limiter = (
            RateLimiter(
                config.max_requests_per_second, burst=max(1, int(config.max_requests_per_second))
            )
            if config.max_requests_per_second
            else None
        )
        # Per-request constants, read once (the configuration is frozen).
        self._timeout = config.timeouts.request
        self._max_answer_bytes = config.limits.max_answer_bytes
        self._max_error_bytes = config.limits.max_error_bytes
        self._headers: tuple[Mapping[str, str], Mapping[str, str]] | None = None
        #: Requests sent (every attempt), by kind.
        self.request_counts: dict[str, int] = {
            "create": 0,
            "query": 0,
            "batch_query": 0,
            "list_query": 0,
            "download": 0,
        }

    def __repr__(self) -> str:
        return f"Sender(transport={type(self.transport).__name__}, closed={self.closed})"

    # --- one attempt, layer by layer ---------------------------------------------

    def auth_for(self, *, api_key_only: bool, what: str) -> AuthStrategy:
        """The strategy that authorizes a route (check it before taking a slot).

        Args:
            api_key_only: Whether the route refuses tokens.
            what: The route's name for the error message.

        Returns:
            The strategy.

        Raises:
            ConfigurationError: The route takes an API key only and none is set
                (the message names ``KLING_API_KEY``).
        """
        return self.credentials.pick(api_key_only=api_key_only, what=what)

    async def send(self, call: Call, *, limiter: RateLimiter | None = None) -> Answer:
        """One attempt: every layer; once more only after credentials were renewed.

        Args:
            call: The request.
            limiter: A caller's request-rate limiter, besides the session's.

        Returns:
            The successful envelope.

        Raises:
            SessionClosedError: The session was closed.
            ConfigurationError: The route takes an API key only and none is set
                (nothing was sent).
            TransportError: The exchange failed or the answer broke the protocol.
            APIError: The gateway answered with an error.
        """
        if self.closed:
            self.check_open()
        auth = self.credentials.pick(api_key_only=call.api_key_only, what=call.label)
        renewed = False
        while True:
            if limiter is not None or self.limiter is not None:
                await self._rate_limit(limiter)
            self.request_counts[call.kind] += 1
            started = time.perf_counter()
            failure: KlingError | None = None
            with _telemetry.request_span(call.kind, call.method):
                try:
                    response = await self._exchange(call, await self._authorize(call, auth))
                    answer = self._decode(call, response)
                except KlingError as exc:
                    failure = exc
            if failure is None:
                break
            if isinstance(failure, APIError) and failure.code in (1302, 1303):
                _telemetry.record_refusal(failure.code)
            if not renewed and isinstance(failure, AuthenticationError):
                renewed = auth.on_unauthorized(failure)
                if renewed:
                    logger.info(
                        "%s %s: token refused (code %s); sending once more with a fresh one",
                        call.method,
                        call.label,
                        failure.code,
                    )
                    continue
            failure = self._explain(failure, auth)
            self._log_failure(call, failure, time.perf_counter() - started)
            raise failure
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> ok request_id=%s %.3fs",
                call.method,
                call.label,
                answer.request_id,
                time.perf_counter() - started,
            )
        return answer

    def warm_up(self) -> None:
        """Do the first-use work of a process now, not in a batch's first creates.

        Loads the async backend (about 15 ms of imports). The first session of a
        process also runs one full garbage collection while the collector is on:
        after the imports, the collector's first full pass otherwise lands in the
        first batch (measured: 30-40 ms of CPU before its first create, while paid
        slots wait). Later sessions skip it.

        Call from a running event loop (a session's ``__aenter__``).
        """
        anyio.get_cancelled_exc_class()
        if not _first_open.done:
            _first_open.done = True
            if gc.isenabled():
                gc.collect()

    def check_open(self) -> None:
        """Raise if the session was closed.

        Raises:
            SessionClosedError: :meth:`KlingSession.aclose` was called.
        """
        if self.closed:
            raise SessionClosedError("the session is closed; open a new KlingSession")

    async def _rate_limit(self, limiter: RateLimiter | None) -> None:
        if limiter is not None:
            await limiter.acquire()
        if self.limiter is not None:
            await self.limiter.acquire()

    async def _authorize(self, call: Call, auth: AuthStrategy) -> HTTPRequest:
        base = await auth.headers()
        cached = self._headers
        if cached is None or cached[0] is not base:
            # An API key's headers are one object for the session's life: merged once.
            # A token's are new after each renewal, and merged again then. Read-only,
            # since every request shares them.
            cached = self._headers = (base, MappingProxyType({**base, **_JSON_HEADERS}))
        return HTTPRequest(
            method=call.method,
            url=call.url,
            label=call.label,
            headers=cached[1],
            body=call.body,
            timeout=self._timeout,
            max_answer_bytes=self._max_answer_bytes,
            max_error_bytes=self._max_error_bytes,
        )

    async def _exchange(self, call: Call, request: HTTPRequest) -> HTTPResponse:
        """The seam. A transport's own foreign exception is described, never chained."""
        failure: TransportError | None = None
        try:
            return await self.transport.send(request)
        except KlingError:
            raise
        except Exception as exc:  # a custom transport broke its contract
            name = type(exc).__name__
            failure = TransportError(
                f"transport failed: {name}", method=call.method, path=call.label, foreign_type=name
            )
        raise failure

    @staticmethod
    def _explain(error: KlingError, auth: AuthStrategy) -> KlingError:
        """A refused token names the key pair, not the API key, in its hint."""
        if not (isinstance(error, AuthenticationError) and isinstance(auth, JwtAuth)):
            return error
        return make_api_error(
            http_status=error.http_status,
            code=error.code,
            message=error.message,
            request_id=error.request_id,
            retry_after=error.retry_after,
            path=error.path,
            hint=PAIR_HINT,
        )

    def _decode(self, call: Call, response: HTTPResponse) -> Answer:
        return decode_answer(
            response,
            method=call.method,
            label=call.label,
            phase=call.phase,
            limits=self.config.limits,
            redactor=self.redactor,
            max_retry_after=self.config.retry.max_retry_after,
        )

    def _log_failure(self, call: Call, exc: KlingError, elapsed: float) -> None:
        level = logging.WARNING if isinstance(exc, TransportError) else logging.INFO
        logger.log(level, "%s %s failed after %.3fs: %s", call.method, call.label, elapsed, exc)

    # --- retries ---------------------------------------------------------------------

    async def pause(
        self,
        error: KlingError,
        attempt: int,
        policy: RetryPolicy,
        *,
        limiter: RateLimiter | None = None,
        deadline: float | None = None,
    ) -> bool:
        """Sleep before another attempt: backoff or the server's hint, never past ``deadline``.

        Args:
            error: The failure.
            attempt: Attempts made so far.
            policy: The retry policy.
            limiter: A caller's limiter to pause too on a 1302.
            deadline: The caller's deadline (``time.monotonic()`` scale), if any.

        Returns:
            ``False`` when the deadline leaves no time for another attempt.
        """
        delay = pause_seconds(
            backoff_delay(
                attempt,
                initial=policy.initial_delay,
                maximum=policy.max_delay,
                multiplier=policy.multiplier,
            ),
            getattr(error, "retry_after", None),
            remaining=None if deadline is None else deadline - time.monotonic(),
        )
        if delay is None:
            return False
        if isinstance(error, RateLimitedError):
            for lim in (limiter, self.limiter):
                if lim is not None:
                    lim.pause(delay)
        logger.info(
            "retrying %s in %.2fs (attempt %d): %s",
            getattr(error, "path", ""),
            delay,
            attempt,
            error,
        )
        await anyio.sleep(delay)
        return True

    async def read(
        self,
        call: Call,
        *,
        limiter: RateLimiter | None = None,
        deadline: float | None = None,
    ) -> Answer:
        """Send a call that creates nothing, retrying every transient failure.

        Args:
            call: The request (``phase="read"``).
            limiter: A caller's request-rate limiter.
            deadline: No pause outlives it (``time.monotonic()`` scale).

        Returns:
            The successful envelope.

        Raises:
            KlingError: The last failure, once it is not transient, the retry budget
                is spent or the deadline has come.
        """
        policy = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            error: KlingError | None = None
            try:
                return await self.send(call, limiter=limiter)
            except KlingError as exc:
                error = exc
            if (
                classify(error, phase="read") not in _READ_RETRY
                or attempt >= policy.max_attempts
                or not await self.pause(error, attempt, policy, limiter=limiter, deadline=deadline)
            ):
                raise error
