"""A purge of 1,000,000 expired rows beside live traffic: its rate, and what it does to the requests' p99.

Run from the repository root: ``.venv/bin/python -m bench.jobs_bench`` (needs Postgres, RabbitMQ, wrk).
It makes a throwaway database and vhost, starts users, orders and the gateway as real processes, puts
1,000,000 idempotency keys three days old into ``orders.idempotency_keys``, and drives
``POST /api/v1/orders`` with a fresh ``Idempotency-Key`` per request (an INSERT into the very table
being purged) with wrk: first alone, then while ``python -m orders jobs run purge-idempotency-keys``
deletes the old keys (batches of 5,000, each its own transaction, skipping locked rows). Both phases
are cut into rounds of the same length and the worst round's p99 of each is compared.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import asyncpg
import httpx

from bench.orders_bench import WRK_TIMEOUT, token_for
from bench.processes import configure_bench_logging, free_port, throwaway_database
from bench.vhost import throwaway_vhost
from bench.wrk import WrkResult, run_wrk
from shared.devstack import COMPONENTS, Stack, write_dev_key
from shared.service.settings import DEFAULT_AMQP_URL

log = logging.getLogger("bench.jobs_bench")

# A key per request: wrk's Lua counter, made unique across threads and runs by a random prefix.
KEYED_ORDER_SCRIPT = """
local counter = 0
local prefix = tostring(math.random(1, 1000000000))
request = function()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = prefix .. "-" .. counter
  return wrk.format("POST", nil, nil,
    '{"currency":"USD","items":[{"sku":"SKU-1","name":"Widget","quantity":2,"unit_price_cents":1999}]}')
end
wrk.headers["Content-Type"] = "application/json"
"""

FILL = """
INSERT INTO orders.idempotency_keys (user_id, key, request_hash, status_code, response_body, created_at)
SELECT gen_random_uuid(), 'old-' || g, repeat('a', 64), 201, '{}', now() - interval '3 days'
FROM generate_series(1, $1) AS g
"""


def fill(database_url: str, rows: int) -> float:
    async def run() -> float:
        conn = await asyncpg.connect(database_url)
        try:
            started = time.monotonic()
            await conn.execute(FILL, rows)
            await conn.execute("VACUUM ANALYZE orders.idempotency_keys")
            return time.monotonic() - started
        finally:
            await conn.close()

    return asyncio.run(run())


def old_keys(database_url: str) -> int:
    async def run() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return int(
                await conn.fetchval("SELECT count(*) FROM orders.idempotency_keys WHERE key LIKE 'old-%'")
            )
        finally:
            await conn.close()

    return asyncio.run(run())


def rounds_of_wrk(url: str, header: str, script: str, args: argparse.Namespace, n: int) -> list[WrkResult]:
    return [
        run_wrk(
            url,
            header,
            threads=args.threads,
            connections=args.connections,
            seconds=args.round,
            script=script,
            timeout=WRK_TIMEOUT,
        )
        for _ in range(n)
    ]


def run(args: argparse.Namespace) -> int:
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="jobs-bench-")))
        database_url = cleanup.enter_context(throwaway_database(args.database_url))
        amqp_url = cleanup.enter_context(throwaway_vhost(args.amqp_url))
        stack = Stack(
            database_url=database_url,
            amqp_url=amqp_url,
            components=[c for c in COMPONENTS if c.name in ("users", "orders", "gateway")],
            ports={c.name: free_port() for c in COMPONENTS},
            env={
                "USERS_JWT_PRIVATE_KEY_FILE": str(write_dev_key(workdir / "jwt-ed25519.pem")),
                "LOG_LEVEL": "WARNING",
                "APP_ENV": "development",
                # wrk sends every request from one address and one user: the limits are not measured.
                "RATE_LIMIT_SCALE": "1000",
            },
            log_dir=workdir / "logs",
        )
        cleanup.callback(stack.stop_all)
        log.info("preparing and starting users, orders, gateway ...")
        stack.prepare()
        stack.start_all()
        log.info(f"inserting {args.rows:,} expired idempotency keys ...")
        fill_s = fill(database_url, args.rows)
        log.info(f"  {fill_s:.1f} s")
        header = f"Authorization: Bearer {token_for(stack.url('gateway'))}"
        script = workdir / "keyed-order.lua"
        script.write_text(KEYED_ORDER_SCRIPT)
        url = stack.url("gateway") + "/api/v1/orders"
        run_wrk(
            url,
            header,
            threads=args.threads,
            connections=args.connections,
            seconds=3,
            script=str(script),
            timeout=WRK_TIMEOUT,
        )

        alone = rounds_of_wrk(url, header, str(script), args, args.rounds)
        log.info(f"without the purge: p99 {[round(r.p99_ms, 1) for r in alone]} ms")

        env = {**stack.child_env("orders"), "LOG_FORMAT": "console"}
        started = time.monotonic()
        purge = subprocess.Popen(
            [sys.executable, "-m", "orders", "jobs", "run", "purge-idempotency-keys"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        during: list[WrkResult] = []
        while purge.poll() is None:
            during += rounds_of_wrk(url, header, str(script), args, 1)
        purge_s = time.monotonic() - started
        output, _ = purge.communicate()
        if purge.returncode != 0:
            raise RuntimeError(f"the purge failed: {output}")
        left = old_keys(database_url)
        if left:
            raise RuntimeError(f"{left:,} expired keys are still there: {output}")
        log.info(f"during the purge: p99 {[round(r.p99_ms, 1) for r in during]} ms; {output.strip()}")

        worst_alone = max(r.p99_ms for r in alone)
        worst_during = max(r.p99_ms for r in during)
        sys.stdout.write(
            "\n".join(
                [
                    f"purge-idempotency-keys over {args.rows:,} expired rows while wrk -t{args.threads} "
                    f"-c{args.connections} sends POST /api/v1/orders with an Idempotency-Key each, "
                    f"rounds of {args.round} s (users, orders, gateway: processes)",
                    "",
                    "| figure | value | target |",
                    "|---|---:|---:|",
                    f"| purge rate (rows / s, process start included) | {args.rows / purge_s:,.0f} | |",
                    f"| request p99 alone, worst of {len(alone)} rounds (ms) | {worst_alone:.1f} | |",
                    f"| request p99 during it, worst of {len(during)} rounds (ms) | {worst_during:.1f} | |",
                    f"| during / without | {worst_during / worst_alone:.2f} | <= 2 |",
                    f"| orders / s without / during | {alone[-1].requests_per_second:,.0f} / "
                    f"{min(r.requests_per_second for r in during):,.0f} | |",
                ]
            )
            + "\n"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--round", type=int, default=3, help="seconds per wrk round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds without the purge")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", DEFAULT_AMQP_URL))
    args = parser.parse_args()
    try:
        return run(args)
    except (RuntimeError, httpx.HTTPError) as exc:
        log.error(f"bench failed: {exc}")
        return 1


if __name__ == "__main__":
    configure_bench_logging()
    sys.exit(main())
