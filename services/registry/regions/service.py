"""Region look-ups: by code, children, search by name."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.registry.tables import Region
from shared.errors import NotFound, ValidationFailed


class RegionNotFound(NotFound):
    pass


async def get(*, session: AsyncSession, code: str) -> Region:
    """Gets a region by its plain code."""
    region = await session.get(Region, code)
    if region is None:
        raise RegionNotFound(f"No region has the code {code}.")
    return region


async def list_regions(*, session: AsyncSession, parent: str | None, level: str | None, q: str | None,
                       include_retired: bool, after: str | None, limit: int) -> list[Region]:
    """Regions by parent, level or name, in code order (keyset after `after`)."""
    query = select(Region).order_by(col(Region.code)).limit(limit + 1)
    if parent is not None:
        query = query.where(Region.parent_code == parent)
    if level is not None:
        query = query.where(Region.level == level)
    if q:
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(sa.func.lower(Region.name).like(f"%{escaped}%", escape="\\"))
    if not include_retired:
        query = query.where(col(Region.retired_at).is_(None))
    if after is not None:
        query = query.where(Region.code > after)
    return list((await session.execute(query)).scalars().all())


async def require_village(*, session: AsyncSession, code: str) -> Region:
    """The active village with this code, or a 422 naming the problem."""
    region = await session.get(Region, code)
    if region is None or region.level != "village" or region.retired_at is not None:
        raise ValidationFailed(f"{code} is not an active village code.",
                               errors=[{"field": "village_code", "message": "unknown or retired village"}])
    return region
