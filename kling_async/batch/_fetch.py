"""The fetch stage: save every output of a succeeded task before its result is yielded.

Files are named by job key (:func:`~kling_async._filenames.output_name`):
``OUT/{key}.mp4`` for a single output, ``OUT/{key}-{n}.png`` for several, with
keys that are not safe file names sanitized and hashed. Every download must land
inside the output folder. Should a name already be taken by another job's file
(job ``a`` with several outputs and job ``a-1`` with one), the output keeps its
task-based name (:attr:`~kling_async.OutputFile.name`) instead of overwriting it.

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
from .._filenames import output_name
from .._journal import JournalFile
from .._ratelimit import RateLimiter
from .._task import OutputFile, Task
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
        self._writing: set[Path] = set()  # files being downloaded now (names claimed)
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
            known = recorded.get(index)
            kept = await self._kept(job.key, index, len(job.task.files), output, known)
            if kept is not None:
                saved.append(kept)
                index += 1
                continue
            path = await self._target(job.key, index, len(job.task.files), output, known)
            try:
                file = await self._session.download_url(
                    output.url,
                    path,
                    expected_sha256=known.sha256 if known else None,
                    within=self.directory,
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
            finally:
                self._writing.discard(path)
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

    def _by_key(self, key: str, index: int, count: int, output: OutputFile) -> Path:
        return self.directory / output_name(key, index, count, Path(output.name).suffix)

    async def _kept(
        self, key: str, index: int, count: int, output: OutputFile, known: JournalFile | None
    ) -> DownloadedFile | None:
        """The file an earlier run saved, when it is still intact (size and sha256)."""
        if known is None:
            return None
        for path in dict.fromkeys((self._by_key(key, index, count, output), known.path)):
            if await anyio.to_thread.run_sync(_intact, path, known):
                return recorded_file(known, path=path)
        return None

    async def _target(
        self, key: str, index: int, count: int, output: OutputFile, known: JournalFile | None
    ) -> Path:
        """Where to save an output (claimed in ``_writing``): by key, unless that is taken.

        Taken means another download of this batch claimed the name, or a file
        that the journal does not record as this output's already has it.
        """
        path = self._by_key(key, index, count, output)
        if path not in self._writing:
            self._writing.add(path)  # claimed before any await: no other job may take it
            ours = known is not None and known.path == path  # recorded: refreshed in place
            if ours or not await anyio.to_thread.run_sync(path.exists):
                return path
            self._writing.discard(path)
        fallback = self.directory / output.name
        self._writing.add(fallback)
        return fallback

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
