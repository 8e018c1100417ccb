"""Reading the served OpenAPI and AsyncAPI documents as an integrator's tools do: references, schemas, messages."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import import_module
from typing import Any

import httpx
from fastapi.routing import APIRoute
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

#: Every service, each with its app factory in `services.<name>.app`.
SERVICES = ("registry", "household", "referral", "reporting")
#: The base URI the AsyncAPI document gets as a JSON Schema resource, so `#/components/...` resolves within it.
ASYNCAPI_URI = "urn:posyandu:asyncapi"


async def served(service: str, path: str) -> dict[str, Any]:
    """A document as the real app serves it (no lifespan: documents need neither database nor broker)."""
    app = import_module(f"services.{service}.app").create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{service}") as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def references(node: Any, at: str = "#") -> Iterator[tuple[str, str]]:
    """Every `$ref` in a document, with the JSON pointer of the object that holds it."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield at, value
            else:
                yield from references(value, f"{at}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from references(value, f"{at}/{index}")


def resolve(document: dict[str, Any], ref: str) -> Any:
    """The target of a local reference (`#/a/b`); KeyError if there is none."""
    if not ref.startswith("#/"):
        raise KeyError(f"not a local reference: {ref}")
    node: Any = document
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise KeyError(f"{ref}: nothing at {token!r}")
    return node


def dangling(document: dict[str, Any]) -> list[str]:
    """The references of a document that point at nothing, as `where -> ref`."""
    missing = []
    for where, ref in references(document):
        try:
            resolve(document, ref)
        except KeyError:
            missing.append(f"{where} -> {ref}")
    return missing


def messages_by_type(document: dict[str, Any]) -> dict[str, str]:
    """Event type (the message's `name`) -> the message's id in components."""
    return {message["name"]: message_id for message_id, message in document["components"]["messages"].items()}


def message_validator(document: dict[str, Any], message_id: str) -> Draft202012Validator:
    """A validator of one message's payload, its `$ref`s resolved within the whole AsyncAPI document."""
    registry: Registry[Any] = Registry().with_resource(
        ASYNCAPI_URI, Resource.from_contents(document, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{ASYNCAPI_URI}#/components/messages/{message_id}/payload"},
                                registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI keeps them nested, with their full paths)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)
