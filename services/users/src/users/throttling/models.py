"""One row per failed (or in-flight) login attempt; rows older than the window are purged."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from users.database import Base


class LoginFailure(Base):
    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_account_key_created_at", "account_key", "created_at"),
        Index("ix_login_failures_ip_created_at", "ip", "created_at"),
        Index("ix_login_failures_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    # The e-mail as submitted, by its comparison key (email_key), whether or not such an account exists.
    account_key: Mapped[str] = mapped_column(Text)
    ip: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
