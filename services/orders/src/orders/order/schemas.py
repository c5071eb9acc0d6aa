"""What clients send and receive about orders (contract section 4, "Orders")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from orders.order.models import NewLine, OrderStatus
from shared.text import SingleLine

MAX_ITEMS = 100

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["USD"], description="ISO 4217 code")]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", examples=["BOOK-42"])]
ItemName = Annotated[str, Field(min_length=1, max_length=200, examples=["A book"]), SingleLine]
# Strict: "3" or 3.0 is not a quantity, and money is never a float.
Quantity = Annotated[StrictInt, Field(ge=1, le=1000, examples=[2])]
UnitPrice = Annotated[StrictInt, Field(ge=0, le=1_000_000_000, examples=[1250])]


class OrderItemIn(BaseModel):
    sku: Sku
    name: ItemName
    quantity: Quantity
    unit_price_cents: UnitPrice

    def as_line(self) -> NewLine:
        return NewLine(self.sku, self.name, self.quantity, self.unit_price_cents)


class CreateOrderRequest(BaseModel):
    currency: Currency
    items: Annotated[list[OrderItemIn], Field(min_length=1, max_length=MAX_ITEMS)]


class OrderItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    name: str
    quantity: int
    unit_price_cents: int
    line_total_cents: int


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    status: OrderStatus
    currency: str
    items: list[OrderItemOut]
    total_cents: int
    created_at: datetime
    updated_at: datetime
