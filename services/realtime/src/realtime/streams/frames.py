"""The frames a client receives (contract section 4) and the NOTIFY payload that carries them.

An event's frame is encoded once, where it is stored or read, and the same ``Frame`` object (and so the
same string, and the same WebSocket frame on the wire) is queued to every connection of its user:
fan-out costs a reference, not a copy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode

# NOTIFY refuses payloads of 8000 bytes or more; bigger frames travel as a reference to their row.
MAX_NOTIFY_BYTES = 7999
NOTIFY_CHANNEL = "realtime_events"


@dataclass(frozen=True, slots=True)
class Frame:
    """One server frame. ``offset`` is 0 for control frames (ping), which are not part of the stream."""

    offset: int
    event: str
    text: str
    # The event's ``occurred_at`` as epoch seconds (delivery lag is measured from it); 0 for control.
    ts: float = 0.0
    # The whole WebSocket text frame (RFC 6455 5.2, unmasked as a server sends it), built once for every
    # connection the frame goes to (``realtime.server.FrameWritingProtocol``).
    wire: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "wire", WireFrame(Opcode.TEXT, self.text.encode()).serialize(mask=False))

    @property
    def is_event(self) -> bool:
        return self.offset > 0


PING = Frame(0, "", '{"type":"ping"}')


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class UnnumberedFrame:
    """An event frame before its offset is known: the JSON on either side of the number.

    The storing statement picks the offset and builds the NOTIFY payload in the same round trip, so
    the frame is encoded once, here, and the database only splices the number in.
    """

    event: str
    ts: float
    # Everything after the offset: ``,"id":...,"event":...,"data":...,"ts":...}``.
    tail: str

    def numbered(self, offset: int) -> Frame:
        return Frame(offset, self.event, f"{_HEAD}{offset}{self.tail}", self.ts)

    def notice_parts(self, user_id: uuid.UUID) -> tuple[str, str, str | None]:
        """``before``, ``middle``, ``after`` of ``encode_notice``'s payload around the two offsets.

        ``after`` is None when even the longest offset would make the payload too big for NOTIFY.
        """
        before = f"{user_id}\t"
        middle = f"\t{self.event}\t{self.ts!r}\t"
        longest = len(f"{before}{MAX_OFFSET}{middle}{_HEAD}{MAX_OFFSET}{self.tail}".encode())
        if longest > MAX_NOTIFY_BYTES:
            return before, middle, None
        return before, middle + _HEAD, self.tail


_HEAD = '{"type":"event","offset":'
MAX_OFFSET = 2**63 - 1


def unnumbered_frame(event_id: uuid.UUID, event_type: str, data: Any, ts: datetime) -> UnnumberedFrame:
    rest = orjson.dumps({"id": str(event_id), "event": event_type, "data": data, "ts": rfc3339(ts)}).decode()
    return UnnumberedFrame(event_type, ts.timestamp(), "," + rest[1:])


def event_frame(offset: int, event_id: uuid.UUID, event_type: str, data: Any, ts: datetime) -> Frame:
    return unnumbered_frame(event_id, event_type, data, ts).numbered(offset)


def ready_text(offset: int, *, recovered: bool) -> str:
    return orjson.dumps({"type": "ready", "offset": offset, "recovered": recovered}).decode()


@dataclass(frozen=True, slots=True)
class Notice:
    """What one NOTIFY says: user ``user_id`` has event ``offset``; ``frame`` unless it was too big."""

    user_id: str
    offset: int
    frame: Frame | None


def encode_notice(user_id: uuid.UUID, frame: Frame) -> str:
    """``<user>\\t<offset>\\t<type>\\t<ts>\\t<frame JSON>``, the JSON left out when it would not fit.

    The header comes first so a replica with no connection of that user drops it without parsing JSON.
    """
    head = f"{user_id}\t{frame.offset}\t{frame.event}\t{frame.ts!r}\t"
    payload = head + frame.text
    if len(payload.encode()) > MAX_NOTIFY_BYTES:
        return head
    return payload


def notice_user(payload: str) -> str:
    return payload.partition("\t")[0]


# ``<user>\trevoked``: the account was deactivated; every replica closes that user's connections.
REVOKED = "revoked"


def encode_revocation(user_id: uuid.UUID) -> str:
    return f"{user_id}\t{REVOKED}"


def is_revocation(payload: str) -> bool:
    return payload.partition("\t")[2] == REVOKED


def decode_notice(payload: str) -> Notice:
    user_id, offset, event, ts, text = payload.split("\t", 4)
    position = int(offset)
    frame = Frame(position, event, text, float(ts)) if text else None
    return Notice(user_id, position, frame)
