"""Errors raised when a batch journal cannot be used as asked.

All three derive from :class:`~kling_async.KlingError`; nothing was sent when
any of them is raised::

    KlingError
    ├── ConfigurationError
    │   └── JournalCorruptError   empty, truncated, corrupt, unknown schema, or missing
    ├── JournalLockedError        another process (or another Journal object) holds it
    └── JournalMismatchError      a key reused for a different request
"""

from __future__ import annotations

from pathlib import Path

from ._errors import ConfigurationError, KlingError

__all__ = ["JournalCorruptError", "JournalLockedError", "JournalMismatchError"]


class JournalMismatchError(KlingError, ValueError):
    """A key already in the journal was submitted with a different request.

    Nothing was sent for it. Use a new key (or a new journal / batch id) for a
    different request.

    Attributes:
        key: The job key.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"job key {key!r} is already in the journal with a different request; "
            "use another key, or another journal or batch_id for a new batch"
        )


class JournalLockedError(KlingError):
    """The journal is in use: one batch, one process.

    Raised at once (never after waiting) when another process, or another open
    :class:`~kling_async._journal.Journal` in this process, holds the journal's lock.

    Attributes:
        path: The journal file.
        pid: The holder's process id, when it could be read.
        stale_possible: ``True`` for the lock-file fallback used where ``fcntl`` is
            missing: a holder that died leaves its lock file behind.
    """

    def __init__(self, path: Path, pid: int | None, *, stale_possible: bool = False) -> None:
        self.path = path
        self.pid = pid
        self.stale_possible = stale_possible
        holder = f"process {pid}" if pid is not None else "another process"
        message = f"journal {path} is in use by {holder}; one batch runs in one process at a time"
        if stale_possible:
            message += (
                f" (if no such process runs, delete {path.name}.lock beside it and try again)"
            )
        super().__init__(message)


class JournalCorruptError(ConfigurationError):
    """The journal file cannot be trusted, so it is refused rather than replaced.

    Starting afresh over a damaged journal would create (and pay for) every job
    again, so nothing is sent. Move the file aside (or remove it) only when you
    accept that; otherwise restore it from a copy.

    Attributes:
        path: The journal file.
        reason: What is wrong, in words (``"empty (0 bytes)"``, ``"not a SQLite
            database"``...).
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"journal {path} is unusable: {reason}. Nothing was sent. Restore it, or move it "
            "aside to start a new batch (every job would then be created again)"
        )
