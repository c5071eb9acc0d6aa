"""Idempotency hashing: equal requests hash equal however they were written; any change shows."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from orders.idempotency.service import canonical_json, request_fingerprint
from orders.order.schemas import CreateOrderRequest


def request(raw: str | bytes) -> CreateOrderRequest:
    return CreateOrderRequest.model_validate_json(raw)


BODY: dict[str, Any] = {
    "currency": "USD",
    "items": [{"sku": "A", "name": "Apple", "quantity": 2, "unit_price_cents": 100}],
}


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == b'{"a":[1,{"c":3,"d":2}],"b":1}'


def test_fingerprint_is_the_sha256_of_the_canonical_body() -> None:
    expected = hashlib.sha256(canonical_json(BODY)).hexdigest()
    assert request_fingerprint(request(orjson.dumps(BODY))) == expected
    assert len(expected) == 64


def test_key_order_and_spacing_do_not_matter() -> None:
    compact = orjson.dumps(BODY)
    shuffled = (
        '{ "items" : [ {"unit_price_cents": 100, "quantity": 2, "name": "Apple", "sku": "A"} ],'
        '  "currency": "USD" }'
    )
    assert request_fingerprint(request(compact)) == request_fingerprint(request(shuffled))


def test_any_change_changes_the_fingerprint() -> None:
    base = request_fingerprint(request(orjson.dumps(BODY)))
    changes = [
        {**BODY, "currency": "EUR"},
        {**BODY, "items": [{**BODY["items"][0], "quantity": 3}]},
        {**BODY, "items": [{**BODY["items"][0], "name": "apple"}]},
        {**BODY, "items": BODY["items"] * 2},
    ]
    for changed in changes:
        assert request_fingerprint(request(orjson.dumps(changed))) != base
