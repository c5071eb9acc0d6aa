"""Run a component under uvicorn with the project's logging, tracing and a graceful shutdown.

On SIGTERM (or Ctrl-C) a component:

1. turns not-ready: /readyz answers 503 from that moment (``shared.web.health.Lifecycle``);
2. keeps serving for ``SHUTDOWN_DELAY`` seconds (default 0), for load balancers that poll readiness;
3. stops accepting connections and lets the requests in flight finish (uvicorn, up to 20 s);
4. runs the lifespan's shutdown: each consumer stops taking messages and finishes (acks) the ones it
   holds, each outbox relay finishes its batch and publishes what the drained requests committed;
5. flushes the spans it still holds, then exits.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from shared.observability.logs import UvicornLogFilter, configure_logging
from shared.observability.tracing import configure_tracing
from shared.service.settings import BaseServiceSettings
from shared.web.head_limits import MAX_HEAD_BYTES, LimitedHttpToolsProtocol
from shared.web.health import Lifecycle

log = logging.getLogger(__name__)

MAX_CLIENT_FRAME_BYTES = 16 * 1024


def uvicorn_options(settings: BaseServiceSettings, *, port: int, **overrides: Any) -> dict[str, Any]:
    """The project's uvicorn settings; ``overrides`` add to or replace them (realtime: WebSocket limits)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "loop": "uvloop",
        # httptools with the contract's head limits (431 over 16 KiB or 100 fields, 10 s for a head).
        "http": LimitedHttpToolsProtocol,
        # The same size limit should anyone switch to h11 (which answers 400 rather than 431).
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        # Largest WebSocket message a client may send (contract section 4: larger closes with 1009);
        # uvicorn's default, 16 MiB, is buffered whole before the app sees it.
        "ws_max_size": MAX_CLIENT_FRAME_BYTES,
        "proxy_headers": False,
        "server_header": False,
        # uvicorn drains in-flight requests on SIGTERM/SIGINT, then runs the lifespan shutdown.
        "timeout_graceful_shutdown": 20,
        "timeout_keep_alive": 75,
    }
    options.update(overrides)
    return options


def lifecycle_of(app: object) -> Lifecycle | None:
    """The app's ``Lifecycle`` (``create_base_app`` makes one; the gateway's dispatcher exposes its own)."""
    lifecycle = getattr(getattr(app, "state", None), "lifecycle", None)
    return lifecycle if isinstance(lifecycle, Lifecycle) else None


class GracefulServer(uvicorn.Server):
    """uvicorn's server, told on the first exit signal to turn the app not-ready (and to wait, with a delay).

    uvicorn itself then drains: it stops accepting, lets in-flight requests finish and runs the lifespan
    shutdown. ``on_stopped`` runs after all that, still inside the event loop (a span flush).
    """

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        lifecycle: Lifecycle | None = None,
        shutdown_delay: float = 0.0,
        on_stopped: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.shutdown_delay = shutdown_delay
        self.on_stopped = on_stopped
        self._exit_at: float | None = None
        self._exit_signal = signal.SIGTERM
        self._announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.lifecycle is not None:
            self.lifecycle.draining = True
        if self.shutdown_delay > 0 and self._exit_at is None and not self.should_exit:
            # First signal: stay up (not ready) a little longer; a second one exits at once.
            self._exit_at = time.monotonic() + self.shutdown_delay
            self._exit_signal = signal.Signals(sig)
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        # Every 0.1 s on the event loop (logging from the signal handler itself is not safe).
        if self._exit_at is not None and not self.should_exit:
            if not self._announced:
                self._announced = True
                log.info("not ready; shutting down in %.1f s", self.shutdown_delay)
            if time.monotonic() >= self._exit_at:
                super().handle_exit(self._exit_signal, None)
        return await super().on_tick(counter)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        # The lifespan has run: what exists now (modules, routes, models, the lifespan's resources)
        # lives as long as the process. Frozen, it is left out of every later collection, which
        # otherwise re-scanned those ~140,000 objects on each full one; full collections took
        # ~160 ms each, every one a stall of the event loop (py-spy: the collector was ~10 % of the
        # orders and users processes under the orders bench).
        gc.collect()
        gc.freeze()

    async def shutdown(self, sockets: Any = None) -> None:
        if self.lifecycle is not None:
            # Long-lived responses (SSE) would hold the drain until its timeout: they end themselves.
            self.lifecycle.stopping()
        await super().shutdown(sockets)
        if self.on_stopped is not None:
            await asyncio.to_thread(self.on_stopped)


def serve(
    app: FastAPI | ASGIApp, settings: BaseServiceSettings, *, service: str, port: int, **overrides: Any
) -> None:
    configure_logging(service, settings.log_level, settings.log_format)
    logging.getLogger("uvicorn.error").addFilter(UvicornLogFilter())
    tracer_provider = configure_tracing(service)
    config = uvicorn.Config(app, **uvicorn_options(settings, port=port, **overrides))
    server = GracefulServer(
        config,
        lifecycle=lifecycle_of(app),
        shutdown_delay=settings.shutdown_delay,
        # Spans still buffered would be lost: uvicorn ends the process by re-raising the signal.
        on_stopped=tracer_provider.shutdown if tracer_provider is not None else None,
    )
    server.run()
    if not server.started:
        sys.exit(3)  # like uvicorn.run: the application failed to start
