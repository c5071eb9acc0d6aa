"""``Annotated`` dependency aliases, defined once for every router."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from notification.resources import Resources
from shared.auth.dependencies import CurrentPrincipal
from shared.db.unit_of_work import unit_of_work
from shared.errors import Unauthorized

# Declared for the OpenAPI document (the "Authorize" button); shared.auth does the actual check.
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


async def caller_id(principal: CurrentPrincipal, _: BearerScheme) -> uuid.UUID:
    try:
        return uuid.UUID(principal.user_id)
    except ValueError as exc:
        raise Unauthorized("The access token's subject is not a user id.") from exc


CallerId = Annotated[uuid.UUID, Depends(caller_id)]
