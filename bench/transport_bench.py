"""What one service-to-service call costs its caller in CPU: plain httpx, httpx on
``shared.http.PoolTransport`` (the services' ``ServiceClient``), and the bare ``shared.http.UpstreamPool``.

Run from the repository root: ``.venv/bin/python -m bench.transport_bench`` (needs nothing else). It
starts a stand-in upstream in a process of its own (a raw asyncio server answering every request with
orders' account-check answer: a small JSON body, keep-alive), then, in this process on uvloop as the
services run, makes the same ``GET /internal/users/<id>`` with each client, ``--concurrency`` at a
time, interleaved over several rounds. CPU per call is this process's ``time.process_time()`` over
the round divided by its calls, so the upstream's own cost is not in it. Prints the medians as a
markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
import uvloop

from bench.processes import configure_bench_logging, free_port
from shared.http import PoolTransport, ServiceClient, UpstreamPool

log = logging.getLogger("bench.transport_bench")

BODY = b'{"id":"%s","email":"bench@example.com","full_name":"Bench","roles":["user"],"is_active":true}' % (
    str(uuid.uuid4()).encode()
)
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)
CLIENTS = ("httpx (default transport)", "httpx on PoolTransport", "UpstreamPool (bare)")
HEADERS = {"x-service-token": "bench-token", "x-request-id": "bench-request"}

Call = Callable[[], Awaitable[int]]


async def serve(port: int) -> None:
    """The stand-in upstream: one canned answer per request head (GETs only, so no bodies to read)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(ANSWER)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def start_upstream(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "bench.transport_bench", "--serve", str(port)])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.TransportError:
            if process.poll() is not None:
                raise RuntimeError("the stand-in upstream exited") from None
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the stand-in upstream did not start")


async def cpu_per_call(call: Call, calls: int, concurrency: int) -> tuple[float, float]:
    """(CPU µs per call, calls per second of wall time) for ``calls`` calls, ``concurrency`` at a time."""
    per_worker = calls // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            if await call() != 200:
                raise RuntimeError("the stand-in upstream did not answer 200")

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = per_worker * concurrency
    return cpu / done * 1e6, done / wall


async def measure(args: argparse.Namespace, url: str) -> dict[str, list[tuple[float, float]]]:
    target = f"/internal/users/{uuid.uuid4()}"
    plain = httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_keepalive_connections=args.concurrency))
    # As the services make it: ``ServiceClient`` (no cookie store) on the pool.
    fast = ServiceClient(base_url=url, transport=PoolTransport(UpstreamPool(url)))
    pool = UpstreamPool(url)
    raw_target, raw_headers = target.encode(), [(k.encode(), v.encode()) for k, v in HEADERS.items()]

    async def via_plain() -> int:
        return (await plain.get(target, headers=HEADERS, timeout=2.0)).status_code

    async def via_fast() -> int:
        return (await fast.get(target, headers=HEADERS, timeout=2.0)).status_code

    async def via_pool() -> int:
        return (await pool.request("GET", raw_target, raw_headers, None, timeout=2.0)).status

    calls: dict[str, Call] = dict(zip(CLIENTS, (via_plain, via_fast, via_pool), strict=True))
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in CLIENTS}
    try:
        for call in calls.values():  # warm: connections open, code paths hot
            await cpu_per_call(call, args.calls // 5, args.concurrency)
        for round_no in range(1, args.rounds + 1):
            for name, call in calls.items():
                results[name].append(await cpu_per_call(call, args.calls, args.concurrency))
                cpu, rate = results[name][-1]
                log.info(f"round {round_no}: {name}: {cpu:.0f} µs CPU/call, {rate:,.0f} calls/s")
    finally:
        await plain.aclose()
        await fast.aclose()
        pool.close()
    return results


def run(args: argparse.Namespace) -> int:
    port = free_port()
    upstream = start_upstream(port)
    try:
        results = uvloop.run(measure(args, f"http://127.0.0.1:{port}"))
    finally:
        upstream.terminate()
        upstream.wait(10)
    bare = statistics.median(cpu for cpu, _ in results[CLIENTS[-1]])
    lines = [
        f"GET /internal/users/<id> to a stand-in upstream, {args.calls:,} calls x {args.rounds} rounds, "
        f"{args.concurrency} at a time, medians (CPU: this process's process_time, uvloop)",
        "",
        "| client | CPU per call (µs) | x bare pool | calls / s |",
        "|---|---:|---:|---:|",
    ]
    for name in CLIENTS:
        cpu = statistics.median(c for c, _ in results[name])
        rate = statistics.median(r for _, r in results[name])
        lines.append(f"| {name} | {cpu:.0f} | {cpu / bare:.1f} | {rate:,.0f} |")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        uvloop.run(serve(args.serve))
        return 0
    try:
        return run(args)
    except (RuntimeError, httpx.HTTPError) as exc:
        log.error(f"bench failed: {exc}")
        return 1


if __name__ == "__main__":
    configure_bench_logging()
    sys.exit(main())
