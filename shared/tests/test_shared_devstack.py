"""What ``make run`` prints once the system is up: where a person looks next."""

from __future__ import annotations

import os

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


def test_a_component_gets_its_own_environment_on_top_of_the_stack_s() -> None:
    stack = Stack(
        database_url="postgresql://postgres@127.0.0.1:5432/app",
        amqp_url="amqp://guest:guest@127.0.0.1:5672/",
        components=list(COMPONENTS),
        env={"LOG_LEVEL": "WARNING"},
        component_env={"orders": {"SHUTDOWN_DELAY": "1.0", "LOG_LEVEL": "INFO"}},
    )
    orders = stack.child_env("orders")
    assert (orders["SHUTDOWN_DELAY"], orders["LOG_LEVEL"]) == ("1.0", "INFO")
    users = stack.child_env("users")
    assert "SHUTDOWN_DELAY" not in users or users["SHUTDOWN_DELAY"] == os.environ.get("SHUTDOWN_DELAY")
    assert users["LOG_LEVEL"] == "WARNING"
