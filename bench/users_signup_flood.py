"""Sign-ups in parallel against a real users process: its memory, and a login's latency meanwhile.

    python -m bench.users_signup_flood [--signups 60] [--one-address] [--src DIR]

Each sign-up is an argon2 hash (64 MiB with the default profile). Without ``--one-address`` every
sign-up comes from its own address (the worst case for memory: no per-client limit applies); with it,
they share one, as an unsophisticated flood would. ``--src DIR`` runs another checkout's sources (for
example ``git archive main``) with this environment, to compare before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.processes import _wait_http, configure_bench_logging, free_port, stop_process, throwaway_database
from bench.vhost import throwaway_vhost

log = logging.getLogger("bench.users_signup_flood")

PASSWORD = "a long enough password"  # noqa: S105 - a bench account's, in a throwaway database


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def flood(base: str, pid: int, signups: int, one_address: bool) -> dict[str, object]:
    async with httpx.AsyncClient(
        base_url=base, timeout=120, limits=httpx.Limits(max_connections=200)
    ) as client:

        def sign_up(n: int) -> asyncio.Task[httpx.Response]:
            address = "198.51.100.1" if one_address else f"10.{n // 250}.{n % 250}.1"
            body = {"email": f"flood{n}@example.com", "password": PASSWORD, "full_name": "Flood"}
            headers = {"X-Forwarded-For": address}
            return asyncio.ensure_future(client.post("/api/v1/auth/register", json=body, headers=headers))

        body = {"email": "steady@example.com", "password": PASSWORD, "full_name": "Steady"}
        headers = {"X-Forwarded-For": "192.0.2.1"}
        assert (await client.post("/api/v1/auth/register", json=body, headers=headers)).status_code == 201
        form = {"grant_type": "password", "username": "steady@example.com", "password": PASSWORD}
        idle = []
        for _ in range(5):
            started = time.perf_counter()
            assert (await client.post("/api/v1/auth/token", data=form, headers=headers)).status_code == 200
            idle.append(time.perf_counter() - started)
        baseline = peak = rss_mib(pid)
        started = time.perf_counter()
        tasks = [sign_up(n) for n in range(signups)]
        logins: list[float] = []
        while not all(task.done() for task in tasks):
            sent = time.perf_counter()
            login = asyncio.ensure_future(client.post("/api/v1/auth/token", data=form, headers=headers))
            while not login.done():
                peak = max(peak, rss_mib(pid))
                await asyncio.sleep(0.02)
            assert login.result().status_code == 200
            logins.append(time.perf_counter() - sent)
        elapsed = time.perf_counter() - started
        statuses = sorted(task.result().status_code for task in tasks)
    return {
        "rss_before_mib": round(baseline),
        "rss_peak_mib": round(peak),
        "signups_201": statuses.count(201),
        "signups_429": statuses.count(429),
        "signups_other": [code for code in statuses if code not in (201, 429)],
        "flood_seconds": round(elapsed, 1),
        "login_idle_ms": round(statistics.median(idle) * 1000),
        "login_during_median_ms": round(statistics.median(logins) * 1000),
        "login_during_max_ms": round(max(logins) * 1000),
        "logins_during": len(logins),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--signups", type=int, default=60)
    parser.add_argument("--one-address", action="store_true")
    parser.add_argument("--src", type=Path, help="a checkout whose sources to run instead of this one")
    args = parser.parse_args()
    server = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    amqp = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    with throwaway_database(server) as database, throwaway_vhost(amqp) as vhost:
        port = free_port()
        env = {**os.environ, "DATABASE_URL": database, "AMQP_URL": vhost, "USERS_PORT": str(port)}
        env.update({"APP_ENV": "development", "LOG_LEVEL": "WARNING", "USERS_TRUSTED_PROXIES": "127.0.0.1"})
        if args.src is not None:
            roots = [args.src / "shared/src", args.src / "services/users/src"]
            env["PYTHONPATH"] = os.pathsep.join(str(root.resolve()) for root in roots)
        for command in ("bootstrap-db", "migrate"):
            subprocess.run([sys.executable, "-m", "users", command], env=env, check=True, timeout=120)
        process = subprocess.Popen([sys.executable, "-m", "users", "serve"], env=env)
        try:
            _wait_http(f"http://127.0.0.1:{port}/healthz", process, timeout=60)
            result = asyncio.run(
                flood(f"http://127.0.0.1:{port}", process.pid, args.signups, args.one_address)
            )
        finally:
            stop_process(process, grace=30)
    for name, value in result.items():
        sys.stdout.write(f"{name:24} {value}" + "\n")
    return 0


if __name__ == "__main__":
    configure_bench_logging()
    sys.exit(main())
