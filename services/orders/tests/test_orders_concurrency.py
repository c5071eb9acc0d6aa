"""The version check on the database, without the in-process gate: what protects two replicas."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from orders.order import service
from orders.order.gate import Admission
from orders.order.models import ConcurrentChange
from shared.auth.verifier import Principal
from shared.db.engine import make_engine, make_sessionmaker

pytestmark = pytest.mark.integration


async def test_a_transition_based_on_a_stale_read_is_refused(api: Any, clean_db: Any) -> None:
    user_id, alice = api.customer()
    order_id = uuid.UUID((await api.place(alice))["id"])
    caller = Principal(user_id=user_id, roles=("user",), token_id="t", expires_at=0)
    engine = make_engine(clean_db.service_url, schema="orders")
    try:
        sessions = make_sessionmaker(engine)
        async with sessions() as first, sessions() as second:
            # Two replicas read the pending order at the same moment (held: the identity map is weak).
            seen = [
                await service.get_order(first, caller, order_id),
                await service.get_order(second, caller, order_id),
            ]
            assert {o.version for o in seen} == {1}
            await service.pay(first, caller, order_id, Admission(granted=True))
            await first.commit()
            # Cancel would be legal after pay, but this one decided on a status that is gone.
            with pytest.raises(ConcurrentChange):
                await service.cancel(second, caller, order_id, Admission(granted=True))
            await second.rollback()
    finally:
        await engine.dispose()
    final = (await api.client.get(f"/api/v1/orders/{order_id}", headers=alice)).json()
    assert final["status"] == "paid"


async def test_concurrent_transitions_on_two_replicas_never_both_succeed(run_app: Any, users: Any) -> None:
    import asyncio

    user_id = users.add_user()
    headers = users.bearer(user_id)
    body = {"currency": "USD", "items": [{"sku": "A", "name": "a", "quantity": 1, "unit_price_cents": 1}]}
    async with run_app() as (_, one), run_app() as (_, two):
        for _ in range(10):
            order = (await one.post("/api/v1/orders", json=body, headers=headers)).json()
            pay, cancel = await asyncio.gather(
                one.post(f"/api/v1/orders/{order['id']}/pay", headers=headers),
                two.post(f"/api/v1/orders/{order['id']}/cancel", headers=headers),
            )
            codes = sorted([pay.status_code, cancel.status_code])
            # Both may succeed only one after the other (pay, then cancel of a paid order).
            if codes == [200, 200]:
                final = (await one.get(f"/api/v1/orders/{order['id']}", headers=headers)).json()
                assert final["status"] == "cancelled"
            else:
                assert codes == [200, 409]
