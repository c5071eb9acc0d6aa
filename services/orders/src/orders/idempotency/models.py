"""Idempotency keys: the first answer to a keyed create, kept so a retry gets it again."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, PrimaryKeyConstraint, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import func

from orders.database import Base


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # A key belongs to one user: two users may pick the same key without meeting.
        PrimaryKeyConstraint("user_id", "key", name="pk_idempotency_keys"),
        CheckConstraint("char_length(key) BETWEEN 1 AND 255", name="key_length"),
        CheckConstraint("char_length(request_hash) = 64", name="request_hash"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    user_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 (hex) of the canonical JSON of the validated request body.
    request_hash: Mapped[str] = mapped_column(String(64))
    # Written in the same transaction as the order, so a committed row always has them; NULL only
    # inside that transaction.
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[str | None] = mapped_column(Text)
    order_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
