"""What the room bench's own readers can parse, with no server of ours in the way.

A stand-in server in a process of its own accepts the members' WebSockets, answers the ``join`` with
``joined`` and then writes pre-encoded ``message`` frames (the size and shape realtime sends) as fast
as each socket drains: it costs next to nothing per frame, so the figure is the readers' limit. The
bench runs this first and prints frames/s for one reader process and for the pool it will use; the
servers then compete with those readers for the same two cores.
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

from bench.rooms_members import Batch, Child, Member, ReaderPool, say_text

FRAMES_PER_WRITE = 64


def _encode(frame: dict[str, object]) -> bytes:
    return Frame(Opcode.TEXT, orjson.dumps(frame)).serialize(mask=False)


def _message_frames(room: str, count: int) -> bytes:
    user = str(uuid.uuid4())
    return b"".join(
        _encode(
            {
                "type": "message",
                "id": str(uuid.uuid4()),
                "room": room,
                "offset": n + 1,
                "user_id": user,
                "user_name": "R",
                "text": say_text(n, 0),
                "client_id": str(uuid.uuid4()),
                "ts": datetime.now(UTC).isoformat(),
            }
        )
        for n in range(count)
    )


async def _blast(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, block: bytes, go: asyncio.Event
) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    key = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", head)
    if key is None:
        writer.close()
        return
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key.group(1).decode()).encode() + b"\r\n\r\n"
    )
    writer.write(_encode({"type": "joined", "room": "r", "offset": 0, "recovered": True, "presence": []}))
    # What the client sends (its join, its close) is read and dropped.
    drop = asyncio.create_task(_drop(reader))
    try:
        await go.wait()  # every member joined first, so the joins are not what is measured
        while not drop.done():
            writer.write(block)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _drop(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass


def blaster_child(conn: Connection) -> None:
    """The stand-in server: sends its port, blasts once told to, stops when told to."""
    conn.recv()

    async def serve() -> None:
        block = _message_frames(str(uuid.uuid4()), FRAMES_PER_WRITE)
        go = asyncio.Event()
        server = await asyncio.start_server(
            lambda r, w: _blast(r, w, block, go), "127.0.0.1", 0, backlog=2048
        )
        conn.send(server.sockets[0].getsockname()[1])
        async with server:
            await asyncio.to_thread(conn.recv)
            go.set()
            await asyncio.to_thread(conn.recv)

    asyncio.run(serve())


async def parse_rate(processes: int, sockets: int, seconds: float) -> tuple[float, float]:
    """Frames/s that ``processes`` readers parse from ``sockets`` blasted sockets, and frames per CPU second.

    The second figure is the one that survives a loaded machine: it is what one reader does with a
    whole core to itself (frames parsed / CPU seconds the readers spent).
    """
    server = Child(__name__, "blaster_child", None)
    try:
        port = await asyncio.to_thread(server.conn.recv)
        members: list[Member] = [(f"ws://127.0.0.1:{port}/ws", "t")] * sockets
        pool = ReaderPool(processes, members, "r")
        try:
            await pool.start()
            await pool.take()
            server.conn.send("go")
            await asyncio.sleep(0.5)  # the sockets' buffers fill
            await pool.take()
            start = time.monotonic()
            await asyncio.sleep(seconds)
            batch: Batch = await pool.take()
            elapsed = time.monotonic() - start
        finally:
            pool.kill()
        return len(batch.seqs) / elapsed, len(batch.seqs) / max(1e-9, batch.cpu)
    finally:
        server.conn.send("stop")
        server.end(grace=5.0)
