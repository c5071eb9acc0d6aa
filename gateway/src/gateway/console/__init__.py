"""``/console``: a small page for people to try the system in a browser (static files, no build step).

It is served by the gateway so that it shares the API's origin: its ``fetch`` calls and its WebSocket
need no CORS, and the browser keeps the tokens in the page's memory only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.resources import files

from fastapi import APIRouter
from starlette.responses import Response

CONSOLE_URL = "/console"
_JS = "text/javascript; charset=utf-8"
_HTML = "text/html; charset=utf-8"
# What the pages load, each at /console/<name>: the console's ES modules (console.js imports the
# others), its stylesheet, and the script of the pages behind the links in account e-mails.
ASSETS = {
    "console.js": _JS,
    "dom.js": _JS,
    "avatars.js": _JS,
    "jobs.js": _JS,
    "console.css": "text/css; charset=utf-8",
    "account.js": _JS,
}
_FILES = {"index.html": _HTML, "verify.html": _HTML, "reset.html": _HTML, **ASSETS}
# Everything the page loads comes from here; it talks only to this origin (fetch and WebSocket). Avatars
# need the bearer token, so the page fetches them and shows them from blob: URLs (img-src blob:).
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def console_router() -> APIRouter:
    """The pages and their assets, read once when the app is built."""
    folder = files(__package__)
    assets = {name: (folder.joinpath(name).read_bytes(), media) for name, media in _FILES.items()}
    router = APIRouter(include_in_schema=False)

    def serve(name: str) -> Response:
        body, media_type = assets[name]
        return Response(body, media_type=media_type, headers=_HEADERS)

    @router.get(CONSOLE_URL)
    async def console() -> Response:
        """The browser console: register, log in, order, pay, and watch events arrive live."""
        return serve("index.html")

    @router.get(CONSOLE_URL + "/verify")
    async def verify_page() -> Response:
        """Confirms an e-mail address with the token of the verification e-mail's link."""
        return serve("verify.html")

    @router.get(CONSOLE_URL + "/reset")
    async def reset_page() -> Response:
        """Sets a new password with the token of the reset e-mail's link."""
        return serve("reset.html")

    for name in ASSETS:
        router.add_api_route(f"{CONSOLE_URL}/{name}", _asset(serve, name), methods=["GET"])
    return router


def _asset(serve: Callable[[str], Response], name: str) -> Callable[[], Awaitable[Response]]:
    async def asset() -> Response:
        return serve(name)

    asset.__name__ = "console_" + name.replace(".", "_")
    return asset
