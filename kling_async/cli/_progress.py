"""Progress of a batch: live bars on a terminal, plain lines elsewhere.

:class:`ProgressReporter` keeps one state per job (queued, submitted, processing,
downloading, then succeeded / failed / error / not_started) and shows the counts
per state, an ETA and whether the gateway has been throttling us lately.

* The ETA comes from learned durations once tasks have finished: each family's
  median create-to-end time, played through the concurrency slots
  (:mod:`kling_async.cli._eta`). Before that, it is extrapolated from the pace
  at which jobs end, and unknown (``--:--``) before the first one ends.
* A 1302 (request rate) or 1303 (every slot busy) answer shows as ``throttled``
  with the code for :data:`THROTTLE_WINDOW` seconds.
* On a terminal, with ``rich`` installed (the ``cli`` extra), a
  :class:`rich.live.Live` display; otherwise one plain line every few seconds,
  free of control characters, which reads well in CI logs and ``tee`` files.

``rich`` is imported lazily, only when a live display or a table is drawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TextIO

from ._common import printable
from ._eta import DurationModel, estimate_remaining

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "THROTTLE_WINDOW",
    "Mode",
    "ProgressReporter",
    "format_duration",
    "print_summary",
    "rich_available",
]

#: States a job passes through before it ends, in display order.
ACTIVE_STATES: tuple[str, ...] = ("queued", "submitted", "processing", "downloading")
#: States a job ends in, in display order.
FINAL_STATES: tuple[str, ...] = ("succeeded", "failed", "error", "not_started")
#: Seconds a 1302/1303 answer keeps the throttle indicator on.
THROTTLE_WINDOW = 15.0

_STYLES = {
    "queued": "dim",
    "submitted": "cyan",
    "processing": "blue",
    "downloading": "magenta",
    "succeeded": "green",
    "failed": "red",
    "error": "red",
    "not_started": "yellow",
}

_THROTTLE_MEANING = {1302: "request rate", 1303: "slots full"}

Mode = Literal["auto", "rich", "plain", "off"]


def rich_available() -> bool:
    """Whether the optional ``rich`` package is importable.

    Returns:
        ``True`` when ``rich`` is installed.
    """
    return importlib.util.find_spec("rich") is not None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False


def format_duration(seconds: float | None) -> str:
    """Format seconds as ``m:ss`` (or ``h:mm:ss``); ``--:--`` when unknown.

    Args:
        seconds: A duration, or ``None``.

    Returns:
        The text.
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def _throttle_code(error: object) -> int:
    """1303 for a concurrency refusal; 1302 for a rate refusal (or a bare 429)."""
    code = getattr(error, "code", None)
    if code in _THROTTLE_MEANING:
        return int(code)
    return 1303 if type(error).__name__ == "ConcurrencyLimitedError" else 1302


class ProgressReporter:
    """Show how far a batch has got: per-state counts, an ETA and throttling.

    Feed it with :meth:`set_state` (one state per job key) and :meth:`count`
    (events such as ``retried``), or hand :meth:`on_event` to the batch as its
    ``on_event`` hook. Use it as an async context manager around the batch: it
    starts the display on entry and draws a last frame on exit.

    Args:
        total: Number of jobs expected (can grow with :meth:`add_total`).
        title: Label in front of the bar and the plain lines.
        stream: Where to draw (default ``sys.stdout``).
        mode: ``auto`` (rich on a terminal when installed, plain lines otherwise),
            ``rich``, ``plain`` or ``off``.
        interval: Seconds between plain lines.
        downloads: Whether outputs are downloaded after a task succeeds (a
            succeeded task then shows as ``downloading`` until its result arrives).
        families: Endpoint family of each job key, so durations are learned per
            family (default: one family for all).
        slots: Tasks that may run at once (the batch's ``max_running``), for the ETA.
        clock: Monotonic clock, the one batch events are stamped with.
    """

    def __init__(
        self,
        total: int,
        *,
        title: str = "jobs",
        stream: TextIO | None = None,
        mode: Mode = "auto",
        interval: float = 2.0,
        downloads: bool = True,
        families: Mapping[str, str] | None = None,
        slots: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.title = printable(title)
        self._stream = stream
        if mode == "auto":
            out = stream or sys.stdout
            mode = "rich" if _is_terminal(out) and rich_available() else "plain"
        elif mode == "rich" and not rich_available():
            mode = "plain"
        #: The display actually used: ``rich``, ``plain`` or ``off``.
        self.mode: Mode = mode
        self.interval = interval
        self.downloads = downloads
        self.slots = slots
        #: Output files saved so far.
        self.files = 0
        #: Events that are not states (``throttled``, ``retried``...), counted.
        self.events: Counter[str] = Counter()
        self._clock = clock
        self._families = dict(families or {})
        self._states: dict[str, str] = {}
        self._created: dict[str, float] = {}
        self._durations = DurationModel()
        self._throttled_at: dict[int, float] = {}
        self._started = clock()
        self._first_done: float | None = None
        self._note = ""
        self._live: Live | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._last_line = ""

    # --- feeding ---------------------------------------------------------------------

    def add_total(self, count: int) -> None:
        """Expect ``count`` more jobs.

        Args:
            count: How many more.
        """
        self.total += count

    def set_state(self, key: str, state: str) -> None:
        """Record the state of one job.

        Args:
            key: The job's key.
            state: One of :data:`ACTIVE_STATES` or :data:`FINAL_STATES`.
        """
        previous = self._states.get(key)
        if previous in FINAL_STATES and state not in FINAL_STATES:
            return  # late events of a finished job (a duplicate callback, say)
        self._states[key] = state
        if state in FINAL_STATES and self._first_done is None:
            self._first_done = self._clock()

    def count(self, name: str, amount: int = 1) -> None:
        """Count an event that is not a state change.

        Args:
            name: ``throttled``, ``retried``...
            amount: How many.
        """
        self.events[name] += amount

    def throttled(self, code: int, at: float | None = None) -> None:
        """Record a 1302 or 1303 answer: counted, and shown for a while.

        Args:
            code: 1302 (request rate) or 1303 (every slot busy).
            at: When, on the reporter's clock (default: now).
        """
        self.count("throttled")
        self._throttled_at[code] = self._clock() if at is None else at

    def note(self, text: str) -> None:
        """Show a short message under the bar (``stopping: ...``).

        Args:
            text: The message; empty to clear it.
        """
        self._note = printable(text)
        if self.mode == "plain" and text:
            self._write(f"{self.title}: {self._note}")

    def on_event(self, event: Any) -> None:
        """Map a batch :class:`~kling_async.Event` to a job state (the ``on_event`` hook).

        ``queued`` → queued, ``created`` → submitted, ``running`` → processing,
        ``succeeded`` → downloading (when outputs are being saved) or succeeded,
        ``failed`` and ``not_started`` as named; ``throttled`` feeds the throttle
        indicator, ``downloaded`` the file count, others are counted. Task
        durations (created to ended) are learned for the ETA. Final states are best
        set from the results (:meth:`set_state`), which also cover resumed jobs.

        Args:
            event: The batch's event (anything with ``kind``, ``key`` and ``time``).
        """
        kind = getattr(event, "kind", "")
        name = str(getattr(kind, "value", kind)).lower()
        key = str(getattr(event, "key", ""))
        at = getattr(event, "time", None)
        when = float(at) if isinstance(at, (int, float)) else self._clock()
        if name == "created":
            self._created[key] = when
        elif name in ("succeeded", "failed"):
            created = self._created.pop(key, None)
            if created is not None:
                self._durations.add(self._families.get(key, ""), when - created)
        if name == "succeeded":
            self.set_state(key, "downloading" if self.downloads else "succeeded")
            return
        state = _EVENT_STATES.get(name)
        if state is not None:
            self.set_state(key, state)
        elif name == "downloaded":
            self.files += 1
        elif name == "throttled":
            self.throttled(_throttle_code(getattr(event, "error", None)), when)
        else:
            self.count(name or "event")

    # --- figures ---------------------------------------------------------------------

    @property
    def counts(self) -> Counter[str]:
        """Jobs per state; jobs never reported are counted as ``queued``."""
        counts = Counter(self._states.values())
        unseen = self.total - len(self._states)
        if unseen > 0:
            counts["queued"] += unseen
        return counts

    @property
    def done(self) -> int:
        """Jobs in a final state."""
        return sum(1 for s in self._states.values() if s in FINAL_STATES)

    @property
    def elapsed(self) -> float:
        """Seconds since the reporter was made (or entered)."""
        return self._clock() - self._started

    def throttling(self) -> list[int]:
        """The throttle codes seen within the last :data:`THROTTLE_WINDOW` seconds.

        Returns:
            ``[1302]``, ``[1303]``, both or none, sorted.
        """
        now = self._clock()
        return sorted(c for c, at in self._throttled_at.items() if now - at <= THROTTLE_WINDOW)

    def eta(self) -> float | None:
        """Seconds until every job ends.

        From learned durations when a task has finished; before that from the
        pace at which jobs end; ``None`` before anything ended.

        Returns:
            The estimate, or ``None`` when nothing is known yet.
        """
        remaining = max(0, self.total - self.done)
        if remaining == 0 and self.done:
            return 0.0
        if self._durations.learned:
            return self._learned_eta()
        done = self.done
        if done == 0 or self._first_done is None:
            return None
        # From the first completion on: the time before it is the latency of one
        # task, which the remaining jobs overlap with.
        since_first = max(self._clock() - self._first_done, 1e-6)
        if done == 1:
            return self._first_done - self._started  # one more "wave", roughly
        return remaining / ((done - 1) / since_first)

    def _learned_eta(self) -> float:
        now = self._clock()
        running: list[tuple[float, float]] = []
        queued: list[float] = []
        fallback = self._durations.expected("") or 0.0
        seen = set()
        for key, state in self._states.items():
            seen.add(key)
            expected = self._durations.expected(self._families.get(key, "")) or fallback
            if state in ("submitted", "processing"):
                created = self._created.get(key, now)
                running.append((now - created, expected))
            elif state == "queued":
                queued.append(expected)
        unseen = [k for k in self._families if k not in seen]
        queued.extend(self._durations.expected(self._families[k]) or fallback for k in unseen)
        queued.extend(fallback for _ in range(self.total - len(seen) - len(unseen)))
        slots = self.slots or max(len(running), 1)
        return estimate_remaining(running=running, queued=queued, slots=slots)

    def plain_line(self) -> str:
        """One line for logs: done/total, the non-zero states, throttling, elapsed and ETA.

        Returns:
            The line, without control characters.
        """
        counts = self.counts
        total = max(self.total, 1)
        parts = [f"{s} {counts[s]}" for s in (*ACTIVE_STATES, *FINAL_STATES) if counts[s]]
        extras = [f"{name} {n}" for name, n in sorted(self.events.items()) if n]
        pct = 100.0 * self.done / total
        line = f"{self.title}: {self.done}/{self.total} done ({pct:.0f}%)"
        if parts:
            line += " | " + ", ".join(parts)
        if extras:
            line += " | " + ", ".join(extras)
        throttling = self._throttle_text()
        if throttling:
            line += f" | {throttling}"
        line += f" | {format_duration(self.elapsed)} elapsed, ETA {format_duration(self.eta())}"
        return printable(line)

    def _throttle_text(self) -> str:
        codes = self.throttling()
        if not codes or (self.total and self.done >= self.total):  # over: nothing waits
            return ""
        if not self.counts["queued"]:  # full slots hold back only jobs still waiting
            codes = [code for code in codes if code != 1303]
            if not codes:
                return ""
        what = ", ".join(f"{c} {_THROTTLE_MEANING[c]}" for c in codes)
        return f"throttled now ({what})"

    # --- drawing ---------------------------------------------------------------------

    def _write(self, line: str) -> None:
        out = self._stream or sys.stdout
        out.write(line + "\n")
        out.flush()

    def _renderable(self) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        counts = self.counts
        total = max(self.total, 1)
        head = Table.grid(padding=(0, 1))
        head.add_column(no_wrap=True)
        head.add_column(ratio=1)
        head.add_column(no_wrap=True, justify="right")
        head.add_row(
            Text(self.title, style="bold"),
            ProgressBar(total=total, completed=self.done),
            Text(
                f"{self.done}/{self.total} {100.0 * self.done / total:3.0f}%  "
                f"{format_duration(self.elapsed)} elapsed  "
                f"ETA {format_duration(self.eta())}"
            ),
        )
        status = Text()
        for state in (*ACTIVE_STATES, *FINAL_STATES):
            if state in ("error", "not_started") and not counts[state]:
                continue
            if status:
                status.append("  ")
            status.append(f"{state.replace('_', ' ')} ", style="dim")
            status.append(str(counts[state]), style=_STYLES[state] if counts[state] else "dim")
        for name, n in sorted(self.events.items()):
            if n:
                status.append(f"  {name} ", style="dim")
                status.append(str(n), style="yellow")
        parts: list[RenderableType] = [head, status]
        throttling = self._throttle_text()
        if throttling:
            parts.append(Text(throttling, style="bold yellow"))
        if self._note:
            parts.append(Text(self._note, style="yellow"))
        return Group(*parts)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._emit_plain()

    def _emit_plain(self) -> None:
        line = self.plain_line()
        if line != self._last_line:
            self._last_line = line
            self._write(line)

    async def __aenter__(self) -> ProgressReporter:
        self._started = self._clock()
        if self.mode == "rich":
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self._stream) if self._stream is not None else Console()
            self._live = Live(
                console=console,
                refresh_per_second=8,
                transient=False,
                get_renderable=self._renderable,
            )
            self._live.start()
        elif self.mode == "plain":
            self._ticker = asyncio.ensure_future(self._tick())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.refresh()
            live.stop()
        if self._ticker is not None:
            ticker, self._ticker = self._ticker, None
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            self._emit_plain()


#: Batch event kinds -> job state (``succeeded`` depends on downloads; see on_event).
_EVENT_STATES: dict[str, str] = {
    "queued": "queued",
    "created": "submitted",
    "running": "processing",
    "failed": "failed",
    "not_started": "not_started",
}


def print_summary(
    rows: Sequence[tuple[str, str]],
    *,
    title: str = "Summary",
    stream: TextIO | None = None,
    color: bool | None = None,
) -> None:
    """Print a two-column table: a rich table on a terminal, aligned plain text otherwise.

    Args:
        rows: ``(label, value)`` pairs.
        title: The table's title.
        stream: Where to print (default ``sys.stdout``).
        color: ``True`` for the rich table even off a terminal, ``False`` for plain
            text (default: rich on a terminal when installed).
    """
    out = stream or sys.stdout
    if rich_available() and (color is True or (color is None and _is_terminal(out))):
        from rich import box
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, box=box.SIMPLE_HEAVY, show_header=False, title_justify="left")
        table.add_column("", style="bold")
        table.add_column("", justify="right")
        for label, value in rows:
            table.add_row(label, value)
        console = Console(file=out, force_terminal=color or None)
        console.print(table)
        return
    width = max((len(label) for label, _ in rows), default=0)
    vwidth = max((len(value) for _, value in rows), default=0)
    out.write(f"{title}\n")
    out.write("-" * (width + vwidth + 3) + "\n")
    for label, value in rows:
        out.write(f"{label.ljust(width)}   {value.rjust(vwidth)}\n")
    out.flush()
