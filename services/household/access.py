"""Who may read and write which household, and who sees a full NIK (DESIGN.md §4)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.household.tables import AgencyAccess, Household
from shared.auth import Principal, Role
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


async def _agency_holds_referral(session: AsyncSession, principal: Principal, household_id: uuid.UUID) -> bool:
    if principal.agency_id is None:
        return False
    found = await session.execute(sa.select(col(AgencyAccess.referral_id)).where(
        _holds_open_referral(principal), col(AgencyAccess.household_id) == household_id).limit(1))
    return found.first() is not None


def _holds_open_referral(principal: Principal) -> Any:
    """The agency_access rows through which an agency reads a household: an open referral of one of its token's
    fields, routed to it or escalated to it."""
    return sa.and_(sa.or_(col(AgencyAccess.agency_id) == principal.agency_id,
                          col(AgencyAccess.escalated_to_agency_id) == principal.agency_id),
                   col(AgencyAccess.open).is_(True),
                   col(AgencyAccess.spm_field).in_([f.value for f in principal.fields]))


async def read_basis(session: AsyncSession, principal: Principal, household: Household) -> ReadBasis | None:
    """The basis on which the caller reads this household, or None (then it is a 404, not a 403)."""
    if principal.role is Role.KADER and household.posyandu_id in principal.posyandu_ids:
        return ReadBasis("kader of the household's posyandu", full_nik=True)
    if principal.role is Role.OPD and await _agency_holds_referral(session, principal, household.id):
        return ReadBasis("agency holding an open referral for the household", full_nik=True)
    if principal.role is Role.ADMIN:
        return ReadBasis("administration", full_nik=False)
    if principal.role is Role.PEMBINA and principal.oversees_region(household.village_code):
        return ReadBasis("oversight within the pembina's region", full_nik=False)
    return None


def may_write(principal: Principal, household: Household) -> bool:
    return principal.role is Role.ADMIN or (
        principal.role is Role.KADER and household.posyandu_id in principal.posyandu_ids)


def may_register_at(principal: Principal, posyandu_id: uuid.UUID) -> bool:
    return principal.role is Role.ADMIN or (principal.role is Role.KADER and posyandu_id in principal.posyandu_ids)


def list_scope(principal: Principal) -> Any:
    """The WHERE clause limiting a household list to what the caller may see (None: everything)."""
    if principal.role is Role.KADER:
        return col(Household.posyandu_id).in_(list(principal.posyandu_ids) or [uuid.UUID(int=0)])
    if principal.role is Role.OPD:
        return col(Household.id).in_(sa.select(col(AgencyAccess.household_id)).where(
            _holds_open_referral(principal)))
    if principal.role is Role.PEMBINA:
        return col(Household.village_code).startswith(principal.region_prefix or "-")
    if principal.role is Role.ADMIN:
        return None
    return sa.false()


async def readable_household(session: AsyncSession, principal: Principal,
                             household_id: uuid.UUID) -> tuple[Household, ReadBasis]:
    """Load a household the caller may read; 404 for a missing one and for one they may not see."""
    household = await session.get(Household, household_id)
    basis = await read_basis(session, principal, household) if household is not None else None
    if household is None or basis is None:
        raise HouseholdNotFound(f"No household {household_id} that you may read.")
    return household, basis


async def writable_household(session: AsyncSession, principal: Principal, household_id: uuid.UUID) -> Household:
    """Load (and lock) a household the caller may change; 404 otherwise, so existence does not leak."""
    household = await session.get(Household, household_id, with_for_update=True)
    if household is None or not may_write(principal, household):
        raise HouseholdNotFound(f"No household {household_id} that you may change.")
    if household.status == "closed":
        # A closed household (README: "Life events") keeps its history but takes no more changes.
        raise HouseholdClosed(f"Household {household_id} is closed: it takes no more changes.",
                              current_status=household.status)
    return household
