"""When an upstream is slow, down or broken, and when a body is too big: problems, never hangs."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from gateway_testing import Recorder, raw_upstream
from shared.testing.servers import Running

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def metric(text: str, name: str, **labels: str) -> float:
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    for line in text.splitlines():
        match = re.match(rf"^{name}{{(.*)}} (\S+)$", line)
        if match and wanted <= set(match.group(1).split(",")):
            return float(match.group(2))
    return 0.0


@pytest.fixture(scope="module")
def broken_gateway(start_gateway: Callable[..., Running], users_upstream: Running) -> Iterator[str]:
    """orders: an upstream that speaks broken HTTP; users: the normal stand-in."""
    with raw_upstream() as orders:
        yield start_gateway(users_url=users_upstream.url, orders_url=orders, upstream_timeout=1.0).url


def test_a_declared_body_over_1_mib_is_413_and_never_forwarded(
    client: httpx.Client, auth: dict[str, str], users_recorder: Recorder
) -> None:
    before = len(users_recorder.requests)
    response = client.post(
        "/api/v1/users/me", content=b"x" * (1024 * 1024 + 1), headers={**auth, "Content-Type": "text/plain"}
    )
    problem(response, 413)
    assert len(users_recorder.requests) == before


def test_a_chunked_body_over_1_mib_is_413_and_never_forwarded(
    client: httpx.Client, auth: dict[str, str], users_recorder: Recorder
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(17):
            yield b"y" * 65536

    before = len(users_recorder.requests)
    problem(client.post("/api/v1/auth/register", content=chunks(), headers=auth), 413)
    assert len(users_recorder.requests) == before


def test_a_body_of_exactly_1_mib_passes(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.put("/api/v1/users/me", content=b"z" * (1024 * 1024), headers=auth)
    assert response.json()["body_length"] == 1024 * 1024


def test_a_slow_upstream_is_504(client: httpx.Client, auth: dict[str, str]) -> None:
    body = problem(client.get("/api/v1/users/slow", params={"seconds": "3"}, headers=auth), 504)
    assert "did not answer in time" in str(body["detail"])
    # The connection that timed out is not reused: the next call is answered normally.
    assert client.get("/api/v1/users/me", headers=auth).status_code == 200


def test_a_down_upstream_is_503_with_retry_after(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.get("/api/v1/notifications", headers=auth)
    problem(response, 503)
    assert int(response.headers["retry-after"]) > 0


def test_upstream_errors_are_counted_by_upstream_and_kind(client: httpx.Client, auth: dict[str, str]) -> None:
    before = metric(client.get("/metrics").text, "gateway_upstream_errors_total", upstream="notification")
    client.get("/api/v1/notifications/unread-count", headers=auth)
    after = client.get("/metrics").text
    assert (
        metric(after, "gateway_upstream_errors_total", upstream="notification", kind="unavailable") > before
    )


@pytest.mark.parametrize("path", ["/api/v1/orders/garbage", "/api/v1/orders/drop"])
def test_an_upstream_that_breaks_http_is_502(broken_gateway: str, auth: dict[str, str], path: str) -> None:
    with httpx.Client(base_url=broken_gateway) as client:
        problem(client.get(path, headers=auth), 502)


def test_a_body_ended_by_closing_the_connection_is_passed_on(
    broken_gateway: str, auth: dict[str, str]
) -> None:
    with httpx.Client(base_url=broken_gateway) as client:
        response = client.get("/api/v1/orders/eof", headers=auth)
    assert response.status_code == 200
    assert response.text == "until the end"
