"""Text PostgreSQL can store: a `text` value cannot hold a NUL character (U+0000), so every request is checked for
one at the edge, before any service code, and refused with a 422 naming where it was. The file parsers (region list,
household import) check their own fields, since their bodies are not JSON."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute

from shared.errors import ValidationFailed, nul_error

NUL = "\x00"
#: How many offending places a 422 lists.
MAX_REPORTED = 100


def _shown(name: str) -> str:
    return name.replace(NUL, "\\u0000")


def nul_locations(value: Any, where: str) -> list[str]:
    """The dotted paths (`body.members.0.name`) of the strings and keys holding a NUL, in a parsed JSON value.
    Iterative: a body nested as deep as the JSON parser allows must not exhaust the call stack here."""
    found: list[str] = []
    pending: list[tuple[str, Any]] = [(where, value)]
    while pending and len(found) < MAX_REPORTED:
        path, item = pending.pop()
        if isinstance(item, str):
            if NUL in item:
                found.append(path)
        elif isinstance(item, dict):
            for key, child in item.items():
                if NUL in key:
                    found.append(f"{path}.{_shown(key)}")
                pending.append((f"{path}.{_shown(key)}", child))
        elif isinstance(item, list):
            pending.extend((f"{path}.{i}", child) for i, child in enumerate(item))
    return sorted(found)


async def refuse_nul(request: Request) -> None:
    """An app-wide dependency: 422 for a NUL in a path or query parameter, a header or a JSON body's strings."""
    found = [f"path.{name}" for name, value in request.path_params.items() if NUL in str(value)]
    found += [f"query.{_shown(name)}" for name, value in request.query_params.multi_items() if NUL in name + value]
    found += [f"header.{name}" for name, value in request.headers.items() if NUL in value]
    route = request.scope.get("route")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # Only where FastAPI parsed the body as JSON (request.json() is then cached): a route that streams its body
    # (the household import) or reads it as text (the region list) checks its own fields.
    if isinstance(route, APIRoute) and route.body_field is not None and (
            content_type == "application/json" or content_type.endswith("+json")) and await request.body():
        found += nul_locations(await request.json(), "body")
    if found:
        raise ValidationFailed("The request holds text with a NUL character, which cannot be stored.",
                               errors=[nul_error(field) for field in found[:MAX_REPORTED]])
