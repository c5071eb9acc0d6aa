"""Events from other services that change orders. Each runs in the consumer's transaction, which
also records the event in the inbox, so a redelivered event changes nothing twice."""

from __future__ import annotations

import logging

from orders.order import service
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.events import Event, UserDeactivated, UserDeleted

log = logging.getLogger(__name__)


async def on_user_deactivated(event: Event, uow: UnitOfWork) -> None:
    """A deactivated account's pending orders are cancelled; paid ones are left for a person to decide."""
    if not isinstance(event, UserDeactivated):
        raise TypeError(f"expected user.deactivated, got {event.type}")
    cancelled = await service.cancel_pending_of_user(uow.session, event.data.user_id)
    log.info(
        "cancelled the pending orders of a deactivated user",
        extra={"user_id": str(event.data.user_id), "cancelled": cancelled},
    )


async def on_user_deleted(event: Event, uow: UnitOfWork) -> None:
    """An erased account's open orders (pending or paid) are cancelled; the others stay for the books."""
    if not isinstance(event, UserDeleted):
        raise TypeError(f"expected user.deleted, got {event.type}")
    cancelled = await service.cancel_open_of_user(uow.session, event.data.user_id)
    log.info(
        "cancelled the open orders of a deleted user",
        extra={"user_id": str(event.data.user_id), "cancelled": cancelled},
    )
