"""One step of room load: ``say`` at a rate for some seconds, then every ``message`` frame accounted for.

A step passes when no member's socket was closed (4008 or any other code), no ``say`` got an
``error`` frame, every (message, member) frame arrived within ``drain`` seconds of the last ``say``,
and the lag did not grow: the p50 latency of the messages said in the step's last 2 s is at most
twice that of its first 2 s plus 20 ms. The slack is there because a p50 of a few milliseconds doubles
on scheduler noise alone on a shared machine; a backlog that builds up grows by far more than that.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import orjson

from bench.cpu import CpuWindow
from bench.realtime_bench import ORDER
from bench.rooms_members import Batch, Members, ReaderPool, say_text
from bench.rooms_socket import RawSocket

WINDOW_NS = 2_000_000_000  # first and last 2 s of a step, for the lag rule
LAG_FACTOR, LAG_SLACK_MS = 2.0, 20.0


def pct(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


@dataclass
class Load:
    """Everything a step needs: the room, who says, who reads, and the HTTP client for orders."""

    client: httpx.AsyncClient
    tokens: list[str]
    room: str
    members: int
    senders: Members
    speakers: list[RawSocket]
    pool: ReaderPool
    drain: float
    # The stack's processes whose CPU each step reports, by name.
    pids: dict[str, int] = field(default_factory=dict)
    next_seq: int = 0

    async def take(self) -> Batch:
        batch = await self.pool.take()
        batch.extend(self.senders.take())
        return batch


@dataclass
class Step:
    rate: float
    seconds: float
    members: int
    said: int = 0
    late_by: float = 0.0  # how far behind its schedule the last ``say`` went out, seconds
    received: int = 0
    latencies: list[float] = field(default_factory=list)
    first_p50: float = math.nan
    last_p50: float = math.nan
    closed: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reader_busy: float = 0.0
    reader_waited: float = 0.0
    # Cores used during the step: each stack process, the bench's client (main + readers); machine busy.
    cores: dict[str, float] = field(default_factory=dict)
    machine: float = math.nan
    elapsed: float = math.nan  # seconds from the first say to the last frame counted
    orders: tuple[int, int] = (0, 0)

    @property
    def frames_per_s(self) -> float:
        return self.rate * self.members

    @property
    def expected(self) -> int:
        return self.said * self.members

    def verdict(self) -> str:
        """``pass``, or every reason the step failed."""
        reasons = []
        if self.closed:
            reasons.append(f"{len(self.closed)} sockets closed {sorted(set(self.closed))}")
        if self.errors:
            reasons.append(f"error frames {sorted(set(self.errors))}")
        if self.received < self.expected:
            reasons.append(f"{self.expected - self.received} frames missing after the drain")
        if self.received > self.expected:
            reasons.append(f"{self.received - self.expected} frames duplicated")
        if self.last_p50 > LAG_FACTOR * self.first_p50 + LAG_SLACK_MS:
            reasons.append(f"lag grew {self.first_p50:.0f} -> {self.last_p50:.0f} ms")
        if self.late_by > 1.0:
            # The says wait on the sockets' send buffers: behind schedule means the replicas stopped
            # reading them in time (or the bench's own process got no core: see its waiting share).
            reasons.append(f"says went out {self.late_by:.1f} s behind schedule")
        return "; ".join(reasons) or "pass"

    def client(self) -> str:
        """The busiest bench process: its CPU share, and the share it waited for a core."""
        return f"{self.reader_busy:.0%} / {self.reader_waited:.0%}"


async def _say(load: Load, rate: float, seconds: float, seqs: range) -> tuple[int, int, float]:
    """Say ``seqs`` on schedule; the start and end (monotonic ns) and how late the last one was."""
    start = time.monotonic()
    start_ns = time.monotonic_ns()
    for n, seq in enumerate(seqs):
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        speaker = load.speakers[seq % len(load.speakers)]
        text = say_text(seq, time.monotonic_ns())
        await speaker.send(orjson.dumps({"type": "say", "room": load.room, "text": text}).decode())
    late = time.monotonic() - (start + (len(seqs) - 1) / rate)
    return start_ns, start_ns + int(seconds * 1e9), max(0.0, late)


async def _orders(load: Load, rate: float, seconds: float) -> tuple[int, int]:
    total = int(rate * seconds)
    start = time.monotonic()

    async def one(i: int) -> bool:
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        headers = {"Authorization": f"Bearer {load.tokens[i % len(load.tokens)]}"}
        response = await load.client.post("/api/v1/orders", json=ORDER, headers=headers)
        return response.status_code == 201

    created = await asyncio.gather(*(one(i) for i in range(total)))
    return sum(created), total


async def run_step(load: Load, rate: float, seconds: float, orders: float = 0.0) -> Step:
    """Say at ``rate`` messages/s for ``seconds`` (with ``orders``/s created alongside) and account."""
    step = Step(rate=rate, seconds=seconds, members=load.members)
    seqs = range(load.next_seq, load.next_seq + int(rate * seconds))
    load.next_seq = seqs.stop
    await load.take()  # whatever arrived before the step is not the step's
    window = CpuWindow(load.pids)
    client_cpu = 0.0
    saying = _say(load, rate, seconds, seqs)
    if orders > 0:
        (start_ns, end_ns, step.late_by), step.orders = await asyncio.gather(
            saying, _orders(load, orders, seconds)
        )
    else:
        start_ns, end_ns, step.late_by = await saying
    step.said = len(seqs)
    first: list[float] = []
    last: list[float] = []
    busy: list[float] = []
    waited: list[float] = []
    deadline = time.monotonic() + load.drain
    while True:
        batch = await load.take()
        busy.append(batch.busy)
        waited.append(batch.waited)
        client_cpu += batch.cpu
        step.closed += batch.closed
        step.errors += batch.errors
        for seq, sent, arrived in zip(batch.seqs, batch.sent, batch.arrived, strict=True):
            if seq not in seqs:
                continue
            latency = (arrived - sent) / 1e6
            step.received += 1
            step.latencies.append(latency)
            if sent < start_ns + WINDOW_NS:
                first.append(latency)
            elif sent >= end_ns - WINDOW_NS:
                last.append(latency)
        if step.received >= step.expected or step.closed or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    step.latencies.sort()
    step.first_p50 = statistics.median(first) if first else math.nan
    step.last_p50 = statistics.median(last) if last else math.nan
    step.reader_busy, step.reader_waited = max(busy), max(waited)
    step.cores, step.machine = window.cores()
    step.elapsed = time.monotonic() - window.started
    step.cores["bench client"] = client_cpu / step.elapsed
    return step


async def sustained(load: Load, rates: Sequence[float], seconds: float) -> list[Step]:
    """Steps at rising rates; the first failure ends the climb (the ones above it are skipped)."""
    steps: list[Step] = []
    for rate in rates:
        step = await run_step(load, rate, seconds)
        steps.append(step)
        if step.verdict() != "pass":
            break
    return steps


def sustained_table(steps: Sequence[Step], target: float, skipped: Sequence[float]) -> list[str]:
    lines = [
        f"sustained rate: each step {steps[0].seconds:.0f} s, {steps[0].members} members; a step passes "
        f"with no socket closed, every frame delivered, and last-2-s p50 <= {LAG_FACTOR:.0f} x "
        f"first-2-s p50 + {LAG_SLACK_MS:.0f} ms",
        "",
        "| messages/s | frames/s out | frames received / expected | p50 ms | p99 ms | p50 first 2 s "
        "| p50 last 2 s | says late s | client CPU / waiting | verdict |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in steps:
        lines.append(
            f"| {s.rate:.0f} | {s.frames_per_s:,.0f} | {s.received} / {s.expected} "
            f"| {pct(s.latencies, 0.5):.1f} | {pct(s.latencies, 0.99):.1f} | {s.first_p50:.1f} "
            f"| {s.last_p50:.1f} | {s.late_by:.2f} | {s.client()} | {s.verdict()} |"
        )
    for rate in skipped:
        lines.append(f"| {rate:.0f} | {rate * steps[0].members:,.0f} | | | | | | | | skipped |")
    passed = [s.frames_per_s for s in steps if s.verdict() == "pass"]
    best = f"{max(passed):,.0f}" if passed else "none"
    lines += ["", f"highest sustained: {best} frames/s (target: {target:,.0f} frames/s)"]
    return lines


def cpu_table(rows: Sequence[tuple[str, Step]]) -> list[str]:
    """Cores each process used during each step (1.0 = one core all along) and the machine's busy share."""
    names = list(rows[0][1].cores) if rows else []
    lines = [
        "cores used during each step (1.0 = one core throughout; the machine has "
        f"{os.cpu_count()}), and how busy the whole machine was",
        "",
        "| step | " + " | ".join(names) + " | machine busy | CPU us per frame, all of ours |",
        "|---|" + "---:|" * (len(names) + 2),
    ]
    for label, step in rows:
        used = " | ".join(f"{step.cores.get(name, math.nan):.2f}" for name in names)
        per_frame = sum(step.cores.values()) * step.elapsed / max(1, step.received) * 1e6
        lines.append(f"| {label} | {used} | {step.machine:.0%} | {per_frame:.0f} |")
    return lines
