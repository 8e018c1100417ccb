"""JSON responses that carry headers (ETag, Location) beside a validated body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.responses import Response


def json_response(body: BaseModel | dict[str, Any], status_code: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    import orjson

    content = body.model_dump_json().encode() if isinstance(body, BaseModel) else orjson.dumps(body)
    return Response(content, status_code=status_code, media_type="application/json", headers=headers)
