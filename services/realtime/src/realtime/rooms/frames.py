"""Room frames (contract section 6) and the NOTIFY payloads that carry them between replicas.

A frame is encoded once where it is stored or read; the same ``Frame`` object is queued to every
member's connection. Room frames have offset 0 in the connection's queue (they are not part of the
user's stream); the room offset lives in ``RoomMessage`` and is what the room hub orders by.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from realtime.streams.frames import MAX_NOTIFY_BYTES, Frame, rfc3339

ROOMS_CHANNEL = "realtime_rooms"


@dataclass(frozen=True, slots=True)
class RoomMessage:
    room: str
    offset: int
    frame: Frame


def message_body(row: Any) -> dict[str, Any]:
    """The message resource (HTTP) and, with ``type``, the frame (WebSocket)."""
    return {
        "id": str(row.id),
        "room": str(row.room_id),
        "offset": int(row.offset),
        "user_id": str(row.user_id),
        "user_name": row.user_name,
        "text": row.text,
        "client_id": str(row.client_id) if row.client_id is not None else None,
        "ts": rfc3339(row.ts),
    }


def message_of(row: Any) -> RoomMessage:
    text = orjson.dumps({"type": "message", **message_body(row)}).decode()
    return RoomMessage(str(row.room_id), int(row.offset), Frame(0, "message", text))


def control(kind: str, **fields: Any) -> Frame:
    return Frame(0, kind, orjson.dumps({"type": kind, **fields}).decode())


def error_frame(code: str, room: str | None, detail: str) -> Frame:
    return control("error", code=code, room=room, detail=detail)


def broadcast_frame(broadcast_id: uuid.UUID, title: str, body: str, ts: datetime) -> Frame:
    return control("broadcast", id=str(broadcast_id), title=title, body=body, ts=rfc3339(ts))


# NOTIFY payloads, one letter first so a replica routes them without parsing JSON:
#   m<TAB>room<TAB>offset<TAB>frame JSON (empty when too big: the replica reads the row)
#   p<TAB>room<TAB>user<TAB>frame JSON      presence join/leave
#   c<TAB>room                              room deleted
#   b<TAB>frame JSON                        broadcast
#   B<TAB>broadcast id                      broadcast too big for NOTIFY: read the row


def message_notice(message: RoomMessage) -> str:
    head = f"m\t{message.room}\t{message.offset}\t"
    payload = head + message.frame.text
    return head if len(payload.encode()) > MAX_NOTIFY_BYTES else payload


def presence_notice(room: str, user_id: str, frame: Frame) -> str:
    return f"p\t{room}\t{user_id}\t{frame.text}"


def closed_notice(room: str) -> str:
    return f"c\t{room}"


def broadcast_notice(frame: Frame, broadcast_id: uuid.UUID) -> tuple[str, bool]:
    """The notice, and whether it names a stored row (``B``) because the frame is too big for it."""
    payload = f"b\t{frame.text}"
    if len(payload.encode()) > MAX_NOTIFY_BYTES:
        return f"B\t{broadcast_id}", True
    return payload, False
