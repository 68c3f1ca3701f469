"""Fault planning and request-rate limiting for the fake gateway (seeded, no timers)."""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping

from ._config import FAULT_SCOPES, FAULTS

__all__ = ["BEFORE_STORE", "HOSTILE_RETRY_AFTER", "JSON_ONLY", "FaultPlan", "TokenBucket"]

#: Scopes an ``api`` injection covers.
_API_SCOPES = frozenset({"create", "query", "batch", "list", "face"})

#: ``Retry-After`` values of the hostile rate-limit faults.
HOSTILE_RETRY_AFTER: Mapping[str, str] = {
    "retry_after_1e9": "1e9",
    "retry_after_inf": "inf",
    "retry_after_negative": "-5",
}

#: Faults that answer before a create stores its task (on other requests: before
#: any work). Every other fault strikes after the work is done.
BEFORE_STORE = frozenset(
    {"drop_before_store", "http_500", "http_503", "rate_limit", "concurrency_limit"}
    | set(HOSTILE_RETRY_AFTER)
)

#: Faults that rewrite a JSON answer, so they cannot strike a media download.
JSON_ONLY = frozenset(
    {"non_json", "bad_code", "deep_nesting", "nan_index", "non_finite", "wrong_types"}
)


class FaultPlan:
    """Which fault, if any, strikes the next request of a scope.

    Faults scheduled with :meth:`inject` come first, in order; otherwise, with
    probability ``rate``, one is drawn from the weighted ``mix`` (API requests only).

    Args:
        rate: Probability of a random fault per API request.
        mix: Relative weights of random faults.
        seed: Seed of the draws.
    """

    def __init__(self, rate: float, mix: Mapping[str, float], seed: int) -> None:
        self._rate = rate
        self._names = [name for name, weight in mix.items() if weight > 0]
        self._weights = [mix[name] for name in self._names]
        self._rng = random.Random(f"{seed}-faults")
        self._scheduled: deque[list[object]] = deque()

    @property
    def active(self) -> bool:
        """Whether any fault can strike at all (a cheap check for the hot path)."""
        return bool(self._scheduled) or (self._rate > 0 and bool(self._names))

    def inject(self, fault: str, *, count: int = 1, on: str = "create") -> None:
        """Schedule a fault for the next ``count`` requests of scope ``on``.

        Args:
            fault: A name from :data:`FAULTS`.
            count: How many requests it strikes.
            on: A scope from :data:`FAULT_SCOPES`.

        Raises:
            ValueError: Unknown fault or scope, ``count`` < 1, or a fault that
                rewrites JSON aimed at media downloads.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        if on not in FAULT_SCOPES:
            raise ValueError(f"unknown scope {on!r}; known: {', '.join(FAULT_SCOPES)}")
        if on == "media" and fault in JSON_ONLY:
            raise ValueError(f"fault {fault!r} rewrites JSON answers; it cannot strike media")
        if count < 1:
            raise ValueError("count must be >= 1")
        self._scheduled.append([fault, count, on])

    def pending(self) -> list[tuple[str, int, str]]:
        """Scheduled faults not yet used: ``(fault, remaining, scope)``."""
        return [(str(f), int(str(c)), str(o)) for f, c, o in self._scheduled]

    def clear(self) -> None:
        """Forget every scheduled fault."""
        self._scheduled.clear()

    def take(self, scope: str) -> str | None:
        """The fault for one request of ``scope``, or ``None``.

        Args:
            scope: ``create``, ``query``, ``batch``, ``face`` or ``media``.

        Returns:
            A fault name, or ``None`` for a normal answer.
        """
        for entry in self._scheduled:
            fault, remaining, on = entry
            if on == scope or (on == "api" and scope in _API_SCOPES):
                if isinstance(remaining, int) and remaining > 1:
                    entry[1] = remaining - 1
                else:
                    self._scheduled.remove(entry)
                return str(fault)
        if scope == "media" or self._rate <= 0 or not self._names:
            return None
        if self._rng.random() >= self._rate:
            return None
        return self._rng.choices(self._names, self._weights)[0]


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, up to ``burst`` stored.

    Args:
        rate: Refill per second.
        burst: Capacity.
        now: The clock at creation.
    """

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._last = now

    def take(self, now: float) -> float:
        """Spend one token.

        Args:
            now: The clock.

        Returns:
            0 when a token was spent, else the seconds until one will be available.
        """
        tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        self._tokens = tokens
        return (1.0 - tokens) / self._rate

    @staticmethod
    def retry_after_header(wait: float) -> str:
        """A ``Retry-After`` value (whole seconds, at least 1) for a wait."""
        return str(max(1, math.ceil(wait)))
