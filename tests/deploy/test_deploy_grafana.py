"""Grafana: the dashboards, their PromQL (parsed by promtool), and their provisioning."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from shared.testing.tools import require_tool

from .manifests import GRAFANA, Manifest, compose_file, load_yaml, run


def _panels(panels: list[Manifest]) -> Iterator[Manifest]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


# What each dashboard is for, by the expressions its panels must use.
DASHBOARD_NEEDLES = {
    # RED per service, and the calls between components (gateway upstreams, rate limit, breakers).
    "red-per-service.json": (
        "rate(http_requests_total",
        'status=~"5.."',
        "histogram_quantile(0.50",
        "histogram_quantile(0.99",
        "http_request_duration_seconds_bucket",
        "gateway_upstream_request_duration_seconds_bucket",
        "gateway_upstream_errors_total",
        "gateway_rate_limited_total",
        "circuit_breaker_state",
        # The scheduled jobs of every service (shared.jobs).
        "job_last_success_timestamp_seconds",
        "job_runs_total",
        "job_duration_seconds_bucket",
    ),
    "event-flow.json": (
        "outbox_published_total",
        "outbox_pending",
        "outbox_oldest_pending_age_seconds",
        "outbox_relay_lag_seconds_bucket",
        "events_consumed_total",
        "events_retried_total",
        "events_dead_lettered_total",
        "event_dlq_messages",
        "event_consumer_up",
    ),
    "realtime.json": (
        "realtime_connections",
        "realtime_users_online",
        "realtime_frames_sent_total",
        "realtime_disconnects_total",
        "realtime_delivery_lag_seconds_bucket",
        "realtime_listener_up",
    ),
}


def _dashboards() -> dict[str, Manifest]:
    paths = sorted((GRAFANA / "dashboards").glob("*.json"))
    return {path.name: json.loads(path.read_text()) for path in paths}


def _dashboard_exprs(dashboard: Manifest) -> list[str]:
    return [t["expr"] for p in _panels(dashboard["panels"]) for t in p.get("targets") or []]


def test_deploy_grafana_dashboards_are_json_with_red_panels() -> None:
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    uids = {source["uid"] for source in datasources if source["type"] == "prometheus"}
    dashboards = _dashboards()
    assert set(dashboards) >= set(DASHBOARD_NEEDLES), sorted(set(DASHBOARD_NEEDLES) - set(dashboards))
    assert len({d["uid"] for d in dashboards.values()}) == len(dashboards), "two dashboards share a uid"
    for name, dashboard in dashboards.items():
        assert dashboard["uid"], name
        assert dashboard["title"], name
        panels = [p for p in _panels(dashboard["panels"]) if p.get("type") != "row"]
        assert panels, f"{name} has no panels"
        ids = [p["id"] for p in _panels(dashboard["panels"])]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        exprs = " ".join(_dashboard_exprs(dashboard))
        for needle in DASHBOARD_NEEDLES.get(name, ()):
            assert needle in exprs, f"{name}: no panel uses {needle}"
        for panel in panels:
            assert panel["datasource"]["uid"] in uids, f"{name}: {panel['title']} names no provisioned source"
            assert panel.get("targets"), f"{name}: {panel['title']} queries nothing"


def test_deploy_grafana_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every panel's query, as a recording rule (Grafana's variables filled in)."""
    promtool = require_tool("promtool")
    rules = [
        {"record": f"dashboard:query_{n}:check", "expr": expr}
        for n, expr in enumerate(
            expr.replace("$__rate_interval", "5m").replace("$job", "users")
            for dashboard in _dashboards().values()
            for expr in _dashboard_exprs(dashboard)
        )
    ]
    check = tmp_path / "dashboard-queries.yml"
    check.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = run(promtool, "check", "rules", str(check))
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_grafana_provisions_the_dashboards_folder() -> None:
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "dashboards.yml")["providers"]
    paths = {provider["options"]["path"] for provider in providers}
    grafana = compose_file()["services"]["grafana"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in grafana["volumes"]}
    for path in paths:
        assert mounts.get(path) == "./deploy/grafana/dashboards", f"{path} is not mounted from the repo"
    assert mounts.get("/etc/grafana/provisioning") == "./deploy/grafana/provisioning"


def test_deploy_grafana_multi_value_variables_are_matched_as_regexes() -> None:
    # A multi-value variable (its default is "All") expands to `a|b|c`: with `=` it matches no series.
    for name, dashboard in _dashboards().items():
        multi = [v["name"] for v in dashboard.get("templating", {}).get("list", []) if v.get("multi")]
        for expr in _dashboard_exprs(dashboard):
            for variable in multi:
                assert not re.search(rf'=\s*"\${variable}"', expr), (
                    f"{name}: use =~ for ${variable} in {expr}"
                )
