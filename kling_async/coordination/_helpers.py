"""Pure helpers of the coordination stores: window arithmetic, URL redaction, ids.

Nothing here awaits or reads a clock.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import socket
import urllib.parse
import uuid

__all__ = [
    "account_fingerprint",
    "grown_window",
    "new_holder_id",
    "redact_url",
    "shrunk_window",
    "window_capacity",
]


def window_capacity(window: float, max_capacity: int) -> int:
    """Whole slots a window admits: at least 1, at most ``max_capacity``.

    Args:
        window: The (fractional) AIMD window.
        max_capacity: The cap.

    Returns:
        The slot count.
    """
    return max(1, min(max_capacity, math.floor(window + 1e-9)))


def grown_window(window: float, *, limited: bool, increase: float, max_capacity: int) -> float:
    """The window after an accepted create.

    Before the first 1303 it grows by one slot (slow start); after, by
    ``increase / window`` (about ``increase`` slots per window's worth of creates).

    Args:
        window: The current window.
        limited: Whether a 1303 has been seen.
        increase: Additive-increase factor.
        max_capacity: The cap.

    Returns:
        The new window.
    """
    step = increase / max(window, 1.0) if limited else 1.0
    return min(float(max_capacity), window + step)


def shrunk_window(window: float, *, held_others: int, decrease: float) -> float:
    """The window after a 1303 while the other leases held ``held_others`` slots.

    Multiplicative decrease, but never below what is measured running (the quota the
    gateway just enforced), and never above the current window, nor below 1.

    Args:
        window: The current window.
        held_others: Slots held by every lease but the refused one.
        decrease: Multiplicative factor (0 < decrease < 1).

    Returns:
        The new window.
    """
    floor = max(held_others, math.floor(window * decrease))
    return float(max(1, min(math.floor(window + 1e-9), floor)))


def redact_url(url: str) -> str:
    """``url`` with its user information and any password parameter hidden.

    ``redis://:pw@host:6379/0`` becomes ``redis://***@host:6379/0``, and a
    ``password=`` query parameter becomes ``password=***``.

    Args:
        url: A store URL.

    Returns:
        The URL, safe to log or show.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = re.sub(r"(?i)((?:^|&)(?:password|username|user)=)[^&]*", r"\1***", parts.query)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def account_fingerprint(secret: str) -> str:
    """A short, stable, non-reversible account id for store keys, from a secret.

    Processes configured with the same API key share slots; the key itself never
    reaches the store.

    Args:
        secret: The API key (or any per-account secret).

    Returns:
        16 hex characters.
    """
    return hashlib.sha256(b"kling-async account\0" + secret.encode()).hexdigest()[:16]


def new_holder_id() -> str:
    """A holder id unique to this process: ``host:pid:random``.

    Returns:
        The id.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# --- shared machinery -----------------------------------------------------------------
