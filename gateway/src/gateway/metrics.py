"""Per-upstream latency and errors, labelled by upstream name (a small, fixed set)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.web.metrics import LATENCY_BUCKETS

ERROR_KINDS = ("timeout", "unavailable", "bad_gateway")


@dataclass(frozen=True)
class UpstreamMetrics:
    duration: Histogram
    errors: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry, upstreams: Iterable[str]) -> UpstreamMetrics:
        metrics = cls(
            duration=Histogram(
                "gateway_upstream_request_duration_seconds",
                "Time from sending a request upstream to having its answer (streams: its headers).",
                ["upstream"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            errors=Counter(
                "gateway_upstream_errors",
                "Upstream calls that failed, by upstream and kind (timeout, unavailable, bad_gateway).",
                ["upstream", "kind"],
                registry=registry,
            ),
        )
        # Every series exists from the start: dashboards show 0, not "no data".
        for name in upstreams:
            metrics.duration.labels(name)
            for kind in ERROR_KINDS:
                metrics.errors.labels(name, kind)
        return metrics

    def observer(self, upstream: str) -> Histogram:
        """The labelled child, looked up once per route instead of once per request."""
        return self.duration.labels(upstream)
