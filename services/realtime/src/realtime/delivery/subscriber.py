"""One connection's delivery state, whatever the transport: a bounded queue, its offset, its fate.

``offer`` is synchronous and never waits: the fan-out hands a frame to each connection of a user in
turn, so a client that does not read can only fill its own queue, and then it is closed ("slow", 4008)
instead of delaying anyone. Frames are shared objects; the queue holds references.

Offsets make delivery exact: a frame at or below ``last_offset`` was already sent (a replay and the
live feed overlap, a NOTIFY repeats a resync) and is dropped; a frame past ``last_offset + 1`` means
something was missed (its NOTIFY came late or was lost while LISTEN reconnected), so the gap is read
from the store before the frame is sent. Clients see each offset once, in order, without holes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from typing import ClassVar, Protocol

from realtime.streams.frames import PING, Frame

# Close codes (contract section 4 and the usual private-range 4xxx mirror of HTTP statuses).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL = 1011
CLOSE_TOKEN_EXPIRED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_SLOW = 4008

REASONS = {
    CLOSE_SLOW: "slow",
    CLOSE_TOKEN_EXPIRED: "token_expired",
    CLOSE_FORBIDDEN: "forbidden",
    CLOSE_INTERNAL: "error",
    CLOSE_GOING_AWAY: "shutdown",
}


class FrameSource(Protocol):
    async def read(self, user_id: uuid.UUID, *, after: int, upto: int | None = None) -> list[Frame]: ...


class Subscriber:
    """Base of the WebSocket and SSE connections; subclasses say how a wake-up reaches their sender."""

    __slots__ = (
        "_expiry",
        "close_code",
        "close_reason",
        "last_offset",
        "limit",
        "live",
        "pending",
        "user_id",
        "user_key",
    )

    transport: ClassVar[str] = "?"

    def __init__(self, user_id: uuid.UUID, limit: int) -> None:
        self.user_id = user_id
        self.user_key = str(user_id)
        self.limit = limit
        self.pending: deque[Frame] = deque()
        # Highest offset the client has (or, before the replay, what it said it has).
        self.last_offset = 0
        # False while the replay is being sent: live frames wait in ``pending`` meanwhile.
        self.live = False
        self.close_code: int | None = None
        self.close_reason = ""
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    def offer(self, frame: Frame) -> bool:
        """Queue ``frame``; False when the connection is closing (now, perhaps because it is full)."""
        if self.close_code is not None:
            return False
        if frame is PING and self.pending and self.pending[-1] is PING:
            return True  # one unsent ping is as good as two
        if len(self.pending) >= self.limit:
            self.close(CLOSE_SLOW, "client too slow")
            return False
        self.pending.append(frame)
        if self.live:
            self.wake()
        return True

    def go_live(self, last_offset: int) -> None:
        """The replay is sent (up to ``last_offset``): from now on frames flow as they come."""
        self.last_offset = last_offset
        self.live = True
        if self.pending or self.close_code is not None:
            self.wake()

    def close(self, code: int, reason: str) -> None:
        """Ask for the connection to end with ``code``; what was queued is dropped, not sent."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.close_reason = reason
        self.pending.clear()
        self.wake()

    def arm_expiry(self, expires_at: float) -> None:
        """Close with 4401 when the access token expires (a refresh re-arms it with the new one's)."""
        self.disarm()
        delay = max(0.0, expires_at - time.time())
        self._expiry = asyncio.get_running_loop().call_later(
            delay, self.close, CLOSE_TOKEN_EXPIRED, "token expired"
        )

    def disarm(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    @property
    def close_label(self) -> str:
        return REASONS.get(self.close_code or 0, "client")

    def wake(self) -> None:
        raise NotImplementedError

    async def resolve(self, frame: Frame, source: FrameSource) -> list[Frame]:
        """What to send for ``frame``: nothing (already sent), itself, or the missed frames and itself."""
        if not frame.is_event:
            return [frame]
        if frame.offset <= self.last_offset:
            return []
        if frame.offset == self.last_offset + 1:
            return [frame]
        missed = await source.read(self.user_id, after=self.last_offset, upto=frame.offset - 1)
        return [*missed, frame]

    def sent(self, frame: Frame) -> None:
        if frame.is_event and frame.offset > self.last_offset:
            self.last_offset = frame.offset
