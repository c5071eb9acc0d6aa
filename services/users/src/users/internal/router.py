"""Service-to-service reads; the gateway never forwards /internal/*."""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, ConfigDict

from shared.errors import Unauthorized, ValidationFailed
from users.accounts import service
from users.dependencies import ResourcesDep

# One batch answers one page of orders or messages (contract section 7: at most 100 ids).
MAX_BATCH_IDS = 100


class InternalUser(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    roles: list[str]
    is_active: bool


class BatchUser(InternalUser):
    created_at: datetime


class UserBatch(BaseModel):
    items: list[BatchUser]


def _parse_ids(raw: str) -> list[uuid.UUID]:
    """``a,b,c`` -> distinct UUIDs in order; anything else is a 422 naming the parameter."""

    def invalid(msg: str) -> ValidationFailed:
        return ValidationFailed(
            "The ids parameter is not valid.", [{"loc": ["query", "ids"], "msg": msg, "type": "value_error"}]
        )

    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts:
        raise invalid("At least one id is required.")
    if len(parts) > MAX_BATCH_IDS:
        raise invalid(f"At most {MAX_BATCH_IDS} ids are allowed.")
    try:
        ids = [uuid.UUID(part) for part in parts]
    except ValueError as exc:
        raise invalid("Every id must be a UUID.") from exc
    return list(dict.fromkeys(ids))


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


@router.get("/users", response_model=UserBatch)
async def read_users(
    resources: ResourcesDep,
    # 100 UUIDs with commas are 3,700 characters; anything much longer is refused before parsing.
    ids: Annotated[str, Query(max_length=4000)],
) -> Response:
    """Many accounts in one call (GraphQL's DataLoader); ids with no account are simply absent."""
    rows = await service.read_many_for_service(resources.reads, _parse_ids(ids))
    batch = UserBatch(items=[BatchUser.model_validate(row) for row in rows])
    return Response(batch.model_dump_json(), media_type="application/json")


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
