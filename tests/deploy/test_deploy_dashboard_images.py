"""The dashboard images in deploy/README.md: drawn from the dashboards as they are, and how they are drawn.

``make dashboards`` (bench/dashboards) runs the system under load and draws each dashboard from
Prometheus; these tests need no stack. They check the pieces that decide what a picture shows
(variable substitution, legends, units, the grid), and that every committed image was drawn from the
dashboard JSON it sits beside (each PNG records the SHA-256 of its source).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
from PIL import Image

from bench.dashboards.draw import Drawn, busiest_first
from bench.dashboards.grafana import (
    GridPos,
    Panel,
    Threshold,
    box,
    legend,
    load_dashboard,
    mapped,
    panel_from,
    query_values,
    substitute,
    threshold_color,
    variable_from,
)
from bench.dashboards.prometheus import Series
from bench.dashboards.units import format_value

from .manifests import DEPLOY, GRAFANA

DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
IMAGES = GRAFANA / "images"


# --- variables ----------------------------------------------------------------------------------


def test_substitute_replaces_every_spelling_of_a_variable() -> None:
    values = {"job": "(orders|users)", "__rate_interval": "15s"}
    expr = (
        'rate(x{job=~"$job"}[$__rate_interval]) + on() y{job=~"${job}"} + z{job=~"[[job]]", a="${job:regex}"}'
    )
    assert substitute(expr, values) == (
        'rate(x{job=~"(orders|users)"}[15s]) + on() y{job=~"(orders|users)"}'
        ' + z{job=~"(orders|users)", a="(orders|users)"}'
    )


@pytest.mark.parametrize(
    "expr",
    [
        'x{job=~"$jobs"}',  # a longer name is another variable, not $job followed by "s"
        'x{job=~"$Job"}',  # names are case-sensitive
        "rate(x[$__range])",
        'x{a="${missing}"}',
        'x{a="[[missing]]"}',
    ],
)
def test_substitute_refuses_a_variable_the_dashboard_does_not_define(expr: str) -> None:
    with pytest.raises(ValueError, match="is not a variable of this dashboard"):
        substitute(expr, {"job": ".*", "__rate_interval": "15s"})


@pytest.mark.parametrize(
    "expr",
    [
        'label_replace(up, "dst", "$1", "instance", "(.*):.*")',  # a capture reference, not a variable
        'x{route=~"^/api$"}',
        "x + $",
        'x{a="[[1]]"}',
        "sum(rate(x[5m]))",
    ],
)
def test_substitute_leaves_what_is_not_a_variable_alone(expr: str) -> None:
    assert substitute(expr, {}) == expr


def test_a_variable_at_all_matches_everything_unless_it_says_otherwise() -> None:
    spec = {
        "name": "job",
        "multi": True,
        "includeAll": True,
        "current": {"text": ["All"], "value": ["$__all"]},
    }
    assert variable_from(spec).value == ".*"
    assert variable_from(spec).text == "All"
    assert variable_from(spec | {"allValue": "orders|users"}).value == "orders|users"


def test_chosen_values_of_a_multi_value_variable_become_an_escaped_regex() -> None:
    spec = {
        "name": "route",
        "multi": True,
        "current": {"text": ["a", "b"], "value": ["/api/v1/orders/*", "a.b"]},
    }
    assert variable_from(spec).value == r"(/api/v1/orders/\*|a\.b)"
    one = {"name": "route", "multi": True, "current": {"text": "x", "value": ["/x?"]}}
    assert variable_from(one).value == r"/x\?"
    plain = {"name": "env", "type": "custom", "current": {"text": "prod", "value": "prod.eu"}}
    assert variable_from(plain).value == "prod.eu"  # a single-value variable goes in as written


@pytest.mark.parametrize("source", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_of_every_dashboard_has_its_variables_defined(source: Path) -> None:
    dashboard = load_dashboard(source)
    values = query_values(dashboard, "15s")
    raw = json.loads(source.read_text())
    for panel in dashboard.panels:
        for target in panel.targets:
            query = substitute(target.expr, values)  # raises for an undefined variable
            assert "$" not in query.replace('"$1"', ""), (panel.title, query)
    expected = sum(1 + len(p.get("panels") or []) for p in raw["panels"])
    assert len(dashboard.panels) == expected
    assert any(panel.targets for panel in dashboard.panels), source.name


# --- panels: legends, units, colours ------------------------------------------------------------


def test_legend_fills_labels_and_leaves_absent_ones_empty() -> None:
    assert legend("{{job}} to {{ upstream }}", {"job": "orders", "upstream": "users"}) == "orders to users"
    assert legend("{{consumer}}.dlq {{nope}}", {"consumer": "realtime"}) == "realtime.dlq"
    assert (
        legend("", {"__name__": "up", "job": "orders", "instance": "a:1"})
        == 'up{instance="a:1", job="orders"}'
    )
    assert legend("__auto", {}) == "value"


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.0123, "s", "12.3 ms"),
        (0.25, "s", "250 ms"),
        (90, "s", "1.5 min"),
        (4e-6, "s", "4 µs"),
        (0, "s", "0 s"),
        (0.05, "percentunit", "5%"),
        (1234, "short", "1.23 K"),
        (2_500_000, "short", "2.5 Mil"),
        (12.345, "ops", "12.3 ops/s"),
        (0.5, "reqps", "0.5 req/s"),
        (-3, "short", "-3"),
        (math.nan, "s", "No data"),
        (7, "bytes", "7 bytes"),
    ],
)
def test_values_print_in_the_panels_unit(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_stat_colours_follow_mappings_then_thresholds() -> None:
    panel = Panel(
        type="stat",
        title="breakers",
        grid=GridPos(0, 0, 6, 8),
        thresholds=(Threshold("green", -math.inf), Threshold("red", 1), Threshold("orange", 2)),
        mappings=(("0", "closed", "green"), ("2", "half-open", "orange")),
    )
    assert [threshold_color(panel, v) for v in (-5, 0, 0.99, 1, 1.5, 2, 40)] == [
        "green", "green", "green", "red", "red", "orange", "orange",
    ]  # fmt: skip
    assert mapped(panel, 2.0) == ("half-open", "orange")
    assert mapped(panel, 1.0) is None


def test_a_panel_reads_unit_limits_stacking_and_threshold_lines() -> None:
    panel = panel_from(
        {
            "type": "timeseries",
            "title": "t",
            "gridPos": {"x": 8, "y": 1, "w": 8, "h": 8},
            "fieldConfig": {
                "defaults": {
                    "unit": "percentunit",
                    "min": 0,
                    "max": 1,
                    "custom": {"stacking": {"mode": "normal"}, "thresholdsStyle": {"mode": "line"}},
                    "thresholds": {
                        "steps": [{"color": "green", "value": None}, {"color": "red", "value": 0.05}]
                    },
                }
            },
            "targets": [{"expr": "a", "legendFormat": "A"}, {"expr": "b", "hide": True}, {"expr": ""}],
        }
    )
    assert (panel.unit, panel.min, panel.max, panel.stacked, panel.threshold_lines) == (
        "percentunit", 0.0, 1.0, True, True,
    )  # fmt: skip
    assert [t.expr for t in panel.targets] == ["a"]  # hidden and empty queries are not drawn
    assert panel.thresholds[0].value == -math.inf


def test_a_crowded_legend_names_the_busiest_series() -> None:
    def drawn(name: str, *values: float) -> Drawn:
        return Drawn(name, Series({}, tuple(range(len(values))), values))

    ordered = busiest_first(
        (drawn("idle", 0, 0), drawn("busy", 5, math.nan, 7), drawn("some", 1, 2), drawn("gap"))
    )
    assert [d.name for d in ordered] == ["busy", "some", "idle", "gap"]


# --- the grid -----------------------------------------------------------------------------------


def test_a_full_width_row_spans_the_figure_below_the_header() -> None:
    left, bottom, width, height = box(GridPos(0, 0, 24, 1), 10, figure_px=(2400, 1100), header_px=100)
    assert (left, width) == (0.0, 1.0)
    assert bottom + height == pytest.approx(1000 / 1100)  # its top is the header's bottom
    assert height == pytest.approx(100 / 1100)


def test_panels_side_by_side_keep_their_gap_and_do_not_overlap() -> None:
    size = (1800, 64 + 9 * 38)
    a = box(GridPos(0, 1, 8, 8), 9, figure_px=size, header_px=64, gap_px=4)
    b = box(GridPos(8, 1, 8, 8), 9, figure_px=size, header_px=64, gap_px=4)
    assert a[1] == pytest.approx(b[1])  # same row
    assert (b[0] - (a[0] + a[2])) * size[0] == pytest.approx(8)  # two gaps between them
    assert a[1] * size[1] == pytest.approx(4)  # the bottom row ends a gap above the figure's edge


@pytest.mark.parametrize(
    "grid",
    [
        GridPos(20, 0, 8, 1),
        GridPos(0, 9, 4, 2),
        GridPos(-1, 0, 4, 1),
        GridPos(0, 0, 0, 1),
        GridPos(0, 0, 1, 1),
    ],
)
def test_a_panel_outside_the_grid_or_too_small_is_refused(grid: GridPos) -> None:
    with pytest.raises(ValueError):
        box(grid, 10, figure_px=(240, 400), gap_px=6)


# --- the committed images -----------------------------------------------------------------------


@pytest.mark.parametrize("source", DASHBOARDS, ids=lambda p: p.name)
def test_each_dashboard_has_an_image_drawn_from_its_current_json(source: Path) -> None:
    uid = json.loads(source.read_text())["uid"]
    image = IMAGES / f"{uid}.png"
    assert image.is_file(), f"{image} is missing: `make dashboards` draws it"
    with Image.open(image) as png:
        recorded = png.info.get("Dashboard-SHA256")
        assert png.size[0] >= 1200
    assert recorded == hashlib.sha256(source.read_bytes()).hexdigest(), (
        f"{image.name} was drawn from another version of {source.name}: run `make dashboards`"
    )


def test_the_deploy_readme_shows_every_dashboard_image() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for source in DASHBOARDS:
        uid = json.loads(source.read_text())["uid"]
        assert f"](grafana/images/{uid}.png)" in readme, uid
    assert "make dashboards" in readme
    assert sorted(p.stem for p in IMAGES.glob("*.png")) == sorted(
        json.loads(s.read_text())["uid"] for s in DASHBOARDS
    ), "an image without a dashboard"
