"""How the registry applies its access policies: each aggregate states who may read or change it once, as a SELECT
of the rows the principal may reach (the `*_statement` functions in `<aggregate>/access.py`); a single object is
allowed when that statement holds it, so single reads and lists share one rule."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


async def holds(session: AsyncSession, statement: sa.Select[Any]) -> bool:
    """Whether the policy `statement` (already narrowed to one object) returns a row."""
    return bool(await session.scalar(sa.select(statement.exists())))
