"""An outbox relay on an event loop of its own, in a thread of its own.

Why: the relay's latency is a count of event-loop turns (wake, BEGIN, SELECT, queue the frames,
write them, read the confirms, resume the publishers), and on the loop that serves requests each turn
waits behind every request that is ready to run. Under the orders bench (32 connections, the orders
process ~75 % busy) a turn took 10-30 ms and the relay lag was ~120 ms at the median and ~450 ms at
p99 although the broker itself confirmed in 5-10 ms. On a loop of its own the relay waits at most for
the GIL, which the request thread hands over within the switch interval (5 ms).

The relay builds its own engine and broker link inside that loop (asyncpg and aiormq connections
belong to the loop that made them); metrics and logging are thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from shared.messaging.relay import OutboxRelay

log = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.002

OpenRelay = Callable[[], AbstractAsyncContextManager[OutboxRelay]]


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn's standard extras install it
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class RelayThread:
    """Runs the relay ``open_relay`` builds, on a thread of its own, as a supervised worker: ``run``
    returns once ``stop`` has made the relay finish (its final pass included), and raises if the
    thread failed, so the supervisor starts a fresh thread after its backoff."""

    def __init__(self, open_relay: OpenRelay, *, name: str) -> None:
        self._open_relay = open_relay
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._relay: OutboxRelay | None = None
        self._stop_requested = False

    async def run(self) -> None:
        # A thread that wants the GIL waits up to the switch interval for the one holding it; the
        # relay's handful of loop turns per batch each paid up to 5 ms of it under load.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        caller = asyncio.get_running_loop()
        ended: asyncio.Future[BaseException | None] = caller.create_future()

        def settle(error: BaseException | None) -> None:
            if not ended.done():
                ended.set_result(error)

        def finish(error: BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed: nobody waits
                caller.call_soon_threadsafe(settle, error)

        thread = threading.Thread(target=self._main, args=(finish,), name=self.name, daemon=True)
        thread.start()
        # Cancelled (a stop that timed out): the daemon thread ends with the process, its rows stay
        # in the outbox for the next relay.
        error = await ended
        if error is not None:
            raise RuntimeError("outbox relay thread failed") from error

    def stop(self) -> None:
        """Ask the relay to finish; ``run`` returns when it has."""
        with self._lock:
            self._stop_requested = True
            loop, relay = self._loop, self._relay
        if loop is not None and relay is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(relay.stop)

    def _main(self, finish: Callable[[BaseException | None], None]) -> None:
        error: BaseException | None = None
        try:
            with asyncio.Runner(loop_factory=_new_loop) as runner:
                runner.run(self._run())
        except Exception as exc:
            log.exception("outbox relay thread failed")
            error = exc
        finally:
            finish(error)

    async def _run(self) -> None:
        async with self._open_relay() as relay:
            with self._lock:
                self._loop, self._relay = asyncio.get_running_loop(), relay
                if self._stop_requested:
                    relay.stop()
            try:
                await relay.run()
            finally:
                with self._lock:
                    self._loop, self._relay = None, None
