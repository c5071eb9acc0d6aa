"""Single-use e-mail tokens (verification, password reset): only their SHA-256 is stored."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from users.database import Base

VERIFY_EMAIL: Final = "verify_email"
PASSWORD_RESET: Final = "password_reset"  # noqa: S105 - a purpose, not a secret


class VerificationToken(Base):
    __tablename__ = "verification_tokens"
    __table_args__ = (
        CheckConstraint("purpose IN ('verify_email', 'password_reset')", name="purpose"),
        # The per-address limits count a user's recent tokens of one purpose.
        Index("ix_verification_tokens_user_id_purpose_created_at", "user_id", "purpose", "created_at"),
        Index("ix_verification_tokens_expires_at", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def usable_at(self, now: datetime) -> bool:
        return self.used_at is None and self.expires_at > now
