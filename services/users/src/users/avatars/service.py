"""Avatar use cases. They flush; the request's unit of work commits."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import NotFound
from users.accounts.models import User
from users.avatars import images
from users.avatars.models import Avatar


async def put(session: AsyncSession, user: User, upload: bytes) -> User:
    # Decoding is CPU work of up to a few hundred milliseconds: off the event loop.
    data = await asyncio.to_thread(images.reencode, upload)
    etag = hashlib.sha256(data).hexdigest()[:32]
    avatar = await session.get(Avatar, user.id, with_for_update=True)
    if avatar is None:
        session.add(Avatar(user_id=user.id, content_type=images.CONTENT_TYPE, data=data, etag=etag))
    else:
        avatar.content_type, avatar.data, avatar.etag = images.CONTENT_TYPE, data, etag
    user.avatar_etag = etag
    await session.flush()
    return user


async def get(session: AsyncSession, user_id: uuid.UUID) -> Avatar:
    avatar = await session.get(Avatar, user_id)
    if avatar is None:
        raise NotFound("This user has no avatar.")
    return avatar


async def delete(session: AsyncSession, user: User) -> None:
    """Idempotent: no avatar is not an error."""
    avatar = await session.get(Avatar, user.id, with_for_update=True)
    if avatar is not None:
        await session.delete(avatar)
    user.avatar_etag = None
    await session.flush()
