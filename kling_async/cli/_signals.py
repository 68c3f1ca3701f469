"""Ctrl-C and SIGTERM for long commands: a graceful stop first, an immediate one second.

The handlers run in the event loop (``loop.add_signal_handler``), so what they call
may touch the batch and cancel scopes directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator

from ._common import EXIT_INTERRUPTED

__all__ = ["Interrupts", "handle_signals"]


class Interrupts:
    """Counts interrupts and calls the step each one asks for.

    * First SIGINT: :attr:`on_first` (stop admitting; leave once creates settle).
    * Second SIGINT: :attr:`on_second` (leave now).
    * Third: exit the process at once with status 130; the journal commits every
      transition on its own, so nothing recorded is lost.

    SIGTERM (a service manager stopping us) skips the graceful step.
    """

    def __init__(self) -> None:
        self.count = 0
        self.on_first: Callable[[], None] | None = None
        self.on_second: Callable[[], None] | None = None

    def __call__(self) -> None:
        """Handle one SIGINT."""
        self.count += 1
        if self.count == 1 and self.on_first is not None:
            self.on_first()
        elif self.count == 2 and self.on_second is not None:
            self.on_second()
        elif self.count >= 3:
            os._exit(EXIT_INTERRUPTED)

    def terminate(self) -> None:
        """Handle SIGTERM: straight to the immediate stop."""
        if self.count == 0 and self.on_first is not None:
            self.on_first()
        self.count = max(self.count, 1)
        self()


@contextlib.contextmanager
def handle_signals(interrupts: Interrupts, *, enabled: bool) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``interrupts`` while the block runs.

    Args:
        interrupts: The counter to call.
        enabled: ``False`` leaves signals alone (tests, embedding).

    Yields:
        Nothing. On exit the loop's handlers are removed. Once interrupted, the
        process ignores further SIGINT and SIGTERM while it winds down: the
        first Ctrl-C may let the run end at once, and a second one pressed as the
        interpreter exits must not turn exit status 130 into death by signal.
    """
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if enabled:
        for sig, handler in ((signal.SIGINT, interrupts), (signal.SIGTERM, interrupts.terminate)):
            try:
                loop.add_signal_handler(sig, handler)
            except (NotImplementedError, RuntimeError, ValueError):  # Windows, threads
                continue
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
            if interrupts.count:
                # Everything is written by now; only the return is left.
                signal.signal(sig, signal.SIG_IGN)
