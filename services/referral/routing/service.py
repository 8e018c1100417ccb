"""Routing: the responsible agency for (field, village), from the local read model of the registry's agencies.

The rule is the registry's: the village's regency/city agency for the field first, then its province's; among
equals the earliest registered. No synchronous call on the hot path: agencies arrive as registry events.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.referral.tables import KnownAgency


async def responsible_agency(session: AsyncSession, *, spm_field: str, village_code: str) -> KnownAgency | None:
    """The active agency responsible for the field in the village, or None (the referral stays unrouted)."""
    query = (
        select(KnownAgency)
        .where(KnownAgency.status == "active", col(KnownAgency.spm_fields).any_() == spm_field,
               sa.or_(sa.and_(col(KnownAgency.level) == "regency",
                              col(KnownAgency.jurisdiction_code) == village_code[:4]),
                      sa.and_(col(KnownAgency.level) == "province",
                              col(KnownAgency.jurisdiction_code) == village_code[:2])))
        .order_by(sa.case((col(KnownAgency.level) == "regency", 0), else_=1), col(KnownAgency.registered_at),
                  col(KnownAgency.id))
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


async def province_agency(session: AsyncSession, *, spm_field: str, village_code: str) -> KnownAgency | None:
    """The field's province-level agency for the village: where an overdue referral escalates."""
    query = (select(KnownAgency)
             .where(KnownAgency.status == "active", col(KnownAgency.spm_fields).any_() == spm_field,
                    col(KnownAgency.level) == "province", col(KnownAgency.jurisdiction_code) == village_code[:2])
             .order_by(col(KnownAgency.registered_at), col(KnownAgency.id)).limit(1))
    return (await session.execute(query)).scalars().first()
