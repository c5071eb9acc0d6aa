"""Structured JSON logs; every line carries the request id (and trace id) of the work it belongs to."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.observability.request_id import current_request_id
from shared.observability.tracing import current_trace_id

# color_message: uvicorn's ANSI-coloured copy of the message, noise in both formats.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def _spelled_any_way(name: str) -> str:
    """A pattern for ``name`` with any of its characters percent-encoded, as a query string may have them
    (``?%74oken=`` is ``?token=`` to every server, and slipped past a plain ``token=`` match)."""
    return "".join(f"(?:{re.escape(c)}|%{ord(c):02x})" for c in name)


# Any query parameter whose name ends in "token" (token, access_token, refresh_token...).
_TOKEN = re.compile(rf"(?i)({_spelled_any_way('token')}(?:=|%3d))[^&\s\"']+")
# uvicorn's sans-I/O WebSocket protocol logs this after every denial response (an HTTP answer to a
# refused handshake): a false alarm on each refused token.
_FALSE_ALARM = "ASGI callable returned without completing handshake."


def redact(text: str) -> str:
    """``text`` with the value of every token query parameter replaced."""
    return _TOKEN.sub(r"\1<redacted>", text)


class RedactTokens(logging.Filter):
    """Redacts tokens in URLs from every log line: its message, arguments and extra fields.

    On the handler, so it covers every logger: uvicorn's handshake lines carry the query string, and an
    error's text may quote a URL.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            # Only without arguments: a "%s" right after "token=" would be taken for its value.
            record.msg = redact(record.msg)
        for key, value in list(record.__dict__.items()):
            if key not in _RESERVED and isinstance(value, str):
                record.__dict__[key] = redact(value)
        return True


class UvicornLogFilter(logging.Filter):
    """Drops uvicorn's false alarm after every refused WebSocket handshake."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _FALSE_ALARM


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id:
            entry["request_id"] = request_id
        trace_id = current_trace_id()
        if trace_id:
            entry["trace_id"] = trace_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    """Readable one-line logs for a developer's terminal (``LOG_FORMAT=console``)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        request_id = current_request_id()
        rid = f" [{request_id}]" if request_id else ""
        extras = " ".join(
            f"{k}={v}" for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")
        )
        line = f"{ts} {record.levelname:<7} {self.service:<12}{rid} {record.getMessage()}"
        if extras:
            line += f"  {extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger (ours, uvicorn's, SQLAlchemy's) through one formatter on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else ConsoleFormatter(service))
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Our own access log (shared.web.metrics) carries the route and request id; uvicorn's would repeat it.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every outgoing request at INFO (service calls, JWKS fetches by readiness probes).
    logging.getLogger("httpx").setLevel(logging.WARNING)
