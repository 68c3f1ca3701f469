"""The exception tree. Every error the SDK raises derives from :class:`KlingError`::

    KlingError
    ├── ConfigurationError          missing key, bad base URL...
    │   └── SessionClosedError      the session was used after ``aclose()``
    ├── ValidationError             request broke documented limits (nothing sent)
    ├── TransportError              the HTTP exchange itself failed
    │   ├── ConnectError            could not connect: the request was not sent
    │   ├── RequestTimeoutError     no answer in time: the request may have arrived
    │   └── ProtocolError           the answer broke the protocol (shape, size, depth)
    │       ├── ResponseDecodeError not the documented JSON envelope (or wrong types)
    │       └── ResponseTooLargeError  larger than the configured cap
    ├── APIError                    the gateway answered with an error code
    │   ├── AuthenticationError     1000-1004
    │   ├── AccountError            1100-1102 (abnormal, in arrears, pack used up)
    │   ├── PermissionDeniedError   1103, 1304
    │   ├── InvalidRequestError     1200, 1201
    │   ├── NotFoundError           1202, 1203
    │   ├── ContentPolicyError      1300, 1301
    │   ├── RateLimitedError        1302 (and a bare HTTP 429)
    │   ├── ConcurrencyLimitedError 1303
    │   └── ServerError             5000-5002 and HTTP 5xx
    ├── CreateOutcomeUnknownError   a create failed unclearly and could not be reconciled
    ├── SlotTimeoutError            no concurrency slot freed before the caller's deadline
    ├── TaskFailedError             the task ended ``failed``; carries the Task
    ├── WaitTimeoutError            ``wait`` hit its deadline; carries the last Task
    ├── DownloadError               an output could not be saved
    │   └── URLExpiredError         the result URL answered 403/404
    ├── WebhookVerificationError    a callback's signature did not verify
    │   (defined with the batch, in kling_async._batch / _journal:)
    ├── NotStartedError             a batch job was never sent (budget, stop)
    ├── JobCancelledError           the batch stopped before this job ended
    ├── RecordedJobError            an error read back from a batch journal
    └── JournalMismatchError        a batch key reused for a different request

Data lives in attributes (``code``, ``http_status``, ``request_id``,
``retry_after``, ``task``...), never only in the message. No message ever holds the
API key, an ``Authorization`` header, the endpoint path segment or a base64 payload,
and no error chains (``__cause__``/``__context__``) to a foreign exception that could
hold them: foreign exceptions are described by class name (``foreign_type``) instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import attrs

__all__ = [
    "APIError",
    "AccountError",
    "AuthenticationError",
    "ConcurrencyLimitedError",
    "ConfigurationError",
    "ConnectError",
    "ContentPolicyError",
    "CreateOutcomeUnknownError",
    "DownloadError",
    "InvalidRequestError",
    "KlingError",
    "NotFoundError",
    "PermissionDeniedError",
    "Problem",
    "ProtocolError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "ServerError",
    "SessionClosedError",
    "SlotTimeoutError",
    "TaskFailedError",
    "TaskView",
    "TransportError",
    "URLExpiredError",
    "ValidationError",
    "WaitTimeoutError",
    "WebhookVerificationError",
    "error_class_for",
    "make_api_error",
]


class TaskView(Protocol):
    """What an error carries of a task: the SDK always passes a :class:`~kling_async.Task`.

    (Declared here, not imported, so the exception tree imports nothing of the SDK.)
    """

    @property
    def id(self) -> str:
        """The server's task id."""

    @property
    def endpoint(self) -> str:
        """Name of its endpoint family."""

    @property
    def external_id(self) -> str | None:
        """Its external id."""

    @property
    def status(self) -> Any:
        """Its :class:`~kling_async.TaskStatus`."""

    @property
    def message(self) -> str:
        """The gateway's status message (the failure reason)."""

    @property
    def is_terminal(self) -> bool:
        """Whether the task has ended."""

    @property
    def failed(self) -> bool:
        """Whether the task ended in failure."""

    @property
    def succeeded(self) -> bool:
        """Whether the task ended successfully."""


class KlingError(Exception):
    """Base class of every error raised by kling_async."""


class ConfigurationError(KlingError):
    """The session's configuration is unusable (missing key, bad URL...)."""


class SessionClosedError(ConfigurationError):
    """The session (or its transport) was used after ``aclose()``.

    A closed session never opens a new connection pool behind the caller's back.
    """


@attrs.frozen
class Problem:
    """One broken rule found by validation.

    Attributes:
        path: Where, in wire names: ``multi_prompt[2].duration``.
        message: The rule that was broken, in words.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ValidationError(KlingError, ValueError):
    """A request broke one or more documented limits; nothing was sent.

    Attributes:
        problems: Every problem found, each with its field path.
        endpoint: Name of the endpoint the request was for.
    """

    def __init__(self, problems: Iterable[Problem], *, endpoint: str = "") -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.endpoint = endpoint
        where = f" for {endpoint}" if endpoint else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} invalid field(s){where}:\n{lines}")


class TransportError(KlingError):
    """The HTTP exchange failed before a usable answer arrived.

    Attributes:
        method: HTTP method.
        path: Request path under ``/kling/`` (never the full URL with the endpoint path).
        sent: ``False`` when the request certainly never reached the server.
        foreign_type: Class name of the library exception this error translates
            (``"ServerDisconnectedError"``...), or ``""``. The foreign exception itself
            is never chained: it may hold the request's headers.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        sent: bool = True,
        foreign_type: str = "",
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.sent = sent
        self.foreign_type = foreign_type


class ConnectError(TransportError):
    """No connection could be made: the request was not sent."""

    def __init__(
        self, message: str, *, method: str = "", path: str = "", foreign_type: str = ""
    ) -> None:
        super().__init__(message, method=method, path=path, sent=False, foreign_type=foreign_type)


class RequestTimeoutError(TransportError):
    """No complete answer within the timeout: the request may have been processed."""


class ProtocolError(TransportError):
    """The answer broke the protocol: not the documented shape, too large or too deep.

    It concerns that one request only. After a create it is an unclear outcome (the
    task may exist), reconciled like a dropped connection.

    Attributes:
        http_status: The HTTP status that came with the body (0 when none).
    """

    def __init__(
        self, message: str, *, method: str = "", path: str = "", http_status: int = 0
    ) -> None:
        super().__init__(message, method=method, path=path, sent=True)
        self.http_status = http_status


class ResponseDecodeError(ProtocolError):
    """The response was not the JSON envelope (HTML page, truncated body, wrong types...)."""


class ResponseTooLargeError(ProtocolError):
    """The answer was larger than the configured cap; reading stopped at the cap.

    Attributes:
        limit: The cap, in bytes.
    """

    def __init__(
        self, message: str, *, limit: int, method: str = "", path: str = "", http_status: int = 0
    ) -> None:
        super().__init__(message, method=method, path=path, http_status=http_status)
        self.limit = limit


class APIError(KlingError):
    """The gateway answered with a non-zero ``code`` or an error HTTP status.

    Attributes:
        http_status: The HTTP status.
        code: The envelope's ``code`` (``None`` when the body had none).
        message: The envelope's ``message``.
        request_id: The envelope's ``request_id``, for support tickets.
        retry_after: Seconds from a ``Retry-After`` header, if any (already capped).
        path: Request path under ``/kling/``.
        hint: What to check, in words, when the error says a setting is wrong
            (names the setting, e.g. ``KLING_API_KEY``, never its value); or ``""``.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        code: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        path: str = "",
        hint: str = "",
    ) -> None:
        self.message = message
        self.http_status = http_status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        self.path = path
        self.hint = hint
        bits = [f"HTTP {http_status}"]
        if code is not None:
            bits.append(f"code {code}")
        if request_id:
            bits.append(f"request_id {request_id}")
        where = f" on {path}" if path else ""
        advice = f". {hint}" if hint else ""
        super().__init__(f"{message or 'error'} ({', '.join(bits)}){where}{advice}")


class AuthenticationError(APIError):
    """Codes 1000-1004: the key is missing, invalid, not yet valid or expired."""


class AccountError(APIError):
    """Codes 1100-1102: the account is abnormal, in arrears, or its pack is used up."""


class PermissionDeniedError(APIError):
    """Codes 1103 and 1304: no access to this API or model, or IP not allowed."""


class InvalidRequestError(APIError):
    """Codes 1200-1201: the server rejected the parameters (message says which)."""


class NotFoundError(APIError):
    """Codes 1202-1203 or HTTP 404: no such task, model or method."""


class ContentPolicyError(APIError):
    """Codes 1300-1301: platform policy or content safety was triggered."""


class RateLimitedError(APIError):
    """Code 1302 (or a bare HTTP 429): too many requests; retry after a pause."""


class ConcurrencyLimitedError(APIError):
    """Code 1303: every concurrency slot of the account is busy; retry when one frees."""


class ServerError(APIError):
    """Codes 5000-5002 or HTTP 5xx: the gateway failed; a create may still have landed."""


class CreateOutcomeUnknownError(KlingError):
    """A create failed unclearly and the task could not be found or ruled out.

    Retrying blindly could pay twice, so the SDK stops and says so.

    Attributes:
        external_task_id: The id to look the task up by later; ``None`` for an
            endpoint that takes no external id (then only the gateway's task list
            or a callback can tell whether the task exists).
        endpoint: Name of the endpoint.
        cause_type: Class name of the failure that made the outcome unclear.
        attempts: Create requests sent for this call.
    """

    def __init__(
        self,
        message: str,
        *,
        external_task_id: str | None,
        endpoint: str,
        cause_type: str = "",
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.external_task_id = external_task_id
        self.endpoint = endpoint
        self.cause_type = cause_type
        self.attempts = attempts


class SlotTimeoutError(KlingError, TimeoutError):
    """No concurrency slot freed before the caller's deadline; nothing was created.

    Attributes:
        timeout: The deadline, in seconds.
        endpoint: Name of the endpoint.
    """

    def __init__(self, message: str, *, timeout: float, endpoint: str) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.endpoint = endpoint


class TaskFailedError(KlingError):
    """The task ended with status ``failed``.

    Attributes:
        task: The terminal task, with the reason in ``task.message``.
    """

    def __init__(self, task: TaskView) -> None:
        self.task = task
        super().__init__(f"task {task.id} failed: {task.message or 'no reason given'}")


class WaitTimeoutError(KlingError, TimeoutError):
    """``wait`` reached its deadline before the task ended (it keeps running).

    Attributes:
        task: The last state seen.
        timeout: The deadline, in seconds.
    """

    def __init__(self, task: TaskView, timeout: float) -> None:
        self.task = task
        self.timeout = timeout
        super().__init__(
            f"task {task.id} still {task.status.value} after {timeout:g} s; it keeps running"
        )


class DownloadError(KlingError):
    """An output could not be downloaded or failed its integrity check.

    Attributes:
        http_status: The HTTP status, when there was one.
    """

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class URLExpiredError(DownloadError):
    """The result URL answered 403/404: it expired (30 days) or was revoked."""


class WebhookVerificationError(KlingError):
    """A callback's Standard Webhooks signature or timestamp did not verify."""


_CODE_RANGES: tuple[tuple[int, int, type[APIError]], ...] = (
    (1000, 1004, AuthenticationError),
    (1100, 1102, AccountError),
    (1103, 1103, PermissionDeniedError),
    (1200, 1201, InvalidRequestError),
    (1202, 1203, NotFoundError),
    (1300, 1301, ContentPolicyError),
    (1302, 1302, RateLimitedError),
    (1303, 1303, ConcurrencyLimitedError),
    (1304, 1304, PermissionDeniedError),
    (5000, 5099, ServerError),
)
_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitedError,
}


def error_class_for(http_status: int, code: int | None) -> type[APIError]:
    """Pick the exception class: by ``code`` first, by HTTP status when no code matches.

    Args:
        http_status: The response's HTTP status.
        code: The envelope's ``code``, or ``None``.

    Returns:
        The :class:`APIError` subclass to raise.
    """
    if code is not None:
        for low, high, cls in _CODE_RANGES:
            if low <= code <= high:
                return cls
    if http_status >= 500:
        return ServerError
    return _STATUS_CLASSES.get(http_status, APIError)


def make_api_error(
    *,
    http_status: int,
    code: int | None,
    message: str,
    request_id: str | None,
    retry_after: float | None = None,
    path: str = "",
    hint: str = "",
) -> APIError:
    """Build the right :class:`APIError` subclass for a response.

    Args:
        http_status: The HTTP status.
        code: The envelope's ``code``.
        message: The envelope's ``message``.
        request_id: The envelope's ``request_id``.
        retry_after: Seconds from ``Retry-After``.
        path: Request path under ``/kling/``.
        hint: Advice naming a setting to check (see :attr:`APIError.hint`).

    Returns:
        The error, ready to raise.
    """
    cls = error_class_for(http_status, code)
    return cls(
        message,
        http_status=http_status,
        code=code,
        request_id=request_id,
        retry_after=retry_after,
        path=path,
        hint=hint,
    )
