"""``/console``: a static page on the API's origin, public, self-contained and kept out of the API docs."""

from __future__ import annotations

import re

import httpx
import pytest

MARKUP_WRITERS = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write")
IMPORT = re.compile(r'^import [^;]*? from "\./([a-z]+\.js)";$', re.MULTILINE)


def console_scripts(client: httpx.Client) -> dict[str, str]:
    """console.js and every module it imports, however deep, by name."""
    found: dict[str, str] = {}
    pending = ["console.js"]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        answer = client.get(f"/console/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
        found[name] = answer.text
        pending += IMPORT.findall(answer.text)
    return found


def test_the_console_is_served_without_a_token_and_loads_only_its_own_assets(client: httpx.Client) -> None:
    page = client.get("/console")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    # Works offline: nothing is loaded from another host.
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(assets) == ["/console/console.css", "/console/console.js"]
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert response.headers["content-security-policy"] == page.headers["content-security-policy"]


def test_the_scripts_never_write_markup(client: httpx.Client) -> None:
    scripts = console_scripts(client)
    assert sorted(scripts) == ["avatars.js", "console.js", "dom.js", "jobs.js"]
    page = client.get("/console")
    for name, text in scripts.items():
        # Server data reaches the page as text only.
        assert not MARKUP_WRITERS.search(text), name
        assert (
            client.get(f"/console/{name}").headers["content-security-policy"]
            == page.headers["content-security-policy"]
        )


def test_the_policy_allows_this_origin_and_the_pages_own_avatar_blobs_only(client: httpx.Client) -> None:
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in client.get("/console").headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    # No inline script or eval: a value that slipped into the page as markup could still not run.
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    # blob: is the avatars the page fetched with its token; no other host, no data: URLs.
    assert policy["img-src"] == "'self' blob:"


@pytest.mark.parametrize("path", ["/console/other.js", "/console/__init__.py", "/console/%2e%2e/app.py"])
def test_nothing_else_is_served_from_the_console_folder(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_console_is_not_part_of_the_api_description(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]


@pytest.mark.parametrize(
    ("path", "script"), [("/console/verify", "account.js"), ("/console/reset", "account.js")]
)
def test_the_account_link_pages_are_served_without_a_token(
    client: httpx.Client, path: str, script: str
) -> None:
    page = client.get(path, params={"token": "abc"})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    # The token in the address must not leak to another site through the Referer header.
    assert page.headers["referrer-policy"] == "no-referrer"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert f"/console/{script}" in assets
    js = client.get(f"/console/{script}")
    assert js.status_code == 200
    assert not MARKUP_WRITERS.search(js.text)
