"""Compression at the gateway: gzip or br for answers of 1 KiB or more, when the client accepts them."""

from __future__ import annotations

import gzip
import json

import brotli  # type: ignore[import-untyped]  # no stubs; only decompress is used
import httpx
import pytest

PAD = {"pad": "x" * 2000}  # the stand-in echoes the query back: an answer of a few KiB


@pytest.mark.parametrize(("accept", "encoding"), [("gzip", "gzip"), ("br", "br"), ("gzip, br", "br")])
def test_a_large_answer_is_compressed_and_decodes_to_the_same_json(
    client: httpx.Client, auth: dict[str, str], accept: str, encoding: str
) -> None:
    plain = client.get("/api/v1/users/echo", params=PAD, headers={**auth, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert len(plain.content) >= 1024

    response = client.get("/api/v1/users/echo", params=PAD, headers={**auth, "Accept-Encoding": accept})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == encoding
    assert "accept-encoding" in response.headers["vary"].lower()
    raw = response.read()  # httpx decodes gzip and br itself; decode the raw bytes by hand as well
    assert json.loads(raw)["query"] == plain.json()["query"]
    with client.stream(
        "GET", "/api/v1/users/echo", params=PAD, headers={**auth, "Accept-Encoding": accept}
    ) as stream:
        body = b"".join(stream.iter_raw())
    decoded = gzip.decompress(body) if encoding == "gzip" else brotli.decompress(body)
    assert len(body) < len(decoded)
    assert json.loads(decoded)["query"] == plain.json()["query"]


def test_a_small_answer_is_not_compressed(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.get("/.well-known/jwks.json", headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200
    assert len(response.content) < 1024
    assert "content-encoding" not in response.headers


def test_nothing_is_compressed_for_a_client_that_does_not_ask(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    for accept in ("identity", "gzip;q=0, br;q=0", "deflate"):
        response = client.get("/api/v1/users/echo", params=PAD, headers={**auth, "Accept-Encoding": accept})
        assert "content-encoding" not in response.headers, accept


def test_images_are_never_compressed(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.get("/api/v1/users/image", headers={**auth, "Accept-Encoding": "gzip, br"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert "content-encoding" not in response.headers
    assert len(response.content) > 4096


def test_event_streams_are_never_compressed(client: httpx.Client, auth: dict[str, str]) -> None:
    params = {"count": "2", "gap": "0.1"}
    headers = {**auth, "Accept-Encoding": "gzip, br"}
    with client.stream("GET", "/api/v1/events/stream", params=params, headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in response.headers
        assert b"id: 1\nevent: tick\n" in b"".join(response.iter_raw())


def test_the_gateways_own_large_pages_are_compressed(client: httpx.Client) -> None:
    response = client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.json()["paths"]
