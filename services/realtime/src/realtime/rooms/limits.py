"""Per-user rate limit of ``say`` frames and per-connection room cap (contract section 6)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_rooms: int
    say_rate: float
    say_burst: float


class TokenBucket:
    """``rate`` frames a second on average, ``burst`` at once (the usual token bucket)."""

    __slots__ = ("burst", "clock", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    @property
    def full(self) -> bool:
        return self.tokens + (self.clock() - self.stamp) * self.rate >= self.burst


class SayBuckets:
    """One bucket per user on this replica, shared by the user's connections here.

    Per replica, not across replicas: a user's connections are usually on one replica, and a limit
    checked in the database on every say would cost a write per message.
    """

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, user_key: str) -> bool:
        bucket = self._buckets.get(user_key)
        if bucket is None:
            bucket = self._buckets[user_key] = TokenBucket(
                self.limits.say_rate, self.limits.say_burst, self.clock
            )
        return bucket.take()

    def prune(self) -> None:
        """Forget the buckets that have refilled: they are as good as new ones."""
        for key in [key for key, bucket in self._buckets.items() if bucket.full]:
            del self._buckets[key]
