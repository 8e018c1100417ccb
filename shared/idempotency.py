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


# The statements are built once (the values bound per request), so SQLAlchemy's compiled cache finds them.
_of_key = sa.and_(idempotency_keys.c.principal == sa.bindparam("k_principal"),
                  idempotency_keys.c.scope == sa.bindparam("k_scope"), idempotency_keys.c.key == sa.bindparam("k_key"))
#: Claim (principal, scope, key) with the request's hash; no row returned when it was claimed before.
_CLAIM = (insert(idempotency_keys).values({name: sa.bindparam(f"k_{name}") for name in ("principal", "scope", "key",
                                                                                      "request_hash")})
          .on_conflict_do_nothing().returning(idempotency_keys.c.key))
_STORED = sa.select(idempotency_keys).where(_of_key)
_STORE = sa.update(idempotency_keys).where(_of_key).values(
    {name: sa.bindparam(f"stored_{name}") for name in ("status_code", "response", "headers")})


async def idempotent(session: AsyncSession, *, key: str | None, principal: Principal, scope: str,
                     payload: BaseModel | bytes, create: Callable[[], Awaitable[Response]]) -> Response:
    """Run `create` once per (caller, scope, key); later calls with the key get the stored response.

    The key row is claimed in the request's transaction: a concurrent request with the same key waits
    on it until the first commits, then replays its result.
    """
    if key is None:
        return await create()
    request_hash = _hash(payload)
    the_key = {"k_principal": principal.sub, "k_scope": scope, "k_key": key}
    claimed = await session.execute(_CLAIM, {**the_key, "k_request_hash": request_hash})
    if claimed.first() is None:
        stored = (await session.execute(_STORED, the_key)).one()
        if stored.request_hash != request_hash:
            raise Conflict("This Idempotency-Key was used with another request body.")
        headers: dict[str, str] = dict(stored.headers or {})
        headers["Idempotent-Replayed"] = "true"
        return Response(orjson.dumps(stored.response), status_code=stored.status_code,
                        media_type="application/json", headers=headers)
    response = await create()
    body: Any = orjson.loads(bytes(response.body)) if response.body else None
    kept = {k: v for k, v in response.headers.items() if k.lower() in ("etag", "location")}
    await session.execute(_STORE, {**the_key, "stored_status_code": response.status_code, "stored_response": body,
                                   "stored_headers": kept})
    return response
