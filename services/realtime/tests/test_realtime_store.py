"""The stream store on the real Postgres: gapless offsets under concurrency, replay, retention."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from realtime.delivery.hub import Hub
from realtime.delivery.subscriber import Subscriber
from realtime.metrics import RealtimeMetrics
from realtime.settings import SCHEMA
from realtime.streams.retention import RetentionPolicy, trim
from realtime.streams.store import StreamStore, append
from realtime_testing import settings_env
from shared.db.engine import make_engine, make_sessionmaker
from shared.db.unit_of_work import unit_of_work

pytestmark = pytest.mark.integration


@pytest.fixture
async def engines(realtime_db: Any) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on the service role: two replicas' worth of connections."""
    pair = (
        make_engine(realtime_db.service_url, schema=SCHEMA, pool_size=5),
        make_engine(realtime_db.service_url, schema=SCHEMA, pool_size=5),
    )
    yield pair
    for engine in pair:
        await engine.dispose()


async def _append(engine: AsyncEngine, user: uuid.UUID, n: int = 0) -> int:
    async with unit_of_work(make_sessionmaker(engine)) as uow:
        stored = await append(
            uow.session,
            user_id=user,
            event_id=uuid.uuid4(),
            event_type="order.created",
            data={"n": n},
            ts=datetime.now(UTC),
        )
    assert stored is not None
    return stored.offset


async def test_offsets_are_gapless_and_unique_across_concurrent_writers(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    writes = [_append(engines[n % 2], alice, n) for n in range(40)] + [
        _append(engines[n % 2], bob, n) for n in range(10)
    ]
    offsets = await asyncio.gather(*writes)
    assert sorted(offsets[:40]) == list(range(1, 41))
    assert sorted(offsets[40:]) == list(range(1, 11))
    store = StreamStore(engines[0])
    stored = await store.read(alice, after=0)
    assert [f.offset for f in stored] == list(range(1, 41))
    assert await store.latest(alice) == 40
    assert await store.latest_many([alice, bob, uuid.uuid4()]) == {str(alice): 40, str(bob): 10}


async def test_trimming_keeps_the_newest_events_and_replay_says_when_some_are_gone(
    engines: tuple[AsyncEngine, AsyncEngine], realtime_db: Any
) -> None:
    engine = engines[0]
    store = StreamStore(engine)
    user = uuid.uuid4()
    for n in range(10):
        await _append(engine, user, n)

    result = await trim(engine, RetentionPolicy(max_age=timedelta(days=1), max_events=4))
    assert result.by_count >= 6
    assert [f.offset for f in await store.read(user, after=0)] == [7, 8, 9, 10]

    partial = await store.replay(user, since=2)
    assert ([f.offset for f in partial.frames], partial.latest, partial.recovered) == (
        [7, 8, 9, 10],
        10,
        False,
    )
    whole = await store.replay(user, since=6)
    assert ([f.offset for f in whole.frames], whole.recovered) == ([7, 8, 9, 10], True)
    assert (await store.replay(user, since=10)).recovered
    ahead = await store.replay(user, since=99)
    assert (ahead.frames, ahead.latest, ahead.recovered) == ([], 10, False)
    fresh = await store.replay(user, since=None)
    assert (fresh.frames, fresh.latest, fresh.recovered) == ([], 10, False)

    # Old enough to go by age: everything; the counter stays, so the stream goes on from 10.
    conn = await asyncpg.connect(realtime_db.admin_url)
    try:
        await conn.execute(
            "UPDATE realtime.stream_events SET stored_at = now() - interval '2 days' WHERE user_id = $1", user
        )
    finally:
        await conn.close()
    result = await trim(engine, RetentionPolicy(max_age=timedelta(days=1), max_events=4))
    assert result.by_age >= 4
    assert await store.read(user, after=0) == []
    assert await _append(engine, user) == 11


async def test_the_trim_command_applies_the_policy(make_settings: Any, engines: Any) -> None:
    user = uuid.uuid4()
    for n in range(5):
        await _append(engines[0], user, n)
    env = {**os.environ, **settings_env(make_settings()), "REALTIME_RETENTION_MAX_EVENTS": "2"}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "realtime", "trim"],
        env=env,
        capture_output=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert b"streams trimmed" in result.stderr
    assert [f.offset for f in await StreamStore(engines[0]).read(user, after=0)] == [4, 5]


async def test_the_trim_streams_job_runs_from_the_cli(make_settings: Any, engines: Any) -> None:
    user = uuid.uuid4()
    for n in range(5):
        await _append(engines[0], user, n)
    env = {**os.environ, **settings_env(make_settings()), "REALTIME_RETENTION_MAX_EVENTS": "3"}

    def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "realtime", "jobs", *args],
            env=env,
            capture_output=True,
            timeout=240,
            check=False,
        )

    ran = await asyncio.to_thread(cli, "run", "trim-streams")
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]
    assert ran.stdout.decode().startswith("trim-streams succeeded: deleted ")
    assert [f.offset for f in await StreamStore(engines[0]).read(user, after=0)] == [3, 4, 5]
    listed = await asyncio.to_thread(cli, "list")
    assert listed.returncode == 0
    [header, *rows] = listed.stdout.decode().splitlines()
    assert header.split()[:2] == ["NAME", "SCHEDULE"]
    [row] = [r for r in rows if r.startswith("trim-streams")]
    assert row.startswith("trim-streams  */5 * * * *  active")
    assert "succeeded" in row
    assert [r.split()[0] for r in rows] == ["trim-rooms", "trim-streams"] or [r.split()[0] for r in rows] == [
        "trim-streams",
        "trim-rooms",
    ]
    unknown = await asyncio.to_thread(cli, "run", "no-such-job")
    assert unknown.returncode == 2
    assert b"no job named" in unknown.stderr


class Recorder(Subscriber):
    __slots__ = ()
    transport = "test"

    def wake(self) -> None:
        return  # frames are inspected in ``pending``


async def test_a_resync_after_lost_notices_brings_each_connection_its_missed_frames(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    store = StreamStore(engines[0])
    hub = Hub(store, RealtimeMetrics.create(CollectorRegistry()))
    behind, current, idle = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    subs = {user: Recorder(user, 16) for user in (behind, current, idle)}
    for sub in subs.values():
        hub.add(sub)
    await _append(engines[0], behind)
    subs[behind].go_live(1)
    subs[current].go_live(0)
    subs[idle].go_live(0)
    # Stored while this replica's LISTEN connection was down: nobody was told.
    for _ in range(3):
        await _append(engines[1], behind)
    await _append(engines[1], current)

    await hub.resync()

    head = list(subs[behind].pending)
    assert [f.offset for f in head] == [4], "only the head is queued..."
    missed = await subs[behind].resolve(head[0], store)
    assert [f.offset for f in missed] == [2, 3, 4], "...and the connection reads what lies before it"
    assert [f.offset for f in subs[current].pending] == [1]
    assert not subs[idle].pending
