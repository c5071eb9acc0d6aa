"""Prometheus metrics of the delivery side (the consumer's own come from ``shared.messaging.consumer``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from realtime.streams.frames import PING, Frame

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class RealtimeMetrics:
    connections: Gauge
    users_online: Gauge
    frames_sent: Counter
    slow_disconnects: Counter
    disconnects: Counter
    delivery_lag: Histogram
    listener_up: Gauge
    resyncs: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> RealtimeMetrics:
        metrics = cls._register(registry)
        # Exported at 0 from the start: a dashboard or alert over a rare event (a 4008) sees a series
        # before the first one happens, rather than no data.
        for transport in ("ws", "sse"):
            metrics.slow_disconnects.labels(transport)
        return metrics

    @classmethod
    def _register(cls, registry: CollectorRegistry) -> RealtimeMetrics:
        return cls(
            connections=Gauge(
                "realtime_connections",
                "Open client connections on this replica, by transport (ws, sse).",
                ["transport"],
                registry=registry,
            ),
            users_online=Gauge(
                "realtime_users_online",
                "Distinct users with at least one open connection on this replica.",
                registry=registry,
            ),
            frames_sent=Counter(
                "realtime_frames_sent",
                "Frames written to clients, by transport and kind (event, replay, ready, ping, room).",
                ["transport", "kind"],
                registry=registry,
            ),
            slow_disconnects=Counter(
                "realtime_slow_disconnects",
                "Connections closed because the client could not keep up (WebSocket code 4008).",
                ["transport"],
                registry=registry,
            ),
            disconnects=Counter(
                "realtime_disconnects",
                "Connections closed, by transport and reason (client, slow, token_expired, ...).",
                ["transport", "reason"],
                registry=registry,
            ),
            delivery_lag=Histogram(
                "realtime_delivery_lag_seconds",
                "From an event's occurred_at to its live frame being written to a client.",
                ["transport"],
                buckets=LAG_BUCKETS,
                registry=registry,
            ),
            listener_up=Gauge(
                "realtime_listener_up",
                "1 while this replica listens for new stream entries (Postgres LISTEN).",
                registry=registry,
            ),
            resyncs=Counter(
                "realtime_resyncs",
                "Catch-up reads after the LISTEN connection was re-established.",
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class TransportMetrics:
    """The children of ``RealtimeMetrics`` for one transport, bound once (a frame costs no label lookup)."""

    transport: str
    events: Counter
    replayed: Counter
    pings: Counter
    ready: Counter
    rooms: Counter
    lag: Histogram
    parent: RealtimeMetrics

    @classmethod
    def bind(cls, metrics: RealtimeMetrics, transport: str) -> TransportMetrics:
        sent = metrics.frames_sent
        return cls(
            transport=transport,
            events=sent.labels(transport, "event"),
            replayed=sent.labels(transport, "replay"),
            pings=sent.labels(transport, "ping"),
            ready=sent.labels(transport, "ready"),
            # Room frames (message, presence, joined, left, broadcast, error: contract section 6).
            rooms=sent.labels(transport, "room"),
            lag=metrics.delivery_lag.labels(transport),
            parent=metrics,
        )

    def sent(self, frame: Frame) -> None:
        """Count a live frame written to a client; an event's delivery lag is observed too."""
        if frame.is_event:
            self.events.inc()
            self.lag.observe(max(0.0, time.time() - frame.ts))
        elif frame is PING:
            self.pings.inc()
        else:
            self.rooms.inc()

    def closed(self, reason: str) -> None:
        self.parent.disconnects.labels(self.transport, reason).inc()
        if reason == "slow":
            self.parent.slow_disconnects.labels(self.transport).inc()
