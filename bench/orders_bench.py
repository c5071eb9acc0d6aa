"""Orders created per second through the gateway, the outbox relay's lag under that load, and what
orders' user check over httpx on ``PoolTransport`` costs against the bare pool.

Run from the repository root: ``.venv/bin/python -m bench.orders_bench`` (needs Postgres, RabbitMQ,
wrk). It makes a throwaway database and RabbitMQ vhost, starts users, orders and the gateway as real
processes, and drives ``POST /api/v1/orders`` with wrk at 32 connections: the full path (JWT check,
proxy, synchronous user check, insert, outbox). A queue bound to ``events`` takes every order.created.
The relay's lag is read exactly from the outbox rows of each round: ``published_at - created_at``,
from the transaction that wrote the row to the relay's marking it after the broker's confirm (so an
upper bound of commit -> confirm). Orders' ``outbox_relay_lag_seconds`` histogram says the same only
to within its buckets. The backlog comes from ``outbox_pending``, sampled during the run.

Both variants run side by side for the whole bench, sharing users, the database and the broker: orders
as deployed, whose user check is ``ServiceClient`` (an ``httpx.AsyncClient``) on
``shared.http.PoolTransport``, and ``bench.orders_bare_pool``, the same service asking users over the
bare ``UpstreamPool``. Each runs ``--replicas`` orders processes (2, as the base overlay deploys orders),
each behind a gateway of its own, and wrk drives them all at once. With one replica, that single
process is the bottleneck (about one core of the two): orders/s then follows its CPU per order alone,
and the ratio below is near the ratio of orders' CPU per order, whatever the rest of the system costs.
The outbox's two leading relays (``shared.messaging.relay``) run in two more orders processes that take
no requests, started first and waited for until each holds a leader lock; every variant's replica
then stands by. Both variants' events are relayed by the same two processes, whichever is driven.

Rounds alternate wrk between the two variants (ABAB..., ``--rounds`` of each, after one warm-up of
each): with no restart between rounds, they can be short and many, so a machine whose speed drifts
from minute to minute (a shared one) moves both variants alike. Issue 9 wants the first at >= 0.95 of
the second's orders per second; the table gives the medians of both, their ratio, and the median of
each round's ratio to the mean of the other variant's rounds on either side of it. The relay figures
are the two relays' (lag exactly from the rows, the histogram over both); orders' CPU per order is all
four variant replicas' over the round, the relays' apart.

``--control`` runs the deployed service in place of the bare pool: the same processes, wiring and
rounds, so its ratio is 1.0 but for the bench's own noise, which it measures (an A/A test).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg
import httpx

from bench.metrics import buckets, quantile, scrape, scrape_all, value
from bench.processes import configure_bench_logging, free_port, throwaway_database
from bench.vhost import throwaway_vhost
from bench.wrk import WrkResult, run_wrk
from shared.devstack import COMPONENTS, Stack, write_dev_key
from shared.messaging.events import EXCHANGE
from shared.service.settings import DEFAULT_AMQP_URL

log = logging.getLogger("bench.orders_bench")

# wrk counts an answer slower than this as failed, and a failure stops the bench. Its default (2 s) is
# reached on a machine busy with other work, where a slow answer is still an answer to measure.
WRK_TIMEOUT = 10

# Orders processes that only relay: as many as lead at once (``OutboxRelay``'s ``leaders``).
RELAY_LEADERS = 2

ORDER_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"currency":"USD","items":[{"sku":"SKU-1","name":"Widget","quantity":2,"unit_price_cents":1999}]}'
wrk.headers["Content-Type"] = "application/json"
"""


def bind_tap(amqp_url: str) -> str:
    name = f"bench-tap-{uuid.uuid4().hex[:8]}"

    async def run() -> None:
        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel()
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(name, durable=True)
        await queue.bind(exchange, "order.created")
        await connection.close()

    asyncio.run(run())
    return name


def queue_depth(amqp_url: str, name: str) -> int:
    async def run() -> int:
        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel()
        queue = await channel.declare_queue(name, durable=True, passive=True)
        count = queue.declaration_result.message_count or 0
        await connection.close()
        return count

    return asyncio.run(run())


def token_for(gateway: str) -> str:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=gateway, timeout=30) as client:
        client.post(
            "/api/v1/auth/register", json={"email": email, "password": "bench password", "full_name": "Bench"}
        ).raise_for_status()
        response = client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": "bench password"},
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


def exact_lag(database_url: str, since: float, until: float) -> tuple[float, float, int]:
    """p50 and p99 (ms) of ``published_at - created_at`` over the outbox rows made in [since, until)."""

    async def run() -> tuple[float, float, int]:
        conn = await asyncpg.connect(database_url)
        try:
            row = await conn.fetchrow(
                "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP"
                " (ORDER BY extract(epoch FROM published_at - created_at)) AS q, count(*) AS n"
                " FROM orders.outbox WHERE created_at >= to_timestamp($1) AND created_at < to_timestamp($2)"
                " AND published_at IS NOT NULL",
                since,
                until,
            )
        finally:
            await conn.close()
        if row is None or row["q"] is None:
            raise RuntimeError("no outbox rows were published in the round")
        return row["q"][0] * 1000, row["q"][1] * 1000, int(row["n"])

    return asyncio.run(run())


def cpu_seconds(pid: int) -> float:
    """User plus system CPU a process has used so far (Linux: /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_leading(orders_url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while value(scrape(orders_url), "outbox_relay_leading") != 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the orders process at {orders_url} did not take a relay's lead")
        time.sleep(0.1)


def sample_pending(orders_url: str, stop: threading.Event, seen: list[float]) -> None:
    while not stop.wait(0.5):
        try:
            seen.append(value(scrape(orders_url), "outbox_pending"))
        except httpx.HTTPError:
            continue


@dataclass(frozen=True)
class Variant:
    """How orders asks users whether an account may order: the command ``python -m`` runs as orders."""

    label: str
    module: str


# The first is the service as deployed: the figures of the main table are its own.
DEPLOYED = Variant("httpx on PoolTransport", "orders")
VARIANTS = (DEPLOYED, Variant("bare pool", "bench.orders_bare_pool"))
# ``--control``: the deployed service against itself, so a run shows how far the bench's own noise
# moves the ratio (1.0 but for noise), as an A/A test does.
CONTROL = (DEPLOYED, Variant("httpx on PoolTransport again (control)", "orders"))


@dataclass
class OrdersStack(Stack):
    """A bench stack whose orders process runs ``orders_module`` (a variant's command)."""

    orders_module: str = DEPLOYED.module

    def module(self, name: str) -> str:
        return self.orders_module if name == "orders" else super().module(name)


def schedule(rounds: int, variants: tuple[Variant, Variant] = VARIANTS) -> list[Variant]:
    """The variants alternating, the deployed one first (ABAB...), ``rounds`` of each."""
    return [variant for _ in range(rounds) for variant in variants]


def paired_ratio(order: list[Variant], rps: list[float]) -> float:
    """The median over the deployed variant's rounds of its orders/s divided by the mean of the
    baseline's rounds next to it (before and after, or the one there is): a slow drift of the
    machine's speed cancels out of each such ratio."""
    main = order[0]
    ratios = []
    for i, variant in enumerate(order):
        if variant is not main:
            continue
        beside = [rps[j] for j in (i - 1, i + 1) if 0 <= j < len(order) and order[j] is not main]
        ratios.append(rps[i] / statistics.mean(beside))
    return statistics.median(ratios)


def measure_round(
    args: argparse.Namespace,
    replicas: list[Stack],
    relays: list[Stack],
    header: str,
    script: str,
    database_url: str,
    pids: list[int],
    relay_pids: list[int],
) -> dict[str, float]:
    """wrk through each of ``replicas``' gateways at once (``--connections`` shared among them), and
    what it cost the variants' orders processes (``pids``) and the relays' (``relay_pids``). The lag
    histogram is the relays' together; the backlog (a count of the table) is read off the first."""
    orders = relays[0].url("orders")
    before = scrape_all(r.url("orders") for r in relays)
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    relay_cpu_before = sum(cpu_seconds(pid) for pid in relay_pids)
    stop, pending = threading.Event(), [0.0]
    sampler = threading.Thread(target=sample_pending, args=(orders, stop, pending), daemon=True)
    sampler.start()
    started_at = time.time()
    connections = max(1, args.connections // len(replicas))

    def drive(replica: Stack) -> WrkResult:
        return run_wrk(
            replica.url("gateway") + "/api/v1/orders",
            header,
            threads=max(1, min(connections, args.threads // len(replicas))),
            connections=connections,
            seconds=args.duration,
            script=script,
            timeout=WRK_TIMEOUT,
        )

    with ThreadPoolExecutor(max_workers=len(replicas)) as pool:
        results = list(pool.map(drive, replicas))
    ended_at = time.time()
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    relay_cpu = sum(cpu_seconds(pid) for pid in relay_pids) - relay_cpu_before
    stop.set()
    sampler.join()
    drained_at = time.monotonic()
    while value(scrape(orders), "outbox_pending") > 0 and time.monotonic() - drained_at < 30:
        time.sleep(0.1)
    drain_s = time.monotonic() - drained_at
    after = scrape_all(r.url("orders") for r in relays)
    lag_before = buckets(before, "outbox_relay_lag_seconds")
    lag_after = buckets(after, "outbox_relay_lag_seconds")
    lag50, lag99, rows = exact_lag(database_url, started_at, ended_at)
    return {
        "rps": sum(r.requests_per_second for r in results),
        # The orders processes' CPU per order created: steadier than orders/s on a shared machine.
        "cpu": cpu * 1000 / max(rows, 1),
        "relay_cpu": relay_cpu * 1000 / max(rows, 1),
        # The slowest replica's: wrk's percentiles cannot be merged.
        "p50": max(r.p50_ms for r in results),
        "p99": max(r.p99_ms for r in results),
        "lag50": lag50,
        "lag99": lag99,
        "hist99": quantile(lag_before, lag_after, 0.99) * 1000,
        "rows": rows,
        "pending": max(pending),
        "drain": drain_s,
    }


def table(
    args: argparse.Namespace,
    variants: tuple[Variant, Variant],
    rounds: dict[str, list[dict[str, float]]],
    confirmed: float,
    depth: int,
    paired: float,
) -> str:
    """The deployed variant's figures, then both variants side by side and their ratio."""

    def median(variant: Variant, key: str) -> float:
        return statistics.median(r[key] for r in rounds[variant.label])

    main, bare = variants
    ratio = median(main, "rps") / median(bare, "rps")
    cpu_ratio = median(main, "cpu") / median(bare, "cpu")
    lines = [
        f"POST /api/v1/orders through the gateway, wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s over {args.replicas} orders replicas a variant, each behind a gateway of its "
        f"own, {args.rounds} rounds per variant alternating (ABAB...), medians (all processes running "
        "throughout)",
        "",
        f"Orders as deployed (user check: {main.label}):",
        "",
        "| figure | value | target |",
        "|---|---:|---:|",
        f"| orders created / s | {median(main, 'rps'):,.0f} | >= 300 |",
        f"| orders' CPU per order (ms, the variant's replicas; relays apart) | {median(main, 'cpu'):.2f} | |",
        f"| the relays' CPU per order (ms, both leaders) | {median(main, 'relay_cpu'):.2f} | |",
        f"| request p50 / p99 (ms) | {median(main, 'p50'):.1f} / {median(main, 'p99'):.1f} | |",
        f"| relay lag p50 (ms, row written to confirmed, exact) | {median(main, 'lag50'):.1f} | |",
        f"| relay lag p99 (ms, exact) | {median(main, 'lag99'):.1f} | < 100 |",
        f"| max outbox backlog during a round | {median(main, 'pending'):.0f} | no growth |",
        f"| seconds to drain after a round | {median(main, 'drain'):.2f} | |",
        f"| events confirmed / order.created in the tap (both variants) | {confirmed:,.0f} / {depth:,} "
        "| equal |",
        "",
        f"Orders' user check, {main.label} against {bare.label}:",
        "",
        "| user check | orders created / s | request p50 / p99 (ms) | orders' CPU per order (ms) |",
        "|---|---:|---:|---:|",
    ]
    for variant in variants:
        lines.append(
            f"| {variant.label} | {median(variant, 'rps'):,.0f} "
            f"| {median(variant, 'p50'):.1f} / {median(variant, 'p99'):.1f} | {median(variant, 'cpu'):.2f} |"
        )
    lines += [
        "",
        "| ratio | value | target |",
        "|---|---:|---:|",
        f"| orders created / s, {main.label} / {bare.label} (medians) | {ratio:.3f} | >= 0.95 |",
        f"| the same, each round against the baseline's beside it (median) | {paired:.3f} | >= 0.95 |",
        f"| orders' CPU per order, {main.label} / {bare.label} | {cpu_ratio:.3f} | |",
    ]
    return "\n".join(lines) + "\n"


def _in_order(order: list[Variant], rounds: dict[str, list[dict[str, float]]]) -> list[dict[str, float]]:
    """The rounds in the order they ran (``rounds`` keeps them by variant)."""
    taken = {label: iter(results) for label, results in rounds.items()}
    return [next(taken[variant.label]) for variant in order]


def run(args: argparse.Namespace) -> int:
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="orders-bench-")))
        database_url = cleanup.enter_context(throwaway_database(args.database_url))
        amqp_url = cleanup.enter_context(throwaway_vhost(args.amqp_url))
        stack = OrdersStack(
            database_url=database_url,
            amqp_url=amqp_url,
            components=[c for c in COMPONENTS if c.name in ("users", "orders", "gateway")],
            ports={c.name: free_port() for c in COMPONENTS},
            env={
                "USERS_JWT_PRIVATE_KEY_FILE": str(write_dev_key(workdir / "jwt-ed25519.pem")),
                "LOG_LEVEL": "WARNING",
                "APP_ENV": "development",
                "RATE_LIMIT_SCALE": "1000",
            },
            log_dir=workdir / "logs",
        )
        cleanup.callback(stack.stop_all)
        log.info("preparing and starting the relays, then users, orders, gateway ...")
        stack.prepare()
        # The outbox's leading relays run in orders processes of their own that take no requests,
        # started first so that they hold every leader lock and each variant's replicas stand by.
        # When the leaders ran in the variants' replicas, both raced for every batch whichever
        # variant wrk drove, and the leader that won more of them slowed its own variant's rounds
        # for the whole run: the control (A/A) read 0.90 in one run of three.
        relays: list[Stack] = [
            OrdersStack(
                database_url=database_url,
                amqp_url=amqp_url,
                components=[c for c in COMPONENTS if c.name == "orders"],
                ports={**stack.ports, "orders": free_port()},
                env=stack.env,
                log_dir=workdir / f"logs-relay{number}",
            )
            for number in range(1, RELAY_LEADERS + 1)
        ]
        for relay in relays:
            cleanup.callback(relay.stop_all)
            relay.start_all()
            wait_for_leading(relay.url("orders"))
        stack.start_all()
        # Each variant runs --replicas orders processes, each behind a gateway of its own (as the base
        # overlay deploys orders, and as ingress-balanced gateways send each client to one replica),
        # all on users of the first stack. The first replica of the deployed variant is ``stack``.
        variants = CONTROL if args.control else VARIANTS
        replicas: dict[str, list[Stack]] = {label: [] for label in (v.label for v in variants)}
        replicas[DEPLOYED.label].append(stack)
        for number, variant in enumerate(variants, start=1):
            while len(replicas[variant.label]) < args.replicas:
                added = OrdersStack(
                    database_url=database_url,
                    amqp_url=amqp_url,
                    components=[c for c in COMPONENTS if c.name in ("orders", "gateway")],
                    ports={**stack.ports, "orders": free_port(), "gateway": free_port()},
                    env=stack.env,
                    log_dir=workdir / f"logs-variant{number}-{len(replicas[variant.label]) + 1}",
                    orders_module=variant.module,
                )
                cleanup.callback(added.stop_all)
                replicas[variant.label].append(added)
        log.info(f"starting the other orders replicas ({args.replicas} a variant) and their gateways ...")
        for other in [r for group in replicas.values() for r in group if r is not stack]:
            other.start_all()
        pids = [r.processes["orders"].pid for group in replicas.values() for r in group]
        relay_pids = [r.processes["orders"].pid for r in relays]
        tap = bind_tap(amqp_url)
        header = f"Authorization: Bearer {token_for(stack.url('gateway'))}"
        script = workdir / "order.lua"
        script.write_text(ORDER_SCRIPT)
        for variant in variants:  # warm: connections open, code paths hot
            for each in replicas[variant.label]:
                run_wrk(
                    each.url("gateway") + "/api/v1/orders",
                    header,
                    threads=1,
                    connections=max(1, args.connections // args.replicas),
                    seconds=3,
                    script=str(script),
                    timeout=WRK_TIMEOUT,
                )
        rounds: dict[str, list[dict[str, float]]] = {v.label: [] for v in variants}
        order = schedule(args.rounds, variants)
        for round_no, variant in enumerate(order, start=1):
            r = measure_round(
                args, replicas[variant.label], relays, header, str(script), database_url, pids, relay_pids
            )
            rounds[variant.label].append(r)
            log.info(
                f"round {round_no} ({variant.label}): {r['rps']:,.0f} orders/s, "
                f"orders CPU {r['cpu']:.2f} ms/order (relays {r['relay_cpu']:.2f}), "
                f"p50 {r['p50']:.1f} ms p99 {r['p99']:.1f} ms; "
                f"relay lag p50 {r['lag50']:.1f} ms p99 {r['lag99']:.1f} ms over {r['rows']:,.0f} rows "
                f"(histogram p99 {r['hist99']:.0f} ms); max pending {r['pending']:.0f}"
            )
        # outbox_published_total starts at 0 in each orders process: summed over them.
        confirmed = sum(
            value(scrape(r.url("orders")), "outbox_published_total")
            for r in [*relays, *(r for group in replicas.values() for r in group)]
        )
        depth = queue_depth(amqp_url, tap)
        paired = paired_ratio(order, [r["rps"] for r in _in_order(order, rounds)])
        sys.stdout.write(table(args, variants, rounds, confirmed, depth, paired))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument(
        "--replicas",
        type=int,
        default=2,
        help="orders processes (each behind a gateway of its own) a variant: 2, as the base overlay deploys",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--rounds", type=int, default=6, help="rounds of each variant (6); medians are reported"
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="run the deployed service against itself instead of the bare pool: the bench's own noise",
    )
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
