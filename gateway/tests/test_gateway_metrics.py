"""Metrics label requests by routing-table template and upstream, never by the raw path."""

from __future__ import annotations

import uuid

import httpx


def test_requests_are_labelled_by_template_and_upstream_latency_is_recorded(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    some_id = str(uuid.uuid4())
    assert client.get(f"/api/v1/users/{some_id}", headers=auth).status_code == 200
    text = client.get("/metrics").text
    assert 'route="/api/v1/users/*"' in text
    assert some_id not in text
    assert 'gateway_upstream_request_duration_seconds_count{upstream="users"}' in text
    counts = [
        line
        for line in text.splitlines()
        if line.startswith('gateway_upstream_request_duration_seconds_count{upstream="users"}')
    ]
    assert float(counts[0].split()[-1]) >= 1
    # Every upstream's series exists from the start.
    assert 'gateway_upstream_errors_total{kind="timeout",upstream="realtime"}' in text


def test_unknown_paths_share_one_label(client: httpx.Client) -> None:
    client.get("/no/such/path/" + uuid.uuid4().hex)
    text = client.get("/metrics").text
    assert 'route="<unmatched>"' in text
    assert "/no/such/path" not in text
