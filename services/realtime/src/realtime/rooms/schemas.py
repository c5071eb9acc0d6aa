"""Request and response bodies of the rooms and broadcasts API (contract section 6)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from realtime.rooms.text import (
    BROADCAST_BODY_MAX,
    BROADCAST_TITLE_MAX,
    MESSAGE_MAX,
    NAME_MAX,
    TOPIC_MAX,
)
from shared.text import MultiLine, NotBlank, SingleLine

# shared.text's rules, which the OpenAPI document states as a pattern.
Line = Annotated[str, SingleLine]
Lines = Annotated[str, MultiLine]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoomIn(Strict):
    name: Annotated[Line, Field(min_length=1, max_length=NAME_MAX), NotBlank()]
    topic: Annotated[Lines, Field(max_length=TOPIC_MAX)] = ""


class RoomOut(BaseModel):
    id: uuid.UUID
    name: str
    topic: str
    created_by: uuid.UUID
    created_at: datetime
    last_offset: int


class MessageIn(Strict):
    text: Annotated[Lines, Field(min_length=1, max_length=MESSAGE_MAX), NotBlank()]
    client_id: uuid.UUID | None = None


class MessageOut(BaseModel):
    id: uuid.UUID
    room: uuid.UUID
    offset: int
    user_id: uuid.UUID
    user_name: str
    text: str
    client_id: uuid.UUID | None
    ts: datetime


class Present(BaseModel):
    user_id: uuid.UUID
    user_name: str
    connections: int


class PresenceOut(BaseModel):
    room: uuid.UUID
    users: list[Present]


class BroadcastIn(Strict):
    title: Annotated[Line, Field(min_length=1, max_length=BROADCAST_TITLE_MAX), NotBlank()]
    body: Annotated[Lines, Field(min_length=1, max_length=BROADCAST_BODY_MAX), NotBlank()]


class BroadcastAccepted(BaseModel):
    id: uuid.UUID
