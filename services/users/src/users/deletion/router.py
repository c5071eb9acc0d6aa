"""Account deletion: ``POST /api/v1/users/me/delete`` and the admin's ``DELETE /api/v1/users/{id}``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from shared.service.dependencies import AdminPrincipal, CurrentPrincipal, SessionDep
from shared.web.problems import PROBLEM_JSON
from users.accounts import service as accounts
from users.deletion import service
from users.dependencies import ClientIpDep, PasswordsDep, ThrottleDep

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class DeleteMeRequest(BaseModel):
    # Only compared, so only bounded.
    password: Annotated[str, Field(min_length=1, max_length=1024)]


@router.post(
    "/me/delete",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        403: {"description": "The password is not correct"},
        429: {"description": "Too many wrong passwords", "content": {PROBLEM_JSON: {}}},
    },
)
async def delete_me(
    data: DeleteMeRequest,
    caller: CurrentPrincipal,
    session: SessionDep,
    passwords: PasswordsDep,
    throttle: ThrottleDep,
    ip: ClientIpDep,
) -> Response:
    """Erase the caller's account (the password confirms it); its e-mail may register again."""
    user = await accounts.active_user(session, caller.user_id, for_update=True)
    await service.delete_self(session, passwords, throttle, user, data.password, ip)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_user(user_id: uuid.UUID, _: AdminPrincipal, session: SessionDep) -> Response:
    """Erase an account (admin only); repeating it answers 204 again."""
    await service.delete_by_admin(session, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
