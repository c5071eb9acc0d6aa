"""The /api/v1/notifications resource: a user's own notifications, and nobody else's."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from notification.notifications import service
from notification.notifications.schemas import NotificationOut, ReadAllResult, UnreadCount
from shared.db.pagination import Page
from shared.errors import NotFound
from shared.service.dependencies import CurrentPrincipal, PageParamsDep, SessionDep

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


async def valid_notification_id(
    value: Annotated[str, Path(alias="notification_id", max_length=64)],
) -> uuid.UUID:
    # A malformed id names no notification: 404 like any unknown one, not a validation error.
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise NotFound("No such notification.") from exc


@router.get("", response_model=Page[NotificationOut])
async def list_notifications(
    caller: CurrentPrincipal,
    session: SessionDep,
    page: PageParamsDep,
    unread_only: Annotated[bool, Query(description="Only notifications not read yet")] = False,
) -> Page[NotificationOut]:
    """The caller's notifications, newest first."""
    return await service.list_page(session, caller.user_id, page, unread_only=unread_only)


@router.get("/unread-count", response_model=UnreadCount)
async def count_unread(caller: CurrentPrincipal, session: SessionDep) -> UnreadCount:
    """How many of the caller's notifications are unread."""
    return UnreadCount(count=await service.unread_count(session, caller.user_id))


@router.post("/read-all", response_model=ReadAllResult)
async def read_all(caller: CurrentPrincipal, session: SessionDep) -> ReadAllResult:
    """Mark every unread notification of the caller read; returns how many changed."""
    return ReadAllResult(updated=await service.mark_all_read(session, caller.user_id))


@router.post("/{notification_id}/read", response_model=NotificationOut)
async def read_one(
    caller: CurrentPrincipal,
    notification_id: Annotated[uuid.UUID, Depends(valid_notification_id)],
    session: SessionDep,
) -> NotificationOut:
    """Mark one of the caller's notifications read (again: no change) and return it."""
    notification = await service.mark_read(session, caller.user_id, notification_id)
    return NotificationOut.model_validate(notification)
