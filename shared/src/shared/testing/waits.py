"""Waiting for a condition instead of sleeping for a guess: the test goes on as soon as it holds, and
a slow machine only makes it wait longer, never fail."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

_ANY: Any = object()


def _met(result: Any, equals: Any) -> bool:
    return bool(result == equals) if equals is not _ANY else bool(result)


async def eventually(
    check: Callable[[], Any],
    timeout: float = 10.0,
    message: str = "",
    *,
    equals: Any = _ANY,
    interval: float = 0.05,
) -> Any:
    """Poll ``check`` (sync or async) until its value is truthy (or ``equals``); return that value.

    Fails with ``message`` (or the last value) when ``timeout`` seconds pass first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if _met(result, equals):
            return result
        if loop.time() > deadline:
            raise AssertionError(message or f"condition not met in {timeout:g}s (last value: {result!r})")
        await asyncio.sleep(interval)


def eventually_blocking(
    check: Callable[[], Any],
    timeout: float = 30.0,
    message: str = "",
    *,
    equals: Any = _ANY,
    interval: float = 0.2,
) -> Any:
    """``eventually`` for code without an event loop (processes driven from a synchronous test)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if _met(result, equals):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met in {timeout:g}s (last value: {result!r})")
        time.sleep(interval)
