"""Cursor pagination: `?limit=` (default 50, max 500) and an opaque `?cursor=` over a keyset."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel

from shared.errors import BadRequest

T = TypeVar("T")

LimitParam = Annotated[int, Query(ge=1, le=500, description="Page size (1-500).")]
CursorParam = Annotated[str | None, Query(max_length=512, description="Opaque cursor from `next_cursor`.")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values), default=str)).decode().rstrip("=")


#: PostgreSQL's bigint: a keyset integer past it would fail in the driver instead of being refused here.
_BIGINT = range(-(2**63), 2**63)


def timestamp(value: str) -> datetime:
    """A keyset time as `encode_cursor` wrote it (ISO 8601 with its offset); ValueError for anything else."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("a keyset time carries its offset")
    try:
        # The driver sends it in UTC: a time whose UTC falls outside the years 1-9999 would fail there, as a 5xx.
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("a keyset time out of range") from exc


def decode_cursor(cursor: str | None, *types: Callable[[Any], Any]) -> tuple[Any, ...] | None:
    """The keyset values of a cursor, converted by the given types (`str`, `int`, `uuid.UUID`, `timestamp`);
    400 for anything not ours."""
    if cursor is None:
        return None
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(types):
            raise ValueError("wrong shape")
        values = tuple(kind(value) for kind, value in zip(types, raw, strict=True))
        if any(isinstance(value, int) and value not in _BIGINT for value in values):
            raise ValueError("integer out of range")
        return values
    # AttributeError: uuid.UUID() of a list or a number, for a cursor that decodes to the wrong types.
    except (ValueError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
        raise BadRequest("The cursor is not valid; use the next_cursor of a previous page.") from exc


def page_of(rows: list[Any], limit: int, key: Any) -> tuple[list[Any], str | None]:
    """Given up to limit+1 rows, the page and the cursor of the next one (key gives a row's keyset)."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(*key(rows[-1]))
    return rows, None
