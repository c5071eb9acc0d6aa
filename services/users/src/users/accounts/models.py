"""The account aggregate: who may log in, with which roles."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, validates

from users.database import Base

ROLE_USER = "user"
ROLE_ADMIN = "admin"


def email_key(address: str) -> str:
    """The one spelling an address is compared by: NFC, then Unicode case folding.

    Computed here, once, and stored: Postgres' ``lower()`` folds by the database's locale (often
    ASCII only), Python's ``lower()`` by Unicode, so comparing one with the other let "İ" addresses
    register but never log in, and "é" typed precomposed or decomposed make two accounts.
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", address.strip()).casefold())


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        # One account per address whatever its case or Unicode spelling (see ``email_key``); the
        # address itself is kept as the user typed it, for display and for e-mails.
        Index("ux_users_email_key", "email_key", unique=True),
        Index("ix_users_created_at_id", "created_at", "id"),
    )
    # Server-set columns (created_at, updated_at) come back with the INSERT/UPDATE via RETURNING.
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    full_name: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=lambda: [ROLE_USER], server_default=text("'{user}'::text[]")
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # The ETag of the avatar (users.avatars), or None without one.
    avatar_etag: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    @validates("email")
    def _keep_email_key(self, _: str, value: str) -> str:
        self.email_key = email_key(value)
        return value

    @property
    def avatar_url(self) -> str | None:
        return f"/api/v1/users/{self.id}/avatar" if self.avatar_etag else None

    @property
    def is_admin(self) -> bool:
        return ROLE_ADMIN in self.roles

    def deactivate(self) -> None:
        self.is_active = False

    def grant_admin(self) -> None:
        """Ensure both roles, keeping any others; a new list so SQLAlchemy sees the change."""
        self.roles = [ROLE_USER, ROLE_ADMIN] + [r for r in self.roles if r not in (ROLE_USER, ROLE_ADMIN)]
