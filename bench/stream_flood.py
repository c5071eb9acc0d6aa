"""One user floods the gateway with WebSockets, then sends a 16 MiB frame: what the gateway and realtime hold.

Run from the repository root (needs Postgres, RabbitMQ and rabbitmqctl; not part of ``make bench``,
it takes a few minutes)::

    .venv/bin/python -m bench.stream_flood [--sockets 4500] [--in-flight 200] [--scales 1,1000]

For each ``RATE_LIMIT_SCALE`` in ``--scales`` it makes a throwaway database and vhost and starts users,
realtime and the gateway as real processes. The gateway trusts 127.0.0.1 as its proxy, so the
``X-Forwarded-For`` the bench sends is each client's address, as behind the ingress. It registers an
attacker and an honest user, then:

1. ``idle``: the honest user opens and closes WebSockets one after another for ``--idle`` seconds,
   timing each handshake (``connect()`` to the 101), each from an address of its own so that the
   probes never meet the per-client handshake limit themselves;
2. ``flood``: the attacker, from one address, tries ``--sockets`` WebSockets with ``--in-flight``
   attempts at a time; each accepted one is held open; the probes go on meanwhile;
3. ``held``: ``--hold`` seconds with every accepted socket open, probes still going;
4. ``frame``: one ``--frame-mib`` MiB text frame on one accepted socket; what closed it, and when;
5. ``after``: the attacker's sockets closed, ``--settle`` seconds later.

The resident memory (``VmRSS``) of the gateway and realtime processes is read every 100 ms from
``/proc``. The probes run on their own thread and event loop, so the flood's handshakes queued in the
bench's loop do not delay them. With ``RATE_LIMIT_SCALE=1`` the gateway's per-client handshake limit
(a burst of 20, then one a second) refuses most of the flood before realtime sees it; a large scale
takes that limit out of the way and shows realtime's per-user cap alone.

To measure older code, copy this file into a checkout of it (with ``make install`` done there) and
run the same command from that checkout. Prints one markdown table per run on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from bench.processes import configure_bench_logging, free_port, throwaway_database
from bench.vhost import throwaway_vhost
from shared.devstack import COMPONENTS, Stack, write_dev_key
from shared.service.settings import DEFAULT_AMQP_URL

log = logging.getLogger("bench.stream_flood")

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "a long enough password"  # noqa: S105 - bench accounts', in a throwaway database
ATTACKER_ADDRESS = "203.0.113.7"
MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass  # the process has exited
    return 0.0


@dataclass
class Phase:
    """The phase the run is in; the sampler and the prober tag what they record with it."""

    name: str = "idle"


@dataclass
class MemorySampler:
    """VmRSS of each named process every ``interval`` seconds, on a thread of its own."""

    pids: dict[str, int]
    phase: Phase
    interval: float = 0.1
    samples: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((self.phase.name, {n: rss_mib(p) for n, p in self.pids.items()}))
            self._stop.wait(self.interval)

    def last(self, name: str) -> float:
        return self.samples[-1][1][name]

    def peak(self, name: str, *phases: str) -> float:
        return max((s[name] for phase, s in self.samples if phase in phases), default=float("nan"))


@dataclass
class Prober:
    """The honest user's handshakes, one after another, on a thread and event loop of their own."""

    ws_url: str
    token: str
    phase: Phase
    pause: float = 0.1
    latencies_ms: list[tuple[str, float]] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="prober", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    async def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            address = f"198.51.{(n // 250) % 250}.{n % 250 + 1}"
            # The first handshake fills the gateway's and realtime's key caches: not counted.
            phase = self.phase.name if n > 1 else "warm-up"
            started = time.perf_counter()
            try:
                ws = await connect(
                    f"{self.ws_url}?token={self.token}",
                    additional_headers={"X-Forwarded-For": address},
                    compression=None,
                    open_timeout=30,
                    ping_interval=None,
                )
            except InvalidStatus as exc:
                self.refused[f"{phase}: {exc.response.status_code}"] += 1
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                self.refused[f"{phase}: {type(exc).__name__}"] += 1
            else:
                self.latencies_ms.append((phase, (time.perf_counter() - started) * 1000))
                await ws.close()
            await asyncio.sleep(self.pause)

    def percentiles(self, phase: str) -> str:
        ordered = sorted(ms for p, ms in self.latencies_ms if p == phase)
        if not ordered:
            return "no sample"

        def at(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        return f"{at(0.5):.1f} / {at(0.99):.1f} (n={len(ordered)})"


@dataclass
class Flood:
    """The attacker's attempts: the sockets accepted (held open) and the refusals by status and detail."""

    ws_url: str
    token: str
    opened: list[ClientConnection] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    async def run(self, attempts: int, in_flight: int) -> None:
        gate = asyncio.Semaphore(in_flight)

        async def attempt() -> None:
            async with gate:
                try:
                    ws = await connect(
                        f"{self.ws_url}?token={self.token}",
                        additional_headers={"X-Forwarded-For": ATTACKER_ADDRESS},
                        compression=None,
                        open_timeout=60,
                        ping_interval=None,
                    )
                except InvalidStatus as exc:
                    self.refused[_refusal(exc)] += 1
                except (OSError, TimeoutError, InvalidHandshake) as exc:
                    self.refused[type(exc).__name__] += 1
                else:
                    self.opened.append(ws)

        started = time.perf_counter()
        await asyncio.gather(*(attempt() for _ in range(attempts)))
        self.seconds = time.perf_counter() - started

    def still_open(self) -> str:
        """How many accepted sockets are open now, and the close codes of the others."""
        closed = Counter(ws.close_code for ws in self.opened if ws.close_code is not None)
        codes = ", ".join(f"{n} x {code}" for code, n in closed.most_common())
        return f"{len(self.opened) - closed.total()} (closed: {codes or 'none'})"

    async def close(self, in_flight: int) -> None:
        gate = asyncio.Semaphore(in_flight)

        async def one(ws: ClientConnection) -> None:
            async with gate:
                with contextlib.suppress(ConnectionClosed, OSError):
                    await ws.close()

        await asyncio.gather(*(one(ws) for ws in self.opened))


def _refusal(exc: InvalidStatus) -> str:
    """``429 "detail"``: the gateway's own limit and realtime's cap both answer 429, with other details."""
    try:
        detail = orjson.loads(exc.response.body or b"{}").get("detail", "")
    except (orjson.JSONDecodeError, AttributeError):
        detail = ""
    return f'{exc.response.status_code} "{detail}"' if detail else str(exc.response.status_code)


async def big_frame(ws: ClientConnection, mib: int) -> str:
    """Send one ``mib`` MiB text frame; how the connection ended, and how long after the send began."""
    started = time.perf_counter()
    try:
        await ws.send("x" * (mib * MIB))
        sent = "whole frame sent"
    except ConnectionClosed:
        sent = "send cut off"
    try:
        async with asyncio.timeout(60):
            await ws.wait_closed()
    except TimeoutError:
        return f"still open 60 s later ({sent})"
    elapsed = time.perf_counter() - started
    received = ws.protocol.close_rcvd
    if received is None:
        return f"connection dropped without a close frame after {elapsed:.2f} s ({sent})"
    return f'close {received.code} "{received.reason}" after {elapsed:.2f} s ({sent})'


async def token_for(client: httpx.AsyncClient, address: str) -> str:
    email = f"flood-{uuid.uuid4().hex[:8]}@example.com"
    headers = {"X-Forwarded-For": address}
    body = {"email": email, "password": PASSWORD, "full_name": "Flood"}
    (await client.post("/api/v1/auth/register", json=body, headers=headers)).raise_for_status()
    form = {"grant_type": "password", "username": email, "password": PASSWORD}
    response = await client.post("/api/v1/auth/token", data=form, headers=headers)
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


@dataclass
class Result:
    scale: str
    flood: Flood
    memory: MemorySampler
    prober: Prober
    rss_before: dict[str, float]
    rss_held: dict[str, float]
    open_after_hold: str
    frame: str


async def measure(stack: Stack, scale: str, args: argparse.Namespace) -> Result:
    gateway = stack.url("gateway")
    ws_url = gateway.replace("http://", "ws://") + "/ws"
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        attacker = await token_for(client, ATTACKER_ADDRESS)
        honest = await token_for(client, "192.0.2.10")
    phase = Phase()
    pids = {name: stack.processes[name].pid for name in ("gateway", "realtime")}
    memory = MemorySampler(pids, phase)
    prober = Prober(ws_url, honest, phase)
    flood = Flood(ws_url, attacker)
    memory.start()
    prober.start()
    try:
        await asyncio.sleep(args.idle)
        rss_before = {name: memory.last(name) for name in pids}
        phase.name = "flood"
        log.info(f"scale {scale}: {args.sockets} WebSockets for one user, {args.in_flight} in flight")
        await flood.run(args.sockets, args.in_flight)
        phase.name = "held"
        log.info(f"scale {scale}: {len(flood.opened)} accepted in {flood.seconds:.1f} s; holding them")
        await asyncio.sleep(args.hold)
        rss_held = {name: memory.last(name) for name in pids}
        open_after_hold = flood.still_open()
        phase.name = "frame"
        if flood.opened:
            frame = await big_frame(flood.opened[0], args.frame_mib)
        else:
            frame = "no socket was accepted"
        await asyncio.sleep(1)  # the samples after the frame's end, for the peak
        phase.name = "closing"
        prober.stop()
        await flood.close(args.in_flight)
        phase.name = "after"
        await asyncio.sleep(args.settle)
    finally:
        prober.stop()
        memory.stop()
    return Result(scale, flood, memory, prober, rss_before, rss_held, open_after_hold, frame)


def run_scale(scale: str, args: argparse.Namespace) -> Result:
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="stream-flood-")))
        database_url = cleanup.enter_context(throwaway_database(args.database_url))
        amqp_url = cleanup.enter_context(throwaway_vhost(args.amqp_url))
        stack = Stack(
            database_url=database_url,
            amqp_url=amqp_url,
            components=[c for c in COMPONENTS if c.name in ("users", "realtime", "gateway")],
            ports={c.name: free_port() for c in COMPONENTS},
            env={
                "USERS_JWT_PRIVATE_KEY_FILE": str(write_dev_key(workdir / "jwt-ed25519.pem")),
                "LOG_LEVEL": "WARNING",
                "APP_ENV": "development",
                "RATE_LIMIT_SCALE": scale,
                # As behind the ingress: the client's address is the X-Forwarded-For the bench sends.
                "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
                "USERS_TRUSTED_PROXIES": "127.0.0.1",
            },
            log_dir=workdir / "logs",
        )
        cleanup.callback(stack.stop_all)
        log.info(f"scale {scale}: preparing and starting users, realtime, gateway ...")
        stack.prepare()
        stack.start_all()
        return asyncio.run(measure(stack, scale, args))


def table(results: list[Result], args: argparse.Namespace) -> list[str]:
    def row(figure: str, cells: list[str]) -> str:
        return f"| {figure} | " + " | ".join(cells) + " |"

    def rss(name: str) -> list[str]:
        return [
            f"{r.rss_before[name]:.0f} / {r.memory.peak(name, 'flood', 'held'):.0f} / "
            f"{r.rss_held[name]:.0f} / {r.memory.peak(name, 'frame'):.0f} / {r.memory.last(name):.0f}"
            for r in results
        ]

    def refusals(r: Result) -> str:
        return "; ".join(f"{n} x {key}" for key, n in r.flood.refused.most_common()) or "none"

    def probes(phase: str) -> list[str]:
        return [r.prober.percentiles(phase) for r in results]

    def probe_failures(r: Result) -> str:
        return "; ".join(f"{n} x {key}" for key, n in sorted(r.prober.refused.items())) or "none"

    code = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return [
        f"code: {code or 'unknown'}",
        f"one user tries {args.sockets} WebSockets through the gateway ({args.in_flight} in flight), holds "
        f"the accepted ones {args.hold:.0f} s, then sends one {args.frame_mib} MiB frame on one of them",
        "",
        row("figure", [f"RATE_LIMIT_SCALE={r.scale}" for r in results]),
        "|---|" + "---:|" * len(results),
        row("sockets accepted (101)", [str(len(r.flood.opened)) for r in results]),
        row('refused (status "detail")', [refusals(r) for r in results]),
        row("accepted sockets still open after the hold", [r.open_after_hold for r in results]),
        row("attempts took (s)", [f"{r.flood.seconds:.1f}" for r in results]),
        row("gateway RSS MiB: before / peak flood / held / peak frame / after", rss("gateway")),
        row("realtime RSS MiB: before / peak flood / held / peak frame / after", rss("realtime")),
        row(f"the {args.frame_mib} MiB frame", [r.frame for r in results]),
        row("honest handshake ms p50 / p99, no flood", probes("idle")),
        row("honest handshake ms p50 / p99, during the flood", probes("flood")),
        row("honest handshake ms p50 / p99, sockets held", probes("held")),
        row("honest handshakes refused or failed", [probe_failures(r) for r in results]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", type=int, default=4500)
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--scales", default="1,1000", help="RATE_LIMIT_SCALE values, one stack each")
    parser.add_argument("--frame-mib", type=int, default=16)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of probes before the flood")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds the accepted sockets stay open")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after closing, before 'after'")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", DEFAULT_AMQP_URL))
    args = parser.parse_args()
    # Each held socket is a descriptor here and two in the gateway (client and upstream side); the
    # processes the stack starts inherit the raised limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < 2 * args.sockets + 1000:
        log.warning(f"open-file limit {hard} is low for {args.sockets} sockets; some may fail for it")
    try:
        results = [run_scale(scale.strip(), args) for scale in args.scales.split(",") if scale.strip()]
    except (RuntimeError, httpx.HTTPError, OSError) as exc:
        log.error(f"bench failed: {exc!r}")
        return 1
    sys.stdout.write("\n".join(table(results, args)) + "\n")
    return 0


if __name__ == "__main__":
    configure_bench_logging()
    sys.exit(main())
