"""The service's long-running loops (outbox relay, event consumer, e-mail sender) and their shutdown.

Each loop handles the failures it expects (broker or database down) itself. One that still escapes
is a bug: it is logged with its traceback and the loop is started again after a pause, so one bad
moment does not silently leave the service without a consumer or a sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loop:
    name: str
    run: Callable[[], Awaitable[None]]
    stop: Callable[[], None]


class BackgroundLoops:
    def __init__(self, restart_delay: float = 1.0) -> None:
        self.restart_delay = restart_delay
        self._loops: list[Loop] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def start(self, name: str, run: Callable[[], Awaitable[None]], stop: Callable[[], None]) -> None:
        loop = Loop(name, run, stop)
        self._loops.append(loop)
        self._tasks.append(asyncio.create_task(self._supervise(loop), name=f"notification-{name}"))

    async def _supervise(self, loop: Loop) -> None:
        while not self._stopping.is_set():
            try:
                await loop.run()
            except Exception:
                log.exception("background loop crashed; restarting", extra={"loop": loop.name})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.restart_delay)
            else:
                return

    async def shutdown(self, timeout: float = 25.0) -> None:
        """Stop the loops one after the other, in the order they were started; cancel stragglers."""
        self._stopping.set()
        deadline = asyncio.get_running_loop().time() + timeout
        for loop, task in zip(self._loops, self._tasks, strict=True):
            loop.stop()
            remaining = max(0.1, deadline - asyncio.get_running_loop().time())
            done, _ = await asyncio.wait({task}, timeout=remaining)
            if not done:
                log.warning("background loop did not stop in time", extra={"loop": loop.name})
                task.cancel()
                await asyncio.wait({task}, timeout=5.0)
