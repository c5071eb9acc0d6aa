"""The backoff of every loop that reconnects or restarts: one policy, tenacity's exponential wait.

The loops keep their own shape (each knows what it expects to fail and what a success resets), so
they take tenacity's wait strategy rather than its retry driver: ``next(backoff)`` is the next pause.
"""

from __future__ import annotations

import asyncio
import contextlib

from tenacity import RetryCallState, Retrying, wait_exponential


class Backoff:
    """``initial``, twice that, ... up to ``maximum``; ``reset`` after a success starts over."""

    def __init__(self, initial: float = 0.2, maximum: float = 30.0) -> None:
        self._wait = wait_exponential(multiplier=initial, min=initial, max=maximum)
        self._state = RetryCallState(Retrying(), None, (), {})

    def __next__(self) -> float:
        delay = float(self._wait(self._state))
        self._state.attempt_number += 1
        return delay

    def reset(self) -> None:
        self._state.attempt_number = 1


async def pause(seconds: float, interrupt: asyncio.Event) -> None:
    """Wait ``seconds``, or less if ``interrupt`` is set meanwhile (a stop, a wake-up)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(interrupt.wait(), seconds)
