"""The /api/v1/orders resource: thin handlers over ``orders.order.service``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from orders.dependencies import IdempotencyKeyDep, ResourcesDep, TransitionSlot
from orders.idempotency.service import REPLAYED_HEADER, Answer
from orders.order import service
from orders.order.models import OrderStatus
from orders.order.schemas import CreateOrderRequest, OrderOut
from shared.db.pagination import Page
from shared.service.dependencies import AdminPrincipal, CurrentPrincipal, PageParamsDep, SessionDep

PREFIX = "/api/v1/orders"

router = APIRouter(prefix=PREFIX, tags=["orders"])


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {}}}


TRANSITION_ERRORS: dict[int | str, dict[str, Any]] = {
    404: _problem("No such order, or it is someone else's"),
    409: _problem("Not allowed from the order's current status, or another change was under way"),
}


def location(order_id: uuid.UUID) -> str:
    return f"{PREFIX}/{order_id}"


def answer_response(answer: Answer) -> Response:
    headers = {"Location": location(answer.order_id)}
    if answer.replayed:
        headers[REPLAYED_HEADER] = "true"
    return Response(
        answer.body, status_code=answer.status_code, media_type="application/json", headers=headers
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    responses={
        201: {
            "headers": {
                "Location": {"description": "The new order's URL", "schema": {"type": "string"}},
                REPLAYED_HEADER: {
                    "description": "`true` when this is the stored answer to an earlier request",
                    "schema": {"type": "string", "enum": ["true"]},
                },
            }
        },
        403: _problem("The account does not exist or is deactivated"),
        422: _problem("Invalid body, or an Idempotency-Key reused with another body"),
        503: _problem("The users service cannot confirm the account; see Retry-After"),
    },
)
async def create_order(
    data: CreateOrderRequest,
    caller: CurrentPrincipal,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKeyDep = None,
) -> Response:
    """Place an order (status pending); with an Idempotency-Key, a retry gets the first answer."""
    # No SessionDep: the service commits (a keyed create) or writes one statement (without a key)
    # before it returns, so the answer is sent only after the order is stored, as elsewhere.
    answer = await service.create_order(
        resources.sessions, resources.single_statements, resources.users, caller, data, idempotency_key
    )
    return answer_response(answer)


@router.get("", response_model=Page[OrderOut])
async def list_orders(
    caller: CurrentPrincipal,
    session: SessionDep,
    page: PageParamsDep,
    status: Annotated[OrderStatus | None, Query(description="Only orders in this status")] = None,
    user_id: Annotated[uuid.UUID | None, Query(description="Only this user's orders (admins)")] = None,
) -> Page[OrderOut]:
    """The caller's orders, newest first; admins see everyone's."""
    return await service.list_orders(session, caller, page, status=status, user_id=user_id)


@router.get("/{order_id}", response_model=OrderOut, responses={404: TRANSITION_ERRORS[404]})
async def read_order(order_id: uuid.UUID, caller: CurrentPrincipal, session: SessionDep) -> OrderOut:
    """One order of the caller's (admins: anyone's)."""
    return OrderOut.model_validate(await service.get_order(session, caller, order_id))


@router.post(
    "/{order_id}/pay",
    response_model=OrderOut,
    responses=TRANSITION_ERRORS,
)
async def pay_order(
    order_id: uuid.UUID, caller: CurrentPrincipal, slot: TransitionSlot, session: SessionDep
) -> OrderOut:
    """Pay a pending order (its customer only)."""
    return OrderOut.model_validate(await service.pay(session, caller, order_id, slot))


@router.post(
    "/{order_id}/cancel",
    response_model=OrderOut,
    responses=TRANSITION_ERRORS,
)
async def cancel_order(
    order_id: uuid.UUID, caller: CurrentPrincipal, slot: TransitionSlot, session: SessionDep
) -> OrderOut:
    """Cancel a pending or paid order (its customer or an admin)."""
    return OrderOut.model_validate(await service.cancel(session, caller, order_id, slot))


@router.post(
    "/{order_id}/ship",
    response_model=OrderOut,
    responses=TRANSITION_ERRORS,
)
async def ship_order(
    order_id: uuid.UUID, admin: AdminPrincipal, slot: TransitionSlot, session: SessionDep
) -> OrderOut:
    """Mark a paid order shipped (admin only)."""
    return OrderOut.model_validate(await service.ship(session, admin, order_id, slot))


@router.post(
    "/{order_id}/deliver",
    response_model=OrderOut,
    responses=TRANSITION_ERRORS,
)
async def deliver_order(
    order_id: uuid.UUID, admin: AdminPrincipal, slot: TransitionSlot, session: SessionDep
) -> OrderOut:
    """Mark a shipped order delivered (admin only)."""
    return OrderOut.model_validate(await service.deliver(session, admin, order_id, slot))
