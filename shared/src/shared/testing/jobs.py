"""A service's jobs steered through its admin API, as an operator would, for tests.

Every app under test runs its own scheduler on the wall clock, so a job's scheduled run can start in
the middle of a test (``purge-login-failures`` every 15 minutes, ``expire-unpaid-orders`` every 5, a
purge at minute 7 of every hour). A test that backdates rows and then runs a job by hand would see
that scheduled run take the rows first, or find the job busy (409). ``hold`` pauses the job and waits
out a run already under way, so that from then on only the test runs it.
"""

from __future__ import annotations

from typing import Any

import httpx

from shared.testing.waits import eventually

# A run of any job here takes milliseconds; the bound only ends a test that would otherwise hang.
SETTLE_TIMEOUT = 60.0


class AdminJobs:
    """``/api/v1/admin/jobs/{service}`` through ``client``, with an admin's ``headers``."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str], service: str) -> None:
        self.client = client
        self.headers = headers
        self.base = f"/api/v1/admin/jobs/{service}"

    async def hold(self, name: str) -> None:
        """Pause ``name`` and wait until no run of it is under way: no scheduled run starts after."""
        paused = await self.client.post(f"{self.base}/{name}/pause", headers=self.headers)
        assert paused.status_code == 200, paused.text

        async def idle() -> bool:
            listed = await self.client.get(self.base, headers=self.headers)
            assert listed.status_code == 200, listed.text
            [job] = [j for j in listed.json()["items"] if j["name"] == name]
            return job["last_run"] is None or job["last_run"]["status"] != "running"

        await eventually(idle, timeout=SETTLE_TIMEOUT, message=f"a run of {name} did not end")

    async def finished(self, name: str, run_id: str) -> dict[str, Any]:
        """The run ``run_id`` of ``name`` once it is no longer running."""

        async def ended() -> dict[str, Any] | None:
            response = await self.client.get(f"{self.base}/{name}/runs", headers=self.headers)
            assert response.status_code == 200, response.text
            [run] = [r for r in response.json()["items"] if r["id"] == run_id]
            return run if run["status"] != "running" else None

        run: dict[str, Any] = await eventually(
            ended, timeout=SETTLE_TIMEOUT, message=f"run {run_id} of {name} did not finish"
        )
        return run

    async def run(self, name: str) -> dict[str, Any]:
        """Run ``name`` now (``POST .../run``, 202) and return the run once it has finished."""
        started = await self.client.post(f"{self.base}/{name}/run", headers=self.headers)
        assert started.status_code == 202, started.text
        return await self.finished(name, started.json()["run_id"])
