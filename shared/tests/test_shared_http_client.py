"""``ServiceClient``: httpx's client for calls between services, with no cookie store."""

from __future__ import annotations

import httpx
import pytest

from shared.http import ServiceClient


def cookie_setting_upstream(seen: list[httpx.Request]) -> httpx.MockTransport:
    """Records every request; every answer tries to set a session cookie."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"set-cookie": "session=of-user-a; Path=/"}, json={"ok": True})

    return httpx.MockTransport(answer)


async def test_a_cookie_set_on_one_call_never_rides_on_the_next() -> None:
    seen: list[httpx.Request] = []
    async with ServiceClient(base_url="http://users", transport=cookie_setting_upstream(seen)) as client:
        first = await client.get("/internal/users/a")
        second = await client.send(httpx.Request("GET", "http://users/internal/users/b"))
        assert first.json() == second.json() == {"ok": True}
        assert not client.cookies
    assert [request.headers.get("cookie") for request in seen] == [None, None]


async def test_httpx_s_own_client_would_carry_it() -> None:
    """What ``ServiceClient`` prevents: the default client sends user a's cookie on user b's call."""
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(base_url="http://users", transport=cookie_setting_upstream(seen)) as client:
        await client.get("/internal/users/a")
        await client.get("/internal/users/b")
    assert seen[1].headers.get("cookie") == "session=of-user-a"


def test_cookies_cannot_be_given_to_it() -> None:
    with pytest.raises(TypeError, match="no cookies"):
        ServiceClient(cookies={"session": "x"})
    client = ServiceClient()
    with pytest.raises(TypeError, match="no cookies"):
        client.cookies = {"session": "x"}
    with pytest.raises(TypeError, match="no cookies"):
        client.cookies["session"] = "x"
    assert not client.cookies


async def test_everything_else_is_httpx_s_client() -> None:
    seen: list[httpx.Request] = []
    async with ServiceClient(
        base_url="http://users", headers={"x-service-token": "t"}, transport=cookie_setting_upstream(seen)
    ) as client:
        assert isinstance(client, httpx.AsyncClient)
        response = await client.post("/internal/echo", json={"a": 1}, params={"q": "1"})
    assert response.status_code == 200
    assert str(seen[0].url) == "http://users/internal/echo?q=1"
    assert seen[0].headers["x-service-token"] == "t"
    assert seen[0].content == b'{"a":1}'
