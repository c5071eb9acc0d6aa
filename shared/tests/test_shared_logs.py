"""Tokens in URLs never reach a log line, however the query string spells their name."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from shared.observability.logs import configure_logging

SECRET = "eyJhbGciOiJFZERTQSJ9.secret-payload.signature"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("test", "DEBUG", "json")
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


@pytest.mark.parametrize(
    "query",
    [
        f"token={SECRET}",
        f"since=3&token={SECRET}",
        f"%74oken={SECRET}",
        f"%74%6F%6b%65%6e={SECRET}",
        f"TOKEN={SECRET}",
        f"access_token={SECRET}",
        f"refresh%5Ftoken={SECRET}",
    ],
)
def test_a_token_in_a_query_string_is_redacted_everywhere_in_the_line(
    log_output: io.StringIO, query: str
) -> None:
    log = logging.getLogger("uvicorn.error")
    # uvicorn's handshake line: the path and query as an argument.
    log.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", f"/ws?{query}")
    # A message with the URL in it, and an error's text in an extra field.
    logging.getLogger("gateway.websocket").warning(f"GET /api/v1/events/stream?{query}")
    logging.getLogger("gateway.websocket").warning(
        "upstream failed", extra={"error": f"ws://realtime/ws?{query}"}
    )
    lines = [orjson.loads(line) for line in log_output.getvalue().splitlines()]
    assert len(lines) == 3
    for line in lines:
        assert SECRET not in orjson.dumps(line).decode()
        assert "<redacted>" in orjson.dumps(line).decode()
    assert "since=3" in log_output.getvalue() or "since" not in query


def test_other_parameters_and_format_arguments_are_left_alone(log_output: io.StringIO) -> None:
    logging.getLogger("access").info("%s %s %s", "GET", "/api/v1/orders?limit=5&cursor=abc", 200)
    (line,) = [orjson.loads(text) for text in log_output.getvalue().splitlines()]
    assert line["msg"] == "GET /api/v1/orders?limit=5&cursor=abc 200"
