"""Every metric a rule or a dashboard names exists: declared by our code (prometheus_client) or exported
by the infrastructure's exporters. A renamed metric otherwise leaves an alert that can never fire and a
panel that shows "no data", and nothing else notices."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from .manifests import GRAFANA, PROMETHEUS, ROOT, load_yaml

# Series that come from outside the code: Prometheus itself, RabbitMQ's plugin, postgres_exporter.
EXTERNAL = re.compile(r"up|rabbitmq_\w+|pg_\w+")
# What a prometheus_client metric of each kind exposes under its declared name.
SUFFIXES = {
    "Counter": ("_total",),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_count", "_sum"),
    "Summary": ("_count", "_sum", ""),
    "Info": ("_info",),
    "Enum": ("",),
}
DECLARATION = re.compile(r'(Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"}
)


def _exported() -> set[str]:
    sources = [
        *ROOT.glob("shared/src/**/*.py"),
        *ROOT.glob("services/*/src/**/*.py"),
        *ROOT.glob("gateway/src/**/*.py"),
    ]
    names: set[str] = set()
    for path in sources:
        for kind, name in DECLARATION.findall(path.read_text()):
            base = name.removesuffix("_total") if kind == "Counter" else name
            names |= {base + suffix for suffix in SUFFIXES[kind]}
    return names


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (not functions, labels, keywords or numbers)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings: label values, Grafana variables
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\boffset\s+\w+", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr):
        if match.group(1).lower() not in KEYWORDS:
            names.add(match.group(1))
    return names


def _rules() -> Iterator[dict[str, str]]:
    for path in sorted((PROMETHEUS / "rules").glob("*.yml")):
        for group in load_yaml(path)["groups"]:
            yield from group["rules"]


def _dashboard_exprs() -> Iterator[tuple[str, str]]:
    def panels(items: list[dict[str, object]]) -> Iterator[dict[str, object]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels") or [])  # type: ignore[arg-type]

    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard["panels"]):
            for target in panel.get("targets") or []:  # type: ignore[attr-defined]
                yield path.name, target["expr"]
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            if isinstance(query, dict) and "label_values(" in query.get("query", ""):
                yield path.name, query["query"].split("(", 1)[1].split(",", 1)[0]


def test_deploy_metric_names_are_parsed_from_promql() -> None:
    expr = 'sum by (job, le) (rate(http_request_duration_seconds_bucket{job=~"$job", le="0.25"}[5m])) > 0'
    assert metric_names(expr) == {"http_request_duration_seconds_bucket"}
    expr = 'absent(up{job="x"}) or a_metric == 0 and on (instance) b:recorded offset 1m'
    assert metric_names(expr) == {"up", "a_metric", "b:recorded"}


def test_deploy_every_metric_a_rule_or_dashboard_names_is_exported() -> None:
    exported = _exported()
    assert "http_requests_total" in exported
    assert "outbox_relay_lag_seconds_bucket" in exported
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    missing = []
    for rule in _rules():
        where = rule.get("alert") or rule.get("record")
        missing += [
            f"rule {where}: {n}"
            for n in metric_names(rule["expr"]) - exported - recorded
            if not EXTERNAL.fullmatch(n)
        ]
    for name, expr in _dashboard_exprs():
        missing += [
            f"{name}: {n}" for n in metric_names(expr) - exported - recorded if not EXTERNAL.fullmatch(n)
        ]
    assert not missing, "metrics nothing exports:\n" + "\n".join(sorted(set(missing)))
