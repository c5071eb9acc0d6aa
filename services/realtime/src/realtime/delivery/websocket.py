"""``GET /ws``: the WebSocket stream.

Per connection there is the ASGI task (it replays, then reads the client's frames), a writer task that
exists only while the socket is backed up or the store must be read, two timer handles (ping, token
expiry) and a small bounded deque. A frame that is next in line while the socket takes it is written
at once, as the fan-out offers it (``realtime.server.FrameWritingProtocol``).
No reader/writer task pair, no per-connection buffer beyond what the transport needs: an idle
connection costs a few kilobytes, so 10,000 fit in one process.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from realtime.delivery.access import parse_since, presented_token, take_lease, verify
from realtime.delivery.subscriber import (
    CLOSE_FORBIDDEN,
    CLOSE_INTERNAL,
    CLOSE_TOKEN_EXPIRED,
    Subscriber,
)
from realtime.rooms.frames import error_frame
from realtime.rooms.session import RoomSession
from realtime.runtime import Runtime, runtime_of
from realtime.server import FRAME_WRITER, FrameWritingProtocol
from realtime.streams.frames import PING, ready_text
from realtime.streams.store import DATABASE_ERRORS
from shared.auth.verifier import Principal
from shared.errors import AppError, Unauthorized, ValidationFailed
from shared.web.problems import problem_response

log = logging.getLogger(__name__)

# What a send may raise once the client is gone (uvicorn's ClientDisconnected is an OSError).
SEND_ERRORS: tuple[type[BaseException], ...] = (WebSocketDisconnect, RuntimeError, OSError)


class WebSocketSubscriber(Subscriber):
    __slots__ = ("_direct", "_ping", "_writer", "expires_at", "rooms", "runtime", "websocket")

    transport = "ws"

    def __init__(self, websocket: WebSocket, caller: Principal, runtime: Runtime) -> None:
        super().__init__(caller.user_id, runtime.settings.send_queue_size)
        self.websocket = websocket
        self.runtime = runtime
        self._writer: asyncio.Task[None] | None = None
        # None under a server other than realtime's own (every frame then takes the ASGI way).
        self._direct: FrameWritingProtocol | None = websocket.scope.get("extensions", {}).get(FRAME_WRITER)
        self._ping: asyncio.TimerHandle | None = None
        self.expires_at = caller.expires_at
        self.rooms = RoomSession(self, caller.name, runtime.rooms, runtime.room_limits, runtime.say_buckets)

    def wake(self) -> None:
        if self._writer is None and self.live and not self._write_now():
            self._writer = asyncio.get_running_loop().create_task(self._flush())

    def _write_now(self) -> bool:
        """The usual case, with no task: the one waiting frame is next in line and the socket takes it."""
        if self._direct is None or self.close_code is not None or len(self.pending) != 1:
            return False
        frame = self.pending[0]
        if frame.is_event and frame.offset != self.last_offset + 1:
            return False  # a repeat to drop or a gap to fill from the store: the writer's work
        if not self._direct.write_frame(frame.wire):
            return False  # backed up: the writer waits for the socket
        self.pending.popleft()
        self.runtime.ws_metrics.sent(frame)
        self.sent(frame)
        return True

    async def serve(self, since: int | None) -> None:
        hub, metrics = self.runtime.hub, self.runtime.ws_metrics
        hub.add(self)  # before the replay reads the store: nothing stored meanwhile can slip between
        self.arm_expiry(self.expires_at)
        latest = since or 0
        try:
            try:
                replay = await self.runtime.store.replay(self.user_id, since)
            except DATABASE_ERRORS:
                log.warning("replay failed", exc_info=True)
                self.close(CLOSE_INTERNAL, "stream unavailable, reconnect")
            else:
                latest = replay.latest
                for frame in replay.frames:
                    if self.closing:
                        break
                    await self.websocket.send_text(frame.text)
                    self.sent(frame)
                    metrics.replayed.inc()
                if not self.closing:
                    await self.websocket.send_text(ready_text(latest, recovered=replay.recovered))
                    metrics.ready.inc()
            self.go_live(latest)
            self._schedule_ping()
            await self._read_client()
        except SEND_ERRORS:
            # The client left during the replay; nothing is left to tell it.
            log.debug("client left during replay")
        finally:
            hub.remove(self)
            self.rooms.close()
            self._stop()
            metrics.closed(self.close_label)

    async def _read_client(self) -> None:
        """Until the client or the server closes: pongs are welcome, refresh frames renew the token,
        room frames go to the connection's ``RoomSession``."""
        # uvicorn enforces REALTIME_WS_MAX_MESSAGE_SIZE (close 1009) before a message gets here.
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is not None:
                await self._on_client_frame(text)
            elif message.get("bytes") is not None:
                self.offer(error_frame("bad_frame", None, "frames are JSON text"))

    async def _on_client_frame(self, text: str) -> None:
        try:
            frame = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.offer(error_frame("bad_frame", None, "a frame is a JSON object"))
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "pong":
            return
        if kind != "refresh":
            await self.rooms.handle(frame)  # join, say, leave (contract section 6), or an error frame
            return
        token = frame.get("token")
        try:
            caller = await verify(self.runtime.verifier, token if isinstance(token, str) else None)
        except Unauthorized:
            self.close(CLOSE_TOKEN_EXPIRED, "invalid token")
            return
        if caller.user_id != self.user_id:
            self.close(CLOSE_FORBIDDEN, "token of another user")
            return
        self.arm_expiry(caller.expires_at)

    async def _flush(self) -> None:
        """The writer: drains the queue, then ends; the next ``offer`` starts a new one."""
        try:
            while self.close_code is None and self.pending:
                frame = self.pending.popleft()
                for item in await self.resolve(frame, self.runtime.store):
                    if self.close_code is not None:
                        break
                    if self._direct is None or not self._direct.write_frame(item.wire):
                        await self.websocket.send_text(item.text)
                    self.runtime.ws_metrics.sent(item)
                    self.sent(item)
            if self.close_code is not None:
                await self.websocket.close(self.close_code, self.close_reason)
        except SEND_ERRORS:
            # Gone: uvicorn hands the ASGI task a disconnect, and that task cleans up.
            log.debug("client left while frames were being sent")
        except DATABASE_ERRORS:
            log.warning("could not read missed frames", exc_info=True)
            self._writer = None
            self.close(CLOSE_INTERNAL, "stream unavailable, reconnect")
            return
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None

    def _schedule_ping(self) -> None:
        self._ping = asyncio.get_running_loop().call_later(self.runtime.settings.ping_interval, self._tick)

    def _tick(self) -> None:
        if self.close_code is None:
            self.offer(PING)
            self._schedule_ping()

    def _stop(self) -> None:
        self.disarm()
        if self._ping is not None:
            self._ping.cancel()
        writer, self._writer = self._writer, None
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()


async def websocket_endpoint(websocket: WebSocket) -> None:
    """The caller's event stream over WebSocket (contract section 4)."""
    runtime = runtime_of(websocket)
    try:
        caller = await verify(runtime.verifier, presented_token(websocket.headers, websocket.query_params))
        since = parse_since(websocket.query_params.get("since"), source="since")
        lease = await take_lease(runtime.leases, caller)
    except AppError as exc:
        await websocket.send_denial_response(_problem(exc, websocket.url.path))
        return
    try:
        await websocket.accept()
        await WebSocketSubscriber(websocket, caller, runtime).serve(since)
    finally:
        runtime.leases.release(lease)


def _problem(exc: AppError, path: str) -> Response:
    return problem_response(
        exc.status,
        headers=exc.headers,
        title=exc.title,
        detail=exc.detail,
        type_slug=exc.type_slug,
        instance=path,
        errors=exc.errors if isinstance(exc, ValidationFailed) else None,
    )
