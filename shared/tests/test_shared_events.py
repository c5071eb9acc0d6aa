"""The event catalogue: envelope per the contract, strict parsing, and an AsyncAPI file kept fresh."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from shared.messaging.asyncapi import document, render
from shared.messaging.events import (
    CATALOGUE,
    EVENT_TYPES,
    OrderCreated,
    OrderCreatedData,
    OrderItem,
    UnknownEvent,
    event_type_name,
    parse_event,
)

ROOT = Path(__file__).resolve().parents[2]


def order_created() -> OrderCreated:
    return OrderCreated(
        correlation_id="r-9",
        data=OrderCreatedData(
            order_id=uuid.uuid4(),
            user_id=uuid.uuid4(),
            status="pending",
            currency="USD",
            total_cents=500,
            items=[OrderItem(sku="a", name="A", quantity=2, unit_price_cents=250, line_total_cents=500)],
        ),
    )


def test_envelope_matches_the_contract() -> None:
    body = order_created().model_dump(mode="json")
    assert set(body) == {"id", "type", "version", "source", "occurred_at", "correlation_id", "data"}
    assert body["type"] == "order.created"
    assert body["version"] == 1
    assert body["source"] == "orders"
    assert body["occurred_at"].endswith("Z")
    assert set(body["data"]) == {"order_id", "user_id", "status", "currency", "total_cents", "items"}


def test_round_trip_gives_the_same_event() -> None:
    event = order_created()
    assert parse_event(event.model_dump_json()) == event


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"type": "order.exploded", "version": 1}',
        order_created().model_dump_json().replace('"version":1', '"version":2').encode(),
        order_created().model_dump_json().replace('"total_cents":500', '"total_cents":"lots"').encode(),
    ],
    ids=["garbage", "empty", "unknown-type", "unknown-version", "bad-data"],
)
def test_unparseable_messages_are_refused(body: bytes) -> None:
    with pytest.raises(UnknownEvent):
        parse_event(body)


def test_catalogue_names_every_contract_event() -> None:
    assert set(EVENT_TYPES) == {
        "user.registered",
        "user.deactivated",
        "user.deleted",
        "account.email_requested",
        "order.created",
        "order.status_changed",
        "notification.created",
        "notification.requested",
    }
    assert len({event_type_name(m) for m in CATALOGUE}) == len(CATALOGUE)


def test_asyncapi_document_is_fresh() -> None:
    committed = (ROOT / "docs" / "asyncapi.yaml").read_text()
    assert committed == render(), (
        "docs/asyncapi.yaml is stale: run `python -m shared.messaging.asyncapi > docs/asyncapi.yaml`"
    )
    doc = document()
    assert doc["asyncapi"].startswith("3.")
    assert {c["address"] for c in doc["channels"].values()} == set(EVENT_TYPES)
