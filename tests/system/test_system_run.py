"""`make run`'s launcher as an operator meets it: clear refusal without infrastructure, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.devstack import COMPONENTS

from .conftest import free_port

pytestmark = pytest.mark.system


def launcher_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"LOG_FORMAT": "console", "APP_ENV": "development"})
    env.update(overrides)
    return env


def test_unreachable_postgres_is_one_readable_sentence(tmp_path: Path) -> None:
    closed = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "shared.devstack"],
        env=launcher_env(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed}/app"),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert f"PostgreSQL is not reachable at 127.0.0.1:{closed}" in result.stderr
    assert "make infra" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_rabbitmq_is_named(tmp_path: Path) -> None:
    closed = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "shared.devstack"],
        env=launcher_env(AMQP_URL=f"amqp://guest:guest@127.0.0.1:{closed}/"),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert f"RabbitMQ is not reachable at 127.0.0.1:{closed}" in result.stderr
    assert "Traceback" not in result.stderr


# Its own deadline for "the system is up" is 180 s (a loaded machine starts five processes slowly): the
# run-wide 120 s limit must not cut it short.
@pytest.mark.timeout(300)
def test_launcher_starts_everything_and_stops_cleanly_on_sigterm(
    test_database_url: str, test_amqp_url: str, tmp_path: Path
) -> None:
    ports = {c.port_env: str(free_port()) for c in COMPONENTS}
    log_path = tmp_path / "run.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.devstack"],
        env=launcher_env(DATABASE_URL=test_database_url, AMQP_URL=test_amqp_url, **ports),
        stderr=log_file,
        cwd=tmp_path,
    )
    gateway = f"http://127.0.0.1:{ports['GATEWAY_PORT']}"
    try:
        # The launcher says the system is up once every component is ready; waiting for that line
        # rather than for the gateway alone keeps a loaded machine from sending SIGTERM before it.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            if "the system is up: gateway at " in log_path.read_text():
                break
            time.sleep(0.2)
        else:
            pytest.fail("the launcher never said the system is up")
        assert httpx.get(gateway + "/readyz", timeout=5).status_code == 200
        assert httpx.get(gateway + "/.well-known/jwks.json", timeout=5).status_code == 200
        # A development key was written to the ignored .secrets folder of the working directory.
        assert (tmp_path / ".secrets" / "jwt-ed25519.pem").exists()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        stderr = log_path.read_text()
        assert "the system is up: gateway at " + gateway in stderr
        assert "Traceback" not in stderr
        for port in ports.values():
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    finally:
        if process.poll() is None:
            process.kill()
        log_file.close()
