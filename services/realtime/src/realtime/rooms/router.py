"""``/api/v1/rooms`` and ``/api/v1/broadcasts`` (contract section 6): thin, the store does the work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from realtime.rooms.frames import broadcast_frame, message_body
from realtime.rooms.hub import RoomHub
from realtime.rooms.schemas import (
    BroadcastAccepted,
    BroadcastIn,
    MessageIn,
    MessageOut,
    PresenceOut,
    RoomIn,
    RoomOut,
)
from realtime.runtime import runtime_of
from shared.db.pagination import MAX_LIMIT, Cursor, OffsetCursor, Page
from shared.errors import Forbidden, NotFound
from shared.service.dependencies import AdminPrincipal, CurrentPrincipal, PageParamsDep

router = APIRouter(tags=["rooms"])


def rooms_of(request: Request) -> RoomHub:
    return runtime_of(request).rooms


RoomsDep = Annotated[RoomHub, Depends(rooms_of)]


async def valid_room_id(value: Annotated[str, Path(alias="room_id", max_length=64)]) -> uuid.UUID:
    # A malformed id names no room: 404 like any unknown one, not a validation error.
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise NotFound("No such room.") from exc


RoomId = Annotated[uuid.UUID, Depends(valid_room_id)]


async def existing_room(room_id: RoomId, rooms: RoomsDep) -> Any:
    row = await rooms.store.get(room_id)
    if row is None:
        raise NotFound("No such room.")
    return row


RoomRow = Annotated[Any, Depends(existing_room)]


def _room(row: Any) -> RoomOut:
    return RoomOut.model_validate(row, from_attributes=True)


@router.post("/api/v1/rooms", status_code=status.HTTP_201_CREATED, response_model=RoomOut)
async def create_room(
    body: RoomIn, principal: CurrentPrincipal, rooms: RoomsDep, response: Response
) -> RoomOut:
    """Create a room; any signed-in user may."""
    row = await rooms.store.create(name=body.name, topic=body.topic, created_by=principal.user_id)
    response.headers["Location"] = f"/api/v1/rooms/{row.id}"
    return _room(row)


@router.get("/api/v1/rooms", response_model=Page[RoomOut])
async def list_rooms(_: CurrentPrincipal, rooms: RoomsDep, page: PageParamsDep) -> Page[RoomOut]:
    """Every room, newest first."""
    rows = await rooms.store.newest_first(limit=page.limit + 1, after=page.cursor)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    cursor = Cursor(rows[-1].created_at, rows[-1].id).encode() if more and rows else None
    return Page(items=[_room(row) for row in rows], next_cursor=cursor)


@router.get("/api/v1/rooms/{room_id}", response_model=RoomOut)
async def get_room(_: CurrentPrincipal, room: RoomRow) -> RoomOut:
    """One room, with the offset of its newest message."""
    return _room(room)


@router.delete("/api/v1/rooms/{room_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_room(room_id: RoomId, principal: CurrentPrincipal, rooms: RoomsDep) -> Response:
    """Delete a room and its history (its creator or an admin); its members receive ``room_closed``."""
    outcome = await rooms.store.delete(room_id, user_id=principal.user_id, admin=principal.is_admin)
    if outcome is None:
        raise NotFound("No such room.")
    if outcome is False:
        raise Forbidden("Only the room's creator or an admin may delete it.")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/v1/rooms/{room_id}/messages", response_model=Page[MessageOut])
async def list_messages(
    _: CurrentPrincipal,
    room: RoomRow,
    rooms: RoomsDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = 20,
    cursor: Annotated[str | None, Query(max_length=512, description="From a previous next_cursor")] = None,
) -> Page[MessageOut]:
    """The room's retained messages, newest first."""
    # Messages page by offset: the cursor is the last offset seen, opaque to clients.
    before = OffsetCursor.decode(cursor).offset if cursor else None
    rows = await rooms.store.messages_newest_first(room.id, limit=limit + 1, before=before)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [MessageOut.model_validate(message_body(row)) for row in rows]
    return Page(items=items, next_cursor=OffsetCursor(rows[-1].offset).encode() if more and rows else None)


@router.post(
    "/api/v1/rooms/{room_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageOut,
    responses={200: {"model": MessageOut, "description": "The first message with this client_id"}},
)
async def post_message(
    room_id: RoomId, body: MessageIn, principal: CurrentPrincipal, rooms: RoomsDep, response: Response
) -> MessageOut:
    """Say something in a room; the same ``client_id`` again returns the first message (200)."""
    said = await rooms.store.say(
        room_id, user_id=principal.user_id, user_name=principal.name, text=body.text, client_id=body.client_id
    )
    if said is None:
        raise NotFound("No such room.")
    if not said.created:
        response.status_code = status.HTTP_200_OK
    return MessageOut.model_validate(message_body(said.row))


@router.get("/api/v1/rooms/{room_id}/presence", response_model=PresenceOut)
async def room_presence(_: CurrentPrincipal, room: RoomRow, rooms: RoomsDep) -> PresenceOut:
    """Who is in the room now, on every replica, with their number of connections."""
    present = await rooms.presence.members(room.id)
    return PresenceOut.model_validate(
        {
            "room": room.id,
            "users": [
                {"user_id": p.user_id, "user_name": p.user_name, "connections": p.connections}
                for p in present
            ],
        }
    )


@router.post("/api/v1/broadcasts", status_code=status.HTTP_202_ACCEPTED, response_model=BroadcastAccepted)
async def broadcast(body: BroadcastIn, _: AdminPrincipal, rooms: RoomsDep) -> BroadcastAccepted:
    """Send a notice to every open WebSocket and SSE connection on every replica (admin only)."""
    broadcast_id = uuid.uuid4()
    await rooms.store.broadcast(
        broadcast_id, broadcast_frame(broadcast_id, body.title, body.body, datetime.now(UTC))
    )
    return BroadcastAccepted(id=broadcast_id)
