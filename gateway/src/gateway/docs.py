"""``/openapi.json`` (aggregated from the upstreams) and Swagger UI at ``/docs``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.responses import HTMLResponse, JSONResponse

from gateway.runtime import GatewayRuntime

OPENAPI_URL = "/openapi.json"
DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def docs_router(runtime: GatewayRuntime) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(OPENAPI_URL)
    async def openapi() -> JSONResponse:
        """The public API of every reachable service, as routed by the gateway."""
        return JSONResponse(await runtime.openapi.document())

    @router.get(DOCS_URL)
    async def swagger_ui(request: Request) -> HTMLResponse:
        """Swagger UI; its Authorize button logs in through the users token endpoint."""
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title="API documentation",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @router.get(OAUTH2_REDIRECT_URL)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    return router
