"""``/api/v1/users/me/avatar`` (PUT, DELETE) and ``/api/v1/users/{id}/avatar`` (GET)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status

from shared.service.dependencies import CurrentPrincipal, SessionDep
from users.accounts import service as accounts
from users.accounts.schemas import UserOut
from users.avatars import service
from users.avatars.upload import read_image

router = APIRouter(prefix="/api/v1/users", tags=["users"])

CACHE_CONTROL = "private, max-age=3600"
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_IMAGE: dict[str, Any] = {
    "content": {
        "multipart/form-data": {
            "schema": {"type": "object", "required": ["file"], "properties": {"file": _BINARY["schema"]}}
        },
        **{media: _BINARY for media in ("image/png", "image/jpeg", "image/webp", "image/gif")},
    }
}


@router.put(
    "/me/avatar",
    response_model=UserOut,
    openapi_extra={"requestBody": {"required": True, **_IMAGE}},
    responses={
        413: {"description": "Larger than 1 MiB"},
        415: {"description": "Not a PNG, JPEG, WebP or GIF"},
        422: {"description": "Over 40 megapixels, or does not decode"},
    },
)
async def put_avatar(request: Request, caller: CurrentPrincipal, session: SessionDep) -> UserOut:
    """Set the caller's avatar: a ``file`` part of a multipart form, or the image itself as the body."""
    user = await accounts.active_user(session, caller.user_id, for_update=True)
    upload = await read_image(request)
    return UserOut.model_validate(await service.put(session, user, upload))


@router.delete("/me/avatar", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_avatar(caller: CurrentPrincipal, session: SessionDep) -> Response:
    """Remove the caller's avatar."""
    user = await accounts.active_user(session, caller.user_id, for_update=True)
    await service.delete(session, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{user_id}/avatar",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}}}, 304: {"description": "Not modified"}, 404: {}},
)
async def get_avatar(
    user_id: uuid.UUID,
    _: CurrentPrincipal,
    session: SessionDep,
    if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response:
    """A user's avatar (any signed-in user may see it)."""
    avatar = await service.get(session, user_id)
    etag = f'"{avatar.etag}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
    if if_none_match is not None and (
        if_none_match.strip() == "*"
        or etag in [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    ):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(avatar.data, media_type=avatar.content_type, headers=headers)


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 13.1.2: weak comparison, ``*`` matches any current representation."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags
