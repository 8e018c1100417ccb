"""Uniqueness conflicts on creates: a concurrent create that took the same unique value first is a 409, not a 500."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import Conflict

#: PostgreSQL's unique_violation.
UNIQUE_VIOLATION = "23505"


async def flush_unique(session: AsyncSession, *, conflict: str) -> None:
    """Flush the pending rows in a savepoint; a unique violation (a concurrent create committed the value between any
    check and this insert, or there was no check) becomes a Conflict with `conflict` as its detail. Other integrity
    errors are not conflicts and propagate."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        state = getattr(exc.orig, "sqlstate", None) or getattr(getattr(exc.orig, "__cause__", None), "sqlstate", None)
        if state == UNIQUE_VIOLATION:
            raise Conflict(conflict) from exc
        raise
