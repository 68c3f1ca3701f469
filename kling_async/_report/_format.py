"""Small text helpers of the page: escaping, durations, units, sizes, status classes."""

from __future__ import annotations

import html
import re
from datetime import datetime

__all__ = [
    "css_class",
    "duration",
    "escape",
    "moment_text",
    "size_text",
    "status_label",
    "units_text",
]

_CLASS_UNSAFE = re.compile(r"[^a-z0-9_-]")


def escape(text: str) -> str:
    """Text made safe for HTML content and quoted attributes."""
    return html.escape(text, quote=True)


def css_class(status: str) -> str:
    """A CSS class for a status, whatever characters the status holds."""
    return "status-" + (_CLASS_UNSAFE.sub("_", status) or "unknown")


def status_label(status: str) -> str:
    """A status as people read it (``not_started`` -> ``not started``)."""
    return status.replace("_", " ")


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 04 min``: short, and exact enough for a run."""
    seconds = max(0.0, seconds)
    if seconds == 0:
        return "0 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def units_text(value: float) -> str:
    """Units without trailing zeros: ``3``, ``0.25``."""
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value)}"


def size_text(size: int) -> str:
    """A byte count in B, KB, MB or GB."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def moment_text(moment: datetime | None) -> str:
    """A UTC time to the second, or blank."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""
