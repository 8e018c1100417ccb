"""JSON Schemas of pydantic models laid out as a document's components (OpenAPI, AsyncAPI).

pydantic nests the schemas a model refers to under `$defs`, which a `#/components/schemas/...` reference cannot
reach: they are moved into the document's components instead, each once.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def add_component(components: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    """Put a schema into components; the same name for another schema is a bug, not something to overwrite."""
    if components.setdefault(name, schema) != schema:
        raise ValueError(f"two different schemas are named {name}")


def model_schema(model: type[BaseModel], components: dict[str, Any], ref_prefix: str) -> dict[str, Any]:
    """The model's JSON schema, the schemas it refers to moved into `components` (found at `ref_prefix` + name)."""
    schema = model.model_json_schema(ref_template=ref_prefix + "{model}")
    for name, sub in schema.pop("$defs", {}).items():
        add_component(components, name, sub)
    return schema
