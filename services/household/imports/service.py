"""Importing households chunk by chunk: each chunk set-based (imports/bulk.py); a chunk that collides with a
concurrent registration is re-imported household by household, each registered as the API would in a savepoint."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import date

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from services.household.households.registration import register
from services.household.imports.bulk import import_chunk
from services.household.imports.outcomes import Imported, Outcome, Refused, payload_of, problem_errors
from services.household.imports.parsing import Group, Item, Rejected
from shared.auth import Principal
from shared.errors import Problem

log = logging.getLogger(__name__)

#: A chunk: this many households, or this many rows (refused rows count), whichever comes first. Big enough for
#: COPY to pay, small enough to hold in memory and to lose little to a crash.
CHUNK_HOUSEHOLDS = 500
CHUNK_ROWS = 2000
#: Set-based writes that can fail on a concurrent writer: the chunk is then imported household by household.
_COLLISIONS = (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError)


async def chunks(items: AsyncIterable[Item]) -> AsyncIterator[list[Item]]:
    chunk: list[Item] = []
    households = rows = 0
    async for item in items:
        chunk.append(item)
        rows += len(item.rows) if isinstance(item, Group) else 1
        households += isinstance(item, Group)
        if households >= CHUNK_HOUSEHOLDS or rows >= CHUNK_ROWS:
            yield chunk
            chunk, households, rows = [], 0, 0
    if chunk:
        yield chunk


async def import_items(session: AsyncSession, principal: Principal, items: Sequence[Item],
                       today: date | None = None) -> list[Outcome]:
    """Imports a chunk in the session's transaction; the outcome of each item, as one-by-one registration gives."""
    today = today or date.today()
    try:
        async with session.begin_nested():
            return await import_chunk(session, principal, items, today)
    except _COLLISIONS as exc:
        # A registration took a KK number or NIK of this chunk after its checks: register one by one instead, which
        # sees the other's row now (or catches the collision per household).
        log.info("import chunk collided with a concurrent write (%s); importing it household by household",
                 type(exc).__name__)
        return [await import_one(session, principal, item, today) for item in items]


async def import_one(session: AsyncSession, principal: Principal, item: Item,
                     today: date | None = None) -> Outcome:
    """One household registered as the API would (with its needs), in its own savepoint: the reference path."""
    if isinstance(item, Rejected):
        return item
    errors = [error for row in item.rows for error in row.errors]
    if errors or item.blocked_by is not None:
        return Refused(item, errors)
    payload = payload_of(item)
    if isinstance(payload, list):
        return Refused(item, payload)
    try:
        async with session.begin_nested():
            await register(session=session, principal=principal, payload=payload, today=today or date.today())
    except Problem as exc:  # a KK or NIK a concurrent registration took is register's 409 too
        return Refused(item, problem_errors(item, exc))
    return Imported(item)
