"""`Idempotency-Key` for creates: the same key and body replay the first result; another body is a 409."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import Header
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from shared.auth import Principal
from shared.errors import Conflict
from shared.tables import idempotency_keys

IdempotencyKeyHeader = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200,
                       description="Repeat a create safely: the same key and body return the first result.")]


def _hash(payload: BaseModel | bytes) -> str:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload.model_dump(mode="json"),
                                                                  option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


async def idempotent(session: AsyncSession, *, key: str | None, principal: Principal, scope: str,
                     payload: BaseModel | bytes, create: Callable[[], Awaitable[Response]]) -> Response:
    """Run `create` once per (caller, scope, key); later calls with the key get the stored response.

    The key row is claimed in the request's transaction: a concurrent request with the same key waits
    on it until the first commits, then replays its result.
    """
    if key is None:
        return await create()
    request_hash = _hash(payload)
    claimed = await session.execute(
        insert(idempotency_keys).values(principal=principal.sub, scope=scope, key=key, request_hash=request_hash)
        .on_conflict_do_nothing().returning(idempotency_keys.c.key))
    if claimed.first() is None:
        stored = (await session.execute(sa.select(idempotency_keys).where(
            idempotency_keys.c.principal == principal.sub, idempotency_keys.c.scope == scope,
            idempotency_keys.c.key == key))).one()
        if stored.request_hash != request_hash:
            raise Conflict("This Idempotency-Key was used with another request body.")
        headers: dict[str, str] = dict(stored.headers or {})
        headers["Idempotent-Replayed"] = "true"
        return Response(orjson.dumps(stored.response), status_code=stored.status_code,
                        media_type="application/json", headers=headers)
    response = await create()
    body: Any = orjson.loads(bytes(response.body)) if response.body else None
    kept = {k: v for k, v in response.headers.items() if k.lower() in ("etag", "location")}
    await session.execute(sa.update(idempotency_keys).where(
        idempotency_keys.c.principal == principal.sub, idempotency_keys.c.scope == scope,
        idempotency_keys.c.key == key).values(status_code=response.status_code, response=body, headers=kept))
    return response
