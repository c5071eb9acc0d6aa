"""What the gateway costs: ``GET /api/v1/users/me`` direct, through the gateway and through nginx.

Run from the repository root: ``.venv/bin/python -m bench.gateway_bench`` (needs Postgres, RabbitMQ
as the users service needs them, and ``wrk`` and ``nginx``: ``apt-get install -y wrk nginx``).

It makes a throwaway database ``bench_<random>``, bootstraps and migrates the users service, starts
users and the gateway as real processes (``LOG_LEVEL=WARNING`` for both) plus one nginx worker with a
keep-alive pool to users, registers a user, and runs ``wrk --latency`` against the three, interleaved,
several rounds; it prints the medians as a markdown table. Every process and the database are removed
at the end, also after a failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from bench.processes import configure_bench_logging, free_port, nginx, standin_users, throwaway_database
from bench.wrk import WrkResult, run_wrk
from shared.db.bootstrap import InfrastructureUnavailable
from shared.devstack import COMPONENTS, Stack, write_dev_key
from shared.service.settings import DEFAULT_AMQP_URL

log = logging.getLogger("bench.gateway_bench")

TARGETS = ("direct", "gateway", "nginx")


def _unwind_on_signals() -> None:
    """SIGTERM and SIGINT unwind the stack, so every cleanup below runs and nothing is left behind.

    SIGINT too: a shell starts background jobs with SIGINT ignored, and Python keeps it that way.
    """

    def handler(signum: int, _: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def access_token(gateway_url: str) -> str:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    password = "bench-password-123"  # noqa: S105 - a throwaway account in a throwaway database
    with httpx.Client(base_url=gateway_url, timeout=10.0) as client:
        created = client.post(
            "/api/v1/auth/register", json={"email": email, "password": password, "full_name": "Bench"}
        )
        created.raise_for_status()
        tokens = client.post(
            "/api/v1/auth/token", data={"grant_type": "password", "username": email, "password": password}
        )
        tokens.raise_for_status()
        token: str = tokens.json()["access_token"]
        check = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        check.raise_for_status()
        return token


@dataclass
class Summary:
    rps: float
    p50_ms: float
    p99_ms: float


def summarise(results: list[WrkResult]) -> Summary:
    return Summary(
        rps=statistics.median(r.requests_per_second for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
    )


def table(summaries: dict[str, Summary], args: argparse.Namespace) -> str:
    upstream = "database-free stand-in" if args.standin else "users service"
    lines = [
        f"GET /api/v1/users/me ({upstream}), wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s --latency, median of {args.rounds} interleaved rounds",
        "",
        "| target | requests/s | p50 (ms) | p99 (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name in TARGETS:
        s = summaries[name]
        lines.append(f"| {name} | {s.rps:,.0f} | {s.p50_ms:.2f} | {s.p99_ms:.2f} |")
    direct, gateway, proxy = summaries["direct"], summaries["gateway"], summaries["nginx"]
    lines += [
        "",
        f"- gateway / direct throughput: **{gateway.rps / direct.rps:.2f}**",
        f"- gateway / nginx throughput: **{gateway.rps / proxy.rps:.2f}**",
        f"- added p50 (gateway - direct): **{gateway.p50_ms - direct.p50_ms:.2f} ms**"
        f" (nginx: {proxy.p50_ms - direct.p50_ms:.2f} ms)",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None]
    if missing:
        log.info(
            f"The bench needs {' and '.join(missing)}, which is not installed: "
            f"`apt-get install -y {' '.join(missing)}` (the Makefile's bench target does this)."
        )
        return 2
    _unwind_on_signals()
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="gateway-bench-")))
        ports = {c.name: free_port() for c in COMPONENTS}
        env = {
            "USERS_JWT_PRIVATE_KEY_FILE": str(write_dev_key(workdir / "jwt-ed25519.pem")),
            "LOG_LEVEL": "WARNING",
            "APP_ENV": "development",
            "RATE_LIMIT_SCALE": "1000",
        }
        log.info("starting users and the gateway ...")
        if args.standin:
            cleanup.enter_context(standin_users(ports["users"], env, workdir))
            database_url = args.database_url
            names: tuple[str, ...] = ("gateway",)
        else:
            database_url = cleanup.enter_context(throwaway_database(args.database_url))
            names = ("users", "gateway")
        stack = Stack(
            database_url=database_url,
            amqp_url=args.amqp_url,
            components=[c for c in COMPONENTS if c.name in names],
            ports=ports,
            env=env,
            log_dir=workdir / "logs",
        )
        cleanup.callback(stack.stop_all)
        if not args.standin:
            stack.prepare()
        stack.start_all()
        urls = {"direct": stack.url("users"), "gateway": stack.url("gateway")}
        urls["nginx"] = cleanup.enter_context(nginx(workdir, stack.port("users")))
        token = access_token(urls["gateway"])
        header = f"Authorization: Bearer {token}"
        path = "/api/v1/users/me"
        log.info("warming up ...")
        for name in TARGETS:
            run_wrk(urls[name] + path, header, threads=args.threads, connections=args.connections, seconds=3)
        results: dict[str, list[WrkResult]] = {name: [] for name in TARGETS}
        for round_no in range(1, args.rounds + 1):
            for name in TARGETS:
                result = run_wrk(
                    urls[name] + path,
                    header,
                    threads=args.threads,
                    connections=args.connections,
                    seconds=args.duration,
                )
                results[name].append(result)
                log.info(
                    f"round {round_no} {name:8} {result.requests_per_second:9,.0f} req/s  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
                )
        sys.stdout.write(table({name: summarise(results[name]) for name in TARGETS}, args) + "\n")
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
    parser.add_argument(
        "--standin",
        action="store_true",
        help="a database-free users stand-in instead of the real service: isolates the proxy's own cost",
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
