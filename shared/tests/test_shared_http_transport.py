"""``PoolTransport`` under an ``httpx.AsyncClient``, against a real (raw asyncio) server."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from shared.http import PoolTransport, UpstreamPool

Reply = Callable[[bytes], bytes | None]  # the request head and body -> the raw answer, None: say nothing


def ok(payload: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(payload),
        payload,
    )


@dataclass
class Server:
    """Answers every request with ``reply``; records each request and counts connections."""

    reply: Reply = lambda request: ok(b'{"ok": true}')
    close_after_reply: bool = False
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.lower().split(b"\r\n")
                        if line.startswith(b"content-length:")
                    ),
                    0,
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = self.reply(request)
                if answer is None:
                    await reader.read()  # until the client gives up and closes
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after_reply:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    listener = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    async with listener:
        yield state


def client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, transport=PoolTransport(UpstreamPool(url)))


async def test_calls_share_one_keep_alive_connection_and_read_like_httpx(server: Server) -> None:
    async with client(server.url) as http:
        for i in range(3):
            response = await http.get(f"/things/{i}", params={"q": "a b"}, headers={"x-service-token": "t"})
            assert response.status_code == 200
            assert response.json() == {"ok": True}
            assert response.headers["content-type"] == "application/json"
            assert response.http_version == "HTTP/1.1"
    assert server.connections == 1
    head = server.requests[2].decode()
    assert head.startswith("GET /things/2?q=a+b HTTP/1.1\r\n")
    assert head.lower().count("host:") == 1
    assert "x-service-token: t\r\n" in head


async def test_a_body_is_sent_with_its_length(server: Server) -> None:
    async with client(server.url) as http:
        response = await http.post("/things", json={"name": "x"})
    assert response.status_code == 200
    request = server.requests[0]
    assert request.startswith(b"POST /things HTTP/1.1\r\n")
    assert b"content-length: 12\r\n" in request.lower()
    assert request.endswith(b'\r\n\r\n{"name":"x"}')


async def test_a_refused_connection_is_httpx_connect_error() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    async with client(f"http://127.0.0.1:{port}") as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")


async def test_no_answer_in_time_is_httpx_read_timeout(server: Server) -> None:
    server.reply = lambda request: None
    async with client(server.url) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/", timeout=0.05)


@pytest.mark.parametrize(
    "answer", [b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", b"not http at all\r\n\r\n"]
)
async def test_a_cut_or_broken_answer_is_httpx_remote_protocol_error(server: Server, answer: bytes) -> None:
    server.reply, server.close_after_reply = (lambda request: answer), True
    async with client(server.url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/", content=b"x")  # a POST: the pool retries nothing


async def test_another_host_is_refused_before_anything_is_sent(server: Server) -> None:
    async with client(server.url) as http:
        with pytest.raises(httpx.UnsupportedProtocol):
            await http.get("http://elsewhere:8001/")
    assert server.requests == []


async def test_a_chunked_gzip_answer_arrives_whole_decoded_and_closed(server: Server) -> None:
    body = gzip.compress(b'{"ok": true}')
    server.reply = lambda request: (
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )
    async with client(server.url) as http:
        response = await http.get("/things/1")
    assert response.json() == {"ok": True}
    assert response.is_closed
    assert response.request.url.path == "/things/1"


async def test_an_answer_that_cannot_be_decoded_is_httpx_decoding_error(server: Server) -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 3\r\n\r\nabc"
    server.reply = lambda request: answer
    async with client(server.url) as http:
        with pytest.raises(httpx.DecodingError) as caught:
            await http.get("/things/1")
    assert caught.value.request.url.path == "/things/1"
