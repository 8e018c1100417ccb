"""The dashboard's region picker: the regions a caller may read, from the registry's names as projected here.

The picker walks down from the caller's own regions (`roots`: Indonesia for an admin or a service, a pembina's
region, an agency's jurisdiction, a kader's villages) one level at a time (`children`). Who may read which region
is decided by `access.resolve`, the one rule the reports use.
"""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting import access
from services.reporting.indicators import repository
from shared.auth import Principal, Role

NATION = "Indonesia"
LEVELS = {0: "nation", 2: "province", 4: "regency", 6: "district", 10: "village"}


class Region(BaseModel):
    code: str
    name: str
    level: str


class RegionList(BaseModel):
    #: The region whose sub-regions these are ('' for Indonesia); null for the caller's own regions.
    parent: str | None
    regions: list[Region]


async def _named(session: AsyncSession, codes: list[str]) -> list[Region]:
    rows = (await session.execute(sa.text(
        "SELECT code, name, level FROM regions WHERE code = ANY(CAST(:codes AS text[])) ORDER BY code"),
        {"codes": codes})).mappings()
    found = {r["code"]: Region(**r) for r in rows}
    # Indonesia, and a region the registry has not announced here yet, by its code.
    return [found.get(code) or Region(code=code, name=code or NATION, level=LEVELS.get(len(code), "region"))
            for code in codes]


async def roots(*, session: AsyncSession, principal: Principal) -> RegionList:
    """The regions the caller's reports start from."""
    if principal.role is Role.KADER:
        villages = await repository.villages_of_posyandu(session=session, posyandu_ids=list(principal.posyandu_ids))
        codes = sorted(villages)
    else:
        codes = [(await access.resolve(session=session, principal=principal, region=None, field=None)).prefix]
    return RegionList(parent=None, regions=await _named(session, codes))


async def children(*, session: AsyncSession, principal: Principal, parent: str) -> RegionList:
    """The live sub-regions one level below a region the caller may read (403 for one it may not)."""
    await access.resolve(session=session, principal=principal, region=parent, field=None)
    where = "level = 'province'" if not parent else "parent_code = :parent"
    rows = (await session.execute(sa.text(f"SELECT code, name, level FROM regions WHERE {where} AND NOT retired "
                                          "ORDER BY code"), {"parent": parent})).mappings()
    return RegionList(parent=parent, regions=[Region(**r) for r in rows])
