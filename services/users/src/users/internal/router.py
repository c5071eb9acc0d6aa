"""Service-to-service reads; the gateway never forwards /internal/*."""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response
from pydantic import BaseModel, ConfigDict

from shared.errors import Unauthorized
from users.accounts import service
from users.dependencies import ResourcesDep


class InternalUser(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    roles: list[str]
    is_active: bool


async def require_service_token(
    resources: ResourcesDep,
    x_service_token: Annotated[str | None, Header()] = None,
) -> None:
    if not x_service_token:
        raise Unauthorized("The X-Service-Token header is required.", error=None)
    presented = x_service_token.encode()
    # Compare with every configured token, without stopping early, so timing reveals nothing.
    matches = [
        hmac.compare_digest(presented, token.get_secret_value().encode())
        for token in resources.settings.internal_tokens
    ]
    if not any(matches):
        raise Unauthorized("The service token is not valid.")


router = APIRouter(prefix="/internal", include_in_schema=False, dependencies=[Depends(require_service_token)])


@router.get("/users/{user_id}", response_model=InternalUser)
async def read_user(user_id: uuid.UUID, resources: ResourcesDep) -> Response:
    """One account as other services need it (for example: is it active?)."""
    user = InternalUser.model_validate(await service.read_for_service(resources.reads, user_id))
    # Serialised once, here: FastAPI would validate and encode the model again for response_model.
    return Response(user.model_dump_json(), media_type="application/json")


class InternalUsers(BaseModel):
    items: list[InternalUser]


@router.get("/admins", response_model=InternalUsers)
async def read_admins(resources: ResourcesDep) -> InternalUsers:
    """Every active admin account (notification sends them the daily report)."""
    rows = await service.admins_for_service(resources.reads)
    return InternalUsers(items=[InternalUser.model_validate(row) for row in rows])
