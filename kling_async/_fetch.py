"""Downloads on the session's transport, with the settings the session knows.

The download itself (temporary file, size and hash checks, atomic rename, the
redirect policy) lives in :mod:`kling_async._download`; this module only decides
what the session passes to it: the timeout, and whether private addresses may be
fetched at all (only when the configured gateway is itself on one, like the fake
on loopback).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from ._config import ClientConfig
from ._download import DownloadedFile, download_url
from ._transport import Transport

__all__ = ["base_is_private", "fetch_url"]


def base_is_private(config: ClientConfig) -> bool:
    """Whether a configured gateway host is loopback, private or link-local.

    Args:
        config: The session's configuration.

    Returns:
        ``True`` for ``localhost`` and such addresses (the fake gateway).
    """
    for base in (config.base_url, config.turbo_base_url):
        host = urlsplit(base).hostname or ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            if host == "localhost":
                return True
            continue
        if address.is_loopback or address.is_private or address.is_link_local:
            return True
    return False


async def fetch_url(
    transport: Transport,
    config: ClientConfig,
    url: str,
    path: str | Path,
    *,
    expected_size: int | None,
    expected_sha256: str | None,
    within: str | Path | None = None,
) -> DownloadedFile:
    """Download one result URL with the session's settings.

    Args:
        transport: The session's transport.
        config: The session's configuration.
        url: The result URL.
        path: Destination file.
        expected_size: Bytes the file must have.
        expected_sha256: Hex digest it must have.
        within: A folder the file must land inside.

    Returns:
        What was saved.
    """
    return await download_url(
        transport,
        url,
        path,
        timeout=config.timeouts.download,
        expected_size=expected_size,
        expected_sha256=expected_sha256,
        allow_private=base_is_private(config),
        within=within,
    )
