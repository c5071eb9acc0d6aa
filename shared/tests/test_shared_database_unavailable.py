"""A database that cannot take a request is a 503 with Retry-After, never a 500 (contract section 3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import make_engine
from shared.web.problems import PROBLEM_JSON, document_problems, install_error_handlers

pytestmark = pytest.mark.integration


def app_over(engine: AsyncEngine, held: asyncio.Event, release: asyncio.Event) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/hold")
    async def hold() -> dict[str, bool]:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            held.set()
            await release.wait()
        return {"ok": True}

    @app.get("/query")
    async def query() -> dict[str, int]:
        async with engine.connect() as conn:
            return {"one": (await conn.execute(text("SELECT 1"))).scalar_one()}

    return app


@pytest.fixture
async def one_connection(test_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(test_database_url, schema="public", pool_size=1, pool_timeout=0.2)
    yield engine
    await engine.dispose()


async def test_a_request_that_finds_every_connection_busy_gets_503(one_connection: AsyncEngine) -> None:
    held, release = asyncio.Event(), asyncio.Event()
    app = app_over(one_connection, held, release)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        holder = asyncio.create_task(client.get("/hold"))
        await held.wait()
        busy = await client.get("/query")
        release.set()
        assert (await holder).status_code == 200
        after = await client.get("/query")
    assert busy.status_code == 503
    assert busy.headers["content-type"] == PROBLEM_JSON
    assert busy.headers["retry-after"] == "2"
    assert busy.json()["type"].endswith("database-unavailable")
    assert after.json() == {"one": 1}


async def test_an_unreachable_database_gets_503() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:1/nothing", schema="public", pool_size=1)
    app = app_over(engine, asyncio.Event(), asyncio.Event())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            answer = await client.get("/query")
    finally:
        await engine.dispose()
    assert answer.status_code == 503
    assert answer.json()["status"] == 503
    assert "127.0.0.1" not in answer.text


def test_every_operation_documents_the_503() -> None:
    app = FastAPI()

    @app.get("/things/{thing}")
    async def thing(thing: int) -> int:
        return thing

    schema = document_problems(app.openapi())
    assert schema["paths"]["/things/{thing}"]["get"]["responses"]["503"]["content"][PROBLEM_JSON]
