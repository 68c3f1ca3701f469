"""Streaming an output to a file: temporary file, integrity checks, atomic rename."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import uuid
from pathlib import Path
from typing import BinaryIO

import anyio
import attrs

from ._errors import DownloadError, URLExpiredError
from ._transport import Transport, _url_label

__all__ = ["DownloadedFile", "download_url", "file_sha256"]

logger = logging.getLogger("kling_async")

_CHUNK = 256 * 1024


@attrs.frozen(kw_only=True)
class DownloadedFile:
    """A file saved from a result URL.

    Attributes:
        path: Where it is.
        url: Where it came from (signed; treat as private).
        size: Bytes.
        sha256: Hex digest of the content.
        skipped: ``True`` when an identical file was already there and nothing was fetched.
    """

    path: Path
    url: str = attrs.field(repr=False)
    size: int
    sha256: str
    skipped: bool = False


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's content.

    Args:
        path: The file.

    Returns:
        The digest.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _existing_file(path: Path, with_hash: bool) -> tuple[int, str | None] | None:
    """Size (and digest when asked) of an existing regular file, else ``None``."""
    if not path.is_file():
        return None
    return path.stat().st_size, file_sha256(path) if with_hash else None


def _open_new(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def download_url(
    transport: Transport,
    url: str,
    path: str | Path,
    *,
    timeout: float,  # noqa: ASYNC109  (passed to the transport)
    expected_size: int | None = None,
    expected_sha256: str | None = None,
) -> DownloadedFile:
    """Stream ``url`` into ``path`` safely.

    The body goes to a temporary file beside ``path``; its length is checked against
    ``Content-Length`` (and ``expected_size``/``expected_sha256`` when given); only
    then is it renamed over ``path``, so ``path`` never holds a partial file. When
    ``path`` already holds the expected content (same SHA-256, or, without one, the
    same size as the server announces), nothing is rewritten.

    Args:
        transport: The transport to fetch with.
        url: The result URL.
        path: The destination file.
        timeout: Seconds for the whole download.
        expected_size: Bytes the file must have.
        expected_sha256: Hex digest the file must have.

    Returns:
        What was saved (or found).

    Raises:
        URLExpiredError: The URL answered 403, 404 or 410.
        DownloadError: Any other HTTP error, a short body, or an integrity mismatch.
        TransportError: The connection failed.
    """
    target = Path(path)
    label = _url_label(url)
    existing = await anyio.to_thread.run_sync(_existing_file, target, expected_sha256 is not None)
    if expected_sha256 and existing is not None and existing[1] == expected_sha256:
        return DownloadedFile(
            path=target, url=url, size=existing[0], sha256=expected_sha256, skipped=True
        )
    async with transport.stream(url, timeout=timeout) as response:
        if response.status in (403, 404, 410):
            raise URLExpiredError(
                f"result URL answered {response.status} (expired or revoked): {label}",
                http_status=response.status,
            )
        if response.status >= 400:
            raise DownloadError(
                f"download failed with HTTP {response.status}: {label}", http_status=response.status
            )
        announced = response.headers.get("Content-Length")
        length = int(announced) if announced and announced.isdigit() else None
        if (
            expected_sha256 is None
            and length is not None
            and existing is not None
            and existing[0] == length
            and (expected_size is None or expected_size == length)
        ):
            sha = await anyio.to_thread.run_sync(file_sha256, target)
            return DownloadedFile(path=target, url=url, size=length, sha256=sha, skipped=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            with _open_new(tmp) as handle:
                async for chunk in response.iter_chunks(_CHUNK):
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            sha = digest.hexdigest()
            if length is not None and size != length:
                raise DownloadError(f"download cut short: {size} of {length} bytes: {label}")
            if expected_size is not None and size != expected_size:
                raise DownloadError(
                    f"size mismatch: got {size} bytes, expected {expected_size}: {label}"
                )
            if expected_sha256 is not None and sha != expected_sha256:
                raise DownloadError(f"sha256 mismatch for {label}")
            os.replace(tmp, target)
        finally:
            _remove_quietly(tmp)
    logger.debug("downloaded %s (%d bytes) to %s", label, size, target)
    return DownloadedFile(path=target, url=url, size=size, sha256=sha, skipped=False)
