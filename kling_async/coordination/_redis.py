"""The Redis slot store: one account's slots shared by every process that reaches one Redis.

Keys (all under one hash tag, so a Redis Cluster keeps them on one node)::

    <prefix>:{<account>}:state        hash: epoch, window, limited, paused_until,
                                            recount_until, seq
    <prefix>:{<account>}:leases       sorted set: lease id -> expiry (ms, server clock)
    <prefix>:{<account>}:lease_slots  hash: lease id -> slots
    <prefix>:{<account>}:queue        sorted set: place -> ticket number (FIFO)
    <prefix>:{<account>}:queue_alive  sorted set: place -> expiry (ms)
    <prefix>:{<account>}:queue_slots  hash: place -> slots
    <prefix>:{<account>}:durations:<kind>   list of seconds, newest last, bounded
    <prefix>:{<account>}:owner:<task id>    string: holder id, with a TTL
    <prefix>:{<account>}:inbox:<holder>     list of payloads, with a TTL
    <prefix>:{<account>}:freed        pub/sub channel: "something may fit now"

Every change to the slots is one Lua script, so it is atomic; every script reads
the time with ``TIME`` on the server, so the processes' clocks never matter, and
first drops the leases and queue places whose time ran out (a crashed process's
leases go this way). The count of held slots is summed from the lease hash each
time, so it cannot drift.

A restart without persistence loses everything. The first script to run after it
finds no ``state`` and creates a new one with a new *epoch*; each process notices
the epoch change at its next call and re-registers the leases it holds. Until
every live process has had the time to do so (``recount_grace`` seconds after
Redis started), the held count is unknown, and nobody is admitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from .._errors import ConfigurationError
from ._base import _StoreBase
from ._contract import (
    DEFAULT_CLAIM_TTL,
    DEFAULT_LEASE_TTL,
    DEFAULT_MAX_OUTAGE,
    DEFAULT_MAX_SAMPLES,
    DEFAULT_POLL_INTERVAL,
    CoordinationError,
    Lease,
)
from ._core import _Attempt, _Status, _Unavailable
from ._helpers import redact_url
from ._lua import SCRIPTS

try:  # the ``redis`` extra
    import redis.asyncio as aioredis
    import redis.exceptions as redis_errors
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError:  # pragma: no cover - exercised only without the extra installed
    aioredis = None  # type: ignore[assignment]

__all__ = ["RedisSlotStore"]

logger = logging.getLogger("kling_async.coordination")

T = TypeVar("T")

_ACCOUNT = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

#: Seconds a waiting process's queue place lives without being refreshed.
_PLACE_TTL = 5.0
#: Seconds a dead holder's inbox is kept.
_INBOX_TTL = 3600
#: Payloads kept per inbox.
_INBOX_MAX = 10_000


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000.0))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisSlotStore(_StoreBase):
    """Slots, window, pause, durations and mailbox shared through Redis.

    Use :func:`~kling_async.coordination.open_store` to create one from a URL and
    check that Redis answers. Every process using one account must use the same
    Redis, ``account_key`` and ``prefix``.

    Args:
        url: ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL of the Redis.
        account_key: A stable id of the account (e.g. from
            :func:`~kling_async.coordination.account_fingerprint`; never the API key
            itself). Letters, digits and ``_.:-``, at most 64.
        max_capacity: This process's cap on slots (its ``max_running``).
        initial_capacity: Slow-start window of a fresh account state.
        increase: Additive increase after the first 1303.
        decrease: Multiplicative decrease on a 1303 (bounded below by what is held).
        lease_ttl: Default seconds a lease lives without renewal.
        poll_interval: Seconds between re-checks while waiting when no wake-up
            arrives (leases that expire instead of being released, lost messages).
        max_outage: Seconds Redis may stay unreachable before admission fails.
        max_samples: Durations kept per kind.
        claim_ttl: Default seconds a task claim lives.
        recount_grace: Seconds after a Redis (re)start during which the held count is
            unknown (every live process re-registers its leases within a renewal
            interval, a third of the TTL), so nobody is admitted. ``0`` disables it.
        prefix: Key prefix.
        socket_timeout: Seconds to wait for a Redis answer.
        connect_timeout: Seconds to wait for a connection.

    Raises:
        ConfigurationError: The ``redis`` extra is missing, or the URL or
            ``account_key`` is unusable.
        ValueError: A setting is out of range.
    """

    def __init__(
        self,
        url: str,
        *,
        account_key: str,
        max_capacity: int = 10,
        initial_capacity: int | None = None,
        increase: float = 1.0,
        decrease: float = 0.5,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_outage: float = DEFAULT_MAX_OUTAGE,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
        recount_grace: float = 15.0,
        prefix: str = "kling",
        socket_timeout: float = 2.0,
        connect_timeout: float = 2.0,
    ) -> None:
        safe = redact_url(url)
        if aioredis is None:  # pragma: no cover - only without the extra
            raise ConfigurationError(
                "Redis coordination needs the redis extra: pip install 'kling-async[redis]'"
            )
        if not _ACCOUNT.fullmatch(account_key) or not _ACCOUNT.fullmatch(prefix):
            raise ConfigurationError(
                "account_key and prefix must be 1-64 letters, digits or _.:- characters"
            )
        if recount_grace < 0:
            raise ValueError("recount_grace must be >= 0")
        super().__init__(
            max_capacity=max_capacity,
            initial_capacity=initial_capacity,
            increase=increase,
            decrease=decrease,
            lease_ttl=lease_ttl,
            poll_interval=poll_interval,
            max_outage=max_outage,
            max_samples=max_samples,
            claim_ttl=claim_ttl,
            describe=safe,
        )
        self.url = safe
        self._password = _password_in(url)
        try:
            self._client = aioredis.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                # One immediate retry on a fresh connection: a pooled connection that
                # died with a Redis restart fails once, then the next one works.
                retry=Retry(NoBackoff(), 1),
                decode_responses=False,
            )
        except ValueError as exc:
            raise ConfigurationError(f"unusable coordination URL {safe}: {exc}") from None
        base = f"{prefix}:{{{account_key}}}"
        self._base = base
        self._keys = [
            f"{base}:state",
            f"{base}:leases",
            f"{base}:lease_slots",
            f"{base}:queue",
            f"{base}:queue_alive",
            f"{base}:queue_slots",
        ]
        self._channel = f"{base}:freed"
        self._recount_grace = recount_grace
        self._epoch: str | None = None
        self._scripts = {name: self._client.register_script(text) for name, text in SCRIPTS.items()}
        self._listener: asyncio.Task[None] | None = None
        #: Round trips made to Redis (scripts and commands), for benchmarks.
        self.round_trips = 0

    def __repr__(self) -> str:
        return f"RedisSlotStore({self.url!r}, account_key={self._base.split('{')[1][:-1]!r})"

    # --- plumbing ------------------------------------------------------------------------

    def _scrub(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        return text

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis operation, mapping connection trouble to :class:`_Unavailable`."""
        self.round_trips += 1
        # The errors are raised outside the ``except`` blocks, so that neither
        # ``__cause__`` nor ``__context__`` carries redis-py's exception onwards.
        refused = ""
        try:
            return await op()
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            unreachable = self._scrub(exc)
        except redis_errors.ResponseError as exc:
            # A replica, or a node failing over, answers like an outage: wait it out.
            transient = isinstance(exc, redis_errors.ReadOnlyError) or str(exc).startswith(
                ("MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")
            )
            unreachable = self._scrub(exc)
            if not transient:
                refused = unreachable
        if refused:
            raise CoordinationError(
                f"coordination store {self.url} refused a command: {refused}", url=self.url
            )
        raise _Unavailable(unreachable)

    async def _script(self, name: str, *args: str | int | float) -> list[Any]:
        argv = [
            # A fresh candidate per call: a state this very store re-creates after a
            # restart must still get a new epoch, or the store would not notice.
            uuid.uuid4().hex,
            repr(self._initial),
            _ms(self._recount_grace) if self._recount_grace > 0 else 0,
            self._channel,
            *args,
        ]
        script = self._scripts[name]
        result = await self._call(lambda: script(keys=self._keys, args=argv))
        reply = list(result)
        self._observe_epoch(_text(reply[0]))
        return reply

    def _observe_epoch(self, epoch: str) -> None:
        if self._epoch is None:
            self._epoch = epoch
        elif epoch != self._epoch:
            self._epoch = epoch
            logger.warning(
                "coordination store %s lost its state (restart without persistence?): "
                "re-registering %d lease(s)",
                self.url,
                len(self._own),
            )
            self._needs_reassert = True

    async def ping(self) -> None:
        """Check that Redis answers (and create the account's state if missing).

        Raises:
            CoordinationUnavailableError: Redis could not be reached.
        """
        try:
            await self._status()
        except _Unavailable as exc:
            detail = exc.detail
        else:
            return
        raise self._unavailable(detail)

    # --- primitives ------------------------------------------------------------------

    async def _try(self, lease: Lease, *, queued: bool, enqueue: bool) -> _Attempt:
        reply = await self._script(
            "acquire",
            lease.lease_id,
            lease.slots,
            _ms(lease.ttl),
            int(queued),
            int(enqueue),
            _ms(max(_PLACE_TTL, 4 * self._poll_interval)),
            self.max_capacity,
        )
        return _Attempt(
            granted=int(reply[1]) == 1,
            queued=int(reply[2]) == 1,
            retry_in=int(reply[3]) / 1000.0,
        )

    async def _leave_queue(self, lease_id: str) -> None:
        await self._script("leave", lease_id)

    async def _renew(self, leases: Sequence[Lease]) -> None:
        args: list[str | int] = []
        for lease in leases:
            args += [lease.lease_id, lease.slots, _ms(lease.ttl)]
        reply = await self._script("renew", *args)
        if int(reply[1]):
            logger.debug("%d lease(s) were missing from %s", int(reply[1]), self.url)

    async def _release(self, leases: Sequence[Lease]) -> None:
        await self._script("release", *(lease.lease_id for lease in leases))

    async def _limited(self, refused: Lease | None) -> None:
        await self._script("limited", refused.lease_id if refused else "", repr(self._decrease))

    async def _accepted(self) -> None:
        await self._script("accepted", repr(self._increase), self.max_capacity)

    async def _set_window(self, slots: int) -> None:
        await self._script("set_window", slots)

    async def _pause(self, seconds: float) -> None:
        await self._script("pause", _ms(seconds))

    async def _status(self) -> _Status:
        reply = await self._script("status", self.max_capacity)
        return _Status(
            held=int(reply[1]),
            capacity=int(reply[2]),
            paused_for=int(reply[3]) / 1000.0,
            queued=int(reply[4]),
        )

    def _durations_key(self, kind: str) -> str:
        return f"{self._base}:durations:{kind}"

    async def _push_duration(self, kind: str, seconds: float) -> None:
        key = self._durations_key(kind)

        async def push() -> None:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.rpush(key, repr(float(seconds)))
                pipe.ltrim(key, -self._max_samples, -1)
                pipe.expire(key, 30 * 24 * 3600)
                await pipe.execute()

        await self._call(push)

    async def _durations(self, kind: str) -> list[float]:
        key = self._durations_key(kind)
        values = await self._call(lambda: self._client.lrange(key, -self._max_samples, -1))
        return [float(_text(v)) for v in values]

    def _owner_key(self, task_id: str) -> str:
        return f"{self._base}:owner:{task_id}"

    def _inbox_key(self, holder: str) -> str:
        return f"{self._base}:inbox:{holder}"

    async def _claim(self, task_id: str, holder: str, ttl: float) -> None:
        key = self._owner_key(task_id)
        await self._call(lambda: self._client.set(key, holder, px=_ms(ttl)))

    async def _unclaim(self, task_id: str, holder: str) -> None:
        script = self._scripts["unclaim"]
        key = self._owner_key(task_id)
        await self._call(lambda: script(keys=[key], args=[holder]))

    async def _owner(self, task_id: str) -> str | None:
        key = self._owner_key(task_id)
        value = await self._call(lambda: self._client.get(key))
        return None if value is None else _text(value)

    async def _deliver(self, owner: str, payload: bytes) -> None:
        key = self._inbox_key(owner)

        async def push() -> None:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.rpush(key, payload)
                pipe.ltrim(key, -_INBOX_MAX, -1)
                pipe.expire(key, _INBOX_TTL)
                await pipe.execute()

        await self._call(push)

    async def _pop(
        self,
        holder: str,
        timeout: float,
    ) -> bytes | None:
        key = self._inbox_key(holder)
        reply = await self._call(lambda: self._client.blpop([key], timeout=max(1, round(timeout))))
        if reply is None:
            return None
        value = reply[1]
        return value if isinstance(value, bytes) else str(value).encode()

    # --- wake-ups from other processes -----------------------------------------------

    def _ensure_listening(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        """Turn messages on the channel into wake-ups, resubscribing after failures.

        The subscription's confirmation wakes the waiters too: a release published
        before the subscription took effect is then caught by their re-check.
        """
        failures = 0
        while not self._closed:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                failures = 0
                while not self._closed:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._notify()
            except Exception as exc:  # the listener must outlive any failure
                logger.debug("wake-up channel lost (%s); resubscribing", self._scrub(exc))
                failures += 1
                await self._backoff(failures)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]

    async def _close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        await self._client.aclose()


def _password_in(url: str) -> str:
    """The password in ``url`` (user info or ``password=`` parameter), or ``""``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return ""
    if parts.password:
        return urllib.parse.unquote(parts.password)
    for key, value in urllib.parse.parse_qsl(parts.query):
        if key.lower() == "password":
            return value
    return ""
