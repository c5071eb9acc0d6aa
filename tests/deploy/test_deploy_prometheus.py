"""Prometheus: scrape jobs, alert rules (promtool check and unit tests) and the operator's copy of them.

promtool comes from Debian's ``prometheus`` package (`make apt-test`); without it these tests fail."""

from __future__ import annotations

import re

from shared.testing.tools import require_tool

from .manifests import COMPONENTS, PORTS, PROMETHEUS, Manifest, load_yaml, named, render, run


def _rule_groups() -> list[Manifest]:
    groups: list[Manifest] = []
    for path in sorted((PROMETHEUS / "rules").glob("*.yml")):
        groups += load_yaml(path)["groups"]
    return groups


def test_deploy_prometheus_scrapes_every_component_under_its_own_job() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in COMPONENTS:
        assert name in jobs, f"prometheus.yml has no job {name}"
        targets = [t for static in jobs[name]["static_configs"] for t in static["targets"]]
        # The Compose service name and port; the job label is what rules and dashboards group by.
        assert targets == [f"{name}:{PORTS[name]}"], targets
        assert jobs[name].get("metrics_path", "/metrics") == "/metrics"
    assert config["rule_files"], "prometheus.yml loads no rules"


# The operations issue's list: RED, two-window burn rates, targets, the event flow and realtime.
REQUIRED_ALERTS = frozenset(
    {
        "HttpHighErrorRatio",
        "HttpLatencySLOFastBurn",
        "HttpLatencySLOSlowBurn",
        "TargetDown",
        "OutboxBacklogOld",
        "DeadLetterQueueNotEmpty",
        "EventConsumerDown",
        "RealtimeAllConnectionsLost",
        "ScheduledJobNotSucceeding",
    }
)


def test_deploy_prometheus_alerts_cover_errors_latency_and_targets() -> None:
    alerts = {rule["alert"]: rule for group in _rule_groups() for rule in group["rules"] if "alert" in rule}
    assert set(alerts) >= REQUIRED_ALERTS, sorted(REQUIRED_ALERTS - set(alerts))
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        assert rule["annotations"]["summary"], name
    # Two windows per burn-rate alert.
    for name in ("HttpLatencySLOFastBurn", "HttpLatencySLOSlowBurn"):
        assert len(re.findall(r"ratio_rate\w+", alerts[name]["expr"])) == 2, name


def test_deploy_prometheus_rules_pass_promtool_check() -> None:
    promtool = require_tool("promtool")
    rules = sorted(str(p) for p in (PROMETHEUS / "rules").glob("*.yml"))
    result = run(promtool, "check", "rules", *rules)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_prometheus_rule_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    tests = sorted(str(p) for p in (PROMETHEUS / "tests").glob("*.yml"))
    assert tests, "deploy/prometheus/tests has no promtool unit tests"
    result = run(promtool, "test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_prometheus_every_alert_has_a_unit_test() -> None:
    alerts = {rule["alert"] for group in _rule_groups() for rule in group["rules"] if "alert" in rule}
    tested = {
        case["alertname"]
        for path in (PROMETHEUS / "tests").glob("*.yml")
        for test in load_yaml(path)["tests"]
        for case in test.get("alert_rule_test") or []
        if case.get("exp_alerts")
    }
    assert alerts <= tested, f"alerts no promtool test sees firing: {sorted(alerts - tested)}"


def test_deploy_k8s_prometheus_rule_is_a_copy_of_the_rules_files() -> None:
    rule = named(render("prod"), "PrometheusRule", "http-red")
    assert rule["spec"]["groups"] == _rule_groups(), (
        "deploy/k8s/base/monitoring/prometheusrule.yaml differs from deploy/prometheus/rules/*.yml; "
        "copy the groups over (the rules files are the tested source)"
    )
