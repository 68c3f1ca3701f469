"""An exclusive, non-blocking lock on a journal: one batch, one process.

The lock is a file beside the journal (``<journal>.lock``, mode 0o600) holding
the holder's PID as text, for the message a second opener sees.

Where :mod:`fcntl` exists (Linux, macOS, BSD) the lock is ``flock(LOCK_EX |
LOCK_NB)`` on that file: the kernel releases it when the holder closes it or
dies, however it dies, so a crash never leaves a stale lock. Two opens in one
process conflict too (``flock`` locks belong to the open file, not the process).
The lock file itself stays in place on release: removing it could let a waiter
lock a file that no longer has a name while a newcomer locks a new one. Caveat:
``flock`` on some network file systems is not shared between machines.

Elsewhere (Windows) the fallback creates the lock file with ``O_CREAT | O_EXCL``
and removes it on release. Caveat: a process that dies without releasing leaves
the file behind; the error then says so and names the file to delete.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from types import ModuleType

from ._journal_errors import JournalLockedError

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["JournalLock", "lock_path_for"]

_MODE = 0o600
#: A holder writes its PID right after taking the lock: a second opener that finds
#: the file still empty reads again this many times, a few milliseconds apart.
_PID_READS = 20
_PID_READ_PAUSE = 0.005
_pause = time.sleep  # a seam for the test of that wait
#: Bytes of the PID record (a PID and a newline, padded with spaces).
_RECORD = 32


def lock_path_for(journal: Path) -> Path:
    """The lock file of a journal.

    Args:
        journal: The journal file.

    Returns:
        ``<journal>.lock`` in the same folder.
    """
    return journal.with_name(journal.name + ".lock")


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0) if hasattr(os, "pread") else os.read(fd, 32)
        return int(text.decode("ascii").strip())
    return None


def _read_pid_file(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text(encoding="ascii")[:32].strip())
    return None


class JournalLock:
    """The exclusive lock of one journal, taken at construction.

    Args:
        journal: The journal file the lock guards.

    Raises:
        JournalLockedError: Someone holds it already (raised at once).
        OSError: The lock file cannot be created (e.g. a read-only folder).
    """

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.path = lock_path_for(journal)
        self._fd: int | None = None
        # Read once, so a lock is released the way it was taken.
        self._fcntl = fcntl
        if self._fcntl is None:
            self._acquire_exclusive_file()
        else:
            self._acquire_flock(self._fcntl)

    def _acquire_flock(self, fcntl: ModuleType) -> None:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.path, flags, _MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            for _ in range(_PID_READS):  # taken this instant: its PID follows at once
                if pid is not None:
                    break
                _pause(_PID_READ_PAUSE)
                pid = _read_pid(fd)
            os.close(fd)
            raise JournalLockedError(self.journal, pid) from None
        except BaseException:
            os.close(fd)
            raise
        # One write replaces whatever an earlier holder left (a reader sees the old
        # record or the new one, never a half), then the rest is cut off.
        record = f"{os.getpid()}\n".encode("ascii").ljust(_RECORD, b" ")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, record)
        os.ftruncate(fd, len(record))
        self._fd = fd

    def _acquire_exclusive_file(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(self.path, flags, _MODE)
        except FileExistsError:
            raise JournalLockedError(
                self.journal, _read_pid_file(self.path), stale_possible=True
            ) from None
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd

    @property
    def held(self) -> bool:
        """Whether this object still holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._fcntl is None:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no PID of a process that no longer holds it
            self._fcntl.flock(fd, self._fcntl.LOCK_UN)
        os.close(fd)

    def __repr__(self) -> str:
        return f"JournalLock(path={str(self.path)!r}, held={self.held})"
