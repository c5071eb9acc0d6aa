"""The processes and the database a bench run owns, each removed when its block ends."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shared.db.bootstrap import drop_database
from shared.observability.logs import configure_logging
from shared.service.settings import with_database
from shared.testing import servers

log = logging.getLogger("bench.processes")

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream users {{
        server 127.0.0.1:{users_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://users;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""


def free_port() -> int:
    """The tests' choice (``shared.testing.servers``): below the ephemeral range, so an outgoing
    connection cannot take the port before the bench's process binds it."""
    return servers.free_port()


@contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    url = with_database(server_url, f"bench_{uuid.uuid4().hex[:12]}")
    try:
        yield url
    finally:
        asyncio.run(drop_database(url))
        log.info(f"dropped database {url.rsplit('/', 1)[-1]}")


@contextmanager
def nginx(workdir: Path, users_port: int) -> Iterator[str]:
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, users_port=users_port))
    process = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "nginx.stderr").open("wb"),
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(url + "/.well-known/jwks.json", process)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: the master stops its worker
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def standin_users(port: int, env: dict[str, str], workdir: Path) -> Iterator[None]:
    """The database-free users stand-in (``standin_users.py``) as a process of its own."""
    script = Path(__file__).resolve().parent / "standin_users.py"
    process = subprocess.Popen(
        [sys.executable, str(script)],
        env={**os.environ, **env, "USERS_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "standin.stderr").open("wb"),
        start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", process)
        yield
    finally:
        stop_process(process, grace=10)


def stop_process(process: subprocess.Popen[bytes], *, grace: float) -> None:
    """SIGTERM, ``grace`` seconds to exit, then SIGKILL; reaped either way."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:  # would not stop: killed
        process.kill()
        process.wait()


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def configure_bench_logging() -> None:
    """Progress lines through the house logger on stderr; the figures go to stdout as a table."""
    configure_logging("bench", "INFO", "console")
    logging.getLogger("httpx").setLevel(logging.WARNING)
