"""One API description for the whole system, with a working Authorize button in Swagger UI."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from gateway.openapi_merge import merge
from gateway.routing import RoutingTable
from gateway.settings import DEFAULT_ROUTES
from gateway_testing import standin_openapi
from shared.jobs.router import jobs_router

OAUTH2: dict[str, list[str]] = {"OAuth2PasswordBearer": []}


def test_the_aggregated_document_lists_public_paths_with_the_password_flow(client: httpx.Client) -> None:
    doc: dict[str, Any] = client.get("/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert list(doc["components"]["securitySchemes"]) == ["OAuth2PasswordBearer"]
    paths = doc["paths"]
    assert {"/api/v1/users/me", "/api/v1/users/{item_id}", "/api/v1/orders/{item_id}"} <= set(paths)
    assert not [p for p in paths if "internal" in p or p in ("/healthz", "/readyz", "/metrics")]
    assert paths["/api/v1/users/me"]["get"]["security"] == [OAUTH2]
    assert "security" not in paths["/api/v1/auth/token"]["post"]
    # The unreachable notification service is skipped, and said to be.
    assert "notification" in doc["info"]["description"]


def test_colliding_components_are_renamed_with_their_references(client: httpx.Client) -> None:
    doc: dict[str, Any] = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert schemas["Item"]["title"] == "users item"
    assert schemas["OrdersItem"]["title"] == "orders item"
    orders_ref = doc["paths"]["/api/v1/orders/{item_id}"]["get"]["responses"]["200"]["content"]
    assert orders_ref["application/json"]["schema"]["$ref"] == "#/components/schemas/OrdersItem"


def test_identical_components_are_shared_not_duplicated() -> None:
    table = RoutingTable(
        DEFAULT_ROUTES, {n: "http://x" for n in ("users", "orders", "notification", "realtime", "graphql")}
    )
    users = standin_openapi("users")
    orders = standin_openapi("orders")
    orders["components"]["schemas"]["Item"] = users["components"]["schemas"]["Item"]
    merged = merge([("users", users), ("orders", orders)], table, title="t", version="1")
    assert list(merged["components"]["schemas"]) == ["Item"]


def test_swagger_ui_is_served_with_its_oauth2_redirect(client: httpx.Client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "swagger-ui" in page.text
    assert "/openapi.json" in page.text
    assert "oauth2RedirectUrl" in page.text
    assert client.get("/docs/oauth2-redirect").status_code == 200


def test_each_services_jobs_api_is_in_the_aggregated_document() -> None:
    names = ("users", "orders", "notification", "realtime")
    table = RoutingTable(DEFAULT_ROUTES, {n: "http://x" for n in (*names, "graphql")})
    documents = []
    for name in names:
        app = FastAPI(title=name)
        app.include_router(jobs_router(name))
        documents.append((name, app.openapi()))
    merged = merge(documents, table, title="t", version="1")
    for name in names:
        prefix = f"/api/v1/admin/jobs/{name}"
        assert merged["paths"][prefix]["get"]["security"] == [OAUTH2]
        assert set(merged["paths"][f"{prefix}/{{name}}/schedule"]) == {"put"}
        assert {f"{prefix}/{{name}}/{action}" for action in ("pause", "resume", "run", "runs")} <= set(
            merged["paths"]
        )
