"""Numbers as Grafana prints them for the units the dashboards use (fieldConfig ``unit``)."""

from __future__ import annotations

import math

# Grafana's "short" suffixes.
SHORT_STEPS = ((1e12, " Tri"), (1e9, " Bil"), (1e6, " Mil"), (1e3, " K"))
# Seconds: the largest unit the value fills at least once.
TIME_STEPS = ((86400.0, " day"), (3600.0, " hour"), (60.0, " min"), (1.0, " s"), (1e-3, " ms"), (1e-6, " µs"))
RATE_SUFFIX = {"ops": " ops/s", "reqps": " req/s", "rps": " rd/s", "wps": " wr/s"}


def _digits(value: float) -> str:
    """Three significant digits at most, without trailing zeros (1.50 -> 1.5, 150.0 -> 150)."""
    if value == 0:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def short(value: float) -> str:
    for size, suffix in SHORT_STEPS:
        if abs(value) >= size:
            return _digits(value / size) + suffix
    return _digits(value)


def seconds(value: float) -> str:
    if value == 0:
        return "0 s"
    for size, suffix in TIME_STEPS:
        if abs(value) >= size:
            return _digits(value / size) + suffix
    return _digits(value * 1e9) + " ns"


def format_value(value: float, unit: str) -> str:
    """``value`` in ``unit``; NaN (a gap, or no data) prints as Grafana prints it."""
    if math.isnan(value):
        return "No data"
    if unit == "s":
        return seconds(value)
    if unit == "ms":
        return seconds(value / 1000)
    if unit == "percentunit":
        return _digits(value * 100) + "%"
    if unit == "percent":
        return _digits(value) + "%"
    if unit in RATE_SUFFIX:
        return short(value) + RATE_SUFFIX[unit]
    if unit in ("short", "none", ""):
        return short(value)
    return f"{short(value)} {unit}"
