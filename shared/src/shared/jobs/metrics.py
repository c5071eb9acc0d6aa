"""``job_runs_total``, ``job_duration_seconds``, ``job_last_success_timestamp_seconds`` and the interval
the alert compares the last success with.

Scraped by Prometheus, the ``job`` label meets the target's own ``job`` label (the component) and is
stored as ``exported_job``: deploy/prometheus/rules/jobs.yml groups by both.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.jobs.tables import RUN_STATUSES


@dataclass(frozen=True, slots=True)
class JobMetrics:
    runs: Counter
    duration: Histogram
    last_success: Gauge
    interval: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> JobMetrics:
        return cls(
            runs=Counter(
                "job_runs",
                "Finished runs of a scheduled job, by outcome.",
                ["job", "status"],
                registry=registry,
            ),
            duration=Histogram(
                "job_duration_seconds",
                "How long runs of a scheduled job took.",
                ["job"],
                buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
                registry=registry,
            ),
            last_success=Gauge(
                "job_last_success_timestamp_seconds",
                "When the job last succeeded on any replica (read from the database); until its first "
                "success, when it was first scheduled, so a job that never succeeds still alerts.",
                ["job"],
                registry=registry,
            ),
            interval=Gauge(
                "job_interval_seconds",
                "The longest gap between two due times of the job's schedule.",
                ["job"],
                registry=registry,
            ),
        )

    def declare(self, job: str) -> None:
        """Every series exists from the start, so ``rate()`` sees the first failure."""
        for status in RUN_STATUSES[1:]:
            self.runs.labels(job, status)
        self.duration.labels(job)
