"""``GET /api/v1/events/stream``: the same stream as Server-Sent Events.

``id: <offset>``, ``event: <event type>``, ``data: <event frame JSON>``; a ``ready`` event (no id, so a
browser's Last-Event-ID is not touched) after the replay; a comment line every
``REALTIME_SSE_PING_INTERVAL`` seconds. SSE has no close codes: a client that cannot keep up, or whose
token expires, sees the stream end and reconnects with ``Last-Event-ID`` (and a fresh token).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import AppStatus
from starlette.types import Receive, Scope, Send

from realtime.delivery.access import parse_since, presented_token, take_lease, verify
from realtime.delivery.subscriber import Subscriber
from realtime.runtime import Runtime, runtime_of
from realtime.streams.frames import Frame, ready_text
from realtime.streams.store import DATABASE_ERRORS
from shared.auth.verifier import Principal

log = logging.getLogger(__name__)

router = APIRouter(tags=["events"])


def use_own_drain() -> None:
    """Turn off sse-starlette's shutdown drain: the app's lifecycle ends its own streams instead.

    The library patches uvicorn so that the first exit of any server in the process ends every
    stream of every later one too (a process-wide flag it never resets).
    """
    AppStatus.disable_automatic_graceful_drain()  # type: ignore[no-untyped-call]
    # Set by a server that stopped earlier in this process while the drain was on (tests run many).
    AppStatus.should_exit = False


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


class SseSubscriber(Subscriber):
    __slots__ = ("expires_at", "wakeup")

    transport = "sse"

    def __init__(self, caller: Principal, limit: int) -> None:
        super().__init__(caller.user_id, limit)
        self.wakeup = asyncio.Event()
        self.expires_at = caller.expires_at

    def wake(self) -> None:
        self.wakeup.set()


class LeasedEventSourceResponse(EventSourceResponse):
    """Releases its connection lease however the response ends (a generator that never started, or
    a send to a client that has gone, would skip the generator's own ``finally``)."""

    def __init__(self, *args: Any, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _event(frame: Frame) -> ServerSentEvent:
    # A broadcast is not part of the stream: no id, so the browser's Last-Event-ID is untouched.
    return ServerSentEvent(
        data=frame.text, id=str(frame.offset) if frame.is_event else None, event=frame.event
    )


async def _stream(sub: SseSubscriber, since: int | None, runtime: Runtime) -> AsyncIterator[ServerSentEvent]:
    hub, store, metrics = runtime.hub, runtime.store, runtime.sse_metrics
    hub.add(sub)  # before the replay reads the store: nothing stored meanwhile can slip between
    sub.arm_expiry(sub.expires_at)
    try:
        replay = await store.replay(sub.user_id, since)
        for frame in replay.frames:
            yield _event(frame)
            sub.sent(frame)
            metrics.replayed.inc()
        yield ServerSentEvent(data=ready_text(replay.latest, recovered=replay.recovered), event="ready")
        metrics.ready.inc()
        sub.go_live(replay.latest)
        while not sub.closing:
            await sub.wakeup.wait()
            sub.wakeup.clear()
            while sub.pending and not sub.closing:
                for item in await sub.resolve(sub.pending.popleft(), store):
                    yield _event(item)
                    sub.sent(item)
                    metrics.sent(item)
    except DATABASE_ERRORS:
        # Ending the stream makes the browser reconnect with Last-Event-ID: nothing is lost.
        log.warning("SSE stream ended: the store could not be read", exc_info=True)
    finally:
        hub.remove(sub)
        sub.disarm()
        metrics.closed(sub.close_label)


@router.get(
    "/api/v1/events/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The caller's event stream"}},
)
async def event_stream(
    request: Request,
    runtime: RuntimeDep,
    since: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="Resume after this offset")] = None,
    last_event_id: Annotated[str | None, Header(description="Resume after this offset (wins)")] = None,
) -> EventSourceResponse:
    """The caller's events as Server-Sent Events, resuming from Last-Event-ID or ?since=."""
    caller = await verify(runtime.verifier, presented_token(request.headers, request.query_params))
    resume = parse_since(last_event_id, source="Last-Event-ID")
    if resume is None:
        resume = since
    lease = await take_lease(runtime.leases, caller)
    settings = runtime.settings
    sub = SseSubscriber(caller, settings.send_queue_size)
    return LeasedEventSourceResponse(
        _stream(sub, resume, runtime),
        release=functools.partial(runtime.leases.release, lease),
        ping=settings.sse_ping_interval,
        send_timeout=settings.sse_send_timeout,
    )
