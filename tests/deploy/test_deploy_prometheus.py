"""Prometheus: scrape jobs, alert rules (promtool check and unit tests) and the operator's copy of them.

promtool comes from Debian's ``prometheus`` package (`make apt-test`); without it these tests fail."""

from __future__ import annotations

import re

import pytest

from shared.testing.tools import require_tool

from .manifests import (
    COMPONENTS,
    OVERLAYS,
    PORTS,
    PROMETHEUS,
    Manifest,
    load_yaml,
    named,
    of_kind,
    render,
    run,
)


def _rule_groups() -> list[Manifest]:
    groups: list[Manifest] = []
    for path in sorted((PROMETHEUS / "rules").glob("*.yml")):
        groups += load_yaml(path)["groups"]
    return groups


# Jobs besides the components': RabbitMQ's plugin (node, then per-queue metrics) and postgres_exporter.
INFRASTRUCTURE_JOBS = {
    "rabbitmq": ("rabbitmq:15692", "/metrics"),
    "rabbitmq-queues": ("rabbitmq:15692", "/metrics/detailed"),
    "postgres": ("postgres-exporter:9187", "/metrics"),
}


def _scrape_jobs() -> dict[str, Manifest]:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_deploy_prometheus_scrapes_every_component_under_its_own_job() -> None:
    jobs = _scrape_jobs()
    for name in COMPONENTS:
        assert name in jobs, f"prometheus.yml has no job {name}"
        targets = [t for static in jobs[name]["static_configs"] for t in static["targets"]]
        # The Compose service name and port; the job label is what rules and dashboards group by.
        assert targets == [f"{name}:{PORTS[name]}"], targets
        assert jobs[name].get("metrics_path", "/metrics") == "/metrics"
    for name, (target, path) in INFRASTRUCTURE_JOBS.items():
        assert name in jobs, f"prometheus.yml has no job {name}"
        assert [t for static in jobs[name]["static_configs"] for t in static["targets"]] == [target]
        assert jobs[name]["metrics_path"] == path, name
    assert load_yaml(PROMETHEUS / "prometheus.yml")["rule_files"], "prometheus.yml loads no rules"


# The operations issue's list: two SLOs with multi-window burn rates, targets (and their absence), the
# event flow, realtime, RabbitMQ and PostgreSQL.
REQUIRED_ALERTS = frozenset(
    {
        "HttpErrorSLOFastBurn",
        "HttpErrorSLOSlowBurn",
        "HttpErrorSLOBudgetBurn",
        "HttpLatencySLOFastBurn",
        "HttpLatencySLOSlowBurn",
        "HttpLatencySLOBudgetBurn",
        "MicroservicesTargetDown",
        "MicroservicesScrapeJobAbsent",
        "OutboxBacklogOld",
        "DeadLetterQueueNotEmpty",
        "EventConsumerDown",
        "RealtimeAllConnectionsLost",
        "ScheduledJobNotSucceeding",
        "RabbitmqMemoryAlarm",
        "RabbitmqDiskAlarm",
        "RabbitmqLowDiskWatermarkPredicted",
        "RabbitmqQueueIsGrowing",
        "RabbitmqQueueHasNoConsumers",
        "PostgresDown",
        "PostgresTooManyConnections",
        "PostgresReplicationLagHigh",
        "PostgresDeadlocks",
    }
)
# (burn factor, long window, short window, severity): Google SRE workbook, "Alerting on SLOs".
BURN_RATES = {
    "FastBurn": ("14.4", "1h", "5m", "page"),
    "SlowBurn": ("6", "6h", "30m", "page"),
    "BudgetBurn": ("1", "3d", "6h", "ticket"),
}


def _alerts() -> dict[str, Manifest]:
    return {rule["alert"]: rule for group in _rule_groups() for rule in group["rules"] if "alert" in rule}


def test_deploy_prometheus_alerts_cover_slos_targets_and_infrastructure() -> None:
    alerts = _alerts()
    assert set(alerts) >= REQUIRED_ALERTS, sorted(REQUIRED_ALERTS - set(alerts))
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        assert rule["annotations"]["summary"], name
    for slo in ("HttpErrorSLO", "HttpLatencySLO"):
        for suffix, (factor, long, short, severity) in BURN_RATES.items():
            rule = alerts[slo + suffix]
            windows = re.findall(r"ratio_rate(\w+) > \(([\d.]+) \*", rule["expr"])
            assert sorted(windows) == sorted([(long, factor), (short, factor)]), (slo + suffix, windows)
            assert rule["labels"]["severity"] == severity, slo + suffix


def test_deploy_prometheus_every_scrape_job_is_guarded_against_absence() -> None:
    # A job whose targets vanish leaves no `up` series: without absent() its alerts fall silent.
    alerts = _alerts()
    guarded = set(
        re.findall(r'absent\(up\{job="([^"]+)"\}\)', alerts["MicroservicesScrapeJobAbsent"]["expr"])
    )
    ours = set(_scrape_jobs()) - {"prometheus"}
    assert ours <= guarded, f"no absent() guard for {sorted(ours - guarded)}"
    down = re.search(r'up\{job=~"([^"]+)"\} == 0', alerts["MicroservicesTargetDown"]["expr"])
    assert down is not None
    assert ours <= set(down.group(1).split("|")), (
        f"TargetDown misses {sorted(ours - set(down.group(1).split('|')))}"
    )


def _latency_sli_exclusion() -> re.Pattern[str]:
    rules = [
        r
        for g in _rule_groups()
        for r in g["rules"]
        if r.get("record", "").startswith("job:http_request_slow")
    ]
    assert rules
    excluded = {m for r in rules for m in re.findall(r'route!~"([^"]+)"', r["expr"])}
    assert len(excluded) == 1, excluded
    return re.compile(excluded.pop())


def test_deploy_prometheus_latency_sli_leaves_out_every_stream_route() -> None:
    from fastapi.routing import APIRoute
    from sse_starlette import EventSourceResponse

    from gateway.settings import DEFAULT_ROUTES
    from realtime.delivery.sse import router as sse_router

    excluded = _latency_sli_exclusion()
    # The labels the gateway records for its SSE and WebSocket routes, and realtime's own SSE routes.
    # /graphql serves both: its HTTP requests are ordinary queries and count, while its WebSocket
    # subscriptions never reach the HTTP metrics (they record HTTP scopes only).
    streams = [
        spec.pattern
        for spec in DEFAULT_ROUTES
        if spec.stream or (spec.websocket and spec.pattern != "/graphql")
    ]
    streams += [
        route.path
        for route in sse_router.routes
        if isinstance(route, APIRoute) and route.response_class is EventSourceResponse
    ]
    assert "/api/v1/events/stream" in streams, streams
    for label in streams:
        assert excluded.fullmatch(label), f"the latency SLI counts the stream route {label}"
    for label in ("/api/v1/orders/*", "/api/v1/orders/{order_id}", "/api/v1/notifications"):
        assert not excluded.fullmatch(label), f"the latency SLI leaves out {label}"


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


def test_deploy_prometheus_every_alert_has_a_unit_test_that_fires_and_one_that_stays_silent() -> None:
    alerts = set(_alerts())
    cases = [
        case
        for path in (PROMETHEUS / "tests").glob("*.yml")
        for test in load_yaml(path)["tests"]
        for case in test.get("alert_rule_test") or []
    ]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    silent = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert alerts <= fires, f"alerts no promtool test sees firing: {sorted(alerts - fires)}"
    assert alerts <= silent, f"alerts no promtool test sees silent: {sorted(alerts - silent)}"


def test_deploy_k8s_prometheus_rule_is_a_copy_of_the_rules_files() -> None:
    rule = named(render("prod"), "PrometheusRule", "http-red")
    assert rule["spec"]["groups"] == _rule_groups(), (
        "deploy/k8s/base/monitoring/prometheusrule.yaml differs from deploy/prometheus/rules/*.yml; "
        "run .venv/bin/python deploy/prometheus/sync.py (the rules files are the tested source)"
    )


def test_deploy_k8s_dev_overlay_never_pages_and_prod_does() -> None:
    def severities(overlay: str) -> dict[str, str]:
        rule = named(render(overlay), "PrometheusRule", "http-red")
        return {
            r["alert"]: r["labels"]["severity"]
            for g in rule["spec"]["groups"]
            for r in g["rules"]
            if "alert" in r
        }

    dev, prod = severities("dev"), severities("prod")
    assert set(dev) == set(prod)
    paging = sorted(name for name, severity in dev.items() if severity == "page")
    assert not paging, f"the dev overlay pages for {paging}: run .venv/bin/python deploy/prometheus/sync.py"
    assert {name for name, severity in prod.items() if severity == "page"} >= {
        "HttpErrorSLOFastBurn",
        "PostgresDown",
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deploy_k8s_scrapes_every_job_prometheus_yml_scrapes(overlay: str) -> None:
    # The rules (and their absent() guards) name jobs: Kubernetes must produce the same job labels.
    jobs: set[str] = set()
    for monitor in of_kind(render(overlay), "ServiceMonitor"):
        for endpoint in monitor["spec"]["endpoints"]:
            relabelled = [
                r["replacement"] for r in endpoint.get("relabelings") or [] if r["targetLabel"] == "job"
            ]
            # Without a relabelling the operator names the job after the Service (the monitor's name here).
            jobs |= set(relabelled) or {monitor["metadata"]["name"]}
    expected = set(_scrape_jobs()) - {"prometheus"}
    assert expected <= jobs, f"{overlay} scrapes no {sorted(expected - jobs)}"
