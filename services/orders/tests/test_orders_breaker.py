"""The circuit breaker's states on a fake clock: closed, open, half-open, and back."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from orders.upstream.breaker import BreakerState, CircuitBreaker, CircuitOpen, breaker_gauge


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def breaker(clock: FakeClock, registry: CollectorRegistry | None = None) -> CircuitBreaker:
    gauge = breaker_gauge(registry) if registry is not None else None
    return CircuitBreaker("users", failure_threshold=3, reset_timeout=10.0, clock=clock, gauge=gauge)


def fail(b: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        b.before_call()
        b.record_failure()


def test_closed_lets_calls_through_and_a_success_resets_the_count(clock: FakeClock) -> None:
    b = breaker(clock)
    fail(b, 2)
    b.before_call()
    b.record_success()
    fail(b, 2)
    assert b.state is BreakerState.CLOSED


def test_threshold_consecutive_failures_open_it(clock: FakeClock) -> None:
    b = breaker(clock)
    fail(b, 3)
    assert b.state is BreakerState.OPEN
    clock.advance(2.5)
    with pytest.raises(CircuitOpen) as raised:
        b.before_call()
    assert raised.value.retry_after == 8  # 7.5 s left, rounded up
    assert b.retry_after() == 8


def test_after_the_reset_timeout_one_trial_goes_through(clock: FakeClock) -> None:
    b = breaker(clock)
    fail(b, 3)
    clock.advance(10)
    assert b.state is BreakerState.HALF_OPEN
    b.before_call()
    with pytest.raises(CircuitOpen) as raised:
        b.before_call()  # a second caller while the trial is out
    assert raised.value.retry_after == 1


def test_a_successful_trial_closes_it(clock: FakeClock) -> None:
    b = breaker(clock)
    fail(b, 3)
    clock.advance(10)
    b.before_call()
    b.record_success()
    assert b.state is BreakerState.CLOSED
    b.before_call()
    b.before_call()


def test_a_failed_trial_opens_it_again_for_a_full_period(clock: FakeClock) -> None:
    b = breaker(clock)
    fail(b, 3)
    clock.advance(12)
    b.before_call()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    clock.advance(9.9)
    with pytest.raises(CircuitOpen):
        b.before_call()
    clock.advance(0.1)
    # The state is a property read again: mypy narrowed it to OPEN above, the clock has moved since.
    assert b.state is BreakerState.HALF_OPEN  # type: ignore[comparison-overlap]


def test_a_trial_that_never_reports_back_stops_blocking(clock: FakeClock) -> None:
    b = breaker(clock)
    fail(b, 3)
    clock.advance(10)
    b.before_call()  # its caller is cancelled and records nothing
    clock.advance(10)
    b.before_call()


def test_gauge_shows_the_state_at_scrape_time(clock: FakeClock) -> None:
    registry = CollectorRegistry()
    b = breaker(clock, registry)

    def value() -> float | None:
        return registry.get_sample_value("circuit_breaker_state", {"upstream": "users"})

    assert value() == 0
    fail(b, 3)
    assert value() == 1
    clock.advance(10)
    assert value() == 2
    b.before_call()
    b.record_success()
    assert value() == 0
