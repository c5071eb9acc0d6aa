"""The supervisor: a crashed worker restarts, readiness and metrics show its state, stops are ordered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from shared.service.backoff import Backoff
from shared.service.supervisor import Supervisor, Worker, WorkerDown, WorkerMetrics, periodic
from shared.web.app import create_base_app


class Flaky:
    """Crashes on its first ``crashes`` runs once ``allowed``, then works until stopped."""

    def __init__(self, crashes: int) -> None:
        self.crashes = crashes
        self.runs = 0
        self.running = asyncio.Event()
        self.allowed = asyncio.Event()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self.crashes:
            await self.allowed.wait()
            raise RuntimeError("boom")
        self.running.set()
        await self._stopping.wait()

    def stop(self) -> None:
        self._stopping.set()
        self.allowed.set()


async def reaches(supervisor: Supervisor, name: str, state: str) -> None:
    """Yields to the loop until the worker is in ``state``: a count of turns, never a clock."""
    for _ in range(10_000):
        if supervisor.states().get(name) == state:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{name} never became {state}: {supervisor.states()}")


def make_supervisor(registry: CollectorRegistry) -> Supervisor:
    # No wait between restarts: the test drives each crash itself instead of timing it.
    return Supervisor(WorkerMetrics.create(registry), initial_backoff=0.001, max_backoff=0.001)


async def test_a_crashed_worker_restarts_and_is_counted() -> None:
    registry = CollectorRegistry()
    supervisor = make_supervisor(registry)
    flaky = Flaky(crashes=2)
    async with supervisor.running([Worker("flaky", flaky.run, flaky.stop, readiness="flaky")]):
        flaky.allowed.set()
        await asyncio.wait_for(flaky.running.wait(), 10)
        assert flaky.runs == 3
        assert registry.get_sample_value("worker_restarts_total", {"worker": "flaky"}) == 2
        assert registry.get_sample_value("worker_up", {"worker": "flaky"}) == 1
        assert supervisor.states() == {"flaky": "up"}
        await supervisor.readiness()["flaky"]()
    assert registry.get_sample_value("worker_up", {"worker": "flaky"}) == 0
    assert supervisor.states() == {}


async def test_readiness_fails_while_a_needed_worker_is_down() -> None:
    registry = CollectorRegistry()
    # A long pause before the restart: the worker stays down while the test looks.
    supervisor = Supervisor(WorkerMetrics.create(registry), initial_backoff=3600, max_backoff=3600)
    flaky = Flaky(crashes=1)
    async with supervisor.running([Worker("flaky", flaky.run, flaky.stop, readiness="broker")]):
        flaky.allowed.set()
        await reaches(supervisor, "flaky", "restarting")
        with pytest.raises(WorkerDown):
            await supervisor.readiness()["broker"]()
        assert registry.get_sample_value("worker_up", {"worker": "flaky"}) == 0


async def test_the_worker_own_check_is_asked_while_it_runs() -> None:
    supervisor = make_supervisor(CollectorRegistry())
    flaky = Flaky(crashes=0)

    async def not_attached() -> None:
        raise ConnectionError("not consuming")

    declared = Worker("consumer", flaky.run, flaky.stop, readiness="broker", check=not_attached)
    async with supervisor.running([declared]):
        await asyncio.wait_for(flaky.running.wait(), 10)
        with pytest.raises(ConnectionError):
            await supervisor.readiness()["broker"]()


async def test_workers_stop_in_declaration_order() -> None:
    supervisor = make_supervisor(CollectorRegistry())
    stopped: list[str] = []

    def declare(name: str) -> Worker:
        stopping = asyncio.Event()

        async def run() -> None:
            await stopping.wait()
            stopped.append(name)

        return Worker(name, run, stopping.set)

    async with supervisor.running([declare("consumer"), declare("sender"), declare("relay")]):
        await asyncio.sleep(0)
    assert stopped == ["consumer", "sender", "relay"]


async def test_a_worker_that_ignores_stop_is_cancelled() -> None:
    supervisor = Supervisor(WorkerMetrics.create(CollectorRegistry()), stop_timeout=0.01)
    never = asyncio.Event()

    async def stuck() -> None:
        await never.wait()

    async with supervisor.running([Worker("stuck", stuck, lambda: None)]):
        await asyncio.sleep(0)
    assert supervisor.states() == {}


async def test_a_periodic_job_runs_each_round_and_survives_expected_failures() -> None:
    supervisor = make_supervisor(CollectorRegistry())
    rounds: list[int] = []
    third = asyncio.Event()

    async def job() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise OSError("database away")
        if len(rounds) == 3:
            third.set()

    async with supervisor.running([periodic("purge", 0.001, job, expected=(OSError,))]):
        await asyncio.wait_for(third.wait(), 10)
        assert supervisor.states() == {"purge": "up"}


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.2, 1.0)
    assert [next(backoff) for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert next(backoff) == 0.2


async def test_readyz_lists_the_workers_and_fails_on_a_needed_one_down() -> None:
    flaky = Flaky(crashes=1)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        supervisor: Supervisor = app.state.supervisor
        supervisor.initial_backoff = supervisor.max_backoff = 3600  # stays down once crashed
        async with supervisor.running([Worker("consumer", flaky.run, flaky.stop, readiness="broker")]):
            yield

    app = create_base_app(title="t", lifespan=lifespan)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["workers"] == {"consumer": "up"}
            flaky.allowed.set()
            await reaches(app.state.supervisor, "consumer", "restarting")
            down = await client.get("/readyz")
            assert down.status_code == 503
            # The check's name only: the reason is logged, not shown (contract section 3).
            assert down.json()["checks"] == {"broker": "failed"}
            assert "WorkerDown" not in down.text
            assert down.json()["workers"] == {"consumer": "restarting"}
            metrics = (await client.get("/metrics")).text
            assert 'worker_restarts_total{worker="consumer"} 1.0' in metrics
