"""What the room bench's own readers can take, with no server of ours in the way.

A stand-in server in a process of its own accepts the members' WebSockets, answers the ``join`` with
``joined`` and then does what realtime's fan-out does, at a given rate: each message is one
``message`` frame (realtime's size and shape, its text carrying the send time) encoded once and
written to every socket. It does no per-socket work beyond the write, so what the table shows is the
readers: the frames/s they parsed, the latency they added, and the CPU each frame cost them.

Paced rather than flat out on purpose: a reader that falls behind receives many frames per read and
then pays far less per frame (one wakeup, one ``recv`` for dozens), which is not the regime of the
real bench, where each message reaches each socket as a frame of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from datetime import UTC, datetime
from multiprocessing.connection import Connection

import orjson
from websockets.frames import Frame, Opcode
from websockets.utils import accept_key

from bench.rooms_members import Child, Member, ReaderPool, say_text
from bench.rooms_steps import pct

ROOM, USER = str(uuid.uuid4()), str(uuid.uuid4())


def _encode(frame: dict[str, object]) -> bytes:
    return Frame(Opcode.TEXT, orjson.dumps(frame)).serialize(mask=False)


def _message(seq: int) -> bytes:
    return _encode(
        {
            "type": "message",
            "id": str(uuid.uuid4()),
            "room": ROOM,
            "offset": seq + 1,
            "user_id": USER,
            "user_name": "R",
            "text": say_text(seq, time.monotonic_ns()),
            "client_id": str(uuid.uuid4()),
            "ts": datetime.now(UTC).isoformat(),
        }
    )


async def _accept(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, members: list[asyncio.StreamWriter]
) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return  # the client left before its handshake: the client check counts only who connects
    key = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", head)
    if key is None:
        writer.close()
        return
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key.group(1).decode()).encode() + b"\r\n\r\n"
    )
    writer.write(_encode({"type": "joined", "room": ROOM, "offset": 0, "recovered": True, "presence": []}))
    members.append(writer)
    # What the client sends (its join, its close) is read and dropped.
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass
    members.remove(writer)


async def _fan_out(members: list[asyncio.StreamWriter], rate: float, stop: asyncio.Event) -> None:
    start, seq = time.monotonic(), 0
    while not stop.is_set():
        await asyncio.sleep(max(0.0, start + seq / rate - time.monotonic()))
        frame = _message(seq)
        for writer in members:
            writer.write(frame)
        seq += 1
        # A reader that falls behind holds the schedule back (its frames wait here, not in memory).
        await asyncio.gather(*(w.drain() for w in members if w.transport.get_write_buffer_size() > 2**16))


def blaster_child(conn: Connection) -> None:
    """The stand-in server: sends its port, then fans out at each rate it is sent until ``None``."""
    conn.recv()

    async def serve() -> None:
        members: list[asyncio.StreamWriter] = []
        server = await asyncio.start_server(lambda r, w: _accept(r, w, members), "127.0.0.1", 0, backlog=2048)
        conn.send(server.sockets[0].getsockname()[1])
        async with server:
            while (rate := await asyncio.to_thread(conn.recv)) is not None:
                stop = asyncio.Event()
                fanning = asyncio.create_task(_fan_out(members, rate, stop))
                await asyncio.to_thread(conn.recv)  # "stop"
                stop.set()
                await fanning
                conn.send("stopped")

    asyncio.run(serve())


async def client_alone(
    processes: int, sockets: int, rates: list[float], seconds: float
) -> list[tuple[float, float, float, float, float]]:
    """Per messages/s rate: (frames/s parsed, p50 ms, p99 ms, CPU us per frame, busiest waiting share)."""
    server = Child(__name__, "blaster_child", None)
    out = []
    try:
        port = await asyncio.to_thread(server.conn.recv)
        members: list[Member] = [(f"ws://127.0.0.1:{port}/ws", "t")] * sockets
        pool = ReaderPool(processes, members, ROOM)
        try:
            await pool.start()
            for rate in rates:
                await pool.take()
                server.conn.send(rate)
                await asyncio.sleep(seconds)
                server.conn.send("stop")
                await asyncio.to_thread(server.conn.recv)
                await asyncio.sleep(0.2)  # the last frames in flight
                batch = await pool.take()
                latencies = sorted((a - s) / 1e6 for s, a in zip(batch.sent, batch.arrived, strict=True))
                frames = len(latencies)
                span = (max(batch.arrived) - min(batch.arrived)) / 1e9 if frames > 1 else seconds
                out.append(
                    (
                        frames / span,
                        pct(latencies, 0.5),
                        pct(latencies, 0.99),
                        batch.cpu / max(1, frames) * 1e6,
                        batch.waited,
                    )
                )
        finally:
            pool.kill()
    finally:
        server.conn.send(None)
        server.end(grace=5.0)
    return out
