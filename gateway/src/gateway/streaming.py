"""Relaying an upstream answer as it arrives (Server-Sent Events, large bodies), stopping with the client."""

from __future__ import annotations

import asyncio
import logging

from starlette.types import Receive, Send

from gateway.headers import client_response_headers
from shared.http import UpstreamError, UpstreamResponse

log = logging.getLogger(__name__)


async def _pump(response: UpstreamResponse, send: Send) -> None:
    # Each piece goes out as soon as the upstream sends it: an event is never held back in a buffer.
    async for chunk in response.chunks():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        continue


async def stream_response(
    response: UpstreamResponse, receive: Receive, send: Send, stop: asyncio.Event | None = None
) -> None:
    """Send ``response`` unbuffered until it ends, the client disconnects or ``stop`` is set.

    The server's ``send`` silently drops data for a client that has gone, so without watching
    ``receive`` an idle event stream would hold its upstream connection open forever. ``stop`` is the
    gateway shutting down: the response then ends properly (an event stream's client reconnects, to
    another gateway) instead of holding the drain until the server cuts it mid-chunk.
    """
    headers = client_response_headers(response.headers)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    pump = asyncio.ensure_future(_pump(response, send))
    disconnect = asyncio.ensure_future(_wait_disconnect(receive))
    stopping = asyncio.ensure_future(stop.wait() if stop is not None else asyncio.Future[bool]())
    try:
        await asyncio.wait((pump, disconnect, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, disconnect, stopping):
            task.cancel()
        # Wait for them to finish so none is left pending; their outcome is read below.
        await asyncio.gather(pump, disconnect, stopping, return_exceptions=True)
        # Read to the end, the connection goes back to the pool; cut short, it is closed.
        response.release()
    if pump.cancelled():
        if not disconnect.done() or disconnect.cancelled():
            # Shutting down (the client is still there): a complete response, nothing cut off.
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    error = pump.exception()
    if isinstance(error, UpstreamError):
        # The headers are gone already, so no problem document: leaving the response incomplete makes
        # the server close the connection, which tells the client the body was cut short.
        log.warning("upstream stream broke off", extra={"error": str(error)})
        return
    if error is not None:
        raise error
