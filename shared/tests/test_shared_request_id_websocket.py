"""``RequestIdMiddleware`` on a WebSocket: the id is known to the app, and frames are not wrapped.

A stream sends thousands of frames a second through the ASGI ``send`` it was given; for a WebSocket
there is no response head to mark, so the middleware hands the server's ``send`` through as it is.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from shared.observability.request_id import current_request_id
from shared.web.middleware import RequestIdMiddleware


async def test_a_websocket_gets_the_servers_send_and_a_request_id() -> None:
    seen: dict[str, object] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen["send"] = send
        seen["request_id"] = current_request_id()
        await send({"type": "websocket.send", "text": "frame"})

    sent: list[Message] = []

    async def server_send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    scope: Scope = {"type": "websocket", "headers": [(b"x-request-id", b"req-ws-1")], "path": "/ws"}
    await RequestIdMiddleware(app)(scope, receive, server_send)

    assert seen["send"] is server_send
    assert seen["request_id"] == "req-ws-1"
    assert scope["state"]["request_id"] == "req-ws-1"
    assert sent == [{"type": "websocket.send", "text": "frame"}]
    assert current_request_id() is None  # reset once the connection is over


async def test_an_http_answer_still_carries_the_id() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def server_send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope: Scope = {"type": "http", "headers": [(b"x-request-id", b"req-http-1")], "path": "/"}
    await RequestIdMiddleware(app)(scope, receive, server_send)
    assert (b"x-request-id", b"req-http-1") in sent[0]["headers"]
