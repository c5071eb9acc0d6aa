"""``Annotated`` dependency aliases, defined once for every router."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from orders.idempotency.service import HEADER
from orders.order.service import Caller
from orders.resources import Resources
from orders.upstream.users import UsersClient
from shared.auth.dependencies import AdminPrincipal, CurrentPrincipal
from shared.auth.verifier import Principal
from shared.db.unit_of_work import unit_of_work
from shared.errors import Unauthorized

# Declared for the OpenAPI document (the "Authorize" button); shared.auth does the actual check.
# The same scheme users declares, so the gateway's merged document has one way to log in.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
BearerScheme = Annotated[str | None, Depends(oauth2_scheme)]


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the endpoint returns, rolled back if it raises."""
    async with unit_of_work(resources.sessions) as uow:
        yield uow.session


# scope="function": the commit happens before the response is sent, never after.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_users(resources: ResourcesDep) -> UsersClient:
    return resources.users


UsersDep = Annotated[UsersClient, Depends(get_users)]


def _caller(principal: Principal) -> Caller:
    try:
        user_id = uuid.UUID(principal.user_id)
    except ValueError as exc:
        raise Unauthorized("The access token's subject is not a user id.") from exc
    return Caller(user_id=user_id, is_admin=principal.is_admin)


async def current_caller(principal: CurrentPrincipal, _: BearerScheme) -> Caller:
    return _caller(principal)


async def admin_caller(principal: AdminPrincipal, _: BearerScheme) -> Caller:
    return _caller(principal)


CallerDep = Annotated[Caller, Depends(current_caller)]
AdminDep = Annotated[Caller, Depends(admin_caller)]

IdempotencyKeyDep = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=255,
        description="Makes the create safe to retry: the same key and body return the first answer.",
    ),
]


async def transition_slot(order_id: uuid.UUID, _: CallerDep, resources: ResourcesDep) -> AsyncIterator[None]:
    """Held until after the commit; a concurrent transition of the same order is refused (409).
    After authentication, so an anonymous request gets its 401 whatever else is under way."""
    with resources.gate.admit(order_id):
        yield


# A route dependency, listed before the session so that it is released after the commit.
TransitionSlot = Depends(transition_slot, scope="function")
