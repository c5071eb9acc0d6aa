"""Operations, on the whole system as ``make run`` starts it: metrics, Prometheus, graceful shutdown.

- every component's ``/metrics`` passes ``promtool check metrics`` and has the families the alerts and
  dashboards read, and those name no metric that nothing exposes;
- Debian's real Prometheus, with the project's rules, scrapes every component and sees it up;
- SIGTERM to orders under load: it turns not-ready, finishes what it accepted (every 201 has its row
  and its event on the broker), acks the messages it took and leaves the rest in the queue.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from shared.devstack import COMPONENTS, Stack
from shared.messaging.events import EXCHANGE, UserDeactivated, UserDeactivatedData
from shared.testing.fixtures import queue_depth
from shared.testing.tools import require_tool
from shared.testing.waits import eventually_blocking

from .conftest import free_port
from .opsstack import register, running_stack

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"

ORDER = {
    "currency": "USD",
    "items": [{"sku": "OPS-1", "name": "Widget", "quantity": 1, "unit_price_cents": 100}],
}
SHUTDOWN_DELAY = 1.0

HTTP = {"http_requests", "http_request_duration_seconds", "http_requests_in_flight"}
OUTBOX = {
    "outbox_pending",
    "outbox_oldest_pending_age_seconds",
    "outbox_published",
    "outbox_publish_failures",
    "outbox_relay_lag_seconds",
    "outbox_relay_leading",
}
CONSUMER = {
    "events_consumed",
    "events_retried",
    "events_dead_lettered",
    "event_consumer_up",
    "event_dlq_messages",
    "event_consumer_waiting_for_database",
}
# The families each component must expose (prometheus_client's names: counters without _total).
FAMILIES = {
    "gateway": HTTP
    | {"gateway_upstream_request_duration_seconds", "gateway_upstream_errors", "gateway_rate_limited"},
    "users": HTTP | OUTBOX,
    "orders": HTTP | OUTBOX | CONSUMER | {"circuit_breaker_state"},
    "notification": HTTP | OUTBOX | CONSUMER,
    "realtime": HTTP | CONSUMER | {"realtime_connections", "realtime_users_online"},
    "graphql": HTTP,
}
OUR_PREFIXES = ("http_", "outbox_", "event_", "events_", "realtime_", "gateway_", "circuit_breaker_", "email")
LABEL_NAMES = frozenset({"event_type"})


@pytest.fixture(scope="module")
def ops_stack(
    test_database_url: str,
    test_amqp_url: str,
    signing_key_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    with running_stack(
        test_database_url,
        test_amqp_url,
        signing_key_file,
        tmp_path_factory.mktemp("ops"),
        component_env={"orders": {"SHUTDOWN_DELAY": str(SHUTDOWN_DELAY)}},
    ) as stack:
        # Some traffic, so that the labelled series (per route, per event type) exist.
        _, auth = register(stack.url("gateway"))
        assert (
            httpx.post(stack.url("gateway") + "/api/v1/orders", json=ORDER, headers=auth).status_code == 201
        )
        yield stack


def scrape(stack: Stack, name: str) -> str:
    response = httpx.get(stack.url(name) + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def exposed_names(text: str) -> set[str]:
    """Every series name a query may use: samples, and what an empty labelled family will produce."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


def referenced_names() -> dict[str, set[str]]:
    """Our metric names in every rule and dashboard query, by file."""
    found: dict[str, set[str]] = {}
    exprs: list[tuple[str, str]] = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            exprs += [(path.name, str(rule["expr"])) for rule in group["rules"]]
    for path in sorted(DASHBOARDS.glob("*.json")):
        stack: list[Any] = list(json.loads(path.read_text())["panels"])
        while stack:
            panel = stack.pop()
            stack += panel.get("panels") or []
            exprs += [(path.name, target["expr"]) for target in panel.get("targets") or []]
    for source, expr in exprs:
        for token in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
            if token.startswith(OUR_PREFIXES) and ":" not in token and token not in LABEL_NAMES:
                found.setdefault(source, set()).add(token)
    return found


def test_every_component_serves_metrics_that_pass_promtool_check_metrics(ops_stack: Stack) -> None:
    promtool = require_tool("promtool")
    for component in COMPONENTS:
        text = scrape(ops_stack, component.name)
        result = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, f"{component.name}: {result.stdout}{result.stderr}"
        families = {family.name for family in text_string_to_metric_families(text)}
        missing = FAMILIES[component.name] - families
        assert not missing, f"{component.name} does not expose {sorted(missing)}"


def test_alerts_and_dashboards_name_only_metrics_the_components_expose(ops_stack: Stack) -> None:
    exposed: set[str] = set()
    for component in COMPONENTS:
        exposed |= exposed_names(scrape(ops_stack, component.name))
    unknown = {source: sorted(names - exposed) for source, names in referenced_names().items()}
    assert not any(unknown.values()), {source: names for source, names in unknown.items() if names}


def prometheus_config(stack: Stack, path: Path) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES / "*.yml")],
        "scrape_configs": [
            {
                "job_name": component.name,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"127.0.0.1:{stack.port(component.name)}"]}],
            }
            for component in COMPONENTS
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_prometheus_scrapes_every_component_and_sees_it_up(ops_stack: Stack, tmp_path: Path) -> None:
    prometheus = require_tool("prometheus")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={prometheus_config(ops_stack, tmp_path / 'prometheus.yml')}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=log,
    )
    try:

        def get(path: str, **params: str) -> Any:
            try:
                response = httpx.get(api + path, params=params, timeout=2)
            except httpx.HTTPError:
                return None
            return response.json()["data"] if response.status_code == 200 else None

        def all_up() -> dict[str, str] | None:
            assert process.poll() is None, (tmp_path / "prometheus.log").read_text()
            data = get("/targets")
            if not data:
                return None
            health = {t["labels"]["job"]: t["health"] for t in data["activeTargets"]}
            return health if health == dict.fromkeys((c.name for c in COMPONENTS), "up") else None

        eventually_blocking(all_up, timeout=30, interval=0.5)
        ups = eventually_blocking(lambda: get("/query", query="up"), timeout=10)
        assert {r["metric"]["job"]: r["value"][1] for r in ups["result"]} == {c.name: "1" for c in COMPONENTS}
        consumers = get("/query", query="sum by (consumer) (event_consumer_up)")["result"]
        assert {r["metric"]["consumer"]: r["value"][1] for r in consumers} == {
            "orders": "1",
            "notification": "1",
            "realtime": "1",
        }

        # The project's rules load and evaluate against the real series without an error.
        def evaluated() -> list[dict[str, Any]] | None:
            groups = get("/rules")
            rules = [rule for group in (groups or {}).get("groups", []) for rule in group["rules"]]
            done = rules and all(not rule["lastEvaluation"].startswith("0001") for rule in rules)
            return rules if done else None

        rules = eventually_blocking(evaluated, timeout=20, interval=0.5)
        assert {rule["name"] for rule in rules if rule["type"] == "alerting"} >= {
            "OutboxBacklogOld",
            "DeadLetterQueueNotEmpty",
            "EventConsumerDown",
            "RealtimeAllConnectionsLost",
        }
        assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# --- graceful shutdown --------------------------------------------------------------------------


async def deactivate_unknown_users(amqp_url: str, stop: asyncio.Event) -> list[str]:
    """Keeps orders' consumer busy: user.deactivated events straight into its queue until ``stop``."""
    sent: list[str] = []
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        while not stop.is_set():
            for _ in range(10):
                event = UserDeactivated(data=UserDeactivatedData(user_id=uuid.uuid4()))
                message = aio_pika.Message(
                    event.model_dump_json().encode(),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=str(event.id),
                    type=event.type,
                    headers={"correlation_id": "ops-test"},
                )
                await channel.default_exchange.publish(message, routing_key="orders.events")
                sent.append(str(event.id))
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    return sent


async def open_tap(amqp_url: str, name: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(name, auto_delete=False)
    await queue.bind(exchange, "order.created")
    await connection.close()


async def drain_tap(amqp_url: str, name: str, want: set[str], timeout: float) -> set[str]:
    """The order ids of the order.created events in the tap (until every one in ``want`` is there)."""
    seen: set[str] = set()
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, auto_delete=False)
        deadline = asyncio.get_running_loop().time() + timeout
        while not want <= seen and asyncio.get_running_loop().time() < deadline:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            seen.add(json.loads(message.body)["data"]["order_id"])
        await channel.queue_delete(name)
    finally:
        await connection.close()
    return seen


async def fetch(database_url: str, query: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(database_url)
    try:
        return [row[0] for row in await conn.fetch(query, *args)]
    finally:
        await conn.close()


def test_sigterm_to_orders_under_load_loses_no_accepted_request_and_strands_no_message(
    ops_stack: Stack, test_database_url: str, test_amqp_url: str
) -> None:
    gateway = ops_stack.url("gateway")
    user_id, auth = register(gateway)
    tap = f"ops-tap-{uuid.uuid4().hex[:8]}"
    asyncio.run(open_tap(test_amqp_url, tap))
    process = ops_stack.processes["orders"]
    concurrency = 12

    async def scenario() -> dict[str, Any]:
        answers: list[tuple[float, int, str | None]] = []
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=concurrency)
        async with (
            httpx.AsyncClient(base_url=gateway, timeout=30, limits=limits) as client,
            httpx.AsyncClient(base_url=ops_stack.url("orders"), timeout=2) as direct,
        ):

            async def place_orders() -> None:
                while not stop.is_set():
                    try:
                        response = await client.post("/api/v1/orders", json=ORDER, headers=auth)
                    except httpx.HTTPError:
                        answers.append((time.monotonic(), 599, None))
                        continue
                    order = response.json().get("id") if response.status_code == 201 else None
                    answers.append((time.monotonic(), response.status_code, order))

            async def readiness_while_draining() -> list[int]:
                seen: list[int] = []
                deadline = time.monotonic() + SHUTDOWN_DELAY * 0.8
                while time.monotonic() < deadline:
                    try:
                        answer = await direct.get("/readyz")
                        seen.append(answer.status_code)
                        if answer.status_code == 503:
                            assert "shutting down" in answer.json()["detail"]
                    except httpx.HTTPError:
                        seen.append(0)
                    await asyncio.sleep(0.05)
                return seen

            publisher = asyncio.create_task(deactivate_unknown_users(test_amqp_url, stop))
            clients = [asyncio.create_task(place_orders()) for _ in range(concurrency)]
            await asyncio.sleep(1.5)
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            readiness = await readiness_while_draining()
            code = await asyncio.to_thread(process.wait, 30)
            exited = time.monotonic()
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*clients)
            sent = await publisher
        return {
            "answers": answers,
            "sent": sent,
            "signalled": signalled,
            "exited": exited,
            "code": code,
            "readiness": readiness,
        }

    try:
        run = asyncio.run(scenario())
    finally:
        ops_stack.stop("orders")
    answers: list[tuple[float, int, str | None]] = run["answers"]

    # It stopped by itself, well within the drain timeout, after saying it was not ready.
    assert run["code"] in (0, -signal.SIGTERM), run["code"]
    assert run["exited"] - run["signalled"] < 20
    assert 503 in run["readiness"], run["readiness"]

    accepted = {order for _, status, order in answers if status == 201 and order}
    assert accepted
    assert any(at > run["signalled"] for at, status, _ in answers if status == 201), "nothing drained"
    refused = {status for _, status, _ in answers if status != 201}
    assert refused <= {502, 503}, refused

    # Every accepted order is stored, nothing else is, and every stored one's event has gone out.
    stored = asyncio.run(
        fetch(test_database_url, "SELECT id::text FROM orders.orders WHERE user_id = $1", uuid.UUID(user_id))
    )
    assert set(stored) == accepted
    pending = asyncio.run(
        fetch(test_database_url, "SELECT count(*) FROM orders.outbox WHERE published_at IS NULL")
    )
    assert pending == [0], "the relay left events in the outbox"
    published = asyncio.run(drain_tap(test_amqp_url, tap, accepted, timeout=30))
    assert accepted <= published, f"{len(accepted - published)} accepted orders have no order.created"

    # Messages: each one either handled (its inbox row) or back in the queue, never both and never
    # neither. A message handled but not acked before the connection closed would be back in the queue
    # as well, and counted twice.
    sent = run["sent"]
    ids = [uuid.UUID(event_id) for event_id in sent]
    inbox = "SELECT count(*) FROM orders.inbox WHERE event_id = ANY($1::uuid[])"
    handled = asyncio.run(fetch(test_database_url, inbox, ids))[0]
    assert handled, "the consumer handled nothing before the shutdown"

    # The broker returns a closed channel's unacked messages to the queue: give it a moment.
    waiting = eventually_blocking(
        lambda: asyncio.run(queue_depth(test_amqp_url, "orders.events")),
        equals=len(sent) - handled,
        message=f"{len(sent)} sent, {handled} handled, the rest not back in the queue: lost, or left unacked",
    )
    assert (handled, waiting) == (handled, len(sent) - handled), (
        f"{len(sent)} sent, {handled} handled, {waiting} in the queue: lost, or handled and left unacked"
    )
