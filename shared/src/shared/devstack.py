"""Start the whole system as real processes: ``make run``, the system tests and the benches use it.

``python -m shared.devstack`` checks Postgres and RabbitMQ, writes a development signing key,
creates the database, roles and schemas, migrates every service, starts every component in the
foreground and stops them all on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.db.bootstrap import InfrastructureUnavailable, check_amqp, check_postgres, ensure_database
from shared.observability.logs import configure_logging
from shared.service.settings import DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL, with_database

log = logging.getLogger("devstack")


@dataclass(frozen=True)
class Component:
    name: str
    default_port: int
    has_database: bool
    # The package ``python -m`` runs, where it is not the name (``graphql`` is graphql-core's).
    package: str | None = None

    @property
    def module(self) -> str:
        return self.package or self.name

    @property
    def port_env(self) -> str:
        return f"{self.name.upper()}_PORT"

    @property
    def installed(self) -> bool:
        """Runnable: the package exists and has a ``__main__`` (a bare skeleton does not count)."""
        try:
            return importlib.util.find_spec(f"{self.module}.__main__") is not None
        except ModuleNotFoundError:
            return False


# Start order: what others depend on comes first; the gateway is last.
COMPONENTS = (
    Component("users", 8001, has_database=True),
    Component("orders", 8002, has_database=True),
    Component("notification", 8003, has_database=True),
    Component("realtime", 8004, has_database=True),
    Component("graphql", 8005, has_database=False, package="graphql_api"),
    Component("gateway", 8000, has_database=False),
)
# What the graphql component calls (GRAPHQL_<NAME>_URL).
GRAPHQL_UPSTREAMS = ("users", "orders", "notification", "realtime")


def available_components() -> list[Component]:
    return [c for c in COMPONENTS if c.installed]


def write_dev_key(path: Path) -> Path:
    """An Ed25519 signing key for development, kept in an ignored folder across restarts."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.touch(mode=0o600)
        path.write_bytes(pem)
    return path


@dataclass
class Stack:
    """A set of component processes sharing one database and broker."""

    database_url: str
    amqp_url: str
    components: list[Component]
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    # Per-component overrides, e.g. one component's AMQP_URL through a test's TCP proxy.
    component_env: dict[str, dict[str, str]] = field(default_factory=dict)
    log_dir: Path | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: dict[str, IO[bytes]] = field(default_factory=dict)

    def port(self, name: str) -> int:
        return self.ports.get(name) or next(c.default_port for c in COMPONENTS if c.name == name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port(name)}"

    def child_env(self, name: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"DATABASE_URL": self.database_url, "AMQP_URL": self.amqp_url})
        for component in COMPONENTS:
            env[component.port_env] = str(self.port(component.name))
            env[f"GATEWAY_{component.name.upper()}_URL"] = self.url(component.name)
            env[f"{component.name.upper()}_USERS_URL"] = self.url("users")
        for upstream in GRAPHQL_UPSTREAMS:
            env[f"GRAPHQL_{upstream.upper()}_URL"] = self.url(upstream)
        env.update(self.env)
        if name is not None:
            env.update(self.component_env.get(name, {}))
        return env

    def module(self, name: str) -> str:
        return next((c.module for c in COMPONENTS if c.name == name), name)

    def run_step(self, name: str, command: str) -> None:
        result = subprocess.run(
            [sys.executable, "-m", self.module(name), command],
            env=self.child_env(name),
            capture_output=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"`python -m {name} {command}` failed ({result.returncode}):\n"
                + result.stderr.decode(errors="replace")[-4000:]
            )

    def prepare(self) -> None:
        """Create the database if missing, then each service's role, schema and migrations.

        The services side by side: each step is mostly a Python process starting, each service has a
        schema and a role of its own, and bootstrap serialises its statements on an advisory lock.
        """
        asyncio.run(ensure_database(self.database_url))
        services = [c.name for c in self.components if c.has_database]
        with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
            # list() raises the first failure here.
            list(pool.map(self._prepare_service, services))

    def _prepare_service(self, name: str) -> None:
        self.run_step(name, "bootstrap-db")
        self.run_step(name, "migrate")

    def start(self, name: str) -> subprocess.Popen[bytes]:
        stderr: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            stderr = self._logs[name] = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", self.module(name), "serve"],
            env=self.child_env(name),
            stdout=stderr,
            stderr=stderr,
            # Own session: a Ctrl-C reaches only the supervisor, which then stops each child once.
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def wait_ready(self, name: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            process = self.processes.get(name)
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} while starting")
            try:
                response = httpx.get(self.url(name) + "/readyz", timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
            time.sleep(0.1)
        raise RuntimeError(f"{name} was not ready within {timeout:.0f}s: {last}")

    def start_all(self, timeout: float = 60.0) -> None:
        """Start every component at once, then wait until each is ready: none needs another to start
        (they reach each other lazily and report it in /readyz), and starting is mostly imports."""
        for component in self.components:
            self.start(component.name)
        for component in self.components:
            self.wait_ready(component.name, timeout)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 25.0) -> int | None:
        process = self.processes.pop(name, None)
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        handle = self._logs.pop(name, None)
        if handle is not None:
            handle.close()
        return process.returncode

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_all()


def where_to_look(stack: Stack) -> list[str]:
    """What a person opens once the system is up: one line each, the address last so it can be copied."""
    gateway = stack.url("gateway")
    lines = [
        f"  console (try it in a browser)  {gateway}/console",
        f"  API docs (every service)       {gateway}/docs",
    ]
    lines += [f"  metrics of {c.name:<19} {stack.url(c.name)}/metrics" for c in stack.components]
    # Prometheus and Grafana are not part of `make run`: they come with the Compose stack.
    lines.append(
        "  dashboards: COMPOSE_PROFILES=observability make up, then Grafana at http://127.0.0.1:3000 "
        "and Prometheus at http://127.0.0.1:9090"
    )
    return lines


def check_infrastructure(database_url: str, amqp_url: str) -> list[str]:
    problems = []
    try:
        asyncio.run(check_postgres(with_database(database_url, "postgres")))
    except InfrastructureUnavailable as exc:
        problems.append(str(exc))
    try:
        check_amqp(amqp_url)
    except InfrastructureUnavailable as exc:
        problems.append(str(exc))
    return problems


def main() -> int:
    os.environ.setdefault("LOG_FORMAT", "console")
    configure_logging("devstack", os.environ.get("LOG_LEVEL", "INFO"), os.environ["LOG_FORMAT"])
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    amqp_url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    problems = check_infrastructure(database_url, amqp_url)
    if problems:
        for problem in problems:
            log.error(problem)
        return 1
    env = {}
    if "USERS_JWT_PRIVATE_KEY_FILE" not in os.environ:
        env["USERS_JWT_PRIVATE_KEY_FILE"] = str(write_dev_key(Path(".secrets/jwt-ed25519.pem").resolve()))
    components = available_components()
    ports = {c.name: int(os.environ.get(c.port_env, c.default_port)) for c in COMPONENTS}
    stack = Stack(database_url, amqp_url, components, ports=ports, env=env)
    stopping = False

    def on_signal(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        log.info("preparing the database (roles, schemas, migrations)")
        stack.prepare()
        for component in stack.components:
            if stopping:
                break
            stack.start(component.name)
            stack.wait_ready(component.name)
            log.info("%s ready at %s", component.name, stack.url(component.name))
        if not stopping:
            log.info("the system is up: gateway at %s; Ctrl-C stops it", stack.url("gateway"))
            for line in where_to_look(stack):
                log.info("%s", line)
        while not stopping:
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    log.error("%s exited with %s; stopping everything", name, process.returncode)
                    stack.stop_all()
                    return 1
            time.sleep(0.2)
    except (RuntimeError, InfrastructureUnavailable) as exc:
        log.error("%s", exc)  # the message is the whole story
        stack.stop_all()
        return 1
    log.info("stopping")
    stack.stop_all()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
