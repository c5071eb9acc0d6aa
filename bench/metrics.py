"""Reading a component's Prometheus exposition: samples and quantiles from histogram buckets."""

from __future__ import annotations

import math
from collections.abc import Iterable

import httpx
from prometheus_client.parser import text_string_to_metric_families

Buckets = dict[float, float]
Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str) -> Samples:
    """Every sample of ``url``'s /metrics, by sample name."""
    text = httpx.get(url + "/metrics", timeout=10).text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return samples


def scrape_all(urls: Iterable[str]) -> Samples:
    """Several processes' samples together: ``value`` and ``buckets`` then sum over them."""
    merged: Samples = {}
    for url in urls:
        for name, samples in scrape(url).items():
            merged.setdefault(name, []).extend(samples)
    return merged


def value(samples: Samples, name: str) -> float:
    return sum(v for _, v in samples.get(name, []))


def buckets(samples: Samples, name: str) -> Buckets:
    out: Buckets = {}
    for labels, count in samples.get(f"{name}_bucket", []):
        le = float(labels["le"])
        out[le] = out.get(le, 0.0) + count
    return out


def quantile(before: Buckets, after: Buckets, q: float) -> float:
    """``histogram_quantile`` over the observations made between two scrapes (linear in a bucket)."""
    delta = sorted((le, after.get(le, 0.0) - before.get(le, 0.0)) for le in after)
    total = delta[-1][1] if delta else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    lower_le, lower_count = 0.0, 0.0
    for le, count in delta:
        if count >= rank:
            if math.isinf(le):
                return lower_le
            width = count - lower_count
            share = (rank - lower_count) / width if width else 1.0
            return lower_le + (le - lower_le) * share
        lower_le, lower_count = le, count
    return delta[-1][0]
