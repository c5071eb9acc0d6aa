"""The outbox relay: publishes the rows ``shared.messaging.outbox`` wrote, in order, at least once.

The relay publishes rows in order of creation with publisher confirms and ``mandatory``, marks a row
only after the broker confirmed it, wakes on ``LISTEN/NOTIFY`` with a polling fallback, and runs safely
on several replicas (``FOR UPDATE SKIP LOCKED``). Consumers deduplicate by event id.

At most ``leaders`` (2) of the replicas' relays lead: each holds one of the outbox's session advisory
locks, LISTENs, and is woken by every commit. The others stand by: they do not listen, and every
``poll_interval`` they try to take a lock, which Postgres frees the moment its holder's session ends (a
stop, a crash, a SIGKILL). Why: when every replica's relay listened, each commit woke them all, and each
ran its claim (BEGIN, SELECT ... FOR UPDATE SKIP LOCKED, ROLLBACK) to find the rows mostly taken. On the
orders bench's four orders processes that was ~1 ms of CPU per order in each, half of orders' CPU; with
two leading, orders' CPU per order fell from 5.9-6.8 ms to 4.3-4.8 ms and orders/s rose from ~150 to
~190 (``python -m bench.orders_bench``). Two rather than one: a commit still finds a relay idle while
the other settles a batch (with one, the relay lag's p99 passed 100 ms on that bench), and one leader's
pause does not hold every event up. The locks are a hint, never what keeps a row from being published
twice (``SKIP LOCKED`` still does that): a standby also publishes whatever has waited longer than
``takeover_after`` (read off the gauges it refreshes each second), so leaders that hold their locks
without relaying (hung, or their host gone while Postgres still keeps their sessions) delay events by
seconds, not until their sessions time out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiormq
from sqlalchemy import ARRAY, BigInteger, Table, any_, bindparam, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db.errors import DATABASE_ERRORS
from shared.messaging.broker import BROKER_ERRORS, BrokerLink, PublishRejected
from shared.messaging.events import EXCHANGE
from shared.messaging.listen import ChannelListener
from shared.messaging.outbox import notify_channel
from shared.messaging.outbox_metrics import OutboxMetrics
from shared.observability.tracing import publish_span
from shared.service.backoff import Backoff, pause

log = logging.getLogger(__name__)

# The first key of the relays' advisory locks (two-int form): "outb". The second is from the table name.
LOCK_SPACE = 0x6F757462


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        table: Table,
        link: BrokerLink,
        listen_dsn: str,
        metrics: OutboxMetrics,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        max_backoff: float = 30.0,
        takeover_after: float = 5.0,
        leaders: int = 2,
    ) -> None:
        self.engine = engine
        self.table = table
        self.link = link
        self.listen_dsn = listen_dsn
        self.metrics = metrics
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.takeover_after = takeover_after
        self.leaders = leaders
        self.channel = notify_channel(table.schema or "public")
        # Built once with bound parameters (the batch's seqs as one array): building the IN list of
        # a full batch cost more CPU than the UPDATE's round trip.
        t = table
        self._claim = (
            select(t.c.seq, t.c.event_id, t.c.event_type, t.c.payload, t.c.headers, t.c.created_at)
            .where(t.c.published_at.is_(None))
            .order_by(t.c.seq)
            .limit(bindparam("batch_size"))
            .with_for_update(skip_locked=True)
        )
        # clock_timestamp(), not now(): the claiming transaction began before the publish, and
        # published_at is when the broker had confirmed (the lag an operator reads off the rows).
        self._mark_published = (
            update(t)
            .where(t.c.seq == any_(bindparam("seqs", type_=ARRAY(BigInteger))))
            .values(published_at=func.clock_timestamp())
        )
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener = ChannelListener(
            listen_dsn, self.channel, lambda _: self._wake.set(), locks=relay_locks(table, leaders)
        )
        self._last_gauge = 0.0
        self._oldest_pending_age = 0.0
        # Both series exist from the start, so rate() sees the first failure.
        for reason in ("broker", "unroutable"):
            metrics.failed.labels(reason)

    def stop(self) -> None:
        """Ask the relay to finish the batch it holds, publish what is still pending (once), and return."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Relay until stopped: each batch is settled (marked, committed) while the next is claimed.

        Only the broker's confirms of a batch are waited for before the next is claimed, so events
        committed meanwhile do not also wait for its UPDATE and COMMIT; the next batch's rows are
        the ones the settling transaction still locks past (``SKIP LOCKED``), and they are published
        after the previous batch was confirmed, so the broker still gets them in order.
        """
        backoff = Backoff(maximum=self.max_backoff)
        settling: asyncio.Task[None] | None = None
        housekeeping = asyncio.create_task(self._housekeeping_loop())
        try:
            while not self._stopping.is_set():
                try:
                    await self._listener.ensure()
                    leading = self._listener.listening
                    self.metrics.leading.set(1 if leading else 0)
                    if not leading and self._oldest_pending_age < self.takeover_after:
                        await self._sleep(self.poll_interval)  # standing by: only stop() wakes it
                        continue
                    self._wake.clear()
                    batch = await self._publish_batch()
                    previous, settling = settling, None
                    if batch is not None:
                        settling = asyncio.create_task(self._settle(batch))
                    if previous is not None:
                        await previous
                    if batch is not None and batch.stalled is not None:
                        # The broker is gone: settle (the failure is recorded), then back off.
                        current, settling = settling, None
                        if current is not None:
                            await current
                        batch.raise_if_stalled()
                    backoff.reset()
                    if batch is not None and len(batch.rows) >= self.batch_size:
                        continue
                    await self._sleep(self.poll_interval)
                except BROKER_ERRORS + DATABASE_ERRORS + (PublishStalled,) as exc:
                    delay = next(backoff)
                    log.warning("outbox relay backing off", extra={"error": str(exc), "backoff_s": delay})
                    await self._sleep(delay)
                except Exception:
                    # A relay that dies leaves every later event unpublished: log loudly and keep going.
                    delay = next(backoff)
                    log.exception("outbox relay failed unexpectedly; retrying", extra={"backoff_s": delay})
                    await self._sleep(delay)
            if settling is not None:
                with contextlib.suppress(*DATABASE_ERRORS):
                    await settling
        finally:
            housekeeping.cancel()
            await asyncio.gather(housekeeping, return_exceptions=True)
        await self._final_pass()
        await self._listener.close()

    async def _final_pass(self, max_batches: int = 20) -> None:
        """On stop, publish what is pending now instead of leaving it to the next start.

        The server has drained its requests by the time it stops the relay, so this takes what they
        committed after the last batch. Bounded, and given up on at the first failure: what is left
        stays in the outbox for the next relay, as always.
        """
        try:
            for _ in range(max_batches):
                if await self.relay_once() < self.batch_size:
                    return
        except BROKER_ERRORS + DATABASE_ERRORS + (PublishStalled,) as exc:
            log.warning("outbox relay stopped with rows pending", extra={"error": str(exc)})
        except Exception:
            log.exception("outbox relay's final pass failed")

    async def relay_once(self) -> int:
        """Publish one batch of pending rows in order; return how many were confirmed."""
        batch = await self._publish_batch()
        if batch is None:
            return 0
        await self._settle(batch)
        batch.raise_if_stalled()
        return len(batch.done)

    async def _publish_batch(self) -> _Batch | None:
        """Claim the oldest pending rows (locked until the batch is settled) and publish them;
        None when there are none. Returns once every publish was confirmed or failed."""
        conn = await self.engine.connect()
        try:
            await conn.begin()
            rows = (await conn.execute(self._claim, {"batch_size": self.batch_size})).all()
            if not rows:
                await conn.close()
                return None
            # Published together on one channel: aiormq queues frames in call order under its
            # channel lock, so the broker still receives them in order, and the confirms arrive
            # pipelined instead of one round trip per row (a busy event loop made sequential
            # publishing fall behind). One channel for the whole batch, never reconnected within
            # it: a row after a failed one cannot go out ahead of it.
            results: list[BaseException | None]
            try:
                channel = await self.link.exchange()
            except BROKER_ERRORS as exc:
                results = [exc] * len(rows)  # the broker is unreachable: the batch fails whole
            else:
                results = await asyncio.gather(
                    *(self._publish(row, channel) for row in rows), return_exceptions=True
                )
        except BaseException:
            await conn.close()  # rolls back: the rows are free for the next attempt
            raise
        batch = _Batch(conn, rows)
        for row, result in zip(rows, results, strict=True):
            if result is None:
                batch.done.append(row.seq)
                self.metrics.published.labels(row.event_type).inc()
                self.metrics.lag.observe(max(0.0, time.time() - row.created_at.timestamp()))
            elif isinstance(result, PublishRejected):
                # Unroutable (no queue bound) or nacked: recorded loudly, never silently dropped,
                # and it does not hold back the rows behind it.
                self.metrics.failed.labels("unroutable").inc()
                log.error("event rejected by the broker", extra={"event_id": str(row.event_id)})
                batch.failures.append((row.seq, str(result), True))
            elif isinstance(result, BROKER_ERRORS):
                if batch.stalled is None:
                    batch.stalled = result
                    self.metrics.failed.labels("broker").inc()
                    batch.failures.append((row.seq, str(result) or type(result).__name__, False))
            else:
                await conn.close()
                raise result
        return batch

    async def _settle(self, batch: _Batch) -> None:
        """Record the batch's outcome and commit, which releases its rows; rolled back on error."""
        try:
            for seq, error, mark_done in batch.failures:
                await self._record_failure(batch.conn, seq, error, mark_done=mark_done)
            await self._mark(batch.conn, batch.done)
            await batch.conn.commit()
        finally:
            await batch.conn.close()

    async def _publish(self, row: Row[Any, Any, Any, Any, Any, Any], channel: aiormq.Channel) -> None:
        # A producer span continuing the trace the row was written in (shared.observability.tracing).
        message_id = str(row.event_id)
        with publish_span(
            exchange=EXCHANGE, event_type=row.event_type, message_id=message_id, headers=row.headers
        ) as headers:
            await self.link.publish(
                row.payload.encode(),
                routing_key=row.event_type,
                message_id=message_id,
                event_type=row.event_type,
                headers=headers,
                channel=channel,
            )

    async def _mark(self, conn: AsyncConnection, seqs: list[int]) -> None:
        if seqs:
            await conn.execute(self._mark_published, {"seqs": seqs})

    async def _record_failure(
        self, conn: AsyncConnection, seq: int, error: str, mark_done: bool = False
    ) -> None:
        values: dict[str, Any] = {"attempts": self.table.c.attempts + 1, "last_error": error[:2000]}
        if mark_done:
            values["published_at"] = func.clock_timestamp()
        await conn.execute(update(self.table).where(self.table.c.seq == seq).values(**values))

    async def _housekeeping_loop(self) -> None:
        """The gauges every second, beside the relay's own loop so that their query never delays a
        batch. Published rows are purged by each service's ``purge-outbox`` job (shared.jobs.purge)."""
        while True:
            try:
                await self._housekeeping()
            except DATABASE_ERRORS as exc:
                log.debug("outbox housekeeping failed", extra={"error": str(exc)})
            await asyncio.sleep(1.0)

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_gauge >= 1.0:
            self._last_gauge = now
            await self.refresh_gauges()

    async def refresh_gauges(self) -> None:
        t = self.table
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        func.count(),
                        func.coalesce(func.extract("epoch", func.now() - func.min(t.c.created_at)), 0),
                    ).where(t.c.published_at.is_(None))
                )
            ).one()
        self._oldest_pending_age = float(row[1])
        self.metrics.pending.set(row[0])
        self.metrics.oldest_age.set(self._oldest_pending_age)

    async def _sleep(self, seconds: float) -> None:
        await pause(seconds, self._wake)
        self._wake.clear()


def relay_locks(table: Table, leaders: int) -> list[tuple[int, int]]:
    """The advisory locks whose holders lead among the relays of ``table`` (``pg_try_advisory_lock``)."""
    base = zlib.crc32(f"{table.schema or 'public'}.{table.name}".encode())
    return [
        (LOCK_SPACE, int.from_bytes(((base + n) % 2**32).to_bytes(4, "big"), "big", signed=True))
        for n in range(leaders)
    ]


@dataclass
class _Batch:
    """Rows claimed in ``conn``'s open transaction, and what became of their publishes."""

    conn: AsyncConnection
    rows: Sequence[Row[Any, Any, Any, Any, Any, Any]]
    done: list[int] = field(default_factory=list)
    # (seq, error, mark_done): rejected rows are marked done, a broker failure is retried later.
    failures: list[tuple[int, str, bool]] = field(default_factory=list)
    stalled: BaseException | None = None

    def raise_if_stalled(self) -> None:
        if self.stalled is not None:
            raise PublishStalled(str(self.stalled) or type(self.stalled).__name__) from self.stalled


class PublishStalled(Exception):
    """The broker could not be reached mid-batch; the relay backs off and tries again."""
