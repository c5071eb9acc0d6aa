"""What hostile request heads cost the gateway: one huge header, and many clients that never finish.

Run from the repository root: ``.venv/bin/python -m bench.hostile_heads`` (needs nothing else: the
gateway's own ``/healthz`` answers without an upstream).

It starts one gateway process and, for each attack, samples the process's resident memory and the
latency of ``GET /healthz`` from an honest client every 50 ms while the attack runs:

- ``header``: one request whose head carries a ``--header-mib`` MiB header (64 by default), sent as
  fast as the gateway reads it; reports how long until the gateway answered or closed;
- ``slow``: ``--slow-clients`` connections (200) that each send a request line and then one header
  byte a second; reports how many the gateway still holds after ``--slow-seconds`` (15).

Prints a markdown table. The gateway process is stopped at the end, also after a failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def gateway_process() -> Iterator[tuple[int, int]]:
    port = free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING", "GATEWAY_USERS_URL": f"http://127.0.0.1:{free_port()}"}
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/python"), "-m", "gateway", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.1)
        yield port, process.pid
    finally:
        stop_process(process, grace=20)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Samples:
    rss: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    failures: int = 0

    def row(self, name: str, outcome: str) -> str:
        worst = max(self.latency_ms, default=float("nan"))
        ordered = sorted(self.latency_ms) or [float("nan")]
        p50 = ordered[len(ordered) // 2]
        return f"| {name} | {max(self.rss):.0f} | {p50:.1f} | {worst:.0f} | {self.failures} | {outcome} |"


@asynccontextmanager
async def sampling(port: int, pid: int) -> AsyncIterator[Samples]:
    samples = Samples()

    async def run() -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            while True:
                samples.rss.append(rss_mib(pid))
                started = time.perf_counter()
                try:
                    (await client.get("/healthz")).raise_for_status()
                except httpx.HTTPError:
                    samples.failures += 1
                samples.latency_ms.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.05)

    task = asyncio.create_task(run())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def huge_header(port: int, mib: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Big: ")
    chunk = b"a" * (1024 * 1024)
    sent = 0
    try:
        for _ in range(mib):
            writer.write(chunk)
            await writer.drain()
            sent += 1
        writer.write(b"\r\n\r\n")
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    try:
        status = (await asyncio.wait_for(reader.readline(), 120)).decode().strip() or "closed"
    except (ConnectionError, OSError):
        status = "closed"
    elapsed = time.perf_counter() - started
    writer.close()
    return f"{status or 'closed'} after {elapsed:.2f} s, {sent} of {mib} MiB sent"


async def slow_clients(port: int, count: int, seconds: float) -> str:
    async def one() -> bool:
        """True when the gateway still holds the connection at the end."""
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(reader.read(1024), 1.0) == b"" or reader.at_eof():
                        return False
                writer.write(b"a")
            return True
        except (ConnectionError, OSError):
            return False
        finally:
            writer.close()

    held = await asyncio.gather(*(one() for _ in range(count)))
    return f"{sum(held)} of {count} still held after {seconds:.0f} s"


async def main_async(args: argparse.Namespace) -> list[str]:
    rows = [
        "| attack | gateway RSS max (MiB) | /healthz p50 (ms) | /healthz max (ms) | failed | outcome |",
        "|---|---:|---:|---:|---:|---|",
    ]
    with gateway_process() as (port, pid):
        async with sampling(port, pid) as idle:
            await asyncio.sleep(2)
        rows.append(idle.row("none", "-"))
        async with sampling(port, pid) as under_header:
            outcome = await huge_header(port, args.header_mib)
            await asyncio.sleep(1)
        rows.append(under_header.row(f"one {args.header_mib} MiB header", outcome))
    with gateway_process() as (port, pid):
        async with sampling(port, pid) as under_slow:
            outcome = await slow_clients(port, args.slow_clients, args.slow_seconds)
        rows.append(under_slow.row(f"{args.slow_clients} slow heads", outcome))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--header-mib", type=int, default=64)
    parser.add_argument("--slow-clients", type=int, default=200)
    parser.add_argument("--slow-seconds", type=float, default=15.0)
    rows = asyncio.run(main_async(parser.parse_args()))
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
