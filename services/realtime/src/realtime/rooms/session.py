"""One connection's rooms: the ``join``, ``say`` and ``leave`` frames of contract section 6.

Every frame is validated here; whatever is wrong with it is answered with an ``error`` frame on the
connection's own queue, never with a close or a traceback.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from realtime.delivery.subscriber import CLOSE_INTERNAL, Subscriber
from realtime.rooms.frames import control, error_frame
from realtime.rooms.hub import Member, RoomHub
from realtime.rooms.limits import Limits, SayBuckets
from realtime.rooms.text import MESSAGE_MAX
from realtime.streams.store import DATABASE_ERRORS
from shared.text import has_control_characters

log = logging.getLogger(__name__)

MAX_OFFSET = 2**63 - 1


class Rejected(Exception):
    def __init__(self, code: str, room: str | None, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.room = room
        self.detail = detail


def _room_id(frame: dict[str, Any]) -> str:
    value = frame.get("room")
    if not isinstance(value, str) or len(value) > 64:
        raise Rejected("bad_frame", None, "room must be a room id")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        # A malformed id names no room, as over HTTP.
        raise Rejected("not_found", None, "no such room") from None


class RoomSession:
    """Created with the connection; ``close`` leaves every room it joined."""

    def __init__(
        self, subscriber: Subscriber, user_name: str, hub: RoomHub, limits: Limits, buckets: SayBuckets
    ) -> None:
        self.subscriber = subscriber
        self.user_name = user_name
        self.hub = hub
        self.limits = limits
        self.buckets = buckets
        self.joined: dict[str, Member] = {}

    async def handle(self, frame: Any) -> None:
        """A client frame other than pong/refresh; answers errors with an error frame."""
        try:
            await self._dispatch(frame)
        except Rejected as exc:
            self.subscriber.offer(error_frame(exc.code, exc.room, exc.detail))
        except DATABASE_ERRORS:
            log.warning("a room frame failed: the store cannot be reached", exc_info=True)
            self.subscriber.close(CLOSE_INTERNAL, "rooms unavailable, reconnect")

    async def _dispatch(self, frame: Any) -> None:
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "join":
            await self._join(frame)
        elif kind == "say":
            await self._say(frame)
        elif kind == "leave":
            self._leave(frame)
        else:
            raise Rejected(
                "bad_frame", None, "a frame is a JSON object of type join, say, leave, pong or refresh"
            )

    def _member(self, room: str) -> Member | None:
        member = self.joined.get(room)
        if member is not None and member.gone:
            del self.joined[room]  # deleted meanwhile (room_closed was sent)
            return None
        return member

    async def _join(self, frame: dict[str, Any]) -> None:
        room = _room_id(frame)
        since = frame.get("since")
        if since is not None and (
            not isinstance(since, int) or isinstance(since, bool) or not 0 <= since <= MAX_OFFSET
        ):
            raise Rejected("bad_frame", room, "since must be a non-negative integer offset")
        member = self._member(room)
        rejoin = member is not None
        if member is None:
            for key in [key for key, m in self.joined.items() if m.gone]:
                del self.joined[key]
            if len(self.joined) >= self.limits.max_rooms:
                raise Rejected(
                    "too_many_rooms", room, f"a connection joins at most {self.limits.max_rooms} rooms"
                )
            member = Member(self.subscriber, room, self.user_name)
            self.joined[room] = member
        try:
            joined = await self.hub.join(member, since, rejoin=rejoin)
        except BaseException:
            self.joined.pop(room, None)
            raise
        if joined is None:
            self.joined.pop(room, None)
            raise Rejected("not_found", room, "no such room")
        for message in joined.replay:
            self.subscriber.offer(message.frame)
        self.subscriber.offer(
            control(
                "joined",
                room=room,
                offset=joined.latest,
                recovered=joined.recovered,
                presence=joined.presence,
            )
        )
        self.hub.go_live(member, joined)

    async def _say(self, frame: dict[str, Any]) -> None:
        room = _room_id(frame)
        text = frame.get("text")
        if not isinstance(text, str) or not text.strip():
            raise Rejected("bad_frame", room, "text must be 1-2000 characters")
        if len(text) > MESSAGE_MAX:
            raise Rejected("too_long", room, f"text is at most {MESSAGE_MAX} characters")
        if has_control_characters(text, multiline=True):
            raise Rejected("bad_frame", room, "text must not contain control characters")
        client_id = frame.get("client_id")
        if client_id is not None:
            try:
                client_id = (
                    uuid.UUID(client_id) if isinstance(client_id, str) and len(client_id) <= 64 else None
                )
            except ValueError:
                client_id = None
            if client_id is None:
                raise Rejected("bad_frame", room, "client_id must be a UUID")
        member = self._member(room)
        if member is None:
            raise Rejected("not_joined", room, "join the room first")
        if not self.buckets.take(self.subscriber.user_key):
            raise Rejected("rate_limited", room, "at most 5 messages a second")
        said = await self.hub.store.say(
            uuid.UUID(room),
            user_id=self.subscriber.user_id,
            user_name=self.user_name,
            text=text,
            client_id=client_id,
        )
        if said is None:
            raise Rejected("not_found", room, "no such room")
        if not said.created:
            # A retry: the first message again, to this connection only (the room saw it once).
            self.subscriber.offer(said.message.frame)

    def _leave(self, frame: dict[str, Any]) -> None:
        room = _room_id(frame)
        member = self._member(room)
        if member is None:
            raise Rejected("not_joined", room, "not in this room")
        del self.joined[room]
        self.hub.leave(member)
        self.subscriber.offer(control("left", room=room))

    def close(self) -> None:
        for member in self.joined.values():
            self.hub.leave(member)
        self.joined.clear()
