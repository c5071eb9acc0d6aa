"""Token buckets per client: the in-process rate limit of one replica.

Written here rather than taken from a library (slowapi, limits): a bucket is a dozen lines, and those
libraries hook into routes and responses in ways that do not fit every caller (the gateway's proxy).
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBuckets:
    """``rate`` tokens a second per key, at most ``burst`` saved up; idle full buckets are forgotten."""

    def __init__(
        self, rate: float, burst: int, *, clock: Clock = time.monotonic, max_keys: int = 100_000
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)
        self._next_prune = clock() + 60.0

    def take(self, key: str) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there will be."""
        now = self.clock()
        if now >= self._next_prune or len(self._buckets) >= self.max_keys:
            self._prune(now)
        tokens, counted = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - counted) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        # A bucket that has refilled completely is the same as no bucket at all.
        self._buckets = {
            key: (tokens, counted)
            for key, (tokens, counted) in self._buckets.items()
            if tokens + (now - counted) * self.rate < self.burst
        }
        if len(self._buckets) >= self.max_keys:
            # Too many clients mid-burst to remember (a flood of addresses): start over rather than grow.
            self._buckets.clear()
        self._next_prune = now + 60.0

    def __len__(self) -> int:
        return len(self._buckets)
