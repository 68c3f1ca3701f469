"""The fetch stage: save every output of a succeeded task before its result is yielded.

A fixed pool of download workers reads jobs from an unbounded stream (the watcher
never waits for a download to start). A file already saved in an earlier run is
kept when its size and hash still match the journal's record (checked in a worker
thread: hashing never blocks the event loop); the download itself streams to a
temporary file and renames it (the session's download helper does the disk work
off the loop). A URL that fails (expired, revoked, or the download breaks)
triggers one fresh query of the task for new URLs before the job can fail; if the
task turns out not to have succeeded after all (an early or forged callback), it
goes back to the watcher, which follows it to its real end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._download import DownloadedFile, file_sha256
from .._errors import DownloadError, TransportError, URLExpiredError
from .._journal import JournalFile
from .._ratelimit import RateLimiter
from .._task import Task
from ._job import Job, Phase
from ._ports import JournalPort, SessionPort
from ._results import Results
from ._values import EventKind

__all__ = ["Fetch", "recorded_file"]

logger = logging.getLogger("kling_async")


def _intact(path: Path, known: JournalFile) -> bool:
    """Whether ``path`` holds exactly the recorded file (no request needed)."""
    try:
        if not path.is_file() or path.stat().st_size != known.size:
            return False
    except OSError:
        return False
    return file_sha256(path) == known.sha256


def recorded_file(known: JournalFile, *, path: Path | None = None) -> DownloadedFile:
    """A file saved in an earlier run, as a result reports it.

    Args:
        known: The journal's record.
        path: Where it is now (default: where it was recorded).

    Returns:
        The file, marked ``skipped``.
    """
    return DownloadedFile(
        path=path or known.path, url=known.url, size=known.size, sha256=known.sha256, skipped=True
    )


class _BackToWatch(Exception):  # a signal, not an error
    """A refreshed task has not ended: it goes back to the watcher."""

    def __init__(self, task: Task) -> None:
        super().__init__("task not ended")
        self.task = task


class Fetch:
    """Download workers and what they record.

    Args:
        session: Downloads and refreshes.
        directory: Where outputs go.
        limiter: The batch's shared request-rate limiter.
        journal: Where saved files are recorded.
        results: Where jobs end.
        rewatch: Hands a job whose task has not ended after all back to the watcher.
    """

    def __init__(
        self,
        *,
        session: SessionPort,
        directory: Path,
        limiter: RateLimiter,
        journal: JournalPort,
        results: Results,
        rewatch: Callable[[Job, Task], None],
    ) -> None:
        self._session = session
        self.directory = directory
        self._limiter = limiter
        self._journal = journal
        self._results = results
        self._rewatch = rewatch
        self._send: MemoryObjectSendStream[Job] | None = None
        # Figures.
        self.downloads = 0
        self.status_requests = 0

    def submit(self, job: Job) -> None:
        """Queue a succeeded job's outputs for download (never blocks).

        Args:
            job: The job (with its terminal task).
        """
        assert self._send is not None  # noqa: S101  (opened with the batch)
        job.phase = Phase.DOWNLOADING
        self._send.send_nowait(job)

    def open(self, send: MemoryObjectSendStream[Job]) -> None:
        """Attach the stream the workers read.

        Args:
            send: Its sending end.
        """
        self._send = send

    def close(self) -> None:
        """No more downloads: workers end when the stream is empty."""
        if self._send is not None:
            self._send.close()

    async def worker(self, jobs: MemoryObjectReceiveStream[Job]) -> None:
        """Download the jobs handed over, one at a time.

        Args:
            jobs: The stream of jobs to download.
        """
        async with jobs:
            async for job in jobs:
                await self._download_job(job)
                self._results.check_done()

    async def _download_job(self, job: Job) -> None:
        assert job.task is not None  # noqa: S101  (a terminal task)
        try:
            files = await self._download_files(job)
        except _BackToWatch as back:
            self._results.emit(
                EventKind.RETRIED, job, detail="task has not succeeded after all; watching it"
            )
            self._rewatch(job, back.task)
            return
        except Exception as exc:  # one job's failure stays that job's
            logger.warning("download for job %r failed: %s", job.key, type(exc).__name__)
            self._journal.mark_error(
                job.key,
                message=str(exc),
                error_type=type(exc).__name__,
                retryable=True,
                task=job.task.raw,
            )
            self._results.finish(job, "error", job.task, exc)
            return
        self._journal.mark_downloaded(job.key)
        self._results.finish(job, "succeed", job.task, None, files)

    async def _download_files(self, job: Job) -> tuple[DownloadedFile, ...]:
        assert job.task is not None  # noqa: S101
        recorded: dict[int, JournalFile] = {}
        if job.entry is not None:
            recorded = {f.index: f for f in job.entry.files}
        refreshed = False
        saved: list[DownloadedFile] = []
        index = 0
        while index < len(job.task.files):
            output = job.task.files[index]
            path = self.directory / output.name
            known = recorded.get(index)
            if known is not None and await anyio.to_thread.run_sync(_intact, path, known):
                saved.append(recorded_file(known, path=path))
                index += 1
                continue
            try:
                file = await self._session.download_url(
                    output.url, path, expected_sha256=known.sha256 if known else None
                )
            except (DownloadError, TransportError) as exc:
                # Expired, revoked or failing URL: ask the gateway for fresh URLs once
                # (and learn whether the task really ended) before the job can fail.
                if refreshed:
                    raise
                refreshed = True
                why = "expired" if isinstance(exc, URLExpiredError) else "failed"
                self._results.emit(EventKind.RETRIED, job, detail=f"result URL {why}; refreshed")
                job.task = await self._refresh(job, job.task)
                continue
            if not file.skipped:
                self.downloads += 1
            self._journal.add_file(
                job.key,
                index=index,
                path=file.path,
                url=file.url,
                size=file.size,
                sha256=file.sha256,
            )
            self._results.emit(EventKind.DOWNLOADED, job, detail=str(file.path))
            saved.append(file)
            index += 1
        return tuple(saved)

    async def _refresh(self, job: Job, task: Task) -> Task:
        """Query the task again for fresh URLs (or to learn it has not ended)."""
        self.status_requests += 1
        fresh = await self._session.refresh(task, limiter=self._limiter)
        if not fresh.is_terminal:
            raise _BackToWatch(fresh)
        if fresh.succeeded:
            self._journal.mark_terminal(
                job.key,
                succeeded=True,
                task_id=fresh.id,
                status=fresh.raw_status or fresh.status.value,
                task=fresh.raw,
                units=fresh.units,
                message=fresh.message,
            )
        return fresh
