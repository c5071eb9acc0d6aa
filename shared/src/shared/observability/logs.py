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


_TOKEN = re.compile(r"(?i)(token=)[^&\s\"]+")
# uvicorn's sans-I/O WebSocket protocol logs this after every denial response (an HTTP answer to a
# refused handshake): a false alarm on each refused token.
_FALSE_ALARM = "ASGI callable returned without completing handshake."


class UvicornLogFilter(logging.Filter):
    """Redacts tokens from uvicorn's handshake lines (browsers put them in the query string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _FALSE_ALARM:
            return False
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                _TOKEN.sub(r"\1<redacted>", a) if isinstance(a, str) else a for a in record.args
            )
        elif isinstance(record.msg, str) and "token=" in record.msg.lower():
            record.msg = _TOKEN.sub(r"\1<redacted>", record.msg)
        return True


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
