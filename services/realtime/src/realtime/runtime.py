"""What the endpoints reach through ``app.state.resources.runtime``: built by the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from realtime.delivery.hub import Hub
from realtime.delivery.leases import ConnectionLeases
from realtime.metrics import TransportMetrics
from realtime.rooms.hub import RoomHub
from realtime.rooms.limits import Limits, SayBuckets
from realtime.settings import Settings
from realtime.streams.store import StreamStore
from shared.auth.verifier import TokenVerifier


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    verifier: TokenVerifier
    store: StreamStore
    hub: Hub
    leases: ConnectionLeases
    ws_metrics: TransportMetrics
    sse_metrics: TransportMetrics
    rooms: RoomHub
    room_limits: Limits
    say_buckets: SayBuckets


def runtime_of(connection: HTTPConnection) -> Runtime:
    runtime: Runtime = connection.app.state.resources.runtime
    return runtime
