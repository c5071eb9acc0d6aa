"""The scheduler's idea of the time, injected so tests can move it without waiting."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep_until(self, moment: datetime) -> None:
        """Return once this clock reads ``moment`` or later (at once if it already does).

        A moment, not a duration: a clock moved between computing a duration and sleeping on it
        would make the sleep overshoot.
        """
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, moment: datetime) -> None:
        await asyncio.sleep(max(0.0, (moment - self.now()).total_seconds()))
