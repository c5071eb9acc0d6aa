"""The conventions every component inherits: request ids, problem+json, body limit, RED labels."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import generate_latest
from pydantic import BaseModel, Field

from shared.errors import Conflict, TooManyRequests
from shared.web.app import create_base_app


class Thing(BaseModel):
    name: str = Field(min_length=1, max_length=10)
    count: int


def build() -> FastAPI:
    app = create_base_app(title="probe")

    @app.post("/things/{thing_id}")
    async def create(thing_id: int, thing: Thing) -> dict[str, object]:
        return {"id": thing_id, "name": thing.name}

    @app.get("/conflict")
    async def conflict() -> None:
        raise Conflict("already there")

    @app.get("/slow-down")
    async def slow_down() -> None:
        raise TooManyRequests("too many", retry_after=7)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("SELECT password FROM secrets")

    return app


@pytest.fixture
async def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://probe")


async def test_request_id_is_echoed_when_valid(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc.DEF_123-x"})
    assert response.headers["x-request-id"] == "abc.DEF_123-x"


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "semi;colon"])
async def test_request_id_is_replaced_when_invalid(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": bad})
    generated = response.headers["x-request-id"]
    assert generated != bad
    assert 1 <= len(generated) <= 128


async def test_validation_error_is_problem_json_with_errors(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/things/1", json={"name": "", "count": "many"}, headers={"X-Request-ID": "r1"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail", "instance", "request_id", "errors"} <= body.keys()
    assert body["status"] == 422
    assert body["request_id"] == "r1"
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert ("body", "name") in locs
    assert ("body", "count") in locs
    assert all({"loc", "msg", "type"} == e.keys() for e in body["errors"])


async def test_malformed_json_is_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/things/1", content=b'{"name": "x",', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "The request body is not valid JSON."


async def test_domain_errors_render_with_their_status_and_headers(client: httpx.AsyncClient) -> None:
    conflict = await client.get("/conflict")
    assert conflict.status_code == 409
    assert conflict.json()["detail"] == "already there"
    limited = await client.get("/slow-down")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = await client.delete("/conflict")
    assert wrong.status_code == 405
    assert wrong.json()["status"] == 405


async def test_unexpected_error_leaks_nothing(client: httpx.AsyncClient) -> None:
    response = await client.get("/boom")
    assert response.status_code == 500
    assert "SELECT" not in response.text
    assert "Traceback" not in response.text
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_body_over_one_mebibyte_is_refused(client: httpx.AsyncClient) -> None:
    big = b"x" * (1024 * 1024 + 1)
    declared = await client.post("/things/1", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b"x" * 65536

    streamed = await client.post("/things/1", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413


async def test_metrics_are_labelled_by_route_template_not_raw_path() -> None:
    app = build()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        for thing_id in (1, 2, 3):
            await client.post(f"/things/{thing_id}", json={"name": "a", "count": 1})
        await client.get("/no/such/path/12345")
    exposition = generate_latest(app.state.registry).decode()
    assert 'route="/things/{thing_id}"' in exposition
    assert "/things/1" not in exposition
    assert "12345" not in exposition
    assert 'route="<unmatched>"' in exposition


async def test_readyz_names_the_failed_check() -> None:
    app = build()

    async def fine() -> None:
        return None

    async def broken() -> None:
        raise ConnectionError("refused by 10.0.3.7:5672")

    app.state.readiness = {"database": fine, "broker": broken}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert "broker" in response.json()["detail"]
        # The check's name only: an exception's text carries internal addresses.
        assert response.json()["checks"] == {"database": "ok", "broker": "failed"}
        assert "refused" not in response.text
        assert "ConnectionError" not in response.text
        app.state.readiness = {"database": fine}
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
