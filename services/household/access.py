"""Who may read and write which household, and who sees a full NIK (DESIGN.md §4).

Each rule is written once, as a query (`readable_households`, `writable_households`): single reads, lists, the
409's "may the caller see the holder" and the duplicate flags all start from it, so no rule has a Python twin and
no list asks per row.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from services.household.tables import AgencyAccess, Household
from shared.auth import Principal, PrincipalDep, Role
from shared.db import SessionDep
from shared.errors import Conflict, NotFound


class HouseholdNotFound(NotFound):
    pass


class HouseholdClosed(Conflict):
    title, slug = "Household closed", "household-closed"


@dataclass(frozen=True)
class ReadBasis:
    """Why a caller may read a household, and whether that need covers full NIKs."""

    purpose: str
    full_nik: bool


#: The basis each role reads on: a role has one rule (`readable_households`), so one basis for every row it reads.
_BASES = {
    Role.KADER: ReadBasis("kader of the household's posyandu", full_nik=True),
    Role.OPD: ReadBasis("agency holding an open referral for the household", full_nik=True),
    Role.ADMIN: ReadBasis("administration", full_nik=False),
    Role.PEMBINA: ReadBasis("oversight within the pembina's region", full_nik=False),
}


def read_basis_of(principal: Principal) -> ReadBasis:
    """The basis on which the caller reads the households `readable_households` gives them."""
    return _BASES.get(principal.role, ReadBasis("none", full_nik=False))


def _own_posyandu(principal: Principal) -> Any:
    return col(Household.posyandu_id).in_(list(principal.posyandu_ids) or [uuid.UUID(int=0)])


def _readable(principal: Principal) -> Any:
    """The WHERE clause of the households the caller may read."""
    if principal.role is Role.KADER:
        return _own_posyandu(principal)
    if principal.role is Role.OPD and principal.agency_id is not None:
        # An open referral of one of the token's fields, routed to the agency or escalated to it.
        return col(Household.id).in_(sa.select(col(AgencyAccess.household_id)).where(
            sa.or_(col(AgencyAccess.agency_id) == principal.agency_id,
                   col(AgencyAccess.escalated_to_agency_id) == principal.agency_id),
            col(AgencyAccess.open).is_(True),
            col(AgencyAccess.spm_field).in_([f.value for f in principal.fields])))
    if principal.role is Role.ADMIN:
        return sa.true()
    if principal.role is Role.PEMBINA and principal.region_prefix:
        return col(Household.village_code).startswith(principal.region_prefix)
    return sa.false()


def _writable(principal: Principal) -> Any:
    """The WHERE clause of the households the caller may change: an admin's all, a kader's of its posyandu."""
    if principal.role is Role.ADMIN:
        return sa.true()
    if principal.role is Role.KADER:
        return _own_posyandu(principal)
    return sa.false()


def readable_households(principal: Principal) -> SelectOfScalar[Household]:
    """The households the caller may read, as a SELECT to narrow (`.where(...)`) for a single read or a list."""
    return select(Household).where(_readable(principal))


def writable_households(principal: Principal) -> SelectOfScalar[Household]:
    """The households the caller may change, as a SELECT to narrow."""
    return select(Household).where(_writable(principal))


def may_register_at(principal: Principal, posyandu_id: uuid.UUID) -> bool:
    """A new household's posyandu: an admin registers anywhere, a kader at its own posyandu."""
    return principal.role is Role.ADMIN or (principal.role is Role.KADER and posyandu_id in principal.posyandu_ids)


async def may_read(session: AsyncSession, principal: Principal, household_id: uuid.UUID) -> bool:
    """Whether the caller may read the household (one query, from the same rule)."""
    query = sa.select(col(Household.id)).where(_readable(principal), col(Household.id) == household_id)
    return (await session.execute(query)).first() is not None


async def readable_among(session: AsyncSession, principal: Principal,
                         household_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of the households the caller may read (one query for all of them, from the same rule)."""
    if not household_ids:
        return set()
    query = sa.select(col(Household.id)).where(_readable(principal), col(Household.id).in_(list(household_ids)))
    return set((await session.execute(query)).scalars().all())


async def readable_household(session: AsyncSession, principal: Principal,
                             household_id: uuid.UUID) -> tuple[Household, ReadBasis]:
    """Load a household the caller may read; 404 for a missing one and for one they may not see."""
    household = (await session.execute(readable_households(principal).where(col(Household.id) == household_id)
                                       .execution_options(populate_existing=True))).scalars().first()
    if household is None:
        raise HouseholdNotFound(f"No household {household_id} that you may read.")
    return household, read_basis_of(principal)


async def writable_household(session: AsyncSession, principal: Principal, household_id: uuid.UUID) -> Household:
    """Load (and lock) a household the caller may change; 404 otherwise, so existence does not leak."""
    household = (await session.execute(writable_households(principal).where(col(Household.id) == household_id)
                                       .with_for_update().execution_options(populate_existing=True))
                 ).scalars().first()
    if household is None:
        raise HouseholdNotFound(f"No household {household_id} that you may change.")
    if household.status == "closed":
        # A closed household (README: "Life events") keeps its history but takes no more changes.
        raise HouseholdClosed(f"Household {household_id} is closed: it takes no more changes.",
                              current_status=household.status)
    return household


@dataclass(frozen=True)
class Readable:
    """A household the caller may read, with the basis of the read (for its audit row and the NIK masking)."""

    household: Household
    basis: ReadBasis


async def _load_readable(household_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> Readable:
    household, basis = await readable_household(session, principal, household_id)
    return Readable(household, basis)


#: A route's `{household_id}` loaded for reading, or the 404 that also hides what the caller may not see.
ReadableHousehold = Annotated[Readable, Depends(_load_readable)]
