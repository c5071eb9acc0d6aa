"""This replica's room members, and the fan-out of room notices to them.

Every room frame goes to a member through its connection's one bounded queue (``Subscriber.offer``,
which never waits: a member that does not read is closed with 4008 and delays nobody).

Order and exactness per room, as for user streams: the room's ``head`` is the last offset fanned out
here; a notice at ``head + 1`` goes out at once, a later one (a notice lost while LISTEN reconnected,
or a message too big for NOTIFY) first reads the gap from the store, so members see each offset once,
in order. A member that is joining buffers what arrives meanwhile and gets it after its replay.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from realtime.delivery.hub import Hub
from realtime.delivery.subscriber import CLOSE_SLOW, Subscriber
from realtime.rooms.frames import RoomMessage, control
from realtime.rooms.presence import PresenceStore, Present
from realtime.rooms.store import History, RoomStore
from realtime.streams.frames import Frame
from realtime.streams.store import DATABASE_ERRORS

log = logging.getLogger(__name__)

READ_ERRORS: tuple[type[BaseException], ...] = (ValueError, *DATABASE_ERRORS)


class Member:
    """One connection in one room."""

    __slots__ = ("backlog", "gone", "joining", "last", "room", "subscriber", "user_key", "user_name")

    def __init__(self, subscriber: Subscriber, room: str, user_name: str) -> None:
        self.subscriber = subscriber
        self.room = room
        self.user_key = subscriber.user_key
        self.user_name = user_name
        self.last = 0  # highest offset of the room this connection has been sent
        self.joining = True
        self.backlog: list[RoomMessage | Frame] = []
        self.gone = False  # the room was deleted: nothing to leave


@dataclass(slots=True)
class Room:
    members: list[Member] = field(default_factory=list)
    head: int | None = None  # unknown until the first local member's join has read the store
    seen: int = 0
    wanted: int = 0
    fetching: bool = False


@dataclass(frozen=True, slots=True)
class Joined:
    replay: list[RoomMessage]
    latest: int
    recovered: bool
    presence: list[dict[str, str]]


class RoomHub:
    def __init__(self, store: RoomStore, presence: PresenceStore, hub: Hub, *, recovery_limit: int) -> None:
        self.store = store
        self.presence = presence
        self.hub = hub
        self.recovery_limit = recovery_limit
        self.rooms: dict[str, Room] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- notices from every replica (called synchronously by the listener: never waits) --

    def on_notice(self, payload: str) -> None:
        kind, _, rest = payload.partition("\t")
        if kind == "b":
            self._broadcast(rest)
            return
        if kind == "B":
            self._spawn(self._read_broadcast(rest))
            return
        room_key, _, rest = rest.partition("\t")
        room = self.rooms.get(room_key)
        if room is None:
            return  # nobody here is in that room: nothing is parsed
        if kind == "m":
            offset, _, text = rest.partition("\t")
            frame = Frame(0, "message", text) if text else None
            self._on_message(room_key, room, int(offset), frame)
        elif kind == "p":
            user_key, _, text = rest.partition("\t")
            self._presence(room, user_key, Frame(0, "presence", text))
        elif kind == "c":
            self._closed(room_key, room)
        else:
            log.warning("unknown room notice", extra={"payload": payload[:100]})

    def _broadcast(self, text: str) -> None:
        frame = Frame(0, "broadcast", text)
        for subscriber in self.hub.everyone():
            subscriber.offer(frame)

    async def _read_broadcast(self, broadcast_id: str) -> None:
        try:
            text = await self.store.broadcast_text(uuid.UUID(broadcast_id))
        except READ_ERRORS:
            log.warning("could not read a broadcast", exc_info=True)
            return
        if text is not None:
            self._broadcast(text)

    def _on_message(self, room_key: str, room: Room, offset: int, frame: Frame | None) -> None:
        if room.head is None:
            # A first join is reading the store: its members buffer, the join sorts it out.
            room.seen = max(room.seen, offset)
            if frame is not None:
                self._deliver(room, RoomMessage(room_key, offset, frame))
            return
        if offset <= room.head:
            return
        if offset == room.head + 1 and frame is not None and not room.fetching:
            room.head = offset
            self._deliver(room, RoomMessage(room_key, offset, frame))
            return
        room.wanted = max(room.wanted, offset)
        if not room.fetching:
            room.fetching = True
            self._spawn(self._fill(room_key, room))

    async def _fill(self, room_key: str, room: Room) -> None:
        """Read what the notices skipped, in order, until the room's head reaches the newest notice."""
        try:
            while room.head is not None and room.head < room.wanted and self.rooms.get(room_key) is room:
                target = room.wanted
                for message in await self.store.read(uuid.UUID(room_key), after=room.head, upto=target):
                    if message.offset > room.head:
                        room.head = message.offset
                        self._deliver(room, message)
                # Whatever up to ``target`` is not in the store any more was trimmed: skip it.
                room.head = max(room.head, target)
        except DATABASE_ERRORS:
            log.warning("could not read room messages; the next notice retries", exc_info=True)
        finally:
            room.fetching = False

    def _deliver(self, room: Room, message: RoomMessage) -> None:
        for member in room.members:
            if member.joining:
                self._buffer(member, message)
            elif message.offset > member.last:
                member.last = message.offset
                member.subscriber.offer(message.frame)

    def _buffer(self, member: Member, item: RoomMessage | Frame) -> None:
        if len(member.backlog) >= member.subscriber.limit:
            member.subscriber.close(CLOSE_SLOW, "client too slow")
            member.backlog.clear()
            return
        member.backlog.append(item)

    def _presence(self, room: Room, user_key: str, frame: Frame) -> None:
        for member in room.members:
            if member.user_key == user_key:
                continue  # "the other members": a user's own connections know it joined
            if member.joining:
                self._buffer(member, frame)
            else:
                member.subscriber.offer(frame)

    def _closed(self, room_key: str, room: Room) -> None:
        frame = control("room_closed", room=room_key)
        for member in room.members:
            member.gone = True
            member.subscriber.offer(frame)
        del self.rooms[room_key]

    async def resync(self) -> None:
        """After the rooms' LISTEN (re)connects: what was said meanwhile reaches the local members."""
        for room_key, room in list(self.rooms.items()):
            if room.head is None:
                continue
            try:
                history = await self.store.history(uuid.UUID(room_key), None, limit=0)
            except DATABASE_ERRORS:
                log.warning("room resync failed; the next message fills the gap", exc_info=True)
                return
            if history is not None and history.latest > room.head:
                self._on_message(room_key, room, history.latest, None)

    async def reassert(self) -> None:
        """This replica was taken for dead (its heartbeat lapsed): count its members again."""
        counts: dict[tuple[str, uuid.UUID], tuple[int, str]] = {}
        for room_key, room in self.rooms.items():
            for member in room.members:
                key = (room_key, member.subscriber.user_id)
                counts[key] = (counts.get(key, (0, ""))[0] + 1, member.user_name)
        for (room_key, user_id), (count, user_name) in counts.items():
            await self.presence.enter(uuid.UUID(room_key), user_id, user_name, count)

    # -- a connection joins and leaves --

    async def join(self, member: Member, since: int | None, *, rejoin: bool) -> Joined | None:
        """Add ``member`` (already counted when ``rejoin``) and read what it missed; None: no such room.

        Raises ``DATABASE_ERRORS``; the member is then not in the room.
        """
        room_key = member.room
        room_id = uuid.UUID(room_key)
        room = self.rooms.setdefault(room_key, Room())
        member.joining = True
        if not rejoin:
            room.members.append(member)
        try:
            entered = await self._enter(member, room_id, since, rejoin=rejoin)
        except DATABASE_ERRORS:
            self._drop(member)
            raise
        if entered is None:
            self._drop(member)
            return None
        history, present = entered
        if room.head is None:
            room.head = max(history.latest, room.seen)
        return Joined(
            history.messages,
            history.latest,
            history.recovered,
            [{"user_id": p.user_id, "user_name": p.user_name} for p in present],
        )

    async def _enter(
        self, member: Member, room_id: uuid.UUID, since: int | None, *, rejoin: bool
    ) -> tuple[History, list[Present]] | None:
        history = await self.store.history(room_id, since, limit=self.recovery_limit)
        if history is None:
            return None
        if (
            not rejoin
            and await self.presence.enter(room_id, member.subscriber.user_id, member.user_name) is None
        ):
            return None
        return history, await self.presence.members(room_id)

    def go_live(self, member: Member, joined: Joined) -> None:
        """The replay and ``joined`` are queued: send what arrived meanwhile, then everything live."""
        member.last = max(member.last, joined.latest)
        member.joining = False
        backlog, member.backlog = member.backlog, []
        for item in backlog:
            if isinstance(item, RoomMessage):
                if item.offset > member.last:
                    member.last = item.offset
                    member.subscriber.offer(item.frame)
            else:
                member.subscriber.offer(item)

    def leave(self, member: Member) -> None:
        """Take ``member`` out now; its presence row is updated in the background (never waited on)."""
        if member.gone:
            return
        self._drop(member)
        self._spawn(self._exit(member))

    def _drop(self, member: Member) -> None:
        room = self.rooms.get(member.room)
        if room is None or member not in room.members:
            return
        room.members.remove(member)
        if not room.members:
            del self.rooms[member.room]

    async def _exit(self, member: Member) -> None:
        try:
            await self.presence.exit(uuid.UUID(member.room), member.subscriber.user_id, member.user_name)
        except DATABASE_ERRORS:
            # The row stays counted until this replica's goodbye or the database is back for a sweep.
            log.warning("could not record a leave", exc_info=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Let pending leaves finish (a replica's goodbye follows)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for task in list(self._tasks):
            task.cancel()
