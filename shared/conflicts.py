"""A unique index deciding a write: the one way a taken value becomes the caller's 409.

A check before an insert cannot see a concurrent request that passes the same check a moment later; the unique
index sees both. Writes that must be unique run in a savepoint here, and a unique violation becomes the Conflict
the caller names (a precise detail), while any other integrity error (a foreign key, a check) still propagates. A
unique violation that reaches the error mapper unnamed is a 409 too (shared/errors.py), with a generic detail.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import UNIQUE_VIOLATION, Conflict, sqlstate


def violated_unique(exc: IntegrityError) -> str | None:
    """The name of the unique constraint or index the write violated ("" if the driver did not say), or None when
    the error is not a unique violation."""
    if sqlstate(exc) != UNIQUE_VIOLATION:
        return None
    driver = getattr(exc.orig, "driver_exception", None) or getattr(exc.orig, "__cause__", None)
    name = getattr(driver, "constraint_name", None)
    return name if isinstance(name, str) else ""


@contextlib.asynccontextmanager
async def unique_or_conflict(session: AsyncSession, conflict: str | Conflict) -> AsyncIterator[None]:
    """Runs the block's writes in a savepoint and flushes them; a unique violation raises `conflict` (a detail, or
    the Conflict itself for a subclass or one with field errors) and leaves the transaction usable."""
    try:
        async with session.begin_nested():
            yield
            await session.flush()
    except IntegrityError as exc:
        if violated_unique(exc) is None:
            raise
        raise (conflict if isinstance(conflict, Conflict) else Conflict(conflict)) from exc


async def flush_unique(session: AsyncSession, *, conflict: str | Conflict) -> None:
    """Flushes the pending rows under `unique_or_conflict`."""
    async with unique_or_conflict(session, conflict):
        pass
