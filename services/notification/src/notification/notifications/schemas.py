"""What clients receive about notifications."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    type: str = Field(examples=["order_status_changed"])
    title: str = Field(examples=["Order shipped"])
    body: str
    data: dict[str, Any] = Field(examples=[{"order_id": "0b6f...", "to_status": "shipped"}])
    created_at: datetime
    read_at: datetime | None


class UnreadCount(BaseModel):
    count: int


class ReadAllResult(BaseModel):
    updated: int
