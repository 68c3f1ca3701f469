"""What the batch journal records: job states, rows, attempts, fingerprints, redaction.

Plain data and pure functions; :mod:`kling_async._journal` stores and reads them.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "JobState",
    "JournalAttempt",
    "JournalEntry",
    "JournalFile",
    "fingerprint",
    "loads_or_none",
    "redact_payload",
]


class JobState(str, enum.Enum):
    """Where a job is, as recorded in the journal."""

    PENDING = "pending"
    CREATING = "creating"
    CREATED = "created"
    SUCCEED = "succeed"
    FAILED = "failed"
    ERROR = "error"
    NOT_STARTED = "not_started"
    #: The create's outcome stayed unclear past the reconcile deadline. The row keeps
    #: the external id; the next run looks the task up by it before anything else.
    UNKNOWN = "unknown"


@attrs.frozen(kw_only=True)
class JournalFile:
    """A downloaded output as recorded.

    Attributes:
        index: Position in the task's outputs.
        path: Where it was saved.
        url: Where it came from (signed; treat as private).
        size: Bytes.
        sha256: Hex digest.
    """

    index: int
    path: Path
    url: str = attrs.field(repr=False)
    size: int
    sha256: str


@attrs.frozen(kw_only=True)
class JournalEntry:
    """One job's row.

    Attributes:
        key: The job key.
        seq: Order in which the job was first recorded.
        endpoint: Endpoint name.
        fingerprint: The request's fingerprint.
        external_task_id: The deterministic external id sent with the create.
        state: Where the job is.
        task_id: The server's task id, once known.
        status: The task's last status, once known.
        task: The last task object as received (``None`` before one was seen).
        units: Units charged.
        message: Failure reason or error message.
        error_type: Class name of the error, for ``error`` rows.
        retryable: Whether a re-run should try an ``error`` row again.
        downloaded: Whether every output was downloaded.
        files: Downloaded outputs.
        created_wall: Unix time the task was created (``created`` onwards).
        updated_wall: Unix time of the last transition.
        request: The request body with base64 values replaced by placeholders.
        attempt: Which attempt the row describes (1 for the first; see
            :meth:`~kling_async._journal.Journal.start_attempt`).
    """

    key: str
    seq: int
    endpoint: str
    fingerprint: str
    external_task_id: str
    state: JobState
    task_id: str | None = None
    status: str | None = None
    task: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    units: float | None = None
    message: str | None = None
    error_type: str | None = None
    retryable: bool = False
    downloaded: bool = False
    files: tuple[JournalFile, ...] = ()
    created_wall: float | None = None
    updated_wall: float = 0.0
    request: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    attempt: int = 1


@attrs.frozen(kw_only=True)
class JournalAttempt:
    """One attempt of a job: a create under its own external id, and how it ended.

    Attributes:
        number: 1 for the first attempt, then 2, 3...
        external_task_id: The external id this attempt's create carried.
        state: Where the attempt ended (or is, for the current one).
        task_id: The server's task id, once known.
        status: The task's last status, once known.
        units: Units charged for it.
        message: Failure reason or error message.
        error_type: Class name of the error, for ``error`` attempts.
        created_wall: Unix time the task was created.
        updated_wall: Unix time of the attempt's last transition.
        current: Whether this is the job's current attempt (its journal row).
    """

    number: int
    external_task_id: str
    state: JobState
    task_id: str | None = None
    status: str | None = None
    units: float | None = None
    message: str | None = None
    error_type: str | None = None
    created_wall: float | None = None
    updated_wall: float = 0.0
    current: bool = False


_ID_FIELDS = ("external_task_id", "callback_url")


def _without_ids(payload: Mapping[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in payload.items() if k not in _ID_FIELDS}
    options = body.get("options")
    if isinstance(options, Mapping):
        rest = {k: v for k, v in options.items() if k not in _ID_FIELDS}
        if rest:
            body["options"] = rest
        else:
            body.pop("options")
    return body


def fingerprint(endpoint: str, payload: Mapping[str, Any]) -> str:
    """Identify a request independently of its external id and callback URL.

    Args:
        endpoint: Endpoint name.
        payload: The request body (wire names).

    Returns:
        Hex SHA-256 of the canonical JSON of endpoint and body.
    """
    canonical = json.dumps(
        {"endpoint": endpoint, "payload": _without_ids(payload)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


_BASE64ISH = re.compile(r"^(data:[^,]{0,100},)?[A-Za-z0-9+/=_-]+$")
_REDACT_MIN = 256


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) >= _REDACT_MIN and _BASE64ISH.match(value[:4096]) and _BASE64ISH.match(value):
            digest = hashlib.sha256(value.encode()).hexdigest()[:16]
            return f"<base64 sha256:{digest} chars:{len(value)}>"
        return value
    if isinstance(value, Mapping):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    return value


def redact_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Copy a request body with every long base64-looking value replaced.

    Args:
        payload: The request body.

    Returns:
        The copy; inline images, masks and audio become
        ``<base64 sha256:... chars:N>``.
    """
    result: dict[str, Any] = _redact(payload)
    return result


def loads_or_none(text: str | None) -> Any:
    """Parse a stored JSON column; ``None`` for empty or unreadable text.

    Args:
        text: The column value.

    Returns:
        The parsed value, or ``None``.
    """
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
