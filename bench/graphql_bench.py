"""An admin's page of orders with their lines and owners: one GraphQL query beside the REST calls.

Run from the repository root: ``.venv/bin/python -m bench.graphql_bench`` (needs Postgres, RabbitMQ
and ``wrk``).

It makes a throwaway database ``bench_<random>``, starts users, orders, graphql and the gateway as real
processes (``LOG_LEVEL=WARNING``), registers 20 users with 3 orders each, and then measures, through the
gateway, interleaved over several rounds:

- ``graphql``: ``POST /graphql`` with ``orders(first: 50) { ... items ... user { fullName } }``: the
  whole data set in one request (graphql loads the 20 users in one ``/internal/users?ids=`` call);
- ``rest``: what an admin client makes for the same data: ``GET /api/v1/orders?limit=50``, then
  ``GET /api/v1/users/{id}`` for each of the 20 users it names, 21 requests per data set.

Both at the same number of connections; the table gives requests/s and wrk's per-request p50/p99, and
data sets per second for each path (REST: requests/s / 21), the figure the issue compares. Every process
and the database are removed at the end, also after a failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.gateway_bench import Summary, _unwind_on_signals, summarise
from bench.processes import configure_bench_logging, free_port, throwaway_database
from bench.wrk import WrkResult, run_wrk
from shared.db.bootstrap import InfrastructureUnavailable
from shared.devstack import COMPONENTS, Stack, write_dev_key
from shared.service.settings import DEFAULT_AMQP_URL

log = logging.getLogger("bench.graphql_bench")

ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench-admin-password"  # noqa: S105 - a throwaway account in a throwaway database
USERS, ORDERS_EACH, PAGE = 20, 3, 50
ORDER = {
    "currency": "USD",
    "items": [{"sku": "SKU-1", "name": "Widget", "quantity": 2, "unit_price_cents": 250}],
}
QUERY = (
    f"{{ orders(first: {PAGE}) {{ edges {{ node {{ id status totalCents "
    "items { sku name quantity unitPriceCents lineTotalCents } user { fullName } } } "
    "pageInfo { hasNextPage endCursor } } }"
)
TARGETS = ("graphql", "rest")


def token(client: httpx.Client, email: str, password: str) -> str:
    answer = client.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": email, "password": password}
    )
    answer.raise_for_status()
    value: str = answer.json()["access_token"]
    return value


def seed(gateway: str) -> tuple[str, list[str]]:
    """20 users with 3 orders each; the admin's token and the user ids the first page names."""
    with httpx.Client(base_url=gateway, timeout=30.0) as client:
        for n in range(USERS):
            email, password = f"bench-{n}-{uuid.uuid4().hex[:8]}@example.com", "bench-password-123"
            client.post(
                "/api/v1/auth/register", json={"email": email, "password": password, "full_name": f"User {n}"}
            ).raise_for_status()
            auth = {"Authorization": f"Bearer {token(client, email, password)}"}
            for _ in range(ORDERS_EACH):
                client.post("/api/v1/orders", json=ORDER, headers=auth).raise_for_status()
        admin = token(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        page = client.get(
            "/api/v1/orders", params={"limit": PAGE}, headers={"Authorization": f"Bearer {admin}"}
        ).json()
        owners = list(dict.fromkeys(order["user_id"] for order in page["items"]))
        check = client.post("/graphql", json={"query": QUERY}, headers={"Authorization": f"Bearer {admin}"})
        check.raise_for_status()
        if "errors" in check.json():
            raise RuntimeError(f"the GraphQL query failed: {check.text[:500]}")
    return admin, owners


def lua_scripts(workdir: Path, owners: list[str]) -> dict[str, str]:
    graphql = workdir / "graphql.lua"
    graphql.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps({'query': QUERY}))}\n"
    )
    rest = workdir / "rest.lua"
    paths = [f"/api/v1/orders?limit={PAGE}"] + [f"/api/v1/users/{owner}" for owner in owners]
    rest.write_text(
        "local paths = {" + ", ".join(json.dumps(p) for p in paths) + "}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n"
    )
    return {"graphql": str(graphql), "rest": str(rest), "requests_per_set": str(len(paths))}


def table(summaries: dict[str, Summary], per_set: int, args: argparse.Namespace) -> str:
    graphql, rest = summaries["graphql"], summaries["rest"]
    sets = {"graphql": graphql.rps, "rest": rest.rps / per_set}
    lines = [
        f"An admin's orders(first: {PAGE}) with items and user {{ fullName }} ({USERS} users),"
        f" through the gateway; wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency,"
        f" median of {args.rounds} interleaved rounds",
        "",
        "| path | requests/s | p50 per request (ms) | p99 per request (ms) | data sets/s |",
        "|---|---:|---:|---:|---:|",
        f"| graphql (1 request) | {graphql.rps:,.0f} | {graphql.p50_ms:.2f} | {graphql.p99_ms:.2f} "
        f"| {sets['graphql']:,.1f} |",
        f"| rest ({per_set} requests) | {rest.rps:,.0f} | {rest.p50_ms:.2f} | {rest.p99_ms:.2f} "
        f"| {sets['rest']:,.1f} |",
        "",
        f"- GraphQL / REST throughput for the same data: **{sets['graphql'] / sets['rest']:.2f}**"
        " (target: >= 0.5)",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        log.info("The bench needs wrk: `apt-get install -y wrk` (make bench does this).")
        return 2
    _unwind_on_signals()
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="graphql-bench-")))
        database_url = cleanup.enter_context(throwaway_database(args.database_url))
        names = ("users", "orders", "graphql", "gateway")
        stack = Stack(
            database_url=database_url,
            amqp_url=args.amqp_url,
            components=[c for c in COMPONENTS if c.name in names],
            ports={c.name: free_port() for c in COMPONENTS},
            env={
                "USERS_JWT_PRIVATE_KEY_FILE": str(write_dev_key(workdir / "jwt-ed25519.pem")),
                "ADMIN_EMAIL": ADMIN_EMAIL,
                "ADMIN_PASSWORD": ADMIN_PASSWORD,
                "LOG_LEVEL": "WARNING",
                "APP_ENV": "development",
                "RATE_LIMIT_SCALE": "1000",
            },
            log_dir=workdir / "logs",
        )
        cleanup.callback(stack.stop_all)
        log.info("starting users, orders, graphql and the gateway ...")
        stack.prepare()
        stack.start_all()
        gateway = stack.url("gateway")
        admin, owners = seed(gateway)
        scripts = lua_scripts(workdir, owners)
        header = f"Authorization: Bearer {admin}"
        urls = {"graphql": gateway + "/graphql", "rest": gateway}
        log.info("warming up ...")
        for name in TARGETS:
            run_wrk(
                urls[name],
                header,
                threads=args.threads,
                connections=args.connections,
                seconds=3,
                script=scripts[name],
                timeout=10,
            )
        results: dict[str, list[WrkResult]] = {name: [] for name in TARGETS}
        for round_no in range(1, args.rounds + 1):
            for name in TARGETS:
                result = run_wrk(
                    urls[name],
                    header,
                    threads=args.threads,
                    connections=args.connections,
                    seconds=args.duration,
                    script=scripts[name],
                    # A GraphQL page costs tens of ms of CPU: on a busy 2-core machine p99 may pass 2 s.
                    timeout=10,
                )
                results[name].append(result)
                log.info(
                    f"round {round_no} {name:8} {result.requests_per_second:9,.0f} req/s  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
                )
        summaries = {name: summarise(results[name]) for name in TARGETS}
        sys.stdout.write(table(summaries, int(scripts["requests_per_set"]), args) + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="the Postgres server on which the throwaway database is made",
    )
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", DEFAULT_AMQP_URL))
    args = parser.parse_args()
    try:
        return run(args)
    except KeyboardInterrupt:
        log.info("interrupted; everything was stopped and removed")
        return 130
    except (RuntimeError, subprocess.SubprocessError, httpx.HTTPError, InfrastructureUnavailable) as exc:
        log.error(f"bench failed: {exc}")
        return 1


if __name__ == "__main__":
    configure_bench_logging()
    sys.exit(main())
