"""What every route handler of one fake gateway shares: settings, clock, store, faults.

Handlers hold a :class:`FakeState` and read ``state.faults`` each time (a reset
replaces the plan). Media URLs are signed here because both task rendering and the
media route need the same key.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from .._endpoints import Shape
from ._answers import Answers, dumps
from ._clock import FakeClock
from ._config import FakeConfig
from ._faults import FaultPlan, TokenBucket
from ._store import Store
from ._tasks import TaskRecord, classic_data, turbo_data
from ._tokens import KeyPairAccount, scaled_unix

__all__ = ["FakeState"]


class FakeState:
    """The shared state of one fake gateway.

    Args:
        config: Its behaviour.

    Attributes:
        config: The configuration.
        clock: The fake's clock (:meth:`FakeClock.now`, :meth:`FakeClock.advance`).
        store: Tasks, sessions and figures.
        faults: The fault plan (replaced by :meth:`reset`).
        buckets: Request-rate buckets per key.
        answers: Envelope and error answers.
        lookup_lag: Seconds on the clock a new task stays invisible.
        url_ttl: Seconds on the clock result URLs stay valid after a task ends.
        latency: Seconds added to every API answer.
        slow_latency: Seconds of the ``slow`` fault.
        base_url: Base of result URLs (``public_url``, else the listening URL, else
            the host of the first API request).
    """

    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.clock = FakeClock(time_scale=config.time_scale, scale_delays=config.scale_delays)
        self.store = Store(config, self.clock.now, self.clock.wall_offset)
        self.faults = FaultPlan(config.fault_rate, config.fault_mix, config.seed)
        self.buckets: dict[str, TokenBucket] = {}
        self.answers = Answers(self.store)
        self.lookup_lag = self.clock.delay(config.lookup_lag)
        self.url_ttl = self.clock.delay(config.url_ttl)
        self.latency = self.clock.delay(config.latency)
        self.slow_latency = self.clock.delay(config.slow_latency)
        self.base_url: str | None = config.public_url.rstrip("/") if config.public_url else None
        self._media_key = hashlib.sha256(f"kling-async-fake-media-{config.seed}".encode()).digest()

    # --- callers ------------------------------------------------------------------

    def token_clock(self) -> float:
        """The time tokens are checked against: Unix seconds on the token time scale.

        Returns:
            Stretched Unix seconds (see :func:`._tokens.scaled_unix`), moved by
            every advance of the fake's clock.
        """
        return scaled_unix(self.clock.now() + self.clock.wall_offset, self.config.token_scale)

    def api_key_accounts(self) -> dict[str, str]:
        """Accepted API keys, each its own account."""
        return {key: key for key in self.config.api_keys}

    def pair_accounts(self) -> dict[str, KeyPairAccount]:
        """Accepted access keys: the n-th pair acts for the n-th API key's account."""
        keys = self.config.api_keys
        return {
            access: KeyPairAccount(secret, keys[i] if i < len(keys) else access)
            for i, (access, secret) in enumerate(self.config.key_pairs)
        }

    def reset(self) -> None:
        """Forget tasks, figures, buckets and scheduled faults; restart the sequences."""
        cfg = self.config
        self.store.reset()
        self.faults = FaultPlan(cfg.fault_rate, cfg.fault_mix, cfg.seed)
        self.buckets.clear()

    # --- media URLs -----------------------------------------------------------------

    def media_signature(self, file_name: str, expires: str) -> str:
        """The signature of a media URL.

        Args:
            file_name: ``{stem}.{extension}``.
            expires: The URL's expiry, Unix milliseconds as text.

        Returns:
            32 hex characters.
        """
        message = f"{file_name}:{expires}".encode()
        return hmac.new(self._media_key, message, hashlib.sha256).hexdigest()[:32]

    def media_url(self, name: str, extension: str, expires_ms: int) -> str:
        """A signed, expiring result URL.

        Args:
            name: File stem (an output id).
            extension: ``mp4``, ``png``, ``wav`` or ``mp3``.
            expires_ms: Expiry, Unix milliseconds.

        Returns:
            The URL.
        """
        signature = self.media_signature(f"{name}.{extension}", str(expires_ms))
        # A long cache key, like the real CDN's, so clients meet realistic URLs.
        cache_key = hashlib.sha512(signature.encode()).hexdigest()
        return (
            f"{self.base_url or ''}/__media__/{name}.{extension}?expires={expires_ms}"
            f"&sig={signature}&x-kcdn-pid=112757&cacheKey={cache_key}"
        )

    # --- rendering ------------------------------------------------------------------

    def render(self, rec: TaskRecord, status: str) -> bytes:
        """JSON bytes of a task's ``data`` in a status (cached: it never changes).

        Args:
            rec: The task.
            status: Its status.

        Returns:
            The bytes, also used as a callback body.
        """
        cached = rec.cache.get(status)
        if cached is None:
            render = turbo_data if rec.endpoint.shape is Shape.TURBO else classic_data
            cached = rec.cache[status] = dumps(render(rec, status, self.media_url, self.url_ttl))
        return cached

    def video_object(self, rec: TaskRecord, video_id: str) -> dict[str, Any]:
        """``parent_video`` for an output of an earlier task.

        Args:
            rec: The task that produced the video.
            video_id: The output id.

        Returns:
            ``{"id", "url", "duration"}``.
        """
        return {
            "id": video_id,
            "url": self.media_url(video_id, "mp4", rec.expires_ms(self.url_ttl)),
            "duration": rec.video_duration(),
        }
