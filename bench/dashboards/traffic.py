"""What a bench run for the dashboards does to the system: people using it, and a few bad moments.

Every simulated person is a client address of their own (``X-Forwarded-For`` through a gateway that
trusts 127.0.0.1), so the gateway's per-client limits apply as in production. Each one, in a loop:
places an order (sometimes with an ``Idempotency-Key``), pays most of them, cancels some, reads their
orders, notifications and unread count, asks GraphQL, and now and then sends an invalid order (422) or
asks for an order that does not exist (404). Some hold a WebSocket or an SSE stream; four talk in a
room, and one keeps reconnecting. An admin ships and delivers paid orders. And at fixed moments of the
run: every scheduled job of every service is run through the admin API, one address guesses passwords
until the gateway answers 429, and three malformed messages land on the ``events`` exchange
(dead-lettered by each consumer); the faults that need the stack's processes, database or broker
(``incidents.py``) are handed in and happen at their own moments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import httpx
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from bench.dashboards.incidents import Incident
from shared.messaging.events import EXCHANGE

log = logging.getLogger("bench.dashboards.traffic")

# The people's password: new each run (their accounts live in the run's throwaway database).
PASSWORD = secrets.token_urlsafe(18)
ORDER = {
    "currency": "USD",
    "items": [{"sku": "SKU-1", "name": "Widget", "quantity": 2, "unit_price_cents": 1999}],
}
INVALID_ORDER = {"currency": "usd", "items": []}
GRAPHQL = "{ me { id fullName } unreadCount orders(first: 5) { edges { node { id status totalCents } } } }"
SERVICES_WITH_JOBS = ("users", "orders", "notification", "realtime")


@dataclass
class Person:
    address: str
    email: str
    token: str = ""
    orders: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        headers = {"X-Forwarded-For": self.address}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)

    def note(self, what: str, outcome: int | str) -> None:
        self.statuses[f"{what} {outcome}"] += 1


class Traffic:
    def __init__(
        self,
        gateway: str,
        amqp_url: str,
        admin: tuple[str, str],
        incidents: Sequence[Incident],
        *,
        people: int,
        seed: int = 15,
    ) -> None:
        self.gateway = gateway
        self.ws_url = gateway.replace("http://", "ws://")
        self.amqp_url = amqp_url
        self.admin_login = admin
        self.incidents = incidents
        self.people = [
            Person(f"10.15.{n // 200}.{n % 200 + 1}", f"dash-{n}-{uuid.uuid4().hex[:6]}@example.com")
            for n in range(people)
        ]
        self.admin = Person("10.15.250.1", admin[0])
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.client = httpx.AsyncClient(base_url=gateway, timeout=10, limits=httpx.Limits(max_connections=64))
        self.stop = asyncio.Event()
        self.load_started = 0.0  # Unix time the traffic began (after everyone signed in)

    async def call(
        self,
        what: str,
        method: str,
        path: str,
        who: Person,
        *,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        try:
            response = await self.client.request(
                method, path, headers=who.headers | (headers or {}), **kwargs
            )
        except httpx.HTTPError as exc:
            self.tally.note(what, type(exc).__name__)
            return None
        self.tally.note(what, response.status_code)
        return response

    async def sign_in(self, who: Person, password: str = PASSWORD, *, register: bool = True) -> None:
        # Hashing a password is slow on a busy machine: these two calls get a longer timeout.
        slow = httpx.Timeout(60)
        if register:
            body = {"email": who.email, "password": password, "full_name": f"Dash {who.address}"}
            made = await self.call("register", "POST", "/api/v1/auth/register", who, json=body, timeout=slow)
            if made is None or made.status_code != 201:
                raise RuntimeError(
                    f"could not register {who.email}: {made.text[:300] if made else 'no answer'}"
                )
        form = {"grant_type": "password", "username": who.email, "password": password}
        answer = await self.call("token", "POST", "/api/v1/auth/token", who, data=form, timeout=slow)
        if answer is None or answer.status_code != 200:
            raise RuntimeError(
                f"{who.email} could not sign in: {answer.text[:300] if answer else 'no answer'}"
            )
        who.token = answer.json()["access_token"]

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the run stops meanwhile (the wait's timeout is the usual end)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), max(0.0, seconds))

    # --- one person ---------------------------------------------------------------------------------

    async def live(self, who: Person) -> None:
        while not self.stop.is_set():
            await self.one_action(who)
            await self.pause(self.rng.uniform(0.3, 1.2))

    async def one_action(self, who: Person) -> None:
        roll = self.rng.random()
        if roll < 0.35:
            headers = {"Idempotency-Key": uuid.uuid4().hex} if self.rng.random() < 0.3 else {}
            created = await self.call("create", "POST", "/api/v1/orders", who, json=ORDER, headers=headers)
            if created is not None and created.status_code == 201:
                order = created.json()["id"]
                who.orders.append(order)
                action = "pay" if self.rng.random() < 0.75 else "cancel"
                await self.call(action, "POST", f"/api/v1/orders/{order}/{action}", who)
        elif roll < 0.5:
            await self.call("list orders", "GET", "/api/v1/orders", who, params={"limit": 10})
        elif roll < 0.65:
            await self.call("notifications", "GET", "/api/v1/notifications", who)
            await self.call("unread", "GET", "/api/v1/notifications/unread-count", who)
        elif roll < 0.72:
            await self.call("read all", "POST", "/api/v1/notifications/read-all", who)
        elif roll < 0.85:
            await self.call("graphql", "POST", "/graphql", who, json={"query": GRAPHQL})
        elif roll < 0.92:
            await self.call("me", "GET", "/api/v1/users/me", who)
        elif roll < 0.96:
            await self.call("invalid order", "POST", "/api/v1/orders", who, json=INVALID_ORDER)
        else:
            await self.call("missing order", "GET", f"/api/v1/orders/{uuid.uuid4()}", who)

    async def administer(self) -> None:
        """Ships and delivers what people paid for, a few orders a second."""
        while not self.stop.is_set():
            answer = await self.call(
                "admin list", "GET", "/api/v1/orders", self.admin, params={"status": "paid", "limit": 5}
            )
            for order in answer.json()["items"] if answer is not None and answer.status_code == 200 else []:
                shipped = await self.call("ship", "POST", f"/api/v1/orders/{order['id']}/ship", self.admin)
                if shipped is not None and shipped.status_code == 200 and self.rng.random() < 0.7:
                    await self.call("deliver", "POST", f"/api/v1/orders/{order['id']}/deliver", self.admin)
            await self.pause(1.0)

    # --- streams ------------------------------------------------------------------------------------

    async def websocket(self, who: Person, *, room: str | None = None, hold: float | None = None) -> None:
        """One WebSocket through the gateway, held until the run ends (or for ``hold`` seconds); in
        ``room`` it joins and says something every 3 s. When the server closes it, it is opened again
        a second later, as the console does."""
        what = "room websocket" if room is not None else "websocket"
        while not self.stop.is_set():
            why = await self._hold_websocket(who, room, hold)
            if why is None:
                return
            log.info(f"the {what} of {who.address} was {why}")
            self.tally.note(what, why)
            await self.pause(1.0)

    async def _hold_websocket(self, who: Person, room: str | None, hold: float | None) -> str | None:
        """None when the connection was held as long as wanted; otherwise how it ended."""
        try:
            async with connect(
                f"{self.ws_url}/ws?token={who.token}",
                additional_headers={"X-Forwarded-For": who.address},
                compression=None,
                open_timeout=15,
            ) as ws:
                self.tally.note("websocket", "open")
                if room is not None:
                    await ws.send(orjson.dumps({"type": "join", "room": room}).decode())
                deadline = time.monotonic() + (hold if hold is not None else math.inf)
                next_say = time.monotonic() + 1.0
                while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
                    if room is not None and time.monotonic() >= next_say:
                        text = f"hello from {who.address} #{self.rng.randrange(1000)}"
                        await ws.send(orjson.dumps({"type": "say", "room": room, "text": text}).decode())
                        next_say += 3.0
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ws.recv(), min(0.5, left))  # cancelling recv loses nothing
            return None
        except ConnectionClosed as exc:
            closed = exc.rcvd
            return (
                f"closed {closed.code} {closed.reason}".strip() if closed else "closed without a close frame"
            )
        except (OSError, WebSocketException, TimeoutError) as exc:
            return f"not opened: {type(exc).__name__} {exc}"

    async def sse(self, who: Person) -> None:
        try:
            async with self.client.stream(
                "GET", "/api/v1/events/stream", headers=who.headers, timeout=httpx.Timeout(10, read=None)
            ) as stream:
                self.tally.note("sse", stream.status_code)
                async for _ in stream.aiter_lines():
                    pass
        except httpx.HTTPError as exc:
            self.tally.note("sse", type(exc).__name__)

    async def churn(self, who: Person, every: float) -> None:
        """A phone that keeps losing its connection: a WebSocket held ``every`` seconds, then another."""
        while not self.stop.is_set():
            await self.websocket(who, hold=every)

    # --- the bad moments ----------------------------------------------------------------------------

    async def run_every_job(self) -> None:
        for service in SERVICES_WITH_JOBS:
            jobs = await self.call(f"jobs of {service}", "GET", f"/api/v1/admin/jobs/{service}", self.admin)
            for job in jobs.json()["items"] if jobs is not None and jobs.status_code == 200 else []:
                await self.call(
                    "run job", "POST", f"/api/v1/admin/jobs/{service}/{job['name']}/run", self.admin
                )

    async def guess_passwords(self, tries: int = 30) -> None:
        """One address trying passwords for someone else's account, as fast as it can."""
        guesser = Person("198.51.100.66", self.people[0].email)
        for n in range(tries):
            await self.call(
                "guess",
                "POST",
                "/api/v1/auth/token",
                guesser,
                data={"grant_type": "password", "username": guesser.email, "password": f"guess {n}"},
            )

    async def publish_malformed(self, count: int = 3) -> None:
        connection = await aio_pika.connect(self.amqp_url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(EXCHANGE)
            for n in range(count):
                body = f"not an event #{n}".encode()
                await exchange.publish(aio_pika.Message(body, message_id=str(uuid.uuid4())), "order.created")
        finally:
            await connection.close()
        self.tally.note("malformed", count)

    async def at(self, started: float, seconds: float, incident: Incident) -> None:
        await self.pause(started + seconds * incident.share - time.monotonic())
        if not self.stop.is_set():
            log.info(f"t={time.monotonic() - started:4.0f}s: {incident.name}")
            await incident.happen()

    # --- the whole run ------------------------------------------------------------------------------

    async def run(self, seconds: float) -> Tally:
        try:
            await self.sign_in(self.admin, self.admin_login[1], register=False)
            # Two at a time: password hashing is what a loaded machine is slowest at.
            for first in range(0, len(self.people), 2):
                await asyncio.gather(*(self.sign_in(p) for p in self.people[first : first + 2]))
            room = await self.call(
                "room", "POST", "/api/v1/rooms", self.people[0], json={"name": "dashboards"}
            )
            if room is None or room.status_code != 201:
                raise RuntimeError(f"could not create a room: {room.text[:300] if room else 'no answer'}")
            room_id = room.json()["id"]
            log.info(f"{len(self.people)} people signed in; load for {seconds:.0f} s")
            started, self.load_started = time.monotonic(), time.time()
            tasks = [asyncio.create_task(self.live(p)) for p in self.people]
            tasks.append(asyncio.create_task(self.administer()))
            tasks += [asyncio.create_task(self.websocket(p)) for p in self.people[:8]]
            tasks += [asyncio.create_task(self.websocket(p, room=room_id)) for p in self.people[8:12]]
            # An SSE stream only wakes for an event or the 15 s comment: cancelled at the end.
            streams = [asyncio.create_task(self.sse(p)) for p in self.people[12:14]]
            tasks.append(asyncio.create_task(self.churn(self.people[14], every=10)))
            moments = [
                Incident(
                    0.1, "every scheduled job of every service, through the admin API", self.run_every_job
                ),
                Incident(0.2, "one address guessing passwords", self.guess_passwords),
                Incident(0.25, "three malformed messages on the events exchange", self.publish_malformed),
                Incident(0.85, "every scheduled job again", self.run_every_job),
                Incident(0.9, "password guessing again", self.guess_passwords),
                *self.incidents,
            ]
            tasks += [asyncio.create_task(self.at(started, seconds, incident)) for incident in moments]
            await self.pause(seconds)
            self.stop.set()
            await asyncio.gather(*tasks)
            for stream in streams:
                stream.cancel()
            for outcome in await asyncio.gather(*streams, return_exceptions=True):
                if isinstance(outcome, Exception):  # a stream's own failures are tallied; not this
                    raise outcome
        finally:
            self.stop.set()
            await self.client.aclose()
        return self.tally
