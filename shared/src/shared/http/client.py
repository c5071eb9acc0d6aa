"""``ServiceClient``: the ``httpx.AsyncClient`` of service-to-service calls, which keeps no cookies.

One client serves every request a service handles, on behalf of many users. httpx's default client
stores each answer's ``Set-Cookie`` and sends it on every later call to that host: a cookie set on one
user's call would ride along on the next user's. A service API authenticates with tokens, never with
cookies, so this client's cookie store holds nothing, refuses cookies given to it, and does no work
per answer. That work is not small: httpx builds ``urllib`` request and response stand-ins for the
standard library's jar on every answer, about a quarter of a call's CPU on ``PoolTransport``
(``python -m bench.transport_bench``). Everything else is httpx's ``AsyncClient`` unchanged.
"""

from __future__ import annotations

from typing import Any

import httpx


class _NoCookies(httpx.Cookies):
    """Always empty: answers' cookies are dropped, none is ever added to a request."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        raise TypeError("a service client keeps no cookies")


class ServiceClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` for calls between services; takes the same arguments but ``cookies``."""

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("cookies"):
            raise TypeError("a service client keeps no cookies")
        super().__init__(**kwargs)
        self._no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        if cookies:
            raise TypeError("a service client keeps no cookies")
