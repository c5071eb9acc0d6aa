"""The ids of erased accounts: nothing personal, only enough to refuse what arrives about them later."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, func
from sqlalchemy.orm import Mapped, mapped_column

from notification.database import Base


class ErasedUser(Base):
    __tablename__ = "erased_users"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
