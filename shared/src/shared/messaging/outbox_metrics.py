"""The outbox's Prometheus metrics: what is pending, what was published, how late."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class OutboxMetrics:
    pending: Gauge
    oldest_age: Gauge
    published: Counter
    failed: Counter
    lag: Histogram
    leading: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> OutboxMetrics:
        return cls(
            pending=Gauge(
                "outbox_pending", "Outbox rows not yet confirmed by the broker.", registry=registry
            ),
            oldest_age=Gauge(
                "outbox_oldest_pending_age_seconds",
                "Age of the oldest outbox row not yet confirmed (0 when none).",
                registry=registry,
            ),
            published=Counter(
                "outbox_published", "Events confirmed by the broker.", ["event_type"], registry=registry
            ),
            failed=Counter(
                "outbox_publish_failures",
                "Publish attempts that failed, by reason (broker, unroutable).",
                ["reason"],
                registry=registry,
            ),
            lag=Histogram(
                "outbox_relay_lag_seconds",
                "Time from the event's transaction to the broker's confirm.",
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
                registry=registry,
            ),
            leading=Gauge(
                "outbox_relay_leading",
                "1 while this process's relay holds one of the outbox's two leader locks and is woken by "
                "each commit; the other replicas' relays stand by (0) and take a lock over when it is freed.",
                registry=registry,
            ),
        )
