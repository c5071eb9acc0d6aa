"""Merging the upstreams' OpenAPI documents into the one the gateway publishes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.routing import RoutingTable

SECURITY_SCHEME = "OAuth2PasswordBearer"
TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_REF_PREFIX = "#/components/"


def security_schemes() -> dict[str, Any]:
    """The password flow Swagger UI's Authorize button uses (RFC 6749 4.3, the users token endpoint)."""
    return {
        SECURITY_SCHEME: {
            "type": "oauth2",
            "description": "Log in with e-mail and password; the access token is sent as a Bearer token.",
            "flows": {"password": {"tokenUrl": TOKEN_URL, "scopes": {}}},
        }
    }


def _public_paths(doc: dict[str, Any], upstream: str, table: RoutingTable) -> dict[str, Any]:
    """Only what the gateway routes to this upstream, with the gateway's security requirements."""
    kept: dict[str, Any] = {}
    for path, item in (doc.get("paths") or {}).items():
        route = table.route_for_template(path)
        if route is None or route.upstream != upstream or route.websocket or not isinstance(item, dict):
            continue
        item = dict(item)
        for method, operation in item.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            operation = dict(operation)
            if route.public:
                operation.pop("security", None)
            else:
                operation["security"] = [{SECURITY_SCHEME: []}]
            item[method] = operation
        kept[path] = item
    return kept


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {key: _rewrite_refs(value, renames) for key, value in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref in renames:
            out["$ref"] = renames[ref]
        return out
    if isinstance(node, list):
        return [_rewrite_refs(value, renames) for value in node]
    return node


def _free_name(taken: dict[str, Any], upstream: str, name: str) -> str:
    candidate = f"{upstream.title()}{name}"
    suffix = 2
    while candidate in taken:
        candidate = f"{upstream.title()}{name}{suffix}"
        suffix += 1
    return candidate


def merge(
    documents: Iterable[tuple[str, dict[str, Any]]],
    table: RoutingTable,
    *,
    title: str,
    version: str,
    description: str = "",
) -> dict[str, Any]:
    """One document from ``(upstream name, its /openapi.json)`` pairs.

    A component that two upstreams define differently keeps its name for the first and is renamed
    (``Orders<Name>``) for the next, with every ``$ref`` of that upstream rewritten to match.
    """
    components: dict[str, dict[str, Any]] = {}
    paths: dict[str, Any] = {}
    tags: dict[str, Any] = {}
    for upstream, doc in documents:
        theirs: dict[str, Any] = doc.get("components") or {}
        renames: dict[str, str] = {}
        for section, entries in theirs.items():
            if section == "securitySchemes" or not isinstance(entries, dict):
                continue
            ours = components.setdefault(section, {})
            for name, value in entries.items():
                if name in ours and ours[name] != value:
                    new = _free_name(ours, upstream, name)
                    renames[f"{_REF_PREFIX}{section}/{name}"] = f"{_REF_PREFIX}{section}/{new}"
        for section, entries in theirs.items():
            if section == "securitySchemes" or not isinstance(entries, dict):
                continue
            ours = components[section]
            for name, value in entries.items():
                target = renames.get(f"{_REF_PREFIX}{section}/{name}", f"{_REF_PREFIX}{section}/{name}")
                ours[target.rpartition("/")[2]] = _rewrite_refs(value, renames)
        for path, item in _public_paths(doc, upstream, table).items():
            paths[path] = _rewrite_refs(item, renames)
        for tag in doc.get("tags") or []:
            if isinstance(tag, dict) and "name" in tag:
                tags.setdefault(tag["name"], tag)
    components["securitySchemes"] = security_schemes()
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": dict(sorted(paths.items())),
        "components": components,
    }
    if tags:
        merged["tags"] = list(tags.values())
    return merged
