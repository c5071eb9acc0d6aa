"""The real images and the real Compose file: build, start everything, walk a user's path, tear down.

Runs when a Docker engine answers (``DOCKER_HOST``; `.ci/run` starts the workplace's private one and
exports the stand-in image variables). The stack gets a project name of its own and publishes no host
port, so it never clashes with the machine's Postgres, RabbitMQ or a developer's processes; the walk
runs inside the gateway container, against the gateway, as a client on the compose network would.
Without an engine the test is reported as not run, with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("users", "orders", "notification", "realtime")
BUILD_TIMEOUT = 900
UP_TIMEOUT = 420

pytestmark = [pytest.mark.containers, pytest.mark.timeout(BUILD_TIMEOUT + UP_TIMEOUT + 300)]

# Runs in the gateway container with the image's own Python, httpx and websockets: register, log in,
# watch the WebSocket, create and pay an order, and see the notification and the frames arrive.
WALK = r"""
import asyncio, json, sys, time, uuid
import httpx
from websockets.asyncio.client import connect

BASE = "http://127.0.0.1:8000"

async def main() -> None:
    async with httpx.AsyncClient(base_url=BASE, timeout=10) as http:
        email = f"walk-{uuid.uuid4().hex[:8]}@example.com"
        r = await http.post("/api/v1/auth/register",
                            json={"email": email, "password": "a-long-password", "full_name": "Walker"})
        assert r.status_code == 201, r.text
        r = await http.post("/api/v1/auth/token",
                            data={"grant_type": "password", "username": email, "password": "a-long-password"})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with connect(f"ws://127.0.0.1:8000/ws?token={token}") as ws:
            ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert ready["type"] == "ready", ready
            order = {"currency": "USD",
                     "items": [{"sku": "SKU-1", "name": "Widget", "quantity": 2, "unit_price_cents": 250}]}
            r = await http.post("/api/v1/orders", json=order, headers=auth)
            assert r.status_code == 201, r.text
            order_id = r.json()["id"]
            r = await http.post(f"/api/v1/orders/{order_id}/pay", headers=auth)
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "paid"
            seen = []
            while not any(f.get("event") == "order.status_changed" for f in seen):
                frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if frame["type"] == "event":
                    assert frame["data"]["order_id"] == order_id, frame
                    seen.append(frame)
            first = seen[0]["offset"]
            assert [f["offset"] for f in seen] == list(range(first, first + len(seen)))
        deadline = time.monotonic() + 60
        while True:
            r = await http.get("/api/v1/notifications", headers=auth)
            assert r.status_code == 200, r.text
            types = {n["type"] for n in r.json()["items"]}
            if {"welcome", "order_created", "order_status_changed"} <= types or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert {"welcome", "order_created", "order_status_changed"} <= types, types
    print("walk ok", order_id)

asyncio.run(main())
"""


def _docker() -> str | None:
    """Why the engine cannot be used, or None when it answers."""
    if shutil.which("docker") is None:
        return "the docker client is not installed"
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{json .ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 30 s"
    if info.returncode != 0:
        return f"no Docker engine answers at {os.environ.get('DOCKER_HOST', 'the default socket')}"
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if compose.returncode != 0:
        return "the docker compose plugin is missing"
    return None


class Compose:
    def __init__(self, project: str, env: dict[str, str]) -> None:
        self.project = project
        self.env = env

    def run(
        self, *args: str, timeout: float = 300, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = ["docker", "compose", "-p", self.project, "-f", str(ROOT / "docker-compose.yml"), *args]
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"`{' '.join(command[2:])}` exited {result.returncode}:\n{result.stdout[-4000:]}"
                f"\n{result.stderr[-4000:]}"
            )
        return result


@pytest.fixture(scope="module")
def compose() -> Iterator[Compose]:
    reason = _docker()
    if reason is not None:
        pytest.skip(f"containers test not run: {reason} (`.ci/run` starts one with ../shared/docker/engine)")
    project = f"mstest{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "APP_IMAGE": f"{project}-app:test"}
    stack = Compose(project, env)
    try:
        stack.run("build", "gateway", timeout=BUILD_TIMEOUT)
        up = stack.run(
            "up",
            "-d",
            "--no-build",
            "--wait",
            "--wait-timeout",
            str(UP_TIMEOUT),
            timeout=UP_TIMEOUT + 60,
            check=False,
        )
        if up.returncode != 0:
            logs = stack.run("logs", "--no-color", "--tail", "40", check=False).stdout
            pytest.fail(f"the stack did not become healthy:\n{up.stderr[-3000:]}\n{logs[-8000:]}")
        yield stack
    finally:
        stack.run("down", "-v", "--remove-orphans", "--timeout", "20", check=False)
        subprocess.run(
            ["docker", "image", "rm", "-f", env["APP_IMAGE"]], env=env, capture_output=True, check=False
        )


def test_every_long_running_container_is_healthy(compose: Compose) -> None:
    result = compose.run("ps", "--format", "json")
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    states = {row["Service"]: (row["State"], row.get("Health", "")) for row in rows}
    for name in (*SERVICES, "graphql", "gateway", "postgres", "rabbitmq", "mailpit"):
        assert states.get(name) == ("running", "healthy"), f"{name}: {states.get(name)}"
    # The core stack starts without the observability profile.
    assert "prometheus" not in states
    assert "grafana" not in states


def test_no_host_port_is_published(compose: Compose) -> None:
    result = compose.run("ps", "--format", "json")
    for line in filter(str.strip, result.stdout.splitlines()):
        row = json.loads(line)
        published = [p for p in row.get("Publishers") or [] if p.get("PublishedPort")]
        assert not published, f"{row['Service']} publishes {published}"


def test_register_order_pay_notification_and_websocket_through_the_gateway(compose: Compose) -> None:
    result = compose.run("exec", "-T", "gateway", "python", "-", input=WALK, timeout=180, check=False)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "walk ok" in result.stdout


def test_each_service_migrated_exactly_once(compose: Compose) -> None:
    for name in SERVICES:
        logs = compose.run("logs", "--no-color", f"{name}-migrate").stdout
        assert logs.count("migrations applied") == 1, logs[-2000:]
        rows = compose.run(
            "exec",
            "-T",
            "postgres",
            "psql",
            "-U",
            "postgres",
            "-d",
            "app",
            "-tA",
            "-c",
            f"SELECT count(*) FROM {name}.alembic_version",
        ).stdout.strip()
        assert rows == "1", f"{name}.alembic_version has {rows} rows"
