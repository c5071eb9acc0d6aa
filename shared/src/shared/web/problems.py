"""Render errors as RFC 9457 problem+json: ours, the framework's and validation errors."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from shared.db.errors import is_data_error, is_unavailable
from shared.errors import AppError, ValidationFailed
from shared.observability.request_id import current_request_id

PROBLEM_JSON = "application/problem+json"
# Seconds a client is told to wait after a 503 for a busy or unreachable database.
DATABASE_RETRY_AFTER = 2

log = logging.getLogger(__name__)


def problem_body(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_slug: str | None = None,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    phrase = title or HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"https://errors.example.com/{type_slug}" if type_slug else "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail or phrase,
        "instance": instance,
        "request_id": current_request_id(),
    }
    if errors is not None:
        body["errors"] = errors
    if extensions:
        body.update({k: v for k, v in extensions.items() if k not in body})
    return body


def problem_response(
    status: int,
    *,
    headers: Mapping[str, str] | None = None,
    **fields: Any,
) -> Response:
    return Response(
        content=orjson.dumps(problem_body(status, **fields)),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def _loc(loc: Sequence[Any]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo the submitted value: it may be a password.
    return [
        {"loc": _loc(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))}
        for err in exc.errors()
    ]


def _slug_for(status: int) -> str:
    return {401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed"}.get(
        status, "http"
    )


def install_error_handlers(app: FastAPI) -> None:
    """Render our errors and the framework's as problem+json (unexpected ones: UnhandledErrorMiddleware)."""

    async def on_app_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)
        return problem_response(
            exc.status,
            headers=exc.headers,
            title=exc.title,
            detail=exc.detail,
            type_slug=exc.type_slug,
            instance=request.url.path,
            errors=exc.errors if isinstance(exc, ValidationFailed) else None,
        )

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        malformed = any(e["type"] == "json_invalid" for e in errors)
        return problem_response(
            422,
            title="Unprocessable Content",
            detail="The request body is not valid JSON." if malformed else "The request is not valid.",
            type_slug="validation",
            instance=request.url.path,
            errors=errors,
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(
            exc.status_code,
            headers=exc.headers,
            detail=detail,
            type_slug=_slug_for(exc.status_code),
            instance=request.url.path,
        )

    async def on_database_error(request: Request, exc: Exception) -> Response:
        if is_unavailable(exc):
            # Not the client's fault and not a bug: overload or an outage, which the client may retry.
            log.warning("database unavailable", extra={"error": type(exc).__name__, "path": request.url.path})
            return problem_response(
                503,
                headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
                title="Service Unavailable",
                detail="The service's database cannot take the request now; try again shortly.",
                type_slug="database-unavailable",
                instance=request.url.path,
            )
        # Validation should have refused the value already; this keeps one that slipped through a 4xx.
        if not is_data_error(exc):
            raise exc
        return problem_response(
            422,
            title="Unprocessable Content",
            detail="The request holds a value that cannot be stored.",
            type_slug="validation",
            instance=request.url.path,
            errors=[{"loc": ["request"], "msg": "A value cannot be stored", "type": "data_error"}],
        )

    app.add_exception_handler(AppError, on_app_error)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(PoolTimeout, on_database_error)
    app.add_exception_handler(ConnectionError, on_database_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


# What every problem document holds (contract section 3), for the OpenAPI document.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": ["string", "null"]},
        "request_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}}}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Say in the OpenAPI document what the error handlers answer: every 4xx/5xx is problem+json, and
    each operation lists the rejections any request to it may get.

    FastAPI documents its 422 as ``application/json`` with its own shape, and nothing else; a client
    (or a schema-driven fuzzer) would otherwise meet answers the document never mentions.
    """
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    schema["components"]["schemas"].pop("HTTPValidationError", None)
    schema["components"]["schemas"].pop("ValidationError", None)
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            expected = {
                "422": "The request is not valid",
                "503": "Overloaded, or a service or database it needs is down: retry after Retry-After",
            }
            if operation.get("security"):
                expected |= {"401": "No valid access token", "403": "Not allowed for this caller"}
            if "{" in path:
                expected["404"] = "No such resource (or not the caller's)"
            if "requestBody" in operation:
                expected |= {"400": "The body cannot be parsed", "413": "The body is over 1 MiB"}
            for status, description in expected.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if status[0] in "45" and not _documents_its_own_body(response):
                    response["content"] = _problem_response(response.get("description", ""))["content"]
    return schema


def _documents_its_own_body(response: dict[str, Any]) -> bool:
    """True for a response that already says what it carries (the token endpoint's RFC 6749 errors)."""
    content = response.get("content") or {}
    return any(
        media != "application/json" or "HTTPValidationError" not in str(body.get("schema", ""))
        for media, body in content.items()
        if body.get("schema")
    )


def install_problem_docs(app: FastAPI) -> None:
    """Post-process the app's generated OpenAPI document with ``document_problems``, once."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
