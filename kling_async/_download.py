"""Streaming an output to a file you can trust: checked names, hops, sizes and digests.

- **Names.** The destination's file name must be a plain name (not ``..``, no
  control characters, at most 255 bytes) and, with ``within``, the file must land
  inside that folder; otherwise :class:`DownloadError` is raised before anything
  is fetched. Build names with :func:`kling_async._filenames.output_name`.
- **Skips.** An existing file is kept only when its SHA-256 equals the caller's
  ``expected_sha256`` (the journal's record); a file of the right size is not
  trusted.
- **Redirects.** At most ``max_redirects`` hops, each to ``http``/``https`` only,
  and, unless ``allow_private`` (set it when the gateway itself is on such a host,
  like the fake on 127.0.0.1), never to a loopback, private, link-local or other
  non-global address: the host of every hop is resolved and every address checked.
  Caveat: the connection resolves the name again, so a DNS answer that changes
  between the check and the connection (rebinding) is not caught. Checking hops
  needs a transport whose ``stream`` accepts ``follow_redirects=False``; with one
  that follows redirects itself, only the first URL's scheme is checked.
- **Sizes.** ``Content-Length`` and the bytes actually streamed are both held to
  ``max_bytes``.
- **Atomicity.** The body goes to a temporary ``.part`` file beside the
  destination, is flushed and fsynced, checked (length, size, digest), and only
  then renamed over the destination. File writes, fsyncs and renames run in a
  worker thread, never on the event loop.
- **Errors.** Every failure is a :class:`DownloadError` (or
  :class:`URLExpiredError`) whose message names at most the file name and the URL
  without its query string; no ``OSError`` escapes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import inspect
import ipaddress
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import anyio
import attrs

from ._errors import DownloadError, URLExpiredError
from ._transport import StreamResponse, Transport

__all__ = [
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "DEFAULT_MAX_REDIRECTS",
    "DownloadedFile",
    "download_url",
    "file_sha256",
]

logger = logging.getLogger("kling_async")

#: Largest output :func:`download_url` accepts by default (2 GiB).
DEFAULT_MAX_DOWNLOAD_BYTES = 2 * 1024**3
#: Redirect hops followed by default.
DEFAULT_MAX_REDIRECTS = 5

_CHUNK = 256 * 1024
#: Bytes gathered before one trip to the writer thread.
_WRITE_BATCH = 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NAME_BYTES = 255


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


def _label(url: str) -> str:
    """What messages may show of a URL: scheme, host, port and path (no query, no user)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"[:300]


def _short(name: str) -> str:
    printable = "".join(ch if ch.isprintable() else "?" for ch in name)
    return printable if len(printable) <= 60 else f"{printable[:57]}..."


def _disk_error(action: str, target: Path, exc: OSError) -> DownloadError:
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    return DownloadError(f"cannot {action} {_short(target.name)!r}: {reason}")


def _check_target(target: Path, within: Path | None) -> None:
    name = target.name
    if name in ("", ".", ".."):
        raise DownloadError(f"refusing to save to {_short(str(target))!r}: not a file name")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise DownloadError(f"refusing file name {_short(name)!r}: control characters")
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > _NAME_BYTES:
        raise DownloadError(f"refusing file name {_short(name)!r}: {size} bytes is too long")
    if within is not None:
        try:
            inside = target.parent.resolve().is_relative_to(within.resolve())
        except (OSError, RuntimeError):  # a symlink loop, an unreadable folder
            inside = False
        if not inside:
            raise DownloadError(f"refusing to save {_short(name)!r} outside its folder")


def _check_scheme(url: str, *, hop: str) -> None:
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https"):
        raise DownloadError(f"{hop} refused: only http and https URLs are fetched")


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _check_redirect(url: str, *, allow_private: bool) -> None:
    """Refuse a redirect target that is not http(s) or (unless allowed) not public."""
    _check_scheme(url, hop="redirect")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host:
        raise DownloadError("redirect refused: the target has no host")
    if allow_private:
        return
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            infos = await anyio.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, ValueError):
            raise DownloadError(f"redirect refused: cannot resolve {_short(host)!r}") from None
        addresses = [str(info[4][0]) for info in infos]
    if not addresses or not all(_is_public(address) for address in addresses):
        raise DownloadError(
            f"redirect to a private, loopback or link-local address refused: {_short(host)!r}"
        )


def _refuses_redirects(transport: Transport) -> bool:
    """Whether ``transport.stream`` can be told not to follow redirects itself."""
    try:
        parameters = inspect.signature(transport.stream).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == "follow_redirects" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
    )


def _stream(
    transport: Transport, url: str, *, timeout: float, manual: bool
) -> AbstractAsyncContextManager[StreamResponse]:
    if manual:
        # Typed loosely: the Transport protocol may not declare the keyword yet.
        stream: Callable[..., AbstractAsyncContextManager[StreamResponse]] = transport.stream
        return stream(url, timeout=timeout, follow_redirects=False)
    return transport.stream(url, timeout=timeout)


@asynccontextmanager
async def _open(
    transport: Transport,
    url: str,
    *,
    seconds: float,
    allow_private: bool,
    max_redirects: int,
) -> AsyncIterator[StreamResponse]:
    """Open ``url``, following redirects by the rules above; yield the final answer."""
    manual = _refuses_redirects(transport)
    deadline = time.monotonic() + seconds
    current = url
    for _ in range(max_redirects + 1):
        remaining = max(deadline - time.monotonic(), 0.001)
        async with _stream(transport, current, timeout=remaining, manual=manual) as response:
            location = response.headers.get("Location")
            if not (manual and response.status in _REDIRECTS and location):
                yield response
                return
        current = urljoin(current, location)
        await _check_redirect(current, allow_private=allow_private)
    raise DownloadError(f"more than {max_redirects} redirects: {_label(url)}")


def _existing_digest(path: Path) -> tuple[int, str] | None:
    """Size and digest of an existing regular file, else ``None``."""
    if not path.is_file():
        return None
    return path.stat().st_size, file_sha256(path)


def _open_new(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    return os.fdopen(fd, "wb")


def _write(handle: BinaryIO, data: bytes) -> None:
    handle.write(data)


def _finish(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def _discard(handle: BinaryIO | None, tmp: Path) -> None:
    if handle is not None:
        with contextlib.suppress(OSError):
            handle.close()
    with contextlib.suppress(OSError):
        tmp.unlink()


def _check_answer(response: StreamResponse, label: str, max_bytes: int) -> int | None:
    """Refuse error answers and oversized ones; return the announced length."""
    if response.status in (403, 404, 410):
        raise URLExpiredError(
            f"result URL answered {response.status} (expired or revoked): {label}",
            http_status=response.status,
        )
    if not 200 <= response.status < 300:
        raise DownloadError(
            f"download failed with HTTP {response.status}: {label}", http_status=response.status
        )
    announced = response.headers.get("Content-Length", "").strip()
    length = int(announced) if announced.isdigit() else None
    if length is not None and length > max_bytes:
        raise DownloadError(f"download refused: {length} bytes is over the {max_bytes}-byte cap")
    return length


async def _fill(
    response: StreamResponse, handle: BinaryIO, *, label: str, max_bytes: int
) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    pending = bytearray()
    async for chunk in response.iter_chunks(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise DownloadError(f"download stopped: over the {max_bytes}-byte cap: {label}")
        digest.update(chunk)
        pending += chunk
        if len(pending) >= _WRITE_BATCH:
            await anyio.to_thread.run_sync(_write, handle, bytes(pending))
            pending.clear()
    if pending:
        await anyio.to_thread.run_sync(_write, handle, bytes(pending))
    await anyio.to_thread.run_sync(_finish, handle)
    return size, digest.hexdigest()


async def _save(
    response: StreamResponse, tmp: Path, *, label: str, max_bytes: int
) -> tuple[int, str]:
    """Stream the body into ``tmp`` off the event loop; return its size and digest."""
    handle = await anyio.to_thread.run_sync(_open_new, tmp)
    try:
        return await _fill(response, handle, label=label, max_bytes=max_bytes)
    except BaseException:
        _discard(handle, tmp)
        raise


def _verify(
    size: int,
    sha: str,
    *,
    announced: int | None,
    expected_size: int | None,
    expected_sha256: str | None,
    label: str,
) -> None:
    if announced is not None and size != announced:
        raise DownloadError(f"download cut short: {size} of {announced} bytes: {label}")
    if expected_size is not None and size != expected_size:
        raise DownloadError(f"size mismatch: got {size} bytes, expected {expected_size}: {label}")
    if expected_sha256 is not None and sha != expected_sha256:
        raise DownloadError(f"sha256 mismatch for {label}")


async def download_url(
    transport: Transport,
    url: str,
    path: str | Path,
    *,
    timeout: float,  # noqa: ASYNC109  (passed to the transport)
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    allow_private: bool = False,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    within: str | Path | None = None,
) -> DownloadedFile:
    """Stream ``url`` into ``path`` safely (see the module docstring for the rules).

    Args:
        transport: The transport to fetch with.
        url: The result URL (``http`` or ``https``).
        path: The destination file.
        timeout: Seconds for the whole download, redirects included.
        expected_size: Bytes the file must have.
        expected_sha256: Hex digest the file must have; an existing file with this
            digest is kept without any request.
        max_bytes: Refuse bodies larger than this (announced or streamed).
        allow_private: Let redirects lead to loopback, private or link-local
            addresses (for a gateway that itself runs on such a host).
        max_redirects: Redirect hops to follow at most.
        within: When given, ``path`` must lie inside this folder.

    Returns:
        What was saved (or found).

    Raises:
        URLExpiredError: The URL answered 403, 404 or 410.
        DownloadError: Any other HTTP error, a refused name, redirect or size, a
            short body, an integrity mismatch, or a disk error.
        TransportError: The connection failed.
    """
    target = Path(path)
    label = _label(url)
    _check_target(target, None if within is None else Path(within))
    _check_scheme(url, hop="download")
    if expected_sha256:
        try:
            existing = await anyio.to_thread.run_sync(_existing_digest, target)
        except OSError as exc:
            raise _disk_error("read", target, exc) from None
        if existing is not None and existing[1] == expected_sha256:
            return DownloadedFile(
                path=target, url=url, size=existing[0], sha256=expected_sha256, skipped=True
            )
    # Bounded, so a long name still leaves room for the suffix.
    tmp = target.with_name(f".{target.name[:40]}.{uuid.uuid4().hex[:8]}.part")
    async with _open(
        transport, url, seconds=timeout, allow_private=allow_private, max_redirects=max_redirects
    ) as response:
        length = _check_answer(response, label, max_bytes)
        try:
            size, sha = await _save(response, tmp, label=label, max_bytes=max_bytes)
        except OSError as exc:
            raise _disk_error("save", target, exc) from None
    try:
        _verify(
            size,
            sha,
            announced=length,
            expected_size=expected_size,
            expected_sha256=expected_sha256,
            label=label,
        )
        await anyio.to_thread.run_sync(os.replace, tmp, target)
    except OSError as exc:
        raise _disk_error("save", target, exc) from None
    finally:
        _discard(None, tmp)
    logger.debug("downloaded %s (%d bytes) to %s", label, size, _short(target.name))
    return DownloadedFile(path=target, url=url, size=size, sha256=sha, skipped=False)
