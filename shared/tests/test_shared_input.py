"""Hostile input gets a 4xx, never a 500: control characters, crafted cursors, Unicode digits, values
Postgres refuses (contract section 3)."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, StringConstraints
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.engine import make_engine
from shared.db.pagination import Cursor, OffsetCursor
from shared.errors import ValidationFailed
from shared.service.dependencies import PageParamsDep
from shared.text import MultiLine, NotBlank, SingleLine, ascii_digits
from shared.web.app import create_base_app


class Form(BaseModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=50), SingleLine]
    note: Annotated[str, MultiLine] = ""


@pytest.mark.parametrize("name", ["a\x00b", "\x1b[31mred", "tab\there", "line\nbreak", "\x7f", "c1\x85"])
def test_a_single_line_field_refuses_control_characters(name: str) -> None:
    with pytest.raises(ValueError, match="Control characters"):
        Form(name=name)


class Titled(BaseModel):
    title: Annotated[str, SingleLine, NotBlank()]


@pytest.mark.parametrize("title", [" ", "\u3000", "  \u00a0 "])
def test_a_not_blank_field_refuses_white_space_only(title: str) -> None:
    with pytest.raises(ValueError, match="blank"):
        Titled(title=title)


def test_the_not_blank_rule_is_in_the_published_pattern() -> None:
    pattern = re.compile(Titled.model_json_schema()["properties"]["title"]["pattern"])
    assert pattern.search(" x ")
    assert not pattern.search("   ")
    assert not pattern.search("x\x00")
    assert Titled(title=" x ").title == " x "


def test_a_multi_line_field_keeps_tab_and_line_breaks_only() -> None:
    assert Form(name="ok", note="one\ttwo\r\nthree").note == "one\ttwo\r\nthree"
    with pytest.raises(ValueError, match="Control characters"):
        Form(name="ok", note="bell\x07")


def test_the_rule_is_in_the_schema() -> None:
    properties = Form.model_json_schema()["properties"]
    assert properties["name"]["pattern"] == "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    assert properties["name"]["maxLength"] == 50
    assert "\\u000a" not in properties["note"]["pattern"]


def test_numbers_are_ascii_digits_only() -> None:
    assert ascii_digits("0") == 0
    assert ascii_digits("42") == 42
    for bad in ("", "\u00b2", "1\u00b2", "\u0663", "-1", "+1", " 1", "1_000", "9" * 5000):
        assert ascii_digits(bad) is None


def _encoded(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


GOOD_ID = "00000000-0000-0000-0000-000000000001"
CRAFTED = [
    "not base64!",
    "\u00e9",
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    _encoded([1, 2]),
    _encoded("a string"),
    _encoded({"t": "2026-01-01T00:00:00+00:00"}),
    _encoded({"t": "2026-01-01T00:00:00+00:00", "i": 5}),  # uuid.UUID(5) raises AttributeError
    _encoded({"t": "2026-01-01T00:00:00+00:00", "i": ["x"]}),
    _encoded({"t": 5, "i": GOOD_ID}),
    _encoded({"t": "2026-01-01T00:00:00", "i": GOOD_ID}),  # no offset
    _encoded({"t": "0001-01-01T00:00:00+05:00", "i": GOOD_ID}),  # before year 1 in UTC
    _encoded({"t": "9999-12-31T23:59:59-05:00", "i": GOOD_ID}),  # after year 9999 in UTC
    _encoded({"t": "2026-01-01T00:00:00+00:00", "i": "not-a-uuid"}),
]


@pytest.mark.parametrize("cursor", CRAFTED)
def test_a_crafted_cursor_is_a_validation_error(cursor: str) -> None:
    with pytest.raises(ValidationFailed):
        Cursor.decode(cursor)


OFFSET_CRAFTED = [
    "not base64!",
    _encoded([1]),
    _encoded({"o": 0}),
    _encoded({"o": -1}),
    _encoded({"o": 2**63}),
    _encoded({"o": "5"}),
    _encoded({"o": True}),
    _encoded({"o": 1.5}),
    _encoded({"t": "2026-01-01T00:00:00+00:00", "i": GOOD_ID}),  # a keyset cursor is not an offset
]


@pytest.mark.parametrize("cursor", OFFSET_CRAFTED)
def test_a_crafted_offset_cursor_is_a_validation_error(cursor: str) -> None:
    with pytest.raises(ValidationFailed):
        OffsetCursor.decode(cursor)


def test_an_offset_cursor_round_trips() -> None:
    for offset in (1, 17, 2**63 - 1):
        assert OffsetCursor.decode(OffsetCursor(offset).encode()) == OffsetCursor(offset)


def test_a_cursor_round_trips() -> None:
    made = Cursor.decode(_encoded({"t": "2026-01-01T05:00:00+05:00", "i": GOOD_ID}))
    assert Cursor.decode(made.encode()) == made
    assert made.created_at.utcoffset() is not None
    assert made.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.fixture
async def engine(test_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(test_database_url, schema="public")
    yield engine
    await engine.dispose()


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose endpoints hand the client's values to Postgres without validating them."""
    app: FastAPI = create_base_app(title="input")

    @app.get("/echo")
    async def echo(value: str) -> dict[str, Any]:
        async with engine.connect() as conn:
            return {"value": (await conn.execute(text("SELECT CAST(:v AS text)"), {"v": value})).scalar()}

    @app.get("/number")
    async def number(value: int) -> dict[str, Any]:
        async with engine.connect() as conn:
            return {"value": (await conn.execute(text("SELECT CAST(:v AS integer)"), {"v": value})).scalar()}

    @app.get("/broken")
    async def broken() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT * FROM no_such_table"))

    @app.get("/page")
    async def page(params: PageParamsDep) -> dict[str, Any]:
        return {"limit": params.limit}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://input.test"
    ) as client:
        yield client


@pytest.mark.integration
@pytest.mark.parametrize(("path", "value"), [("/echo", "a\x00b"), ("/number", str(2**40))])
async def test_a_value_postgres_refuses_is_a_422_problem(
    client: httpx.AsyncClient, path: str, value: str
) -> None:
    response = await client.get(path, params={"value": value})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["errors"][0]["type"] == "data_error"
    assert "\x00" not in response.text
    assert "SELECT" not in response.text


@pytest.mark.integration
async def test_other_database_errors_stay_500s(client: httpx.AsyncClient) -> None:
    response = await client.get("/broken")
    assert response.status_code == 500
    assert "no_such_table" not in response.text


@pytest.mark.integration
@pytest.mark.parametrize(
    "query", ["limit=%C2%B2", "limit=%D9%A3", "limit=1" + "0" * 5000, *[f"cursor={c}" for c in CRAFTED]]
)
async def test_hostile_page_parameters_are_422s(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get("/page?" + query)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_the_openapi_document_lists_each_operations_rejections_as_problems() -> None:
    app = create_base_app(title="docs")

    @app.post("/things/{thing_id}")
    async def change(thing_id: int, body: Form) -> dict[str, Any]:
        return {}

    @app.get("/plain")
    async def plain() -> dict[str, Any]:
        return {}

    document = app.openapi()
    changed = document["paths"]["/things/{thing_id}"]["post"]["responses"]
    assert {"400", "404", "413", "422"} <= changed.keys()
    for status in ("400", "404", "413", "422"):
        assert changed[status]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert set(document["paths"]["/plain"]["get"]["responses"]) == {"200", "422", "503"}
    assert "HTTPValidationError" not in str(document)
    assert document["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]
