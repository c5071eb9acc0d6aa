"""Queue an e-mail inside the caller's transaction; the sender delivers it after the commit."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notification.email.models import Email
from notification.email.templates import RenderedEmail
from notification.settings import SCHEMA

# pg_notify is transactional: the sender wakes when (and only if) the enqueuing transaction commits.
WAKE_CHANNEL = f"{SCHEMA}_email"


async def enqueue(
    session: AsyncSession,
    *,
    source_event_id: uuid.UUID,
    user_id: uuid.UUID,
    recipient: str,
    rendered: RenderedEmail,
) -> bool:
    """Add a pending e-mail for ``source_event_id``; False when that event already has one."""
    inserted = await session.scalar(
        insert(Email)
        .values(
            id=uuid.uuid4(),
            source_event_id=source_event_id,
            user_id=user_id,
            recipient=recipient,
            template=rendered.template,
            subject=" ".join(rendered.subject.split())[:300],
            text_body=rendered.text,
            html_body=rendered.html,
        )
        .on_conflict_do_nothing(index_elements=[Email.source_event_id])
        .returning(Email.id)
    )
    if inserted is None:
        return False
    await session.execute(select(func.pg_notify(WAKE_CHANNEL, "")))
    return True
