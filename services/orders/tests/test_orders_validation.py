"""The create body, validated exactly as the contract says (no database, no app)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from orders.order.schemas import CreateOrderRequest


def item(**overrides: Any) -> dict[str, Any]:
    return {"sku": "SKU_1-a", "name": "Thing", "quantity": 1, "unit_price_cents": 0, **overrides}


def body(**overrides: Any) -> dict[str, Any]:
    return {"currency": "USD", "items": [item()], **overrides}


def test_a_valid_body_at_every_bound() -> None:
    parsed = CreateOrderRequest.model_validate(
        body(
            items=[
                item(sku="a" * 64, name="n" * 200, quantity=1000, unit_price_cents=1_000_000_000),
                item(sku="Z", name="x", quantity=1, unit_price_cents=0),
            ]
            + [item()] * 98
        )
    )
    assert len(parsed.items) == 100


@pytest.mark.parametrize(
    "changes",
    [
        {"currency": "usd"},
        {"currency": "US"},
        {"currency": "USDX"},
        {"currency": "U1D"},
        {"currency": None},
        {"items": []},
        {"items": [item()] * 101},
        {"items": [item(sku="")]},
        {"items": [item(sku="a" * 65)]},
        {"items": [item(sku="has space")]},
        {"items": [item(sku="dot.ted")]},
        {"items": [item(sku="ünï")]},
        {"items": [item(name="")]},
        {"items": [item(name="n" * 201)]},
        {"items": [item(quantity=0)]},
        {"items": [item(quantity=1001)]},
        {"items": [item(quantity=1.5)]},
        {"items": [item(quantity="2")]},
        {"items": [item(unit_price_cents=-1)]},
        {"items": [item(unit_price_cents=1_000_000_001)]},
        {"items": [item(unit_price_cents=9.99)]},
        {"items": [{"sku": "A", "name": "no price", "quantity": 1}]},
    ],
)
def test_invalid_bodies_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CreateOrderRequest.model_validate(body(**changes))


def test_missing_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        CreateOrderRequest.model_validate({"items": [item()]})
    with pytest.raises(ValidationError):
        CreateOrderRequest.model_validate({"currency": "USD"})
