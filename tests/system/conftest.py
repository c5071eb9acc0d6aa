"""A real stack for the system tests: users and gateway as processes on a throwaway database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.db.bootstrap import ensure_database
from shared.devstack import COMPONENTS, Stack, write_dev_key
from shared.testing import servers
from shared.testing.fixtures import Infra, own_vhost

ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "admin-password-123"


def free_port() -> int:
    return servers.free_port()


@pytest.fixture(scope="session")
def test_amqp_url(infra: Infra) -> Iterator[str]:
    """A vhost of the system tests' own: the service suites leave queues declared with test-only
    settings (short retry delays) in theirs, which a real process could not declare again."""
    yield from own_vhost(infra)


@pytest.fixture(scope="session")
def signing_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dev_key(tmp_path_factory.mktemp("keys") / "jwt-ed25519.pem")


@pytest.fixture(scope="session")
def signing_key(signing_key_file: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(signing_key_file.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


@pytest.fixture(scope="session")
def stack(
    test_database_url: str,
    test_amqp_url: str,
    signing_key_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    wanted = [c for c in COMPONENTS if c.name in ("users", "gateway")]
    log_dir = tmp_path_factory.mktemp("logs")
    stack = Stack(
        database_url=test_database_url,
        amqp_url=test_amqp_url,
        components=wanted,
        ports={c.name: free_port() for c in COMPONENTS},
        env={
            "USERS_JWT_PRIVATE_KEY_FILE": str(signing_key_file),
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "APP_ENV": "test",
            "RATE_LIMIT_SCALE": "1000",
            "LOG_LEVEL": "INFO",
        },
        log_dir=log_dir,
    )
    try:
        stack.prepare()
        stack.start_all()
        yield stack
    finally:
        stack.stop_all()


def read_log(stack: Stack, name: str) -> str:
    assert stack.log_dir is not None
    return (stack.log_dir / f"{name}.log").read_text(errors="replace")


def launch(*stacks: Stack) -> None:
    """``prepare`` and ``start_all`` for ``stacks`` (one database), with independent steps run at once.

    Sequentially, the eight bootstrap and migration commands and six starts take most of a minute on
    two busy cores; together, well under half of that. Bootstraps serialise on an advisory lock.
    """
    first = stacks[0]
    asyncio.run(ensure_database(first.database_url))

    def migrate(name: str) -> None:
        first.run_step(name, "bootstrap-db")
        first.run_step(name, "migrate")

    with ThreadPoolExecutor() as pool:
        list(pool.map(migrate, [c.name for c in first.components if c.has_database]))
    for stack in stacks:
        for component in stack.components:
            stack.start(component.name)
    for stack in stacks:
        for component in stack.components:
            stack.wait_ready(component.name, timeout=90)
