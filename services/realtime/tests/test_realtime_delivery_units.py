"""Unit tests of the delivery logic: frames, notices, the bounded queue, offsets, gap filling, the hub."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry
from websockets.client import ClientProtocol
from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from realtime.delivery.access import parse_since
from realtime.delivery.hub import Hub
from realtime.delivery.subscriber import CLOSE_SLOW, CLOSE_TOKEN_EXPIRED, Subscriber
from realtime.metrics import RealtimeMetrics
from realtime.settings import Settings
from realtime.streams.frames import (
    MAX_NOTIFY_BYTES,
    PING,
    Frame,
    decode_notice,
    encode_notice,
    event_frame,
    ready_text,
    unnumbered_frame,
)
from realtime.streams.store import StreamStore
from shared.errors import ValidationFailed
from shared.testing.waits import eventually

USER = uuid.UUID("00000000-0000-4000-8000-000000000001")
TS = datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)


def frame(offset: int, data: object = None) -> Frame:
    return event_frame(offset, uuid.uuid5(USER, str(offset)), "order.created", data or {"n": offset}, TS)


class RecordingSubscriber(Subscriber):
    __slots__ = ("wakes",)
    transport = "test"

    def __init__(self, limit: int = 4, user: uuid.UUID = USER) -> None:
        super().__init__(user, limit)
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


class FakeSource:
    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames
        self.reads: list[tuple[int, int | None]] = []

    async def read(self, user_id: uuid.UUID, *, after: int, upto: int | None = None) -> list[Frame]:
        self.reads.append((after, upto))
        return [f for f in self.frames if after < f.offset <= (upto or f.offset)]


def test_an_event_frame_is_the_contract_shape() -> None:
    event_id = uuid.uuid4()
    built = event_frame(17, event_id, "order.status_changed", {"to_status": "paid"}, TS)
    assert json.loads(built.text) == {
        "type": "event",
        "offset": 17,
        "id": str(event_id),
        "event": "order.status_changed",
        "data": {"to_status": "paid"},
        "ts": "2026-11-22T10:00:00.123000Z",
    }
    assert built.ts == TS.timestamp()
    assert json.loads(ready_text(17, recovered=False)) == {"type": "ready", "offset": 17, "recovered": False}
    assert json.loads(PING.text) == {"type": "ping"}
    assert not PING.is_event


def test_a_notice_carries_the_frame_when_it_fits_and_only_a_reference_otherwise() -> None:
    small = frame(3)
    notice = decode_notice(encode_notice(USER, small))
    assert (notice.user_id, notice.offset, notice.frame) == (str(USER), 3, small)

    big = frame(4, {"body": "é" * 5000})  # 10,000 bytes in UTF-8
    payload = encode_notice(USER, big)
    assert len(payload.encode()) <= MAX_NOTIFY_BYTES
    notice = decode_notice(payload)
    assert (notice.offset, notice.frame) == (4, None)


@pytest.mark.parametrize("size", [10, 9000])
def test_the_database_builds_the_same_notice_from_the_unnumbered_frame(size: int) -> None:
    event_id = uuid.uuid4()
    unnumbered = unnumbered_frame(event_id, "order.created", {"body": "x" * size}, TS)
    before, middle, after = unnumbered.notice_parts(USER)
    for offset in (1, 987654321):
        # What the append statement concatenates around the offset it picks.
        spliced = f"{before}{offset}{middle}" + ("" if after is None else f"{offset}{after}")
        numbered = unnumbered.numbered(offset)
        assert numbered == event_frame(offset, event_id, "order.created", {"body": "x" * size}, TS)
        assert spliced == encode_notice(USER, numbered)
    assert (after is None) == (size > MAX_NOTIFY_BYTES)


def test_a_full_queue_closes_the_connection_as_slow_and_drops_what_it_held() -> None:
    sub = RecordingSubscriber(limit=3)
    sub.go_live(0)
    assert all(sub.offer(frame(n)) for n in (1, 2, 3))
    assert not sub.offer(frame(4))
    assert (sub.close_code, sub.close_label) == (CLOSE_SLOW, "slow")
    assert not sub.pending
    assert not sub.offer(frame(5)), "a closing connection takes nothing more"


def test_frames_wait_without_waking_until_the_replay_is_done() -> None:
    sub = RecordingSubscriber()
    sub.offer(frame(1))
    assert sub.wakes == 0
    sub.go_live(0)
    assert sub.wakes == 1
    assert sub.last_offset == 0


def test_an_unsent_ping_is_not_queued_twice() -> None:
    sub = RecordingSubscriber(limit=2)
    sub.offer(PING)
    sub.offer(PING)
    assert list(sub.pending) == [PING]


def test_a_close_wins_over_waiting_frames() -> None:
    sub = RecordingSubscriber()
    sub.go_live(0)
    sub.offer(frame(1))
    sub.close(CLOSE_TOKEN_EXPIRED, "token expired")
    sub.close(CLOSE_SLOW, "later reasons do not override the first")
    assert (sub.close_code, sub.close_label, list(sub.pending)) == (CLOSE_TOKEN_EXPIRED, "token_expired", [])


async def test_resolve_drops_duplicates_and_fills_gaps_from_the_store() -> None:
    sub = RecordingSubscriber()
    source = FakeSource([frame(n) for n in range(1, 8)])
    sub.go_live(2)
    assert await sub.resolve(frame(2), source) == []
    assert await sub.resolve(frame(3), source) == [frame(3)]
    assert source.reads == []
    sub.sent(frame(3))
    assert [f.offset for f in await sub.resolve(frame(6), source)] == [4, 5, 6]
    assert source.reads == [(3, 5)]
    assert await sub.resolve(PING, source) == [PING]


async def test_the_token_expiry_closes_with_4401() -> None:
    sub = RecordingSubscriber()
    sub.arm_expiry(time.time() + 0.05)
    await eventually(lambda: sub.close_code, equals=CLOSE_TOKEN_EXPIRED)
    sub.arm_expiry(time.time() + 60)
    sub.disarm()


def test_the_hub_routes_a_notice_to_the_connections_of_its_user_only() -> None:
    metrics = RealtimeMetrics.create(CollectorRegistry())
    hub = Hub(StreamStore(engine=None), metrics)  # type: ignore[arg-type]
    mine, also_mine, other = (
        RecordingSubscriber(),
        RecordingSubscriber(),
        RecordingSubscriber(user=uuid.uuid4()),
    )
    for sub in (mine, also_mine, other):
        hub.add(sub)
        sub.go_live(0)
    hub.on_notice(encode_notice(USER, frame(1)))
    hub.on_notice(f"{uuid.uuid4()}\t1\torder.created\t0.0\t{{}}")  # nobody here: not even parsed
    assert [list(s.pending) for s in (mine, also_mine, other)] == [[frame(1)], [frame(1)], []]
    assert (len(hub), hub.users_online) == (3, 2)
    hub.remove(mine)
    hub.remove(mine)
    assert (len(hub), hub.users_online) == (2, 2)


def test_since_must_be_a_non_negative_integer() -> None:
    assert parse_since(None, source="since") is None
    assert parse_since("", source="since") is None
    assert parse_since(" 42 ", source="since") == 42
    # Unicode digits pass str.isdigit() but not int(); a long enough number fails int() too.
    for bad in ("-1", "1.5", "abc", str(2**63), "\u00b2", "1\u00b2", "\u0663", "9" * 5000):
        with pytest.raises(ValidationFailed):
            parse_since(bad, source="since")


def test_settings_keep_pings_within_the_contract() -> None:
    assert Settings(ping_interval=30, sse_ping_interval=15).ping_interval == 30
    with pytest.raises(ValueError, match="ping_interval"):
        Settings(ping_interval=31)
    with pytest.raises(ValueError, match="sse_ping_interval"):
        Settings(sse_ping_interval=16)
    assert Settings(users_url="http://users:8001/").jwks_url == "http://users:8001/.well-known/jwks.json"
    with pytest.raises(ValueError, match="REALTIME_DB_PASSWORD"):
        Settings(environment="production")


@pytest.mark.parametrize(
    "text", ['{"type":"ping"}', "é" * 100, "x" * 70_000], ids=["short", "16-bit", "64-bit"]
)
def test_a_frames_wire_form_is_its_text_as_one_websocket_text_frame(text: str) -> None:
    """What ``FrameWritingProtocol`` writes to every connection is what a client parses back."""
    client = ClientProtocol(parse_uri("ws://realtime/ws"), state=State.OPEN, max_size=None)
    client.receive_data(Frame(1, "e", text).wire)
    [received] = client.events_received()
    assert isinstance(received, WireFrame)
    assert (received.opcode, received.fin, bytes(received.data).decode()) == (Opcode.TEXT, True, text)
