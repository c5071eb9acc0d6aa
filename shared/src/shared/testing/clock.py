"""A clock tests move by hand, for the scheduler (``shared.jobs.clock.Clock``): no test waits a minute."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self._now = start
        self._moved: asyncio.Event | None = None

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self.set(self._now + timedelta(seconds=seconds))

    def set(self, moment: datetime) -> None:
        self._now = moment
        if self._moved is not None:
            self._moved.set()
            self._moved = None

    async def sleep_until(self, moment: datetime) -> None:
        """Return once the clock has been moved to ``moment`` or later (never on its own)."""
        while self._now < moment:
            if self._moved is None:
                self._moved = asyncio.Event()
            await self._moved.wait()
