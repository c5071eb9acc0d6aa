"""Subscriptions relayed from realtime's ``/ws`` frame by frame: ``events(since)``, the caller's stream,
and ``roomMessages(roomId, since)``, one room's messages (a ``join`` frame on a connection of its own).

Each subscription opens its own connection to realtime with the caller's token, so realtime checks the
token, applies its per-user connection limit and replays ``since`` exactly as for a direct client.

Memory per subscriber is bounded: a reader task moves realtime's frames into a queue of
``GRAPHQL_SUBSCRIPTION_QUEUE_SIZE`` items; the subscription takes them out as fast as its client reads.
A client that falls that far behind is closed with 4008, as realtime closes its own slow clients,
instead of the backlog growing here. Realtime's own close codes (4401 expired token, 4403 account
disabled, 4008 too slow) close the client's connection with the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, TypeVar

import orjson
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from graphql_api.context import Context
from graphql_api.errors import (
    BAD_USER_INPUT,
    FORBIDDEN,
    INTERNAL,
    NOT_FOUND,
    RATE_LIMITED,
    UNAUTHENTICATED,
    ApiError,
    bad_input,
    internal,
    unavailable,
)
from graphql_api.schema.scalars import JSON
from graphql_api.schema.types import RoomMessage, StreamEvent

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
# Realtime's room error frames (contract section 6) as extensions.code; the others cannot happen on a
# connection that joins one room and says nothing.
_ROOM_ERRORS = {"not_found": NOT_FOUND, "bad_frame": BAD_USER_INPUT, "rate_limited": RATE_LIMITED}

Item = TypeVar("Item")
# What a subscription makes of one of realtime's frames: an item to send, None to skip the frame, or
# ApiError raised to end the subscription with that error.
Translate = Callable[[dict[str, Any]], Item | None]


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


def _event(frame: dict[str, Any]) -> StreamEvent | None:
    if frame.get("type") != "event":
        return None  # ready, ping and room frames are not the caller's events
    return StreamEvent(
        offset=frame["offset"],
        id=frame["id"],
        event=frame["event"],
        data=JSON(frame["data"]),
        ts=datetime.fromisoformat(frame["ts"]),
    )


def _room_message(room: str, frame: dict[str, Any]) -> RoomMessage | None:
    kind = frame.get("type")
    if kind == "message" and frame.get("room") == room:
        return RoomMessage.from_rest(frame)
    if kind == "room_closed" and frame.get("room") == room:
        raise ApiError(NOT_FOUND, "The room was deleted.")
    if kind == "error":
        detail = frame.get("detail")
        message = detail if isinstance(detail, str) else "The realtime service refused to join the room."
        raise ApiError(_ROOM_ERRORS.get(str(frame.get("code")), INTERNAL), message)
    return None  # joined, presence, ping, ready, the caller's own events


async def _read(
    ctx: Context,
    upstream: ClientConnection,
    queue: asyncio.Queue[Item | _Closed],
    translate: Translate[Item],
) -> None:
    """Move translated frames into ``queue`` until realtime closes, a frame ends the subscription, or
    the subscriber falls too far behind."""
    with contextlib.suppress(ConnectionClosed):
        async for raw in upstream:
            try:
                frame = orjson.loads(raw)
                item = translate(frame) if isinstance(frame, dict) else None
            except ApiError as error:
                _replace_tail(queue, _Closed(error, None))
                return  # the subscription closes realtime's connection once it reaches the error
            except (KeyError, TypeError, ValueError):
                # Not what realtime sends: a bug on one side, ended here rather than leaving the
                # subscriber waiting on a reader that is gone.
                log.exception("realtime sent a frame that does not follow the contract")
                _replace_tail(queue, _Closed(internal(), None))
                return
            if item is None:
                continue
            if queue.full():
                log.warning("subscriber too slow; closing it", extra={"queued": queue.qsize()})
                await upstream.close()
                _replace_tail(queue, _Closed(None, SLOW_CONSUMER))
                # From here, not from the subscription: that one is waiting for the client to read.
                # Shielded: the subscription, once the client reads again, ends and cancels this task,
                # and a close cancelled while it waits for the socket would never reach the client.
                await asyncio.shield(_close_client(ctx, SLOW_CONSUMER))
                return
            queue.put_nowait(item)
    code = upstream.close_code
    if code in RELAYED_CLOSE_CODES:
        _replace_tail(queue, _Closed(None, code))
    else:
        _replace_tail(queue, _Closed(unavailable("realtime"), None))


def _replace_tail(queue: asyncio.Queue[Any], item: _Closed) -> None:
    """Put the end marker in even when the queue is full (dropping the newest event: it is never sent)."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


def _offset(since: int | None) -> int | None:
    if since is not None and since < 0:
        raise bad_input("since", "since must be an offset of 0 or more.")
    return since


async def events(ctx: Context, since: int | None) -> AsyncIterator[StreamEvent]:
    async for event in _relay(ctx, _event, since=_offset(since)):
        yield event


async def room_messages(ctx: Context, room: uuid.UUID, since: int | None) -> AsyncIterator[RoomMessage]:
    join: dict[str, Any] = {"type": "join", "room": str(room)}
    if _offset(since) is not None:
        join["since"] = since
    # A connection without since: none of the caller's own events are replayed on it.
    async for message in _relay(ctx, functools.partial(_room_message, str(room)), send=join):
        yield message


async def _relay(
    ctx: Context, translate: Translate[Item], *, since: int | None = None, send: dict[str, Any] | None = None
) -> AsyncIterator[Item]:
    """What ``translate`` makes of the frames of a connection to realtime's ``/ws`` (``since`` in its
    URL, ``send`` its first frame), until that connection or the subscription ends; it is closed
    either way."""
    upstream = await _open(ctx, since)
    queue: asyncio.Queue[Item | _Closed] = asyncio.Queue(maxsize=ctx.settings.subscription_queue_size)
    reader = asyncio.ensure_future(_read(ctx, upstream, queue, translate))
    try:
        if send is not None:
            # Closed already: the reader ends with the reason (a relayed close code, or unavailable).
            with contextlib.suppress(ConnectionClosed):
                await upstream.send(orjson.dumps(send).decode())
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
