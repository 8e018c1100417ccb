"""Who may see and move which referral (DESIGN.md §4): a 404, never a 403, for a referral one may not see.

An agency holds a referral of its field when it is routed to it or escalated to it (the field's province agency):
`is_assigned_agency` and `list_scope` are that one rule, for one referral and as a query; reads, lists, the inbox,
notes and lifecycle actions all go through them.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.referral.referrals.lifecycle import Side
from services.referral.tables import Referral
from shared.auth import Principal, Role
from shared.errors import NotFound


class ReferralNotFound(NotFound):
    pass


def may_see(principal: Principal, referral: Referral) -> bool:
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.KADER:
        return referral.posyandu_id in principal.posyandu_ids
    if principal.role is Role.PEMBINA:
        return principal.oversees_region(referral.village_code)
    if principal.role is Role.OPD:
        return is_assigned_agency(principal, referral)
    return False


def is_assigned_agency(principal: Principal, referral: Referral) -> bool:
    """An opd token of the referral's agency, or of the agency it escalated to, whose fields include its field."""
    return (principal.role is Role.OPD and principal.agency_id is not None
            and principal.agency_id in (referral.agency_id, referral.escalated_to_agency_id)
            and referral.spm_field in principal.fields)


def held_by(agency_id: uuid.UUID) -> Any:
    """The referrals an agency holds: routed to it, or escalated to it."""
    return sa.or_(col(Referral.agency_id) == agency_id, col(Referral.escalated_to_agency_id) == agency_id)


def is_posyandu_side(principal: Principal, referral: Referral) -> bool:
    return principal.role is Role.ADMIN or (principal.role is Role.KADER
                                            and referral.posyandu_id in principal.posyandu_ids)


def side_of(principal: Principal, referral: Referral) -> Side | None:
    """The side the caller acts for on this referral, or None (a reader only)."""
    if is_assigned_agency(principal, referral):
        return Side.AGENCY
    if is_posyandu_side(principal, referral):
        return Side.POSYANDU
    return None


def list_scope(principal: Principal) -> Any:
    """The WHERE clause limiting a referral list to what the caller may see (None: everything)."""
    if principal.role is Role.ADMIN:
        return None
    if principal.role is Role.KADER:
        return col(Referral.posyandu_id).in_(list(principal.posyandu_ids) or [uuid.UUID(int=0)])
    if principal.role is Role.PEMBINA:
        return col(Referral.village_code).startswith(principal.region_prefix or "-")
    if principal.role is Role.OPD:
        if principal.agency_id is None:
            return sa.false()
        return sa.and_(held_by(principal.agency_id), col(Referral.spm_field).in_([f.value for f in principal.fields]))
    return sa.false()


async def readable_referral(session: AsyncSession, principal: Principal, referral_id: uuid.UUID, *,
                            for_update: bool = False) -> Referral:
    """Load a referral the caller may see (locked when they are about to change it); 404 otherwise."""
    referral = await session.get(Referral, referral_id, with_for_update=for_update)
    if referral is None or not may_see(principal, referral):
        raise ReferralNotFound(f"No referral {referral_id} that you may see.")
    return referral
