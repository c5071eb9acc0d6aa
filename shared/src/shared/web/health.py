"""``/healthz`` (alive), ``/readyz`` (dependencies answer) and ``/metrics`` for every component."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import JSONResponse, Response

from shared.observability.tracing import untraced
from shared.web.problems import problem_response

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[object]]


class Lifecycle:
    """Where the process is in its life; ``draining`` from the first SIGTERM on (``shared.web.server``).

    A draining component answers /readyz with 503 at once, whatever its dependencies say, so a load
    balancer stops sending it new work while it finishes what it has.
    """

    def __init__(self) -> None:
        self.draining = False
        # Set when the server stops accepting: what would hold its drain (a stream) ends on it.
        self.stopped = asyncio.Event()
        self._on_stop: list[Callable[[], None]] = []

    def on_stop(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` (on the event loop) when the server stops accepting; returns an undo."""
        self._on_stop.append(callback)
        return lambda: self._on_stop.remove(callback) if callback in self._on_stop else None

    def stopping(self) -> None:
        """The server closes: end what it would otherwise wait for (long-lived streams)."""
        self.draining = True
        self.stopped.set()
        for callback in list(self._on_stop):
            try:
                callback()
            except Exception:
                # Logged with its traceback, not swallowed: one broken callback must not keep the
                # others (or the shutdown itself) from running.
                log.exception("a shutdown callback failed")


def health_router(
    registry: CollectorRegistry,
    checks: Callable[[], Mapping[str, ReadinessCheck]],
    *,
    timeout: float = 2.0,
    lifecycle: Lifecycle | None = None,
    workers: Callable[[], Mapping[str, str]] = dict,
) -> APIRouter:
    """``checks`` is read at request time, so the lifespan can register what it built; ``workers``
    (each background worker's state) is listed beside them."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @router.get("/readyz")
    async def readyz() -> Response:
        if lifecycle is not None and lifecycle.draining:
            return problem_response(
                503,
                title="Service Unavailable",
                detail="Not ready: shutting down.",
                type_slug="not-ready",
                instance="/readyz",
                headers={"Retry-After": "5"},
                extensions={"checks": {"shutdown": "draining"}},
            )
        named = dict(checks())
        with untraced():
            results = await asyncio.gather(
                *(asyncio.wait_for(check(), timeout) for check in named.values()), return_exceptions=True
            )
        states = {"workers": dict(workers())} if workers() else {}
        failed = {
            name: f"{type(result).__name__}: {result}" if str(result) else type(result).__name__
            for name, result in zip(named, results, strict=True)
            if isinstance(result, BaseException)
        }
        if failed:
            # What failed and why goes to the log only: the public answer names the checks, since an
            # exception's text carries internal addresses (contract section 3).
            log.warning("not ready", extra={"failed": failed})
            return problem_response(
                503,
                title="Service Unavailable",
                detail="Not ready: " + ", ".join(sorted(failed)) + " failed.",
                type_slug="not-ready",
                instance="/readyz",
                headers={"Retry-After": "5"},
                extensions={
                    "checks": {name: "failed" if name in failed else "ok" for name in named},
                    **states,
                },
            )
        return JSONResponse({"status": "ready", "checks": {name: "ok" for name in named}, **states})

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
