"""One supervisor for a service's background work: relays, consumers, listeners, periodic jobs.

A service declares its workers (``workers.py``); the lifespan runs them with ``Supervisor.running``,
which starts each one, restarts one that crashes (with backoff), and on the way out stops them in
the order they were declared (a consumer before the relay that publishes what its handlers wrote).
Each worker handles the failures it expects (a link down) itself; one that still escapes is a bug,
logged with its traceback, and must not leave the service without that worker for good.

A worker's state is the ``worker_up`` gauge and ``worker_restarts_total`` counter, and is listed in
``/readyz``; a worker the service cannot serve without names a readiness check, which fails while
the worker is down (and otherwise asks the worker's own check, e.g. "attached to its queue").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from shared.service.backoff import Backoff, pause

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[object]]

# A worker that ran this long before crashing starts its backoff over.
HEALTHY_RUN_SECONDS = 60.0


class Loop(Protocol):
    """What a long-running worker looks like: ``run`` works until ``stop`` asks it to return."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Worker:
    name: str
    run: Callable[[], Awaitable[None]]
    stop: Callable[[], None]
    # The /readyz check that fails while this worker is down (None: the service serves without it).
    readiness: str | None = None
    # The worker's own readiness, asked while it runs.
    check: ReadinessCheck | None = None


def worker(
    name: str, loop: Loop, *, readiness: str | None = None, check: ReadinessCheck | None = None
) -> Worker:
    """A long-running worker: an object with ``run`` and ``stop``."""
    return Worker(name, loop.run, loop.stop, readiness=readiness, check=check)


def periodic(
    name: str,
    interval: float,
    job: Callable[[], Awaitable[object]],
    *,
    expected: tuple[type[BaseException], ...] = (),
    first_after: float | None = None,
) -> Worker:
    """``job`` every ``interval`` seconds (the first after ``first_after``, by default one interval).

    A failure in ``expected`` (a database briefly away) is logged and the next round tries again;
    anything else crashes the worker, which the supervisor restarts.
    """
    stopping = asyncio.Event()

    async def run() -> None:
        delay = interval if first_after is None else first_after
        while not stopping.is_set():
            await pause(delay, stopping)
            delay = interval
            if stopping.is_set():
                return
            try:
                await job()
            except expected as exc:
                log.warning("periodic job failed", extra={"worker": name, "error": str(exc)})

    return Worker(name, run, stopping.set)


@dataclass(frozen=True)
class WorkerMetrics:
    """Registered once per app (the supervisor is the app's), labelled by worker."""

    up: Gauge
    restarts: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> WorkerMetrics:
        return cls(
            up=Gauge("worker_up", "1 while the background worker runs.", ["worker"], registry=registry),
            restarts=Counter(
                "worker_restarts",
                "Times the background worker crashed and was started again.",
                ["worker"],
                registry=registry,
            ),
        )


class WorkerDown(Exception):
    """Readiness: a worker the service needs is not running (it crashed and waits to restart)."""


@dataclass
class _Running:
    worker: Worker
    task: asyncio.Task[None] | None = None
    state: str = "starting"
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    def __init__(
        self,
        metrics: WorkerMetrics,
        *,
        stop_timeout: float = 15.0,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.metrics = metrics
        self.stop_timeout = stop_timeout
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._running: dict[str, _Running] = {}

    def states(self) -> Mapping[str, str]:
        """Each worker's state: starting, up, restarting, stopped."""
        return {name: running.state for name, running in self._running.items()}

    def readiness(self) -> dict[str, ReadinessCheck]:
        """The checks of the workers the service cannot serve without, by readiness name."""
        return {
            running.worker.readiness: _check(running)
            for running in self._running.values()
            if running.worker.readiness is not None
        }

    @asynccontextmanager
    async def running(self, workers: Sequence[Worker]) -> AsyncIterator[None]:
        """Start ``workers``; on the way out stop them one after the other, in declaration order."""
        started = [self._start(declared) for declared in workers]
        try:
            yield
        finally:
            await self._stop(started)

    def _start(self, declared: Worker) -> _Running:
        if declared.name in self._running:
            raise ValueError(f"worker {declared.name} is already running")
        running = _Running(declared)
        self._running[declared.name] = running
        self.metrics.restarts.labels(declared.name)  # the series exists from the start, at 0
        running.task = asyncio.create_task(self._supervise(running), name=f"worker-{declared.name}")
        return running

    async def _supervise(self, running: _Running) -> None:
        declared = running.worker
        up = self.metrics.up.labels(declared.name)
        backoff = Backoff(self.initial_backoff, self.max_backoff)
        while True:
            running.state = "up"
            up.set(1)
            started = time.monotonic()
            try:
                await declared.run()
            except Exception:
                log.exception("background worker crashed; restarting it", extra={"worker": declared.name})
            else:
                return  # it was stopped
            finally:
                up.set(0)
                running.state = "stopped"
            if running.stopping.is_set():
                return
            if time.monotonic() - started >= HEALTHY_RUN_SECONDS:
                backoff.reset()
            running.state = "restarting"
            self.metrics.restarts.labels(declared.name).inc()
            await pause(next(backoff), running.stopping)
            if running.stopping.is_set():
                running.state = "stopped"
                return

    async def _stop(self, started: Sequence[_Running]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_timeout
        try:
            for running in started:
                running.stopping.set()
                running.worker.stop()
                assert running.task is not None
                # Each finishes what it holds (a relay batch, in-flight messages) and returns; one stuck
                # on a dead link is cancelled rather than holding the shutdown.
                done, _ = await asyncio.wait({running.task}, timeout=max(0.1, deadline - loop.time()))
                if not done:
                    log.warning(
                        "background worker did not stop in time", extra={"worker": running.worker.name}
                    )
                    running.task.cancel()
                    await asyncio.wait({running.task}, timeout=5.0)
        finally:
            for running in started:
                running.state = "stopped"
                self._running.pop(running.worker.name, None)


def _check(running: _Running) -> ReadinessCheck:
    async def check() -> None:
        if running.state != "up":
            raise WorkerDown(f"worker {running.worker.name} is {running.state}")
        if running.worker.check is not None:
            await running.worker.check()

    return check
