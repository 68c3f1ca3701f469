"""Shared concurrency slots and account state, in one process or across many.

An account has one concurrency quota and one request rate, however many processes
use it. A :class:`SlotStore` counts the account's slots for all of them:

- :class:`InProcessSlotStore` (the default): one process, nothing to install;
- :class:`RedisSlotStore` (``pip install 'kling-async[redis]'``): every process
  that reaches the same Redis with the same account key shares one pool of slots,
  one admission window, one pause, learned durations and a callback mailbox.

:func:`open_store` picks the implementation from a URL (or ``None``)::

    store = await open_store("redis://localhost:6379/0", account_key=fingerprint,
                             max_capacity=10)

How admission uses a store, per paid create::

    lease = await store.wait_acquire(holder, slots, timeout=deadline)   # queue, FIFO
    if lease is None: ...                      # timed out: the job stays queued
    try:
        task = await create(...)               # 1303 -> await store.on_limited(refused=lease)
    except RateLimited as exc:                 # 1302 -> await store.pause(retry_after)
        ...
    await store.on_accepted()
    await store.claim_task(task.task_id, holder)        # callbacks find their owner
    ...                                         # the task runs; store.keep_alive() renews
    await store.release(lease)                  # it ended (shielded from cancellation)
    await store.record_duration(kind, seconds)
    await store.release_task(task.task_id)

and once per process, in the task group that owns the store,
``tg.start_soon(store.keep_alive)``. The fault behaviour of every call is listed in
:mod:`kling_async.coordination._base`.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError
from ._contract import (
    DEFAULT_CLAIM_TTL,
    DEFAULT_LEASE_TTL,
    DEFAULT_MAX_OUTAGE,
    DEFAULT_MAX_SAMPLES,
    CoordinationError,
    CoordinationUnavailableError,
    Lease,
    SlotStore,
)
from ._helpers import (
    account_fingerprint,
    grown_window,
    new_holder_id,
    redact_url,
    shrunk_window,
    window_capacity,
)
from ._memory import InProcessSlotStore

if TYPE_CHECKING:
    from ._redis import RedisSlotStore

__all__ = [
    "DEFAULT_CLAIM_TTL",
    "DEFAULT_LEASE_TTL",
    "DEFAULT_MAX_OUTAGE",
    "DEFAULT_MAX_SAMPLES",
    "SCHEMES",
    "CoordinationError",
    "CoordinationUnavailableError",
    "InProcessSlotStore",
    "Lease",
    "RedisSlotStore",
    "SlotStore",
    "account_fingerprint",
    "grown_window",
    "new_holder_id",
    "open_store",
    "redact_url",
    "shrunk_window",
    "window_capacity",
]

#: URL schemes :func:`open_store` accepts for Redis.
SCHEMES = ("redis", "rediss", "unix")


def __getattr__(name: str) -> Any:
    # The Redis store loads redis-py (a tenth of a second): only when asked for, so
    # that ``import kling_async`` stays as quick without coordination as before.
    if name == "RedisSlotStore":
        from ._redis import RedisSlotStore

        return RedisSlotStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def open_store(
    url: str | None,
    *,
    account_key: str = "default",
    max_capacity: int = 10,
    **options: object,
) -> InProcessSlotStore | RedisSlotStore:
    """Open the slot store a URL names, and check that it answers.

    Reads nothing from the environment: the configuration layer decides the URL
    (``KLING_COORDINATE``, ``--coordinate``, ``ClientConfig(coordination=...)``).

    Args:
        url: ``None`` or ``""`` for the in-process store; a ``redis://``,
            ``rediss://`` or ``unix://`` URL for Redis.
        account_key: Stable id of the account (see :func:`account_fingerprint`);
            ignored in-process.
        max_capacity: This process's cap on slots (its ``max_running``).
        **options: Further keyword arguments of the store's constructor
            (``lease_ttl``, ``max_outage``, ``recount_grace``...); those the
            in-process store has no use for are ignored there.

    Returns:
        The store, ready to use; close it with ``aclose()`` (or ``async with``).

    Raises:
        ConfigurationError: The URL's scheme is not one of :data:`SCHEMES`, or an
            option is unusable.
        CoordinationUnavailableError: Redis did not answer (the message names the
            URL with its password hidden).
    """
    if not url:
        # Options only a shared store has (recount_grace, socket timeouts...) mean
        # nothing in one process: the same settings serve both stores.
        accepted = inspect.signature(InProcessSlotStore).parameters
        local = {name: value for name, value in options.items() if name in accepted}
        return InProcessSlotStore(max_capacity=max_capacity, **local)  # type: ignore[arg-type]
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"coordination URL {redact_url(url)} must start with redis://, rediss:// or unix://"
        )
    from ._redis import RedisSlotStore

    store = RedisSlotStore(
        url,
        account_key=account_key,
        max_capacity=max_capacity,
        **options,  # type: ignore[arg-type]
    )
    try:
        await store.ping()
    except BaseException:
        await store.aclose()
        raise
    return store
