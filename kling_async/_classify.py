"""The fate of a failed request, decided in one place.

Every caller that sends a request — a single ``create`` on the session, the batch's
create stage, a poll — asks :func:`classify` what a failure means instead of reasoning
about exception classes itself. The answer is a :class:`Verdict`: whether anything
may have been created (and so paid for), whether trying again is free, and whether
the failure says a *setting* is wrong, in which case nothing should be tried again.

The table, for a create (``phase="create"``):

=============================  ==========================================  ===========
failure                        meaning                                     verdict
=============================  ==========================================  ===========
could not connect              the request never left                      RETRY
1302 / HTTP 429                throttled; nothing was created              RATE_LIMITED
1303                           no free slot; nothing was created           NO_SLOT
timeout, dropped, 5xx,         the task may exist and be paid for          UNCLEAR
unreadable or hostile answer
1200/1201 after an earlier     most likely the earlier attempt landed and  EXISTS
attempt that may have landed   this one collides with its external id
1200/1201 on a first attempt,  the request itself is refused               REFUSED
validation, 1300/1301, 1103
1000-1004 / HTTP 401           the API key is wrong                        HALT_KEY
1202 / a bare 404 on a create  the route is wrong (endpoint path, URL)     HALT_ROUTE
1100-1102                      the account cannot pay                      HALT_ACCOUNT
=============================  ==========================================  ===========

For a read (``phase="read"``) there is nothing to pay for: unclear failures are simply
``RETRY``, a 1203 or coded 404 is ``NOT_FOUND`` (the normal answer to a lookup of a
task that is not there yet), and the halts are the same.

The function is pure: it looks at the exception's class and data, never at a clock.
"""

from __future__ import annotations

import enum
from typing import Literal

from ._errors import (
    AccountError,
    APIError,
    AuthenticationError,
    ConcurrencyLimitedError,
    ConnectError,
    ContentPolicyError,
    CreateOutcomeUnknownError,
    InvalidRequestError,
    KlingError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TransportError,
    ValidationError,
)

__all__ = ["Phase", "Verdict", "classify"]

Phase = Literal["create", "read"]

#: The code a gateway uses for "invalid method": on a create, the route itself is wrong.
_ROUTE_CODE = 1202


class Verdict(str, enum.Enum):
    """What a failed request means for the caller."""

    RETRY = "retry"
    """Nothing happened on the server (or it was only a read): try again after a backoff."""
    RATE_LIMITED = "rate_limited"
    """Refused for the request rate: pause (``Retry-After`` when given), then try again."""
    NO_SLOT = "no_slot"
    """Refused for concurrency: nothing was created; wait until a slot frees."""
    UNCLEAR = "unclear"
    """The task may exist: look it up by its external id before sending anything again."""
    EXISTS = "exists"
    """The external id is taken, most likely by our own earlier attempt: look it up
    (with patience: lookups lag creates) and adopt it."""
    NOT_FOUND = "not_found"
    """A read found nothing (yet)."""
    REFUSED = "refused"
    """The request itself was refused; sending it again would be refused again."""
    HALT_KEY = "halt_key"
    """The API key (or token) is wrong: stop, nothing else will succeed."""
    HALT_ROUTE = "halt_route"
    """The route is wrong (endpoint path or base URL): stop, nothing else will succeed."""
    HALT_ACCOUNT = "halt_account"
    """The account cannot take paid work (arrears, pack used up): stop admitting."""

    @property
    def halts(self) -> bool:
        """Whether this verdict means a setting or the account is wrong for every job."""
        return self in (Verdict.HALT_KEY, Verdict.HALT_ROUTE, Verdict.HALT_ACCOUNT)

    @property
    def may_exist(self) -> bool:
        """Whether a create with this verdict may have created (and charged) a task."""
        return self in (Verdict.UNCLEAR, Verdict.EXISTS)


def classify(error: BaseException, *, phase: Phase, sent_before: bool = False) -> Verdict:
    """Decide what a failed request means.

    Args:
        error: The exception the request raised.
        phase: ``"create"`` for a request that creates a paid task, ``"read"`` otherwise.
        sent_before: For a create: whether an earlier attempt with the same external id
            may have reached the gateway. A 1200/1201 answer is then most likely the
            collision with that earlier task, not a bad request.

    Returns:
        The :class:`Verdict`. Exceptions that are not the SDK's own (a bug, not an
        answer) are ``UNCLEAR`` for a create (the task may exist) and ``RETRY`` for a read.
    """
    if isinstance(error, ConnectError):
        return Verdict.RETRY
    if isinstance(error, RateLimitedError):
        return Verdict.RATE_LIMITED
    if isinstance(error, ConcurrencyLimitedError):
        return Verdict.NO_SLOT
    if isinstance(error, AuthenticationError):
        return Verdict.HALT_KEY
    if isinstance(error, AccountError):
        return Verdict.HALT_ACCOUNT
    if isinstance(error, NotFoundError):
        return _not_found(error, phase)
    if isinstance(error, InvalidRequestError):
        if phase == "create" and sent_before:
            return Verdict.EXISTS
        return Verdict.REFUSED
    if isinstance(error, (ValidationError, ContentPolicyError, PermissionDeniedError)):
        return Verdict.REFUSED
    if isinstance(error, (TransportError, ServerError, CreateOutcomeUnknownError)):
        return Verdict.UNCLEAR if phase == "create" else Verdict.RETRY
    if isinstance(error, APIError):
        # A code nobody documented: on a create, the task may or may not exist.
        return Verdict.UNCLEAR if phase == "create" else Verdict.RETRY
    if isinstance(error, KlingError):
        return Verdict.REFUSED
    return Verdict.UNCLEAR if phase == "create" else Verdict.RETRY


def _not_found(error: NotFoundError, phase: Phase) -> Verdict:
    """Split 404s: a wrong route is a setting; a missing task is an answer."""
    if error.code == _ROUTE_CODE:
        return Verdict.HALT_ROUTE
    if phase == "read":
        # A lookup of a task that is not there (yet: lookups lag creates), however
        # the gateway spells it. Callers that see only these from their very first
        # requests may still conclude the route is wrong.
        return Verdict.NOT_FOUND
    if error.code is None:
        # A create answered 404 with no envelope: a proxy or web server that does
        # not know the path.
        return Verdict.HALT_ROUTE
    # 1203 on a create: a resource named in the body (a model, a task to extend) is missing.
    return Verdict.REFUSED
