"""Operator command for a consumer's dead-letter queue: list, show, redrive.

    python -m shared.messaging.dlq orders list
    python -m shared.messaging.dlq orders show <message-id>
    python -m shared.messaging.dlq orders redrive --all | --id <message-id> [--id ...]

Listing and showing take messages without acknowledging them and then close the channel, so the
broker puts every one back. A redrive publishes the message to the service's queue with its attempt
counter reset (confirmed by the broker) and only then removes it from the DLQ.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from shared.messaging.broker import ACK_SETTLE_GRACE
from shared.messaging.redelivery import ATTEMPT_HEADER, ERROR_HEADER
from shared.service.settings import DEFAULT_AMQP_URL


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    event_type: str
    attempts: Any
    error: str
    dead_lettered_at: str
    body: str

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> DeadLetter:
        headers = message.headers or {}
        return cls(
            message_id=message.message_id or "",
            event_type=message.type or str(headers.get("x-original-routing-key", "")),
            attempts=headers.get(ATTEMPT_HEADER),
            error=str(headers.get(ERROR_HEADER, "")),
            dead_lettered_at=str(headers.get("x-dead-lettered-at", "")),
            body=message.body.decode(errors="replace"),
        )


async def _take_all(channel: AbstractChannel, queue_name: str) -> list[AbstractIncomingMessage]:
    queue = await channel.declare_queue(queue_name, passive=True)
    taken: list[AbstractIncomingMessage] = []
    while (message := await queue.get(no_ack=False, fail=False)) is not None:
        taken.append(message)
    return taken


async def list_dead_letters(amqp_url: str, service: str) -> list[DeadLetter]:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        return [DeadLetter.of(m) for m in await _take_all(channel, f"{service}.dlq")]
    finally:
        # Closing without acks returns every message to the DLQ.
        await connection.close()


async def redrive(amqp_url: str, service: str, ids: Iterable[str] | None) -> int:
    wanted = None if ids is None else set(ids)
    connection = await aio_pika.connect(amqp_url)
    moved = 0
    try:
        channel = await connection.channel(publisher_confirms=True)
        for message in await _take_all(channel, f"{service}.dlq"):
            if wanted is not None and message.message_id not in wanted:
                await message.nack(requeue=True)
                continue
            headers = dict(message.headers or {})
            headers[ATTEMPT_HEADER] = 1
            previous = headers.get("x-redriven", 0)
            headers["x-redriven"] = (previous if isinstance(previous, int) else 0) + 1
            await channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=message.message_id,
                    type=message.type,
                ),
                routing_key=f"{service}.events",
                mandatory=True,
            )
            await message.ack()
            moved += 1
        if moved:
            await asyncio.sleep(ACK_SETTLE_GRACE)  # or a redriven message may stay in the DLQ too
    finally:
        with contextlib.suppress(Exception):
            await connection.close()
    return moved


def printable(value: object) -> str:
    """``value`` with every non-printable character escaped (``\\x1b``, ``\\n``, ``\\u200e``).

    Message ids, types and error texts come from whoever published the message: written raw, an
    escape sequence in one would rewrite the operator's terminal (hide lines, fake a prompt).
    """
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def write_list(out: TextIO, letters: Iterable[DeadLetter], service: str) -> None:
    count = 0
    for letter in letters:
        fields = (letter.message_id, letter.event_type, f"attempts={letter.attempts}", letter.error)
        out.write("\t".join(printable(field) for field in fields) + "\n")
        count += 1
    out.write(f"{count} message(s) in {printable(service)}.dlq\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.messaging.dlq", description=__doc__.split("\n")[0]
    )
    parser.add_argument("service", help="the consuming service, e.g. orders or notification")
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", DEFAULT_AMQP_URL))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="one line per dead letter")
    show = sub.add_parser("show", help="headers and body of one dead letter")
    show.add_argument("message_id")
    again = sub.add_parser("redrive", help="send dead letters back to the service's queue")
    group = again.add_mutually_exclusive_group(required=True)
    group.add_argument("--all", action="store_true")
    group.add_argument("--id", action="append", dest="ids")
    args = parser.parse_args(argv)
    out = sys.stdout
    if args.command == "list":
        write_list(out, asyncio.run(list_dead_letters(args.amqp_url, args.service)), args.service)
        return 0
    if args.command == "show":
        for letter in asyncio.run(list_dead_letters(args.amqp_url, args.service)):
            if letter.message_id == args.message_id:
                out.write(json.dumps(letter.__dict__, indent=2) + "\n")
                return 0
        out.write(f"no message {args.message_id} in {args.service}.dlq\n")
        return 1
    moved = asyncio.run(redrive(args.amqp_url, args.service, None if args.all else args.ids))
    out.write(f"redrove {moved} message(s) to {args.service}.events\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
