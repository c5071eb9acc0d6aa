"""The room bench's members: WebSockets joined to one room, read in a few processes of their own.

The client must not be what the bench measures. Alone against a stand-in server (``rooms_client.py``,
which the bench runs first and prints), one reader process on ``websockets``' asyncio client spent
21-27 us of CPU a frame and by itself added a p99 of about 150 ms at 20,000 frames/s on the shared
two-core machine; on the bare protocol of ``rooms_socket.py`` it spends about 11 us a frame, and the
client alone then adds a p99 of about 50 ms in one process, under 30 ms in three. Three processes
also hold three shares of the scheduler while the servers compete for the same two cores, so frames
wait less often in a reader's socket for its turn. Hence ``ReaderPool``: the member sockets spread
over ``--readers`` subprocesses, each returning what arrived when asked.

Every ``message`` frame is recorded with the sequence number and send time the sender wrote into its
text, and its arrival time. Both times are ``time.monotonic_ns()``: on Linux that is
``CLOCK_MONOTONIC``, one clock for the whole machine, so a send time taken in the bench's main process
and an arrival time taken in a reader are comparable (``perf_counter`` is not documented to be).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import orjson
import uvloop

from bench.cpu import run_queue_wait
from bench.rooms_socket import HandshakeFailed, RawSocket

Member = tuple[str, str]  # (ws:// URL of /ws, access token)


@dataclass
class Batch:
    """What the members received since the last ``take``."""

    seqs: array[int] = field(default_factory=lambda: array("q"))
    sent: array[int] = field(default_factory=lambda: array("q"))
    arrived: array[int] = field(default_factory=lambda: array("q"))
    # (action, user_id, arrival ns) of every presence frame.
    presence: list[tuple[str, str, int]] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Seconds of CPU the reading process spent, its share of the wall time since the last take, and the
    # share of that time its thread was runnable but waiting for a core (the machine was too busy).
    cpu: float = 0.0
    busy: float = 0.0
    waited: float = 0.0

    def extend(self, other: Batch) -> None:
        self.seqs.extend(other.seqs)
        self.sent.extend(other.sent)
        self.arrived.extend(other.arrived)
        self.presence += other.presence
        self.closed += other.closed
        self.errors += other.errors
        self.cpu += other.cpu
        self.busy = max(self.busy, other.busy)
        self.waited = max(self.waited, other.waited)


def say_text(seq: int, sent_ns: int) -> str:
    """The text of a bench message: the readers recover both numbers from the ``message`` frame."""
    return f"{seq} {sent_ns}"


class Members:
    """Sockets joined to one room in this process, every frame recorded as it arrives."""

    def __init__(self) -> None:
        self.sockets: list[RawSocket] = []
        self._batch = Batch()
        self._since = (time.monotonic(), time.process_time(), run_queue_wait())

    async def join(self, url: str, token: str, room: str) -> RawSocket:
        joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def until_joined(payload: bytes, now: int) -> None:
            if orjson.loads(payload).get("type") == "joined":
                ws.on_frame = self._on_frame
                if not joined.done():
                    joined.set_result(None)

        ws = RawSocket(until_joined)
        await ws.connect(f"{url}?token={token}")
        await ws.send(orjson.dumps({"type": "join", "room": room}).decode())
        await asyncio.wait({joined, ws.closed}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if not joined.done():
            ws.abort()
            raise HandshakeFailed(f"no joined frame (closed {ws.close_code})")
        self.sockets.append(ws)
        ws.closed.add_done_callback(self._on_closed)
        return ws

    async def join_all(self, members: list[Member], room: str) -> None:
        for first in range(0, len(members), 50):
            await asyncio.gather(*(self.join(url, token, room) for url, token in members[first : first + 50]))

    def _on_frame(self, payload: bytes, now: int) -> None:
        frame = orjson.loads(payload)
        kind = frame.get("type")
        batch = self._batch
        if kind == "message":
            seq, _, sent = frame["text"].partition(" ")
            batch.seqs.append(int(seq))
            batch.sent.append(int(sent))
            batch.arrived.append(now)
        elif kind == "presence":
            batch.presence.append((frame["action"], frame["user_id"], now))
        elif kind == "error":
            batch.errors.append(str(frame.get("code")))

    def _on_closed(self, closed: asyncio.Future[int]) -> None:
        # The server closing a member (4008) or losing it (1006: its replica died) is recorded.
        if closed.result() != 1000:
            self._batch.closed.append(closed.result())

    def take(self) -> Batch:
        batch, self._batch = self._batch, Batch()
        wall, cpu, waited = time.monotonic(), time.process_time(), run_queue_wait()
        elapsed = max(1e-9, wall - self._since[0])
        batch.cpu = cpu - self._since[1]
        batch.busy = batch.cpu / elapsed
        batch.waited = (waited - self._since[2]) / elapsed
        self._since = (wall, cpu, waited)
        return batch

    async def close(self) -> None:
        for ws in self.sockets:
            ws.close()
        await asyncio.wait([s.closed for s in self.sockets], timeout=5)
        for ws in self.sockets:
            ws.abort()


class Child:
    """``module.function(conn)`` in a fresh interpreter, talking over a socket pair.

    Not multiprocessing's ``spawn``: its children import the bench's main module again (the whole
    stack tooling, seconds each on a loaded machine), and a ``fork`` of the bench would copy its event
    loop and threads. A child started here imports only ``module``.
    """

    def __init__(self, module: str, function: str, payload: object) -> None:
        parent, child = socket.socketpair()
        code = (
            "import sys; from multiprocessing.connection import Connection; "
            f"from {module} import {function}; {function}(Connection(int(sys.argv[1])))"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, str(child.fileno())], pass_fds=[child.fileno()]
        )
        child.close()
        self.conn = Connection(parent.detach())
        self.conn.send(payload)

    def end(self, grace: float = 0.0) -> None:
        """Wait up to ``grace`` seconds for the child to finish, then kill it."""
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.conn.close()


def reader_child(conn: Connection) -> None:
    members, room = conn.recv()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(conn, members, room))


async def _serve(conn: Connection, members: list[Member], room: str) -> None:
    """Join, then answer the parent's ``take`` and ``stop`` until it says stop."""
    own = Members()
    try:
        await own.join_all(members, room)
    except (OSError, TimeoutError) as exc:
        conn.send(f"join failed: {exc!r}")
        return
    conn.send("ready")
    while True:
        # A thread waits on the pipe: an event loop's add_reader would make its socket non-blocking.
        command = await asyncio.to_thread(conn.recv)
        if command == "stop":
            await own.close()
            conn.send(own.take())
            return
        conn.send(own.take())


class ReaderPool:
    """``processes`` reader subprocesses holding ``members`` between them (round robin)."""

    def __init__(self, processes: int, members: list[Member], room: str) -> None:
        self._shares = [(members[n::processes], room) for n in range(processes)]
        self._children: list[Child] = []

    async def start(self) -> None:
        self._children = [Child(__name__, "reader_child", share) for share in self._shares]
        for child in self._children:
            answer = await asyncio.to_thread(child.conn.recv)
            if answer != "ready":
                raise RuntimeError(f"a reader process did not join: {answer}")

    async def take(self, command: str = "take") -> Batch:
        for child in self._children:
            child.conn.send(command)
        merged = Batch()
        for child in self._children:
            batch: Batch = await asyncio.to_thread(child.conn.recv)
            merged.extend(batch)
        return merged

    async def stop(self) -> Batch:
        batch = await self.take("stop")
        self.kill(grace=5.0)
        return batch

    def kill(self, grace: float = 0.0) -> None:
        """End the reader processes (after ``grace`` seconds to finish on their own)."""
        for child in self._children:
            child.end(grace)
        self._children = []
