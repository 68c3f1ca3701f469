"""Stopping an aiohttp app that runs a batch without paying for nothing or losing results.

aiohttp's own shutdown (``web.run_app``, ``AppRunner.cleanup``) closes the
listening sockets first and only then runs the app's cleanup, so a batch closed
from a ``cleanup_ctx`` waits for its running tasks while every callback about them
is refused, and creates every job still queued. The order that keeps promises::

    signal ──> stop admitting ──> drain (the app still serves callbacks) ──> close

- :func:`wait_for_signal` waits for SIGINT or SIGTERM (a service manager's stop);
- :func:`graceful_shutdown` stops the batch admitting (queued jobs end
  ``not_started``, journaled, never created), waits up to ``grace`` seconds for
  the tasks already created while the runner's sites keep serving (callbacks,
  status requests), then cleans the runner up: sites close, then the app's cleanup
  contexts close the batch and the session. Tasks still running at the end of the
  grace period stay ``created`` in the journal; a batch opened on it with
  ``resume_unfinished=True`` follows and downloads them. A second signal during
  the grace period cuts it short.

::

    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    await wait_for_signal()
    await graceful_shutdown(runner, BATCH, grace=60)   # BATCH: the app's AppKey
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterable
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from aiohttp import web

    from .batch import Batch

__all__ = ["DEFAULT_GRACE", "graceful_shutdown", "wait_for_signal"]

logger = logging.getLogger("kling_async")

#: Seconds :func:`graceful_shutdown` waits for running tasks by default.
DEFAULT_GRACE = 30.0

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def wait_for_signal(
    signals: Iterable[signal.Signals] = _STOP_SIGNALS,
) -> signal.Signals:
    """Wait until the process receives one of ``signals``.

    The handlers are installed for the duration of the wait only (the default
    ones are back afterwards). Not available on Windows event loops.

    Args:
        signals: What to wait for (default SIGINT and SIGTERM).

    Returns:
        The signal received.
    """
    with anyio.open_signal_receiver(*signals) as received:
        async for signum in received:
            return signal.Signals(signum)
    raise RuntimeError("the signal receiver ended")  # pragma: no cover - it never does


async def graceful_shutdown(
    runner: web.AppRunner,
    batch: Batch | web.AppKey[Batch] | None,
    *,
    grace: float = DEFAULT_GRACE,
    signals: Iterable[signal.Signals] = _STOP_SIGNALS,
) -> int:
    """Stop admitting, let running tasks end while the app serves, then close the app.

    Args:
        runner: The app's runner, set up, its sites started. Its sites keep
            serving during the grace period, so the callback route still hears
            the gateway.
        batch: The app's batch, or the ``web.AppKey`` under which its cleanup
            context stored it (``None``: no batch; only the runner is cleaned up).
        grace: Seconds to wait at most for the tasks already created.
        signals: Signals that, received during the grace period, cut it short.

    Returns:
        Jobs still unfinished when the app closed (``0``: every job ended). They
        stay in the batch's journal as created.

    Call it where ``runner.setup()`` was awaited: in the same task, and not inside
    a task group or cancel scope (``anyio.fail_after``...) entered since. The
    batch's task group, entered by the app's cleanup context during setup, must be
    left at the level where it was entered.
    """
    from aiohttp import web

    target = runner.app[batch] if isinstance(batch, web.AppKey) else batch
    left: int | None = None
    if target is not None:
        target.stop_admitting("shutdown")
        async with anyio.create_task_group() as tg:

            async def cut_short() -> None:
                received = await wait_for_signal(signals)
                logger.warning("%s during the grace period: not waiting any longer", received.name)
                tg.cancel_scope.cancel()

            tg.start_soon(cut_short)
            left = await target.drain(grace)
            tg.cancel_scope.cancel()
        if left is None:  # cut short: count what is left (it stays in the journal)
            left = await target.drain(0)
    await runner.cleanup()
    return left or 0
