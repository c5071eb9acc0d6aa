"""The background e-mail sender: claims due rows, sends them, retries with backoff, gives up after N.

It wakes on ``LISTEN/NOTIFY`` when an e-mail is queued and polls as well, because retries become due
by the clock, not by a notification. Several replicas may run it side by side (see the repository).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiosmtplib
import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from notification.email import repository
from notification.email.outbound import WAKE_CHANNEL
from notification.email.repository import ClaimedEmail
from notification.email.smtp import PermanentFailure, SmtpTransport
from shared.messaging.listen import ChannelListener
from shared.service.backoff import Backoff, pause

log = logging.getLogger(__name__)

# What a failed send raises when the server is down, slow or refusing for now.
TRANSIENT_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)
DATABASE_ERRORS = (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@dataclass(frozen=True)
class EmailMetrics:
    sent: Counter
    failed: Counter
    attempt_failures: Counter
    pending: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> EmailMetrics:
        return cls(
            sent=Counter(
                "emails_sent", "E-mails accepted by the SMTP server.", ["template"], registry=registry
            ),
            failed=Counter(
                "emails_failed",
                "E-mails given up on after their last attempt.",
                ["template"],
                registry=registry,
            ),
            attempt_failures=Counter(
                "email_attempt_failures",
                "Send attempts that failed, by kind (transient: retried later; permanent: refused).",
                ["kind"],
                registry=registry,
            ),
            pending=Gauge(
                "emails_pending", "E-mails waiting to be sent (retries included).", registry=registry
            ),
        )


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base: float
    cap: float

    def retry_in(self, attempt: int) -> float | None:
        """Seconds before attempt ``attempt + 1``; None when ``attempt`` was the last one."""
        if attempt >= self.max_attempts:
            return None
        return float(min(self.cap, self.base * 2 ** (attempt - 1)))


class EmailSender:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        transport: SmtpTransport,
        policy: RetryPolicy,
        listen_dsn: str,
        metrics: EmailMetrics,
        batch_size: int = 20,
        poll_interval: float = 1.0,
        lease_seconds: float = 60.0,
    ) -> None:
        self.engine = engine
        self.transport = transport
        self.policy = policy
        self.listen_dsn = listen_dsn
        self.metrics = metrics
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener = ChannelListener(listen_dsn, WAKE_CHANNEL, lambda _: self._wake.set())
        self._last_gauge = 0.0

    def stop(self) -> None:
        """Finish the batch in hand, then return from ``run``."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        backoff = Backoff(maximum=30.0)
        while not self._stopping.is_set():
            try:
                await self._listener.ensure()
                handled = await self.send_due()
                backoff.reset()
                await self._refresh_gauge()
                if handled >= self.batch_size:
                    continue
                await self._sleep(self.poll_interval)
            except DATABASE_ERRORS as exc:
                delay = next(backoff)
                log.warning("e-mail sender backing off", extra={"error": str(exc), "backoff_s": delay})
                await self._listener.close()
                await self._sleep(delay)
        await self._listener.close()

    async def send_due(self) -> int:
        """Send one batch of due e-mails concurrently; return how many were attempted."""
        batch = await repository.claim_due(
            self.engine, limit=self.batch_size, lease_seconds=self.lease_seconds
        )
        if batch:
            await asyncio.gather(*(self._deliver(email) for email in batch))
        return len(batch)

    async def _deliver(self, email: ClaimedEmail) -> None:
        context = {"email_id": str(email.id), "attempt": email.attempt, "template": email.template}
        try:
            # aiosmtplib's timeout is per command; this bounds the whole conversation within the lease.
            await asyncio.wait_for(self.transport.send(email), self.lease_seconds / 2)
        except PermanentFailure as exc:
            self.metrics.attempt_failures.labels("permanent").inc()
            log.error("e-mail refused for good", extra={**context, "error": str(exc)})
            if await repository.record_failure(self.engine, email, f"refused: {exc}", retry_in=None):
                self.metrics.failed.labels(email.template).inc()
            return
        except TRANSIENT_ERRORS as exc:
            self.metrics.attempt_failures.labels("transient").inc()
            error = f"{type(exc).__name__}: {exc}"
            retry_in = self.policy.retry_in(email.attempt)
            log.warning("e-mail not sent", extra={**context, "error": error, "retry_in_s": retry_in})
            if (
                await repository.record_failure(self.engine, email, error, retry_in=retry_in)
                and retry_in is None
            ):
                self.metrics.failed.labels(email.template).inc()
                log.error("e-mail given up after its last attempt", extra=context)
            return
        if await repository.record_sent(self.engine, email):
            self.metrics.sent.labels(email.template).inc()
            log.info("e-mail sent", extra=context)

    async def _refresh_gauge(self) -> None:
        now = time.monotonic()
        if now - self._last_gauge >= 1.0:
            self._last_gauge = now
            self.metrics.pending.set(await repository.count_pending(self.engine))

    async def _sleep(self, seconds: float) -> None:
        await pause(seconds, self._wake)
        self._wake.clear()
