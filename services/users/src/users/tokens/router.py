"""The OAuth 2.0 endpoints (RFC 6749 token, RFC 7009 revocation) and the JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.responses import JSONResponse, Response

from shared.text import has_control_characters
from users.dependencies import ClientIpDep, ResourcesDep, TokensDep
from users.tokens.errors import NO_STORE, OAuthError, OAuthErrorBody
from users.tokens.schemas import REVOKE_FORM, TOKEN_FORM, TokenResponse
from users.tokens.service import TokenPair

router = APIRouter(tags=["auth"])

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Far above any real e-mail or password; longer values are refused before any database work.
MAX_USERNAME, MAX_SECRET = 320, 4096
ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": OAuthErrorBody}, 429: {"model": OAuthErrorBody}}


async def _form(request: Request) -> FormData:
    """The form, or an empty one for any other body: the grant checks then say what is missing."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in FORM_TYPES:
        return FormData()
    try:
        return await request.form()
    except (HTTPException, MultiPartException) as exc:
        # Starlette's answer to a malformed body would be problem+json; RFC 6749 wants its own shape.
        raise OAuthError("invalid_request", "The form body cannot be parsed.") from exc


def _param(form: FormData, name: str) -> str | None:
    values = form.getlist(name)
    if len(values) > 1:
        raise OAuthError("invalid_request", f"The parameter {name} is repeated.")
    if not values or not isinstance(values[0], str) or values[0] == "":
        return None
    if has_control_characters(values[0]):
        # Refused before it reaches a query: Postgres cannot even compare a string holding U+0000.
        raise OAuthError("invalid_request", f"The parameter {name} holds control characters.")
    return values[0]


def _required(form: FormData, name: str, max_length: int = MAX_SECRET) -> str:
    value = _param(form, name)
    if value is None:
        raise OAuthError("invalid_request", f"The parameter {name} is required.")
    if len(value) > max_length:
        raise OAuthError("invalid_request", f"The parameter {name} is too long.")
    return value


def _token_response(pair: TokenPair) -> JSONResponse:
    body = TokenResponse(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )
    return JSONResponse(body.model_dump(), headers=NO_STORE)


@router.post("/api/v1/auth/token", response_model=TokenResponse, responses=ERRORS, openapi_extra=TOKEN_FORM)
async def token(request: Request, tokens: TokensDep, ip: ClientIpDep) -> JSONResponse:
    """Exchange an e-mail and password, or a refresh token, for new tokens (RFC 6749)."""
    form = await _form(request)
    grant_type = _param(form, "grant_type")
    if grant_type == "password":
        username, password = _required(form, "username", MAX_USERNAME), _required(form, "password")
        return _token_response(await tokens.password_grant(username, password, ip))
    if grant_type == "refresh_token":
        return _token_response(await tokens.refresh_grant(_required(form, "refresh_token")))
    if grant_type is None:
        raise OAuthError("unsupported_grant_type", "The form parameter grant_type is required.")
    raise OAuthError("unsupported_grant_type", "Supported grant types: password, refresh_token.")


@router.post(
    "/api/v1/auth/revoke",
    response_class=Response,
    responses={200: {"description": "Revoked, or there was nothing to revoke"}, 400: ERRORS[400]},
    openapi_extra=REVOKE_FORM,
)
async def revoke(request: Request, tokens: TokensDep) -> Response:
    """Revoke a refresh token and the whole session it belongs to (RFC 7009)."""
    form = await _form(request)
    token = _required(form, "token")
    _param(form, "token_type_hint")  # ignored, but refused like any parameter when malformed
    await tokens.revoke(token)
    return Response(status_code=200, headers=NO_STORE)


@router.get("/.well-known/jwks.json", tags=["keys"])
async def jwks(resources: ResourcesDep) -> JSONResponse:
    """The public keys that verify access tokens (RFC 7517)."""
    # Short caching: verifiers refetch on an unknown kid anyway, so a rotation is never blocked.
    return JSONResponse(resources.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})
