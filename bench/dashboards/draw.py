"""One PNG per dashboard, laid out as Grafana lays it out (24 columns), in Grafana's dark theme.

Timeseries panels draw each query's series with the panel's unit, min/max, stacking and threshold
lines, and a legend below; stat panels show each series' last value, coloured by the panel's value
mappings or thresholds; rows are headings. A panel whose queries returned nothing says "No data",
as Grafana does, and one whose query Prometheus refused shows the error.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator

from bench.dashboards.grafana import Dashboard, Panel, box, mapped, substitute, threshold_color
from bench.dashboards.prometheus import Series, finite
from bench.dashboards.units import format_value

WIDTH_PX, UNIT_PX, HEADER_PX, GAP_PX, DPI = 1800, 38, 64, 4, 100
TITLE_PX, PAD_PX, LEGEND_ROW_PX = 24, 8, 15
BACKGROUND, PANEL, BORDER, TEXT, MUTED, GRID = (
    "#111217",
    "#181b1f",
    "#2c3235",
    "#ccccdc",
    "#8e8e8e",
    "#2c3235",
)
# Grafana's named colours and its classic palette (the order it gives series their colours).
NAMED = {
    "green": "#73BF69",
    "red": "#F2495C",
    "orange": "#FF9830",
    "yellow": "#FADE2A",
    "blue": "#5794F2",
    "purple": "#B877D9",
    "text": TEXT,
}
PALETTE = (
    "#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2", "#B877D9", "#705DA0",
    "#37872D", "#FADE2A", "#447EBC", "#C15C17", "#890F02", "#0A437C", "#6D1F62", "#584477",
)  # fmt: skip


@dataclass(frozen=True)
class Drawn:
    """One series of a panel, ready to draw: its legend text and its samples."""

    name: str
    series: Series


@dataclass(frozen=True)
class PanelResult:
    panel: Panel
    drawn: tuple[Drawn, ...]
    error: str = ""


def colour(name: str) -> str:
    return NAMED.get(name, name)


class Canvas:
    """A figure measured in pixels from its top-left corner, as the grid is."""

    def __init__(self, rows: int) -> None:
        self.width, self.height = WIDTH_PX, HEADER_PX + rows * UNIT_PX
        self.rows = rows
        self.figure = Figure(figsize=(self.width / DPI, self.height / DPI), dpi=DPI, facecolor=BACKGROUND)

    def rect(self, left: float, top: float, width: float, height: float) -> tuple[float, float, float, float]:
        """Figure fractions (left, bottom, width, height) of a rectangle given in pixels."""
        return (left / self.width, 1 - (top + height) / self.height, width / self.width, height / self.height)

    def text(self, left: float, top: float, text: str, **style: Any) -> None:
        self.figure.text(left / self.width, 1 - top / self.height, text, va="top", **style)

    def panel_px(self, panel: Panel) -> tuple[float, float, float, float]:
        left, bottom, width, height = box(
            panel.grid, self.rows, figure_px=(self.width, self.height), header_px=HEADER_PX, gap_px=GAP_PX
        )
        return (
            left * self.width,
            (1 - bottom - height) * self.height,
            width * self.width,
            height * self.height,
        )


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S")


def _time_axis(ax: Axes) -> None:
    """Unix seconds on the x axis, ticked on round multiples (15 s, 30 s, 1 min), printed as UTC clock."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 1.5, 3, 6, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _clock(value)))
    ax.tick_params(axis="x", pad=6)  # clear of the lowest y label, which sits on the axis' bottom edge


def _style(ax: Axes, unit: str) -> None:
    ax.set_facecolor(PANEL)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(colors=MUTED, labelsize=7, length=0, pad=3)
    ax.grid(True, color=GRID, linewidth=0.6)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, min_n_ticks=2))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: format_value(value, unit)))


def _legend_layout(names: list[str], width: float, height: float) -> tuple[int, int]:
    """(columns, rows shown) for a legend of ``names`` under a plot ``width`` px wide, leaving the plot
    at least half of ``height``."""
    if not names:
        return 1, 0
    item = max(len(n) for n in names) * 5.6 + 28
    columns = max(1, min(len(names), int(width // item)))
    rows = math.ceil(len(names) / columns)
    return columns, max(1, min(rows, int(height * 0.45 // LEGEND_ROW_PX)))


def busiest_first(drawn: tuple[Drawn, ...]) -> list[Drawn]:
    """Series by mean value, highest first: when the legend cannot name them all, it names these."""
    return sorted(drawn, key=lambda d: -statistics.fmean(finite(d.series.values) or [0.0]))


def draw_timeseries(
    canvas: Canvas, result: PanelResult, where: tuple[float, float, float, float], window: tuple[float, float]
) -> None:
    panel = result.panel
    left, top, width, height = where
    columns, legend_rows = _legend_layout([d.name for d in result.drawn], width, height)
    drawn = list(result.drawn)
    if len(drawn) > columns * legend_rows:
        drawn = busiest_first(result.drawn)
    shown = min(len(drawn), columns * legend_rows)
    legend_px = legend_rows * LEGEND_ROW_PX + 4 if drawn else 0
    ax = canvas.figure.add_axes(
        canvas.rect(left + 52, top + TITLE_PX + 4, width - 60, height - TITLE_PX - 26 - legend_px)
    )
    _style(ax, panel.unit)
    _time_axis(ax)
    times = sorted({t for d in drawn for t in d.series.times})
    index = {t: i for i, t in enumerate(times)}
    base = [0.0] * len(times)
    handles: list[Line2D] = []
    for n, series in enumerate(drawn):
        values = [math.nan] * len(times)
        for t, v in zip(series.series.times, series.series.values, strict=True):
            values[index[t]] = v
        colour_ = PALETTE[n % len(PALETTE)]
        if panel.stacked:
            stacked = [b + (0.0 if math.isnan(v) else v) for b, v in zip(base, values, strict=True)]
            ax.fill_between(times, base, stacked, color=colour_, alpha=0.25, linewidth=0)
            (line,) = ax.plot(times, stacked, color=colour_, linewidth=1.1)
            base = stacked
        else:
            ax.fill_between(times, values, color=colour_, alpha=0.1, linewidth=0)
            (line,) = ax.plot(times, values, color=colour_, linewidth=1.1)
        handles.append(line)
    data = [v for d in drawn for v in finite(d.series.values)] + (base if panel.stacked else [])
    low = panel.min if panel.min is not None else min([0.0, *data])
    high = panel.max if panel.max is not None else max(data, default=1.0) * 1.05
    if high <= low:
        high = low + 1.0  # a flat line at 0: Grafana's 0..1 axis
    ax.set_ylim(low, high)
    ax.set_xlim(*window)
    if panel.threshold_lines:
        for step in panel.thresholds:
            if low < step.value <= high:
                ax.axhline(step.value, color=colour(step.color), linewidth=1, linestyle=(0, (4, 3)))
    if not drawn:
        ax.text(
            0.5,
            0.5,
            result.error or "No data",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color=NAMED["red"] if result.error else MUTED,
            fontsize=9,
            wrap=True,
        )
        return
    legend_ax = canvas.figure.add_axes(
        canvas.rect(left + 8, top + height - legend_px - 2, width - 16, legend_px)
    )
    legend_ax.set_axis_off()
    labels = [d.name for d in drawn[:shown]]
    if shown < len(drawn):
        labels[-1] = f"... and {len(drawn) - shown + 1} more"
    legend_ax.legend(
        handles[:shown],
        labels,
        loc="upper left",
        ncols=columns,
        frameon=False,
        fontsize=7,
        labelcolor=TEXT,
        handlelength=1.2,
        columnspacing=1.4,
        borderaxespad=0,
        borderpad=0,
        labelspacing=0.45,
    )


def draw_stat(
    canvas: Canvas, result: PanelResult, left: float, top: float, width: float, height: float
) -> None:
    panel = result.panel
    tiles = [(d.name, (finite(d.series.values) or [math.nan])[-1]) for d in result.drawn]
    area = (left + PAD_PX, top + TITLE_PX + 2, width - 2 * PAD_PX, height - TITLE_PX - PAD_PX - 2)
    if not tiles:
        canvas.text(
            left + width / 2,
            top + height / 2,
            result.error or "No data",
            ha="center",
            color=NAMED["red"] if result.error else MUTED,
            fontsize=9,
        )
        return
    columns = max(1, min(len(tiles), round(math.sqrt(len(tiles) * area[2] / max(area[3], 1.0)))))
    rows = math.ceil(len(tiles) / columns)
    tile_w, tile_h = area[2] / columns, area[3] / rows
    for n, (name, value) in enumerate(tiles):
        x, y = area[0] + (n % columns) * tile_w, area[1] + (n // columns) * tile_h
        hit = None if math.isnan(value) else mapped(panel, value)
        text = hit[0] if hit else format_value(value, panel.unit)
        fill = (
            colour(hit[1])
            if hit and hit[1]
            else MUTED
            if math.isnan(value)
            else colour(threshold_color(panel, value))
        )
        ax = canvas.figure.add_axes(canvas.rect(x + 2, y + 2, tile_w - 4, tile_h - 4))
        ax.set_axis_off()
        ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, facecolor=fill, edgecolor="none"))
        size = max(9.0, min(20.0, tile_h / 3.2, tile_w / max(len(text), 1) / 0.9))
        ax.text(
            0.5, 0.68, name, transform=ax.transAxes, ha="center", va="center", color="white", fontsize=7.5
        )
        ax.text(
            0.5,
            0.32,
            text,
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="white",
            fontsize=size,
            fontweight="bold",
        )


def render(
    dashboard: Dashboard,
    results: list[PanelResult],
    header: str,
    titles: dict[str, str],
    path: Path,
    source_digest: str,
    window: tuple[float, float],
) -> None:
    """``dashboard`` as a PNG at ``path``; the PNG records the digest of the JSON it was drawn from."""
    canvas = Canvas(dashboard.rows)
    canvas.text(12, 10, dashboard.title, color=TEXT, fontsize=15, fontweight="bold")
    canvas.text(12, 36, header, color=MUTED, fontsize=8.5)
    for result in results:
        panel = result.panel
        left, top, width, height = canvas.panel_px(panel)
        title = substitute(panel.title, titles)
        if panel.type == "row":
            canvas.text(left + 2, top + 6, title, color=TEXT, fontsize=11, fontweight="bold")
            continue
        x, y, w, h = canvas.rect(left, top, width, height)
        canvas.figure.add_artist(
            Rectangle(
                (x, y),
                w,
                h,
                transform=canvas.figure.transFigure,
                facecolor=PANEL,
                edgecolor=BORDER,
                linewidth=0.8,
                zorder=-1,  # behind the panel's axes (zorder 0)
            )
        )
        canvas.text(left + PAD_PX, top + 6, title, color=TEXT, fontsize=9, fontweight="bold")
        if panel.type == "stat":
            draw_stat(canvas, result, left, top, width, height)
        else:
            draw_timeseries(canvas, result, (left, top, width, height), window)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.figure.savefig(
        path, dpi=DPI, facecolor=BACKGROUND, metadata={"Software": None, "Dashboard-SHA256": source_digest}
    )
