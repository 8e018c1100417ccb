"""Who may read which referral (DESIGN.md §4), written once as a query: a 404, never a 403, for one you may not see.

`readable_referrals` is the rule: the referrals a caller may read, as a SELECT that the single read (by id, locked
when the caller is about to change it), the lists, the inbox and the notes all start from, so a list needs no
check per row and the rule cannot differ between them. An agency reads the referrals of its fields that are
routed or escalated to it; a kader those of its posyandu; a pembina those of its region; an admin all.

Which side of a referral it may read the caller acts for (`side_of`: the posyandu side, the assigned agency, or
a reader only) decides what it may do to it and what it sees of it (disclosure.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from services.referral.referrals.lifecycle import Side
from services.referral.tables import Referral
from shared.auth import Principal, Role
from shared.errors import NotFound


class ReferralNotFound(NotFound):
    pass


def held_by(agency_id: uuid.UUID) -> Any:
    """The referrals an agency holds: routed to it, or escalated to it."""
    return sa.or_(col(Referral.agency_id) == agency_id, col(Referral.escalated_to_agency_id) == agency_id)


def readable_referrals(principal: Principal) -> SelectOfScalar[Referral]:
    """The referrals the caller may read: the one access rule of the referral aggregate."""
    query = select(Referral)
    if principal.role is Role.ADMIN:
        return query
    if principal.role is Role.KADER:
        return query.where(col(Referral.posyandu_id).in_(list(principal.posyandu_ids) or [uuid.UUID(int=0)]))
    if principal.role is Role.PEMBINA and principal.region_prefix is not None:
        return query.where(col(Referral.village_code).startswith(principal.region_prefix))
    if principal.role is Role.OPD and principal.agency_id is not None:
        return query.where(held_by(principal.agency_id),
                           col(Referral.spm_field).in_([f.value for f in principal.fields]))
    return query.where(sa.false())


async def readable_referral(session: AsyncSession, principal: Principal, referral_id: uuid.UUID, *,
                            for_update: bool = False) -> Referral:
    """Load a referral the caller may read (locked when they are about to change it); 404 otherwise."""
    query = readable_referrals(principal).where(col(Referral.id) == referral_id)
    referral = (await session.execute(query.with_for_update() if for_update else query)).scalars().first()
    if referral is None:
        raise ReferralNotFound(f"No referral {referral_id} that you may see.")
    return referral


def is_assigned_agency(principal: Principal, referral: Referral) -> bool:
    """An opd token of the referral's agency, or of the agency it escalated to, whose fields include its field."""
    return (principal.role is Role.OPD and principal.agency_id is not None
            and principal.agency_id in (referral.agency_id, referral.escalated_to_agency_id)
            and referral.spm_field in principal.fields)


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
