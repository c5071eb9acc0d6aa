"""Idempotent creation: the first answer to a key is stored with the order and replayed to retries."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orders.idempotency.models import IdempotencyKey
from orders.idempotency.repository import IdempotencyRepository
from shared.errors import Conflict, ValidationFailed

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


def canonical_json(value: Any) -> bytes:
    """Keys sorted, no whitespace: equal documents give equal bytes, however they were written."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def request_fingerprint(body: BaseModel) -> str:
    """SHA-256 of the validated body's canonical JSON: what makes two requests "the same body".

    Spacing, key order or an ignored extra field change nothing; any value that matters does.
    """
    return hashlib.sha256(canonical_json(body.model_dump(mode="json"))).hexdigest()


@dataclass(frozen=True, slots=True)
class Answer:
    """A create's answer as it is sent, and as it is sent again for a retry."""

    status_code: int
    body: str
    order_id: uuid.UUID
    replayed: bool = False


class KeyReused(ValidationFailed):
    def __init__(self) -> None:
        super().__init__(
            f"This {HEADER} was already used with a different request body.",
            [
                {
                    "loc": ["header", HEADER.lower()],
                    "msg": "Key already used with another request body",
                    "type": "idempotency_key_reused",
                }
            ],
        )


def replay(row: IdempotencyKey, request_hash: str) -> Answer:
    """The stored answer for this key, if the body is the one it was first used with."""
    if row.request_hash != request_hash:
        raise KeyReused
    if row.status_code is None or row.response_body is None or row.order_id is None:
        # Unreachable with committed rows (see the model); refuse rather than guess.
        raise Conflict(f"A request with this {HEADER} is still being processed.")
    return Answer(row.status_code, row.response_body, row.order_id, replayed=True)


async def earlier_answer(
    sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID, key: str, request_hash: str
) -> Answer | None:
    """A committed answer for this key, read in a short session of its own.

    Checked before anything else so that a retry is answered even while the users service is
    down, without holding a database connection across that call.
    """
    async with sessions() as session:
        row = await IdempotencyRepository(session).find(user_id, key)
    return None if row is None else replay(row, request_hash)


async def claim_or_replay(
    session: AsyncSession, user_id: uuid.UUID, key: str, request_hash: str
) -> Answer | None:
    """Claim the key in the caller's transaction; if a concurrent request won, its answer."""
    repo = IdempotencyRepository(session)
    if await repo.claim(user_id, key, request_hash):
        return None
    row = await repo.find(user_id, key)
    if row is None:
        # The winner's row was purged between the two statements; it was older than a day.
        raise Conflict(f"The {HEADER} expired while this request ran; send it again.")
    return replay(row, request_hash)


async def remember(session: AsyncSession, user_id: uuid.UUID, key: str, answer: Answer) -> None:
    await IdempotencyRepository(session).record(
        user_id, key, status_code=answer.status_code, body=answer.body, order_id=answer.order_id
    )
