"""The gateway tests' stand-in upstream, and an upstream that speaks broken HTTP.

The stand-in answers like a service behind the gateway would (JWKS, OpenAPI, echo, slow, streaming)
and records what reached it, so tests assert on what the upstream actually received.
"""

from __future__ import annotations

import asyncio
import socketserver
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
KID = "test-key-1"


@dataclass
class Recorder:
    """What reached a stand-in: one entry per request, and how many event streams it saw end."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    streams_closed: int = 0

    def paths(self) -> list[str]:
        return [entry["path"] for entry in self.requests]


def standin_openapi(name: str) -> dict[str, Any]:
    """A small document shaped like FastAPI's, with the paths the gateway must drop."""
    prefix = {"users": "/api/v1/users", "orders": "/api/v1/orders"}.get(name, f"/api/v1/{name}")
    ok = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}},
        }
    }
    paths: dict[str, Any] = {
        f"{prefix}/{{item_id}}": {"get": {"operationId": f"{name}_get", "responses": ok}},
        f"/internal/{name}/{{item_id}}": {"get": {"operationId": f"{name}_internal", "responses": ok}},
        "/healthz": {"get": {"operationId": f"{name}_healthz", "responses": ok}},
    }
    if name == "users":
        paths["/api/v1/auth/token"] = {"post": {"operationId": "token", "responses": ok}}
        paths["/api/v1/users/me"] = {
            "get": {"operationId": "me", "responses": ok, "security": [{"Other": []}]}
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": name, "version": "0.1.0"},
        "paths": paths,
        "components": {
            # Same name in every stand-in, different shape: the merge must rename one of them.
            "schemas": {
                "Item": {"type": "object", "title": f"{name} item", "properties": {"id": {"type": "string"}}}
            },
            "securitySchemes": {"Other": {"type": "http", "scheme": "bearer"}},
        },
        "tags": [{"name": name}],
    }


def standin_app(name: str, jwks: dict[str, Any], recorder: Recorder) -> Starlette:
    async def record(request: Request) -> dict[str, Any]:
        body = await request.body()
        entry = {
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope.get("raw_path", b"").decode("latin-1"),
            "query": request.url.query,
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]],
            "body_length": len(body),
            "upstream": name,
            "peer": f"{request.client.host}:{request.client.port}" if request.client else None,
        }
        recorder.requests.append(entry)
        return entry

    async def echo(request: Request) -> Response:
        return JSONResponse(await record(request))

    async def keyset(request: Request) -> Response:
        return JSONResponse(jwks)

    async def openapi(request: Request) -> Response:
        return JSONResponse(standin_openapi(name))

    async def slow(request: Request) -> Response:
        await record(request)
        await asyncio.sleep(float(request.query_params.get("seconds", "3")))
        return JSONResponse({"slow": True})

    async def hop_by_hop(request: Request) -> Response:
        await record(request)
        headers = {
            "Connection": "X-Private",
            "X-Private": "secret",
            "Keep-Alive": "timeout=5",
            "X-Kept": "yes",
        }
        return Response(b"hop", headers={**headers, "Proxy-Authenticate": "Basic"})

    async def redirect(request: Request) -> Response:
        await record(request)
        return Response(status_code=307, headers={"Location": request.query_params["to"]})

    async def image(request: Request) -> Response:
        # Large enough to be compressed were it not an image.
        return Response(b"\x89PNG\r\n\x1a\n" + bytes(4096), media_type="image/png")

    async def events(request: Request) -> Response:
        await record(request)
        count = int(request.query_params.get("count", "2"))
        gap = float(request.query_params.get("gap", "1.5"))

        async def generate() -> AsyncIterator[bytes]:
            try:
                for offset in range(1, count + 1):
                    yield f'id: {offset}\nevent: tick\ndata: {{"offset": {offset}}}\n\n'.encode()
                    if offset < count:
                        await asyncio.sleep(gap)
            finally:
                recorder.streams_closed += 1

        return StreamingResponse(generate(), media_type="text/event-stream")

    async def websocket(ws: WebSocket) -> None:
        recorder.requests.append({"path": "/ws", "query": ws.url.query, "headers": dict(ws.headers)})
        if ws.query_params.get("refuse"):
            await ws.close(code=1008)  # before accepting: the handshake fails with 403
            return
        await ws.accept()
        await ws.send_json({"type": "ready", "offset": 0, "recovered": False})
        while True:
            text = await ws.receive_text()
            if text == "close-4401":
                await ws.close(code=4401, reason="token expired")
                return
            await ws.send_text(f"echo:{text}")

    async def graphql_websocket(ws: WebSocket) -> None:
        """Like graphql's endpoint: accepts only graphql-transport-ws, and says which it agreed to."""
        recorder.requests.append({"path": "/graphql", "query": ws.url.query, "headers": dict(ws.headers)})
        if "graphql-transport-ws" not in ws.scope.get("subprotocols", []):
            await ws.close(code=1002)
            return
        await ws.accept(subprotocol="graphql-transport-ws")
        await ws.send_json({"type": "connection_ack"})
        await ws.send_text(f"echo:{await ws.receive_text()}")
        await ws.close(code=1000)

    return Starlette(
        routes=[
            WebSocketRoute("/ws", websocket),
            WebSocketRoute("/graphql", graphql_websocket),
            Route("/.well-known/jwks.json", keyset),
            Route("/openapi.json", openapi),
            Route("/api/v1/users/slow", slow),
            Route("/api/v1/users/hop", hop_by_hop),
            Route("/api/v1/users/redirect", redirect),
            Route("/api/v1/users/image", image),
            Route("/api/v1/events/stream", events),
            Route("/{path:path}", echo, methods=ALL_METHODS),
        ]
    )


class _RawHandler(socketserver.BaseRequestHandler):
    """Answers by the request path's last segment with unusual or broken HTTP:

    ``garbage``: not HTTP at all; ``eof``: a body ended by closing the connection; ``once``: a proper
    keep-alive answer, then the connection is closed when the next request arrives on it (the race
    a pooled connection can lose); anything else: closed without an answer.
    """

    def _read_head(self) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return None
            data += chunk
        return data

    def handle(self) -> None:
        data = self._read_head()
        if data is None:
            return
        last = data.split(b" ", 2)[1].rsplit(b"/", 1)[-1].split(b"?")[0]
        if last == b"garbage":
            self.request.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        elif last == b"eof":
            self.request.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        elif last == b"once":
            self.request.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nonce")
            self._read_head()


@contextmanager
def raw_upstream() -> Iterator[str]:
    """A TCP server that speaks broken or unusual HTTP (see ``_RawHandler``)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RawHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
