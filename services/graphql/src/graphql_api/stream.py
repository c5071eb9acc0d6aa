"""``events(since)``: the caller's realtime stream, relayed from realtime's ``/ws`` frame by frame.

Each subscription opens its own connection to realtime with the caller's token, so realtime checks the
token, applies its per-user connection limit and replays ``since`` exactly as for a direct client.

Memory per subscriber is bounded: a reader task moves realtime's frames into a queue of
``GRAPHQL_SUBSCRIPTION_QUEUE_SIZE`` events; the subscription takes them out as fast as its client reads.
A client that falls that far behind is closed with 4008, as realtime closes its own slow clients,
instead of the backlog growing here. Realtime's own close codes (4401 expired token, 4403 account
disabled, 4008 too slow) close the client's connection with the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from graphql_api.context import Context
from graphql_api.errors import FORBIDDEN, RATE_LIMITED, UNAUTHENTICATED, ApiError, bad_input, unavailable
from graphql_api.schema.scalars import JSON
from graphql_api.schema.types import StreamEvent

log = logging.getLogger(__name__)

# Close codes that end the client's whole connection: they concern the caller, not one subscription.
RELAYED_CLOSE_CODES = frozenset({4401, 4403, 4008})
SLOW_CONSUMER = 4008
_REFUSED = {401: UNAUTHENTICATED, 403: FORBIDDEN, 429: RATE_LIMITED}
# Frames realtime may send before we take them off its socket, and that socket's receive buffer:
# small and fixed, so a stalled subscriber's backlog is what the queue holds, not what the kernel does.
UPSTREAM_QUEUE_FRAMES = 4
UPSTREAM_RECEIVE_BUFFER = 64 * 1024
UPSTREAM_CLOSE_TIMEOUT = 2.0
# Realtime's largest frame is an order event of ~100 KB; anything past 1 MiB is not realtime speaking.
MAX_FRAME_BYTES = 1024 * 1024


class _Closed:
    """Put in the queue when the upstream connection ends; carries the error for the subscriber."""

    def __init__(self, error: ApiError | None, close_code: int | None) -> None:
        self.error = error
        self.close_code = close_code


async def _open(ctx: Context, since: int | None) -> ClientConnection:
    url = ctx.settings.realtime_url.replace("http", "ws", 1) + "/ws"
    if since is not None:
        url += f"?since={since}"
    headers = {name: value for name, value in ctx.caller.headers.items()}
    try:
        upstream = await connect(
            url,
            additional_headers=headers,
            open_timeout=ctx.settings.upstream_timeout,
            max_size=MAX_FRAME_BYTES,
            max_queue=UPSTREAM_QUEUE_FRAMES,
            # Realtime answers a close at once, unless its answer waits behind frames we stopped
            # reading (a subscriber too slow): then the connection is dropped after this long.
            close_timeout=UPSTREAM_CLOSE_TIMEOUT,
            compression=None,
            user_agent_header=None,
            proxy=None,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        code = _REFUSED.get(status)
        if code is None:
            raise unavailable("realtime") from exc
        raise ApiError(code, "The realtime service refused the subscription.") from exc
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        log.warning("realtime cannot be reached", extra={"upstream": "realtime", "error": str(exc)})
        raise unavailable("realtime") from exc
    sock = upstream.transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UPSTREAM_RECEIVE_BUFFER)
    return upstream


def _event(frame: dict[str, Any]) -> StreamEvent:
    return StreamEvent(
        offset=frame["offset"],
        id=frame["id"],
        event=frame["event"],
        data=JSON(frame["data"]),
        ts=datetime.fromisoformat(frame["ts"]),
    )


async def _read(
    ctx: Context, upstream: ClientConnection, queue: asyncio.Queue[StreamEvent | _Closed]
) -> None:
    """Move event frames into ``queue`` until realtime closes or the subscriber falls too far behind."""
    with contextlib.suppress(ConnectionClosed):
        async for raw in upstream:
            frame = orjson.loads(raw)
            if not isinstance(frame, dict) or frame.get("type") != "event":
                continue  # ready and ping frames are /ws bookkeeping, not events
            if queue.full():
                log.warning("subscriber too slow; closing it", extra={"queued": queue.qsize()})
                await upstream.close()
                _replace_tail(queue, _Closed(None, SLOW_CONSUMER))
                # From here, not from the subscription: that one is waiting for the client to read.
                # Shielded: the subscription, once the client reads again, ends and cancels this task,
                # and a close cancelled while it waits for the socket would never reach the client.
                await asyncio.shield(_close_client(ctx, SLOW_CONSUMER))
                return
            queue.put_nowait(_event(frame))
    code = upstream.close_code
    if code in RELAYED_CLOSE_CODES:
        _replace_tail(queue, _Closed(None, code))
    else:
        _replace_tail(queue, _Closed(unavailable("realtime"), None))


def _replace_tail(queue: asyncio.Queue[StreamEvent | _Closed], item: _Closed) -> None:
    """Put the end marker in even when the queue is full (dropping the newest event: it is never sent)."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


async def events(ctx: Context, since: int | None) -> AsyncIterator[StreamEvent]:
    if since is not None and since < 0:
        raise bad_input("since", "since must be an offset of 0 or more.")
    upstream = await _open(ctx, since)
    queue: asyncio.Queue[StreamEvent | _Closed] = asyncio.Queue(maxsize=ctx.settings.subscription_queue_size)
    reader = asyncio.ensure_future(_read(ctx, upstream, queue))
    try:
        while True:
            item = await queue.get()
            if isinstance(item, _Closed):
                if item.close_code == SLOW_CONSUMER:
                    return  # the reader closes the client
                if item.close_code is not None:
                    await _close_client(ctx, item.close_code)
                    return
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await upstream.close()


async def _close_client(ctx: Context, code: int) -> None:
    websocket = ctx.request
    if isinstance(websocket, WebSocket):
        with contextlib.suppress(RuntimeError, OSError):
            await websocket.close(code=code)
