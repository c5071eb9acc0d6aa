"""Room fan-out when the broker goes away under it, and the metrics that show trouble before it comes."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from realtime.metrics import RealtimeMetrics
from realtime.rooms.fanout import BrokerFanout
from shared.testing.waits import eventually

pytestmark = pytest.mark.integration


async def test_notices_published_while_the_broker_is_away_are_dropped_not_raised(
    test_amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Raised, the error closed the sender's WebSocket with 1011 (a say during a broker outage); the
    # message is stored by then, and members recover it from history when they join again.
    fanout = BrokerFanout(test_amqp_url)
    runner = asyncio.create_task(fanout.run())
    try:
        await eventually(lambda: fanout.consuming, message="the fan-out never started consuming")
        connection = fanout._connection
        assert connection is not None
        await connection.close()  # to the publisher, what an outage looks like
        await fanout.publish(["a notice"])
        assert any(r.getMessage() == "room fan-out failed; notices dropped" for r in caplog.records)
    finally:
        fanout.stop()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def test_the_4008_counter_is_exported_at_zero_before_the_first_one() -> None:
    registry = CollectorRegistry()
    RealtimeMetrics.create(registry)
    text = generate_latest(registry).decode()
    for transport in ("ws", "sse"):
        assert f'realtime_slow_disconnects_total{{transport="{transport}"}} 0.0' in text
