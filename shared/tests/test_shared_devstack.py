"""What ``make run`` prints once the system is up: where a person looks next."""

from __future__ import annotations

from shared.devstack import COMPONENTS, Stack, where_to_look


def test_make_run_says_where_the_console_docs_metrics_and_dashboards_are() -> None:
    ports = {c.name: 9100 + i for i, c in enumerate(COMPONENTS)}
    stack = Stack("postgresql://x/app", "amqp://x/", list(COMPONENTS), ports=ports)
    text = "\n".join(where_to_look(stack))
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    assert f"{gateway}/console" in text
    assert f"{gateway}/docs" in text
    for component in COMPONENTS:
        assert f"http://127.0.0.1:{ports[component.name]}/metrics" in text
    assert "Grafana at http://127.0.0.1:3000" in text
