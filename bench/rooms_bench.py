"""From a ``say`` frame to the ``message`` frame at every other member of the room, on two replicas.

Run from the repository root: ``.venv/bin/python -m bench.rooms_bench`` (needs Postgres, RabbitMQ).
It makes a throwaway database and vhost, starts users, orders, realtime and the gateway as real
processes plus a second realtime replica behind a gateway of its own (as two ingress-balanced
gateways would send each client to one replica), registers ``--users`` accounts and opens
``--members`` WebSockets into one room, every one through a gateway: half to replica one, half to
replica two. Then:

1. ``--senders`` of them say ``--rate`` messages a second in all for ``--seconds`` while ``--orders``
   orders a second are created through the gateway (their events are stored with NOTIFY by realtime's
   consumer: the load that makes NOTIFY's commit lock contended). For every (message, member) pair it
   records the time from the ``say`` being sent to its ``message`` frame arriving. ``--fanout`` picks
   how replicas hear of each other's messages (``notify``, ``broker``, or ``both``).
2. On realtime's default fan-out only: the sustained rate, ``--steps`` messages/s for
   ``--step-seconds`` each (``rooms_steps.py`` has the pass rule), up to the first failing step.
3. On the default fan-out only: replica two is killed with SIGKILL and the time until presence drops
   its members is measured (``rooms_presence.py``).

The members are read in ``--readers`` subprocesses (``rooms_members.py`` says why); before the stack
starts, the client check (``rooms_client.py``, ``--client-check`` seconds a rate) prints the latency
and CPU those readers add alone, with no server of ours in the way. Each step also prints the cores
every process used and how busy the whole machine was: on a shared machine the figures mean little
without them. The whole run takes about 4 minutes on two loaded cores; ``--fanout broker``,
``--steps ''``, ``--no-kill`` or ``--client-check 0`` leave parts out.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.processes import configure_bench_logging, free_port, throwaway_database
from bench.realtime_bench import tokens_for
from bench.rooms_client import client_alone
from bench.rooms_members import Member, Members, ReaderPool
from bench.rooms_presence import Convergence, converge_after_kill, user_id
from bench.rooms_steps import Load, Step, cpu_table, pct, run_step, sustained, sustained_table
from bench.vhost import throwaway_vhost
from realtime.settings import Settings as RealtimeSettings
from shared.devstack import COMPONENTS, Stack, write_dev_key
from shared.service.settings import DEFAULT_AMQP_URL

log = logging.getLogger("bench.rooms_bench")

DEFAULT_FANOUT: str = RealtimeSettings.model_fields["room_fanout"].default
TARGET_FRAMES_PER_S = 20_000


@dataclass
class Outcome:
    fanout: str
    first: Step
    stored: int
    steps: list[Step] = field(default_factory=list)
    skipped: list[float] = field(default_factory=list)
    presence: Convergence | None = None


async def register(gateway: str, users: int) -> list[str]:
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        return await tokens_for(client, users)


async def measure(
    stack: Stack, two: Stack, args: argparse.Namespace, fanout: str, tokens: list[str]
) -> Outcome:
    gateway = stack.url("gateway")
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=gateway, timeout=30, limits=limits) as client:
        auth = {"Authorization": f"Bearer {tokens[0]}"}
        room = (await client.post("/api/v1/rooms", json={"name": fanout}, headers=auth)).json()["id"]
        urls = [
            gateway.replace("http://", "ws://") + "/ws",
            two.url("gateway").replace("http://", "ws://") + "/ws",
        ]
        # Member i is on replica i % 2 + 1 with account i % users: with an even --users, each account's
        # connections are all on one replica, so killing replica two makes half the accounts leave.
        members: list[Member] = [(urls[i % 2], tokens[i % args.users]) for i in range(args.members)]
        replica_of = [(user_id(tokens[i % args.users]), i % 2 + 1) for i in range(args.members)]
        senders = Members()
        pool = ReaderPool(args.readers, members[args.senders :], room)
        try:
            await pool.start()
            await senders.join_all(members[: args.senders], room)
            log.info(f"[{fanout}] {args.members} members in the room ({args.readers} reader processes)")
            pids = {
                "gateway": stack.processes["gateway"].pid,
                "realtime one": stack.processes["realtime"].pid,
                "realtime two": two.processes["realtime"].pid,
                "gateway two": two.processes["gateway"].pid,
                "users": stack.processes["users"].pid,
                "orders": stack.processes["orders"].pid,
            }
            load = Load(client, tokens, room, args.members, senders, senders.sockets, pool, args.drain, pids)
            first = await run_step(load, args.rate, args.seconds, args.orders)
            stored = (await client.get(f"/api/v1/rooms/{room}", headers=auth)).json()["last_offset"]
            outcome = Outcome(fanout, first, stored)
            if fanout == DEFAULT_FANOUT and args.steps:
                log.info(f"[{fanout}] sustained rate, steps {args.steps} messages/s")
                outcome.steps = await sustained(load, args.steps, args.step_seconds)
                outcome.skipped = args.steps[len(outcome.steps) :]
            if fanout == DEFAULT_FANOUT and args.kill:
                log.info(f"[{fanout}] SIGKILL to replica two; waiting for presence to drop its members")
                outcome.presence = await converge_after_kill(
                    load, replica_of, lambda: two.stop("realtime", signal.SIGKILL)
                )
            await pool.stop()
            await senders.close()
            return outcome
        finally:
            pool.kill()


def run(args: argparse.Namespace, modes: list[str]) -> list[Outcome]:
    """One stack for every fan-out: only the two realtime replicas are restarted between them."""
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="rooms-bench-")))
        database_url = cleanup.enter_context(throwaway_database(args.database_url))
        amqp_url = cleanup.enter_context(throwaway_vhost(args.amqp_url))
        ports = {c.name: free_port() for c in COMPONENTS}
        env = {
            "USERS_JWT_PRIVATE_KEY_FILE": str(write_dev_key(workdir / "jwt-ed25519.pem")),
            "LOG_LEVEL": "WARNING",
            "APP_ENV": "development",
            # One address opens every connection and says every message here.
            "RATE_LIMIT_SCALE": "1000",
            "REALTIME_SAY_RATE": "1000",
        }
        stack = Stack(
            database_url=database_url,
            amqp_url=amqp_url,
            components=[c for c in COMPONENTS if c.name in ("users", "orders", "realtime", "gateway")],
            ports=ports,
            env=env,
            component_env={"realtime": {"REALTIME_ROOM_FANOUT": modes[0]}},
            log_dir=workdir / "logs",
        )
        cleanup.callback(stack.stop_all)
        log.info("starting users, orders, realtime, gateway ...")
        stack.prepare()
        stack.start_all()
        tokens = asyncio.run(register(stack.url("gateway"), args.users))
        outcomes = []
        for mode in modes:
            if stack.component_env["realtime"]["REALTIME_ROOM_FANOUT"] != mode:
                stack.component_env["realtime"]["REALTIME_ROOM_FANOUT"] = mode
                stack.stop("realtime")
                stack.start("realtime")
                stack.wait_ready("realtime")
            # Its gateway reaches users and orders of the first stack and the second replica.
            two = Stack(
                database_url=database_url,
                amqp_url=amqp_url,
                components=[c for c in COMPONENTS if c.name in ("realtime", "gateway")],
                ports={**ports, "realtime": free_port(), "gateway": free_port()},
                env={**env, "REALTIME_ROOM_FANOUT": mode},
                log_dir=workdir / f"logs-{mode}",
            )
            cleanup.callback(two.stop_all)
            log.info(f"[{mode}] starting realtime replica two and its gateway")
            two.start_all()
            outcomes.append(asyncio.run(measure(stack, two, args, mode, tokens)))
            two.stop_all()
        return outcomes


def latency_table(args: argparse.Namespace, outcomes: list[Outcome]) -> list[str]:
    lines = [
        f"say -> message frame at every member, {args.members} members over two replicas, "
        f"{args.rate:.0f} messages/s for {args.seconds:.0f} s with {args.orders:.0f} orders/s",
        "",
        "| fan-out | messages stored / said | frames received / expected | p50 ms | p99 ms "
        "| mean ms | orders 201 | client CPU / waiting | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for o in outcomes:
        s = o.first
        mean = statistics.fmean(s.latencies) if s.latencies else float("nan")
        lines.append(
            f"| {o.fanout}{' (default)' if o.fanout == DEFAULT_FANOUT else ''} | {o.stored} / {s.said} "
            f"| {s.received} / {s.expected} | {pct(s.latencies, 0.5):.1f} | {pct(s.latencies, 0.99):.1f} "
            f"| {mean:.1f} | {s.orders[0]} / {s.orders[1]} | {s.client()} | {s.verdict()} |"
        )
    lines += [
        "",
        f"target: p99 under 100 ms at 1,000 members and 20 messages/s ({TARGET_FRAMES_PER_S:,} frames/s out)",
    ]
    return lines


async def client_check(args: argparse.Namespace) -> list[str]:
    asked = [args.rate, 4 * args.rate]
    log.info(f"client check: the readers alone against a stand-in server, {args.client_check:.0f} s a rate")
    lines = [
        f"bench client alone: {args.members} sockets, each message written to every one by a stand-in server",
        "",
        "| reader processes | frames/s asked | frames/s parsed | p50 ms | p99 ms | CPU us per frame "
        "| busiest waiting for a core |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sorted({1, args.readers}):
        for rate, (parsed, p50, p99, cost, waited) in zip(
            asked, await client_alone(n, args.members, asked, args.client_check), strict=True
        ):
            lines.append(
                f"| {n} | {rate * args.members:,.0f} | {parsed:,.0f} | {p50:.1f} | {p99:.1f} | {cost:.1f} "
                f"| {waited:.0%} |"
            )
    return lines


def rates(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--readers", type=int, default=3, help="reader subprocesses holding the members")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--orders", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fanout", choices=["notify", "broker", "both"], default="both")
    parser.add_argument("--steps", type=rates, default=rates("5,10,20,40,80"), help="messages/s, '' skips")
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=5.0, help="seconds a step's last frames may take")
    parser.add_argument("--kill", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--client-check", type=float, default=3.0, help="seconds a rate; 0 skips")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", DEFAULT_AMQP_URL))
    args = parser.parse_args()
    if args.users % 2 or not 0 < args.senders < args.members:
        parser.error("--users must be even (each account on one replica), 0 < --senders < --members")
    # The default last: its run ends with a replica killed.
    modes = sorted(
        ["notify", "broker"] if args.fanout == "both" else [args.fanout], key=lambda m: m == DEFAULT_FANOUT
    )
    try:
        client = asyncio.run(client_check(args)) if args.client_check > 0 else []
        outcomes = run(args, modes)
    except (RuntimeError, httpx.HTTPError, OSError) as exc:
        log.error(f"bench failed: {exc!r}")
        return 1
    lines = [*client, "", *latency_table(args, outcomes)]
    for o in outcomes:
        if o.steps:
            lines += ["", *sustained_table(o.steps, TARGET_FRAMES_PER_S, o.skipped)]
        if o.presence is not None:
            lines += ["", *o.presence.table()]
    rows = [(f"{o.fanout}, {args.rate:.0f}/s + orders", o.first) for o in outcomes]
    rows += [(f"{o.fanout}, {s.rate:.0f}/s", s) for o in outcomes for s in o.steps]
    lines += ["", *cpu_table(rows)]
    sys.stdout.write("\n".join(lines).lstrip("\n") + "\n")
    return 0


if __name__ == "__main__":
    configure_bench_logging()
    raise SystemExit(main())
