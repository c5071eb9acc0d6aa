"""Registration and the /api/v1/users resource."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from shared.db.pagination import Page
from shared.service.dependencies import AdminPrincipal, CurrentPrincipal, PageParamsDep, SessionDep
from shared.web.problems import PROBLEM_JSON
from users.accounts import service
from users.accounts.schemas import ChangePasswordRequest, RegisterRequest, UpdateMeRequest, UserOut
from users.dependencies import ClientIpDep, PasswordsDep, RegistrationLimit, ThrottleDep

auth_router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
router = APIRouter(prefix="/api/v1/users", tags=["users"])


@auth_router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    dependencies=[RegistrationLimit],
    responses={
        409: {"description": "An account with this e-mail exists", "content": {PROBLEM_JSON: {}}},
        429: {"description": "Too many sign-ups from this client", "content": {PROBLEM_JSON: {}}},
    },
)
async def register(data: RegisterRequest, session: SessionDep, passwords: PasswordsDep) -> UserOut:
    """Create an account; the e-mail must not be in use yet, in any letter case."""
    return UserOut.model_validate(await service.register(session, passwords, data))


@router.get("/me", response_model=UserOut)
async def read_me(caller: CurrentPrincipal, session: SessionDep) -> UserOut:
    """The caller's own account."""
    return UserOut.model_validate(await service.active_user(session, caller.user_id))


@router.patch("/me", response_model=UserOut)
async def update_me(data: UpdateMeRequest, caller: CurrentPrincipal, session: SessionDep) -> UserOut:
    """Change the caller's full name."""
    user = await service.active_user(session, caller.user_id, for_update=True)
    return UserOut.model_validate(await service.update_profile(session, user, data))


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={429: {"description": "Too many wrong passwords", "content": {PROBLEM_JSON: {}}}},
)
async def change_password(
    data: ChangePasswordRequest,
    caller: CurrentPrincipal,
    session: SessionDep,
    passwords: PasswordsDep,
    throttle: ThrottleDep,
    ip: ClientIpDep,
) -> Response:
    """Change the caller's password and sign out every session (all refresh tokens are revoked)."""
    user = await service.active_user(session, caller.user_id, for_update=True)
    await service.change_password(session, passwords, throttle, user, data, ip)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("", response_model=Page[UserOut])
async def list_users(_: AdminPrincipal, session: SessionDep, page: PageParamsDep) -> Page[UserOut]:
    """All accounts, newest first (admin only)."""
    return await service.list_users(session, page)


@router.get("/{user_id}", response_model=UserOut)
async def read_user(user_id: uuid.UUID, _: AdminPrincipal, session: SessionDep) -> UserOut:
    """One account by id (admin only)."""
    return UserOut.model_validate(await service.get_user(session, user_id))


@router.post("/{user_id}/deactivate", response_model=UserOut)
async def deactivate_user(user_id: uuid.UUID, _: AdminPrincipal, session: SessionDep) -> UserOut:
    """Deactivate an account and revoke its refresh tokens (admin only)."""
    return UserOut.model_validate(await service.deactivate(session, user_id))
