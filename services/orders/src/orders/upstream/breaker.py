"""A circuit breaker: after repeated failures, stop calling an upstream for a while.

Closed: calls go through; ``failure_threshold`` consecutive failures open it. Open: calls fail at
once (the caller answers 503 with ``Retry-After``) until ``reset_timeout`` has passed. Half-open:
one trial call goes through; its success closes the breaker, its failure opens it again.

Written here rather than taken from pybreaker/aiobreaker: those track state with their own timers
and listeners, while this one needs an injectable clock (tests), a Prometheus gauge read at scrape
time, and a ``Retry-After`` that tells the client when the next trial is due.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from enum import IntEnum

from prometheus_client import CollectorRegistry, Gauge

Clock = Callable[[], float]


class BreakerState(IntEnum):
    """The gauge's values."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitOpen(Exception):
    """The breaker refuses the call; ``retry_after`` seconds until a trial call may go out."""

    def __init__(self, upstream: str, retry_after: int) -> None:
        super().__init__(f"circuit to {upstream} is open")
        self.retry_after = retry_after


def breaker_gauge(registry: CollectorRegistry) -> Gauge:
    return Gauge(
        "circuit_breaker_state",
        "State of the circuit breaker per upstream: 0 closed, 1 open, 2 half-open.",
        ["upstream"],
        registry=registry,
    )


class CircuitBreaker:
    def __init__(
        self,
        upstream: str,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 10.0,
        clock: Clock = time.monotonic,
        gauge: Gauge | None = None,
    ) -> None:
        self.upstream = upstream
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_started_at: float | None = None
        if gauge is not None:
            gauge.labels(upstream=upstream).set_function(lambda: float(self.state))

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self._opened_at < self.reset_timeout:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def before_call(self) -> None:
        """Raise ``CircuitOpen`` unless a call may go out now."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        now = self.clock()
        if state is BreakerState.OPEN:
            assert self._opened_at is not None
            raise CircuitOpen(self.upstream, self._seconds_until(self._opened_at + self.reset_timeout))
        # Half-open: one trial at a time. A trial that never reported back (its caller was
        # cancelled) stops blocking the others after another reset_timeout.
        if self._trial_started_at is not None and now - self._trial_started_at < self.reset_timeout:
            raise CircuitOpen(self.upstream, 1)
        self._trial_started_at = now

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_started_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self.state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._opened_at = self.clock()
        self._trial_started_at = None

    def retry_after(self) -> int:
        """Seconds a client should wait before trying again: until the next trial when open."""
        if self._opened_at is None:
            return 1
        return self._seconds_until(self._opened_at + self.reset_timeout)

    def _seconds_until(self, moment: float) -> int:
        return max(1, math.ceil(moment - self.clock()))
