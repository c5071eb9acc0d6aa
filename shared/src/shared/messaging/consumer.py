"""Idempotent event consumers: deliveries handled in order, in batches, each batch one transaction.

A message is acked only after the handler's transaction committed. That transaction also writes the
inbox row (``shared.messaging.inbox``), so a redelivered event is acked and skipped. A failing handler
sends its delivery to a delay queue or the DLQ (``shared.messaging.redelivery``); the queues themselves
are ``shared.messaging.topology``.

Unless the consumer's own database cannot be reached: that is no fault of the event, and the delay
queues' four attempts (1 s to 2 min apart) would send every event of a longer outage to the DLQ, for an
operator to redrive. Then the event waits, unacked and in order, with its attempts untouched, while
the consumer asks the database with backoff; it is handled as soon as the database answers (or given
back to the broker if the consumer stops first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from sqlalchemy import Table, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.errors import DATABASE_ERRORS
from shared.db.unit_of_work import UnitOfWork, unit_of_work
from shared.messaging.broker import ACK_SETTLE_GRACE, BROKER_ERRORS
from shared.messaging.consumer_metrics import ConsumerMetrics
from shared.messaging.events import Event, UnknownEvent, parse_event
from shared.messaging.redelivery import Redelivery
from shared.messaging.topology import Topology, declare_topology
from shared.observability.request_id import request_id_var
from shared.observability.tracing import process_span
from shared.service.backoff import Backoff, pause

log = logging.getLogger(__name__)

# What a probe of a database that cannot be reached raises, its own bound included.
PROBE_ERRORS: tuple[type[BaseException], ...] = (*DATABASE_ERRORS, TimeoutError)
# The probe's bound (asyncpg's own connect timeout is 5 s: shared.db.engine).
DATABASE_PROBE_TIMEOUT = 10.0
# The longest wait between two probes while the database is gone.
DATABASE_WAIT_MAX = 10.0

Handler = Callable[[Event, UnitOfWork], Awaitable[None]]
# Runs before the event's transaction opens: for slow work a handler needs done first (an HTTP call),
# so no transaction waits on it. It may run for a duplicate too, and raising retries the event.
Prepare = Callable[[Event], Awaitable[None]]


class EventConsumer:
    """Consumes ``topology.queue`` until stopped, reconnecting with backoff.

    Deliveries are handled in the order the broker gave them: ``_on_message`` only queues, and one
    worker takes the queue in order, a batch per transaction (one by one, still in order, when a
    batch fails), so two events of one user never race each other within a replica.
    """

    def __init__(
        self,
        *,
        amqp_url: str,
        topology: Topology,
        handlers: Mapping[str, Handler],
        sessionmaker: async_sessionmaker[AsyncSession],
        inbox: Table,
        metrics: ConsumerMetrics,
        prefetch: int = 256,
        batch_size: int = 100,
        prepare: Prepare | None = None,
    ) -> None:
        self.amqp_url = amqp_url
        self.topology = topology
        self.handlers = dict(handlers)
        self.prepare = prepare
        self.sessionmaker = sessionmaker
        self.inbox = inbox
        self.metrics = metrics
        self.redelivery = Redelivery(topology, metrics)
        self._declare_series()
        self.prefetch = prefetch
        self.batch_size = batch_size
        self.consuming = False
        self._waiting: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_batch_at = float("-inf")  # when the worker last settled (acked) a batch

    async def check(self) -> None:
        """Readiness: raises unless the consumer is attached to its queue."""
        if not self.consuming:
            raise ConnectionError(f"consumer {self.topology.service} is not consuming")

    def _declare_series(self) -> None:
        """Every series exists from the start at 0: rate() and alerts see the first retry or dead letter."""
        service, metrics = self.topology.service, self.metrics
        for event_type in self.topology.event_types:
            for outcome in ("handled", "duplicate", "failed"):
                metrics.consumed.labels(service, event_type, outcome)
        metrics.retried.labels(service)
        for reason in ("unparseable", "unhandled", "exhausted"):
            metrics.dead_lettered.labels(service, reason)
        metrics.up.labels(service)
        metrics.dlq_depth.labels(service)
        metrics.waiting_for_database.labels(service)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        watcher = asyncio.create_task(self._watch_dead_letters(), name=f"{self.topology.service}-dlq-gauge")
        backoff = Backoff(maximum=10.0)
        while not self._stopping.is_set():
            try:
                await self._consume_until_closed()
                backoff.reset()
            except BROKER_ERRORS as exc:
                log.warning("consumer link down", extra={"error": str(exc) or type(exc).__name__})
            except Exception:
                # Never let the consumer end for good: log loudly and reconnect after the backoff.
                log.exception("consumer failed unexpectedly; reconnecting")
            finally:
                self._set_consuming(False)
            if not self._stopping.is_set():
                await pause(next(backoff), self._stopping)
        await self._drain()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

    async def _watch_dead_letters(self, interval: float = 15.0) -> None:
        """Keep ``event_dlq_messages`` current (the DLQ-not-empty alert), on a short-lived channel."""
        gauge = self.metrics.dlq_depth.labels(self.topology.service)
        while not self._stopping.is_set():
            connection, wait = self._connection, interval
            if connection is None or connection.is_closed:
                wait = 1.0
            else:
                try:
                    channel = await connection.channel()
                    try:
                        queue = await channel.declare_queue(self.topology.dlq, passive=True)
                        gauge.set(queue.declaration_result.message_count or 0)
                    finally:
                        await channel.close()
                except BROKER_ERRORS as exc:
                    log.debug("dead-letter queue depth unknown", extra={"error": str(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)

    async def _consume_until_closed(self) -> None:
        connection = await aio_pika.connect(
            self.amqp_url,
            timeout=5,
            client_properties={"connection_name": f"{self.topology.service}-consumer"},
        )
        self._connection = connection
        lost = asyncio.Event()
        worker: asyncio.Task[None] | None = None
        # A dropped link resolves no future on a plain connection; its close callbacks do run.
        connection.close_callbacks.add(lambda *_: lost.set())
        try:
            channel = await connection.channel(publisher_confirms=True)
            self._channel = channel
            await channel.set_qos(prefetch_count=self.prefetch)
            queue = await declare_topology(channel, self.topology)
            worker = asyncio.create_task(self._work(), name=f"{self.topology.service}-consumer-worker")
            await queue.consume(self._on_message)
            self._set_consuming(True)
            log.info("consuming", extra={"queue": self.topology.queue})
            stop = asyncio.ensure_future(self._stopping.wait())
            closed = asyncio.ensure_future(lost.wait())
            try:
                await asyncio.wait({stop, closed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                closed.cancel()
            if self._stopping.is_set() and not lost.is_set():
                # Stop taking messages (_on_message leaves new deliveries alone: the broker requeues
                # them with the channel), finish the ones taken, then close. No basic.cancel first:
                # with RabbitMQ 3.10's quorum queues, some deliveries acked after the cancel came back
                # all the same (handled and acked, then redelivered: tests/system/test_system_ops.py).
                await self._drain()
                # Then, if it acked anything lately, a pause before the close, or the last acks may
                # be lost (ACK_SETTLE_GRACE).
                pause = self._last_batch_at + ACK_SETTLE_GRACE - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
        finally:
            if worker is not None:
                worker.cancel()
            # Deliveries still waiting belong to the closed channel; the broker redelivers them.
            while not self._waiting.empty():
                self._waiting.get_nowait()
            self._idle.set()
            self._channel = None
            self._connection = None
            if not connection.is_closed:
                with contextlib.suppress(*BROKER_ERRORS):
                    await asyncio.wait_for(connection.close(), 5)

    async def _drain(self, timeout: float = 20.0) -> None:
        """Finish the deliveries taken so far (the worker empties the waiting queue), up to ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Checked again each time this coroutine runs: a delivery can clear the event between its being
        # set and this resuming, and the caller cancels the worker right after this returns; a worker
        # cancelled mid-batch would leave events handled (committed) but not acked, so redelivered.
        while not self._idle.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), remaining)

    def _set_consuming(self, value: bool) -> None:
        self.consuming = value
        self.metrics.up.labels(self.topology.service).set(1 if value else 0)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # aio-pika runs this as a task per delivery: it only queues, and one worker handles the
        # deliveries in order, several per transaction (one commit instead of one per event).
        if self._stopping.is_set():
            return  # not taken: unacked, so the broker redelivers it once the channel closes
        self._idle.clear()
        self._waiting.put_nowait(message)

    async def _work(self) -> None:
        while True:
            batch = [await self._waiting.get()]
            while len(batch) < self.batch_size and not self._waiting.empty():
                batch.append(self._waiting.get_nowait())
            try:
                await self.handle_batch(batch)
            except BROKER_ERRORS as exc:
                # The channel went away mid-batch; unacked deliveries come back after the reconnect.
                log.warning("consumer batch interrupted", extra={"error": str(exc) or type(exc).__name__})
            except Exception:
                log.exception("consumer batch failed unexpectedly")
            finally:
                self._last_batch_at = time.monotonic()
                if self._waiting.empty():
                    self._idle.set()

    def _parse(self, message: AbstractIncomingMessage) -> tuple[Event, Handler] | str:
        """The event and its handler, or why the message goes to the DLQ at once."""
        try:
            event = parse_event(message.body)
        except UnknownEvent as exc:
            return f"unparseable: {exc}"
        handler = self.handlers.get(event.type)
        if handler is None:
            return f"no handler for {event.type}"
        return event, handler

    async def handle_batch(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        """Handle deliveries in one transaction; if any handler fails, each one on its own."""
        parsed: list[tuple[AbstractIncomingMessage, Event, Handler]] = []
        for message in messages:
            result = self._parse(message)
            if isinstance(result, str):
                reason = "unparseable" if result.startswith("unparseable") else "unhandled"
                await self.redelivery.dead_letter(self._channel, message, result, reason=reason)
            else:
                parsed.append((message, *result))
        if len(parsed) > 1:
            start = time.perf_counter()
            try:
                outcomes = await self._handle_together(parsed)
            except Exception:
                log.info("a batch failed; handling its events one by one", exc_info=True)
            else:
                share = (time.perf_counter() - start) / len(parsed)
                for (message, event, _), outcome in zip(parsed, outcomes, strict=True):
                    await message.ack()
                    self.metrics.consumed.labels(self.topology.service, event.type, outcome).inc()
                    self.metrics.handling.labels(self.topology.service, event.type).observe(share)
                return
        for message, _, _ in parsed:
            await self.handle(message)

    async def _handle_together(
        self, parsed: Sequence[tuple[AbstractIncomingMessage, Event, Handler]]
    ) -> list[str]:
        if self.prepare is not None:
            for _, event, _ in parsed:
                token = request_id_var.set(event.correlation_id)
                try:
                    await self.prepare(event)
                finally:
                    request_id_var.reset(token)
        async with unit_of_work(self.sessionmaker) as uow:
            rows = [
                {"event_id": event.id, "consumer": self.topology.service, "event_type": event.type}
                for _, event, _ in parsed
            ]
            new = set(
                (
                    await uow.session.execute(
                        insert(self.inbox)
                        .values(rows)
                        .on_conflict_do_nothing()
                        .returning(self.inbox.c.event_id)
                    )
                ).scalars()
            )
            outcomes = []
            for message, event, handler in parsed:
                if event.id not in new:
                    outcomes.append("duplicate")
                    continue
                new.discard(event.id)  # the same event twice in one batch: the second is a duplicate
                token = request_id_var.set(event.correlation_id)
                try:
                    with self._span(message, event):
                        await handler(event, uow)
                finally:
                    request_id_var.reset(token)
                outcomes.append("handled")
        return outcomes

    async def handle(self, message: AbstractIncomingMessage) -> None:
        """Handle one delivery in its own transaction; a failure goes to retry or the DLQ, unless the
        database cannot be reached: then the delivery waits for it (the module's docstring)."""
        service = self.topology.service
        result = self._parse(message)
        if isinstance(result, str):
            reason = "unparseable" if result.startswith("unparseable") else "unhandled"
            await self.redelivery.dead_letter(self._channel, message, result, reason=reason)
            return
        event, handler = result
        while True:
            outcome = await self._attempt(message, event, handler)
            if isinstance(outcome, str):
                break
            if await self._database_reachable():
                await self.redelivery.retry_or_dead_letter(self._channel, message, outcome)
                self.metrics.consumed.labels(service, event.type, "failed").inc()
                return
            if not await self._wait_for_database():
                return  # stopping: left unacked, the broker gives it back with the channel
        await message.ack()
        self.metrics.consumed.labels(service, event.type, outcome).inc()

    async def _attempt(
        self, message: AbstractIncomingMessage, event: Event, handler: Handler
    ) -> str | Exception:
        """Handle the event once: its outcome (handled, duplicate), or what the handler raised."""
        token = request_id_var.set(event.correlation_id)
        start = time.perf_counter()
        try:
            with self._span(message, event):
                return await self._handle_once(event, handler)
        except Exception as exc:
            log.warning(
                "event handler failed",
                exc_info=True,
                extra={"event_id": str(event.id), "event_type": event.type},
            )
            return exc
        finally:
            request_id_var.reset(token)
            self.metrics.handling.labels(self.topology.service, event.type).observe(
                time.perf_counter() - start
            )

    async def _database_reachable(self) -> bool:
        """Whether the consumer's database answers now: after a failure, tells the event's fault (it
        is retried, then dead-lettered) from the database's (the event waits for it)."""
        try:
            async with asyncio.timeout(DATABASE_PROBE_TIMEOUT), self.sessionmaker() as session:
                await session.execute(text("SELECT 1"))
        except PROBE_ERRORS as exc:
            log.debug("database probe failed", extra={"error": str(exc) or type(exc).__name__})
            return False
        except Exception:
            # Not a database out of reach: the event takes the ordinary way (retries, then the DLQ)
            # rather than waiting for ever on what may be a bug.
            log.exception("database probe failed unexpectedly")
        return True

    async def _wait_for_database(self) -> bool:
        """Until the database answers (True) or the consumer stops (False), asking with backoff."""
        service = self.topology.service
        log.warning(
            "the database cannot be reached; events wait for it, unacked", extra={"consumer": service}
        )
        waiting = self.metrics.waiting_for_database.labels(service)
        waiting.set(1)
        backoff = Backoff(maximum=DATABASE_WAIT_MAX)
        try:
            while not self._stopping.is_set():
                await pause(next(backoff), self._stopping)
                if not self._stopping.is_set() and await self._database_reachable():
                    log.info("the database answers again; handling resumes", extra={"consumer": service})
                    return True
            return False
        finally:
            waiting.set(0)

    def _span(self, message: AbstractIncomingMessage, event: Event) -> AbstractContextManager[object]:
        """A consumer span continuing the trace in the message's headers (shared.observability.tracing)."""
        return process_span(
            consumer=self.topology.service,
            queue=self.topology.queue,
            event_type=event.type,
            message_id=str(event.id),
            headers=message.headers,
        )

    async def _handle_once(self, event: Event, handler: Handler) -> str:
        if self.prepare is not None:
            await self.prepare(event)
        async with unit_of_work(self.sessionmaker) as uow:
            inserted = await uow.session.execute(
                insert(self.inbox)
                .values(event_id=event.id, consumer=self.topology.service, event_type=event.type)
                .on_conflict_do_nothing()
                .returning(self.inbox.c.event_id)
            )
            if inserted.first() is None:
                return "duplicate"
            await handler(event, uow)
        return "handled"
