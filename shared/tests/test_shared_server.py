"""Graceful shutdown of a component: not ready at once, in-flight requests finished, then gone.

The server runs in a thread of its own (uvicorn installs no signal handlers there), and the test
calls its handler as the SIGTERM would.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from shared.service.settings import BaseServiceSettings
from shared.testing.servers import free_port
from shared.web.app import create_base_app
from shared.web.server import GracefulServer, lifecycle_of, uvicorn_options


def slow_app(arrived: threading.Event | None = None) -> FastAPI:
    app = create_base_app(title="slow")

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        if arrived is not None:
            arrived.set()
        await asyncio.sleep(1.0)
        return {"done": True}

    return app


@contextmanager
def running(server: GracefulServer) -> Iterator[threading.Thread]:
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield thread
    finally:
        server.should_exit = True
        thread.join(10)


def test_sigterm_turns_the_component_not_ready_and_finishes_what_it_accepted() -> None:
    arrived = threading.Event()
    app = slow_app(arrived)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stopped = threading.Event()
    config = uvicorn.Config(app, **uvicorn_options(BaseServiceSettings(), port=port))
    server = GracefulServer(config, lifecycle=lifecycle_of(app), shutdown_delay=0.5, on_stopped=stopped.set)
    with running(server) as thread, ThreadPoolExecutor(1) as pool:
        assert httpx.get(url + "/readyz").status_code == 200
        in_flight = pool.submit(httpx.get, url + "/slow", timeout=10)
        assert arrived.wait(10), "the request never reached the app"
        server.handle_exit(signal.SIGTERM, None)
        # Still serving during the delay, but not ready: a load balancer stops sending new work.
        readiness = httpx.get(url + "/readyz")
        assert readiness.status_code == 503
        assert readiness.json()["checks"] == {"shutdown": "draining"}
        assert in_flight.result().json() == {"done": True}
        thread.join(10)
        assert not thread.is_alive()
    assert stopped.is_set(), "on_stopped (the span flush) did not run"
    try:
        httpx.get(url + "/healthz", timeout=1)
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("still accepting connections after the shutdown")


def test_a_second_signal_during_the_delay_stops_at_once() -> None:
    app = slow_app()
    port = free_port()
    config = uvicorn.Config(app, **uvicorn_options(BaseServiceSettings(), port=port))
    server = GracefulServer(config, lifecycle=lifecycle_of(app), shutdown_delay=30)
    with running(server) as thread:
        server.handle_exit(signal.SIGTERM, None)
        time.sleep(0.3)
        assert not server.should_exit
        server.handle_exit(signal.SIGTERM, None)
        # Well inside the 30 s delay the first signal began: the join's bound only ends a failing test.
        thread.join(20)
        assert not thread.is_alive(), "the second signal did not cut the 30 s delay short"


async def test_without_a_server_the_app_has_a_lifecycle_that_readyz_honours() -> None:
    app = create_base_app(title="plain")
    lifecycle = lifecycle_of(app)
    assert lifecycle is not None
    lifecycle.draining = True

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        answer = await client.get("/readyz")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "Not ready: shutting down."
