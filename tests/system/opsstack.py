"""The whole system as processes for the operations tests, and a tiny OTLP/HTTP receiver for their spans.

``start_everything`` does what ``make run`` does (``shared.devstack.Stack``), with the independent
steps in parallel: each service's bootstrap and migrations, then orders, notification and realtime
once users (whose keys they verify tokens with) is ready, then the gateway.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from shared.devstack import COMPONENTS, Stack

from .conftest import free_port

PASSWORD = "long enough password"


async def _unmigrated(database_url: str, names: list[str]) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return [
            name
            for name in names
            if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{name}.alembic_version")
        ]
    finally:
        await conn.close()


def start_everything(stack: Stack) -> None:
    # The run's database is new; a schema with a version table was migrated by another module's stack
    # in this run, from this code. Skipping it saves two Python starts per service.
    names = [c.name for c in stack.components if c.has_database]
    with ThreadPoolExecutor(max_workers=4) as pool:

        def prepare(name: str) -> None:
            stack.run_step(name, "bootstrap-db")
            stack.run_step(name, "migrate")

        list(pool.map(prepare, asyncio.run(_unmigrated(stack.database_url, names))))
    first, last = "users", "gateway"
    middle = [c.name for c in stack.components if c.name not in (first, last)]
    for group in ([first], middle, [last]):
        for name in group:
            stack.start(name)
        for name in group:
            stack.wait_ready(name, timeout=60)


@contextmanager
def running_stack(
    database_url: str,
    amqp_url: str,
    signing_key_file: Path,
    log_dir: Path,
    *,
    env: dict[str, str] | None = None,
    component_env: dict[str, dict[str, str]] | None = None,
    components: Sequence[str] | None = None,
) -> Iterator[Stack]:
    """``components`` (every one unless named) as processes on ``database_url``, started as ``make run``
    starts them; ``env`` adds to or replaces the test settings below."""
    stack = Stack(
        database_url=database_url,
        amqp_url=amqp_url,
        components=[c for c in COMPONENTS if components is None or c.name in components],
        ports={c.name: free_port() for c in COMPONENTS},
        env={
            "USERS_JWT_PRIVATE_KEY_FILE": str(signing_key_file),
            "APP_ENV": "test",
            "RATE_LIMIT_SCALE": "1000",
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        },
        component_env=component_env or {},
        log_dir=log_dir,
    )
    try:
        start_everything(stack)
        yield stack
    finally:
        stack.stop_all()


def register(gateway: str) -> tuple[str, dict[str, str]]:
    """A new account through the gateway: its id and an Authorization header."""
    email = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    created = httpx.post(
        gateway + "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": "Ops"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    token = httpx.post(
        gateway + "/api/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD},
        timeout=10,
    )
    assert token.status_code == 200, token.text
    return created.json()["id"], {"Authorization": f"Bearer {token.json()['access_token']}"}


# --- spans --------------------------------------------------------------------------------------

SPAN_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    error: bool = False


SCALARS = ("string_value", "int_value", "bool_value", "double_value")


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    return getattr(value, which) if which in SCALARS else None


def decode(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest.FromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        service=str(resource.get("service.name")),
                        name=span.name,
                        kind=SPAN_KINDS.get(span.kind, str(span.kind)),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        error=span.status.code == 2,
                    )
                )
    return spans


class OtlpReceiver:
    """What an OpenTelemetry collector does for these tests: accepts OTLP/HTTP protobuf spans, keeps them."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 200
                try:
                    spans = decode(body) if self.path == "/v1/traces" else None
                except Exception:
                    spans, status = None, 400
                if spans is None:
                    status = 404 if status == 200 else status
                else:
                    with receiver._lock:
                        receiver.spans.extend(spans)
                        receiver.requests += 1
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_ENDPOINT (exporters append /v1/traces)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [span for span in self.spans if span.trace_id == trace_id]
