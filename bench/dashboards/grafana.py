"""A Grafana dashboard as the drawing needs it: panels on the 24-column grid, PromQL ready to run.

Only what the project's dashboards use is read (timeseries, stat and row panels; fieldConfig unit,
min/max, thresholds, value mappings, stacking; query variables). Anything else in a panel is ignored,
but a query naming a variable the dashboard does not define is refused: Grafana would send it to
Prometheus as written and draw an empty panel.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GRID_COLUMNS = 24
# $name, ${name}, ${name:format} and the deprecated [[name]], as Grafana's template service reads them.
VARIABLE = re.compile(r"\$([A-Za-z_]\w*)|\$\{([A-Za-z_]\w*)(?::\w+)?\}|\[\[([A-Za-z_]\w*)\]\]")
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
# Grafana's regex escaping of a multi-value variable's values for Prometheus.
REGEX_SPECIALS = re.compile(r"[\\^$*+?.()|{}\[\]]")


@dataclass(frozen=True)
class GridPos:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Threshold:
    color: str
    value: float  # -inf for Grafana's base step (``"value": null``)


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    type: str
    title: str
    grid: GridPos
    targets: tuple[Target, ...] = ()
    unit: str = "short"
    min: float | None = None
    max: float | None = None
    stacked: bool = False
    thresholds: tuple[Threshold, ...] = ()
    threshold_lines: bool = False
    # value (as Grafana prints it) -> (text, colour or "")
    mappings: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    # What a query gets for ``$name`` (a regex for multi-value and "All") and what a title shows.
    value: str
    text: str


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...]

    @property
    def rows(self) -> int:
        """The dashboard's height in grid units."""
        return max((p.grid.y + p.grid.h for p in self.panels), default=0)


def _regex_escape(value: str) -> str:
    return REGEX_SPECIALS.sub(lambda m: "\\" + m.group(0), value)


def variable_from(spec: Mapping[str, Any]) -> Variable:
    """A template variable at its saved default, formatted as Grafana formats it for Prometheus."""
    name = str(spec["name"])
    current = spec.get("current") or {}
    raw = current.get("value", "")
    values = [str(v) for v in raw] if isinstance(raw, list) else [str(raw)]
    text_raw = current.get("text", "")
    text = ", ".join(str(t) for t in text_raw) if isinstance(text_raw, list) else str(text_raw)
    if "$__all" in values:
        value = str(spec.get("allValue") or ".*")
    elif spec.get("multi") or spec.get("includeAll"):
        escaped = [_regex_escape(v) for v in values]
        value = escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    else:
        value = values[0] if values else ""
    return Variable(name=name, label=str(spec.get("label") or name), value=value, text=text or value)


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with every Grafana variable replaced; an unknown variable is an error."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group is not None)
        if name not in values:
            raise ValueError(f"{match.group(0)} is not a variable of this dashboard")
        return values[name]

    return VARIABLE.sub(replace, text)


def query_values(dashboard: Dashboard, rate_interval: str) -> dict[str, str]:
    """What each variable stands for in a query; ``$__rate_interval`` and ``$__interval`` are fixed."""
    values = {v.name: v.value for v in dashboard.variables}
    values |= {"__rate_interval": rate_interval, "__interval": rate_interval}
    return values


def title_values(dashboard: Dashboard) -> dict[str, str]:
    return {v.name: v.text for v in dashboard.variables}


def legend(fmt: str, labels: Mapping[str, str]) -> str:
    """Grafana's legend: ``{{label}}`` filled in (empty when absent), or the series' labels."""
    if fmt and fmt != "__auto":
        return LEGEND_LABEL.sub(lambda m: labels.get(m.group(1), ""), fmt).strip()
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest else (name or "value")


def _number(value: object) -> float | None:
    return None if value is None else float(str(value))


def _panels(specs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for spec in specs:
        yield spec
        yield from _panels(spec.get("panels") or [])  # a collapsed row keeps its panels inside


def panel_from(spec: Mapping[str, Any]) -> Panel:
    grid = spec["gridPos"]
    defaults = (spec.get("fieldConfig") or {}).get("defaults") or {}
    custom = defaults.get("custom") or {}
    steps = (defaults.get("thresholds") or {}).get("steps") or []
    mappings: list[tuple[str, str, str]] = []
    for mapping in defaults.get("mappings") or []:
        if mapping.get("type") == "value":
            for value, result in (mapping.get("options") or {}).items():
                mappings.append((str(value), str(result.get("text", value)), str(result.get("color", ""))))
    return Panel(
        type=str(spec["type"]),
        title=str(spec.get("title", "")),
        grid=GridPos(x=int(grid["x"]), y=int(grid["y"]), w=int(grid["w"]), h=int(grid["h"])),
        targets=tuple(
            Target(expr=str(t["expr"]), legend=str(t.get("legendFormat", "")))
            for t in spec.get("targets") or []
            if not t.get("hide") and t.get("expr")
        ),
        unit=str(defaults.get("unit", "short")),
        min=_number(defaults.get("min")),
        max=_number(defaults.get("max")),
        stacked=(custom.get("stacking") or {}).get("mode", "none") != "none",
        thresholds=tuple(
            Threshold(color=str(s["color"]), value=-math.inf if s.get("value") is None else float(s["value"]))
            for s in steps
        ),
        threshold_lines=(custom.get("thresholdsStyle") or {}).get("mode", "off") in ("line", "dashed"),
        mappings=tuple(mappings),
    )


def load_dashboard(path: Path) -> Dashboard:
    data = json.loads(path.read_text())
    variables = tuple(
        variable_from(spec)
        for spec in (data.get("templating") or {}).get("list") or []
        if spec.get("type") in ("query", "custom", "constant", "textbox", "interval")
    )
    return Dashboard(
        uid=str(data["uid"]),
        title=str(data["title"]),
        panels=tuple(panel_from(spec) for spec in _panels(data.get("panels") or [])),
        variables=variables,
    )


def threshold_color(panel: Panel, value: float) -> str:
    """The colour of the highest step at or below ``value`` (Grafana's absolute thresholds)."""
    color = panel.thresholds[0].color if panel.thresholds else "green"
    for step in sorted(panel.thresholds, key=lambda s: s.value):
        if value >= step.value:
            color = step.color
    return color


def mapped(panel: Panel, value: float) -> tuple[str, str] | None:
    """A value mapping's (text, colour) for ``value``, if one matches it exactly."""
    for key, text, color in panel.mappings:
        try:
            if float(key) == value:
                return text, color
        except ValueError:  # a text key (Grafana maps text values too): never equal to a sample
            continue
    return None


def box(
    grid: GridPos, rows: int, *, figure_px: tuple[int, int], header_px: int = 0, gap_px: int = 0
) -> tuple[float, float, float, float]:
    """A grid position as matplotlib figure fractions (left, bottom, width, height).

    The grid fills the figure below a header of ``header_px``; ``rows`` is the dashboard's height in
    grid units; each panel keeps ``gap_px`` free on every side, as Grafana's panels do.
    """
    if rows <= 0 or grid.w <= 0 or grid.h <= 0 or grid.x < 0 or grid.y < 0:
        raise ValueError(f"no room for {grid} in {rows} rows")
    if grid.x + grid.w > GRID_COLUMNS or grid.y + grid.h > rows:
        raise ValueError(f"{grid} lies outside a {GRID_COLUMNS}x{rows} grid")
    width_px, height_px = figure_px
    column, row = width_px / GRID_COLUMNS, (height_px - header_px) / rows
    if min(grid.w * column, grid.h * row) <= 2 * gap_px:
        raise ValueError(f"{grid} is too small for a {gap_px} px gap")
    return (
        (grid.x * column + gap_px) / width_px,
        (height_px - header_px - (grid.y + grid.h) * row + gap_px) / height_px,
        (grid.w * column - 2 * gap_px) / width_px,
        (grid.h * row - 2 * gap_px) / height_px,
    )
