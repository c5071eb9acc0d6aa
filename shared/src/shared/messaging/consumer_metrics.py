"""The consumers' Prometheus metrics: what was consumed, retried, dead-lettered, and how fast."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class ConsumerMetrics:
    consumed: Counter
    retried: Counter
    dead_lettered: Counter
    handling: Histogram
    up: Gauge
    dlq_depth: Gauge
    waiting_for_database: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ConsumerMetrics:
        return cls(
            consumed=Counter(
                "events_consumed",
                "Events taken from the queue, by type and outcome (handled, duplicate, retried, dead).",
                ["consumer", "event_type", "outcome"],
                registry=registry,
            ),
            retried=Counter(
                "events_retried", "Events sent to a delay queue.", ["consumer"], registry=registry
            ),
            dead_lettered=Counter(
                "events_dead_lettered", "Events moved to the DLQ.", ["consumer", "reason"], registry=registry
            ),
            handling=Histogram(
                "event_handling_seconds",
                "Time to handle one event, transaction included.",
                ["consumer", "event_type"],
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                registry=registry,
            ),
            up=Gauge(
                "event_consumer_up", "1 while the consumer is consuming.", ["consumer"], registry=registry
            ),
            dlq_depth=Gauge(
                "event_dlq_messages",
                "Messages waiting in the consumer's dead-letter queue (shared.messaging.dlq redrives them).",
                ["consumer"],
                registry=registry,
            ),
            waiting_for_database=Gauge(
                "event_consumer_waiting_for_database",
                "1 while the consumer holds an event because its own database cannot be reached.",
                ["consumer"],
                registry=registry,
            ),
        )
