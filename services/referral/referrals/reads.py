"""Reads of referrals (lists, the agency inbox, one referral, its history), each the whole use case: the access
query, the disclosure (disclosure.py), and the audit row of what the read disclosed, with the same entry sent to
the household's access log (household_reads.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.referral.household_api import HouseholdApi
from services.referral.household_reads import HouseholdReader
from services.referral.referrals.access import held_by, readable_referrals
from services.referral.referrals.disclosure import REFERRAL_PRIVATE, TRANSITION_PRIVATE, Disclosure
from services.referral.referrals.lifecycle import OPEN, Status
from services.referral.referrals.schemas import ReferralDetail, ReferralPublic, TransitionPublic
from services.referral.tables import Referral, ReferralTransition
from shared.auth import Principal, Role
from shared.errors import NotFound
from shared.events.topics import SpmField
from shared.pagination import Page, page_of


@dataclass(frozen=True)
class Filters:
    """What a referral list may be narrowed by (each None: not narrowed)."""

    spm_field: SpmField | None = None
    status: Status | None = None
    agency_id: uuid.UUID | None = None
    posyandu_id: uuid.UUID | None = None
    region: str | None = None
    overdue: bool | None = None
    unrouted: bool | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def conditions(self) -> list[Any]:
        found: list[Any] = []
        if self.spm_field is not None:
            found.append(col(Referral.spm_field) == self.spm_field.value)
        if self.status is not None:
            found.append(col(Referral.status) == self.status.value)
        if self.agency_id is not None:
            found.append(col(Referral.agency_id) == self.agency_id)
        if self.posyandu_id is not None:
            found.append(col(Referral.posyandu_id) == self.posyandu_id)
        if self.region is not None:
            found.append(col(Referral.village_code).startswith(self.region))
        if self.overdue is not None:
            is_overdue = sa.and_(col(Referral.overdue_at).is_not(None),
                                 col(Referral.status).in_([s.value for s in OPEN]))
            found.append(is_overdue if self.overdue else sa.not_(is_overdue))
        if self.unrouted is not None:
            found.append(col(Referral.agency_id).is_(None) if self.unrouted else col(Referral.agency_id).is_not(None))
        if self.created_from is not None:
            found.append(col(Referral.created_at) >= self.created_from)
        if self.created_to is not None:
            found.append(col(Referral.created_at) < self.created_to)
        return found


async def list_referrals(*, session: AsyncSession, principal: Principal, filters: Filters,
                         after: tuple[datetime, uuid.UUID] | None, limit: int, now: datetime) -> Page[ReferralPublic]:
    """Lists the referrals the caller may read, newest first, each read audited."""
    return await _page(session, principal, filters.conditions(), after=after, limit=limit, now=now)


async def agency_inbox(*, session: AsyncSession, principal: Principal, agency_id: uuid.UUID, filters: Filters,
                       after: tuple[datetime, uuid.UUID] | None, limit: int, now: datetime) -> Page[ReferralPublic]:
    """Lists an agency's inbox (the referrals routed or escalated to it) for the agency itself or an admin."""
    if principal.role is not Role.ADMIN and principal.agency_id != agency_id:
        raise NotFound(f"No inbox of agency {agency_id} that you may read.")
    return await _page(session, principal, [held_by(agency_id), *filters.conditions()], after=after, limit=limit,
                       now=now)


async def _page(session: AsyncSession, principal: Principal, conditions: list[Any], *,
                after: tuple[datetime, uuid.UUID] | None, limit: int, now: datetime) -> Page[ReferralPublic]:
    query = readable_referrals(principal).where(*conditions)
    if after is not None:
        query = query.where(sa.tuple_(col(Referral.created_at), col(Referral.id)) < sa.tuple_(*after))
    query = query.order_by(col(Referral.created_at).desc(), col(Referral.id).desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars().all())
    items, next_cursor = page_of(rows, limit, lambda r: (r.created_at.isoformat(), r.id))
    # A list shows household and member references and, to the two sides, the free text and evidence: audited.
    views = []
    reader = await HouseholdReader.of(session, principal)
    for r in items:
        disclosure = Disclosure.of(principal, r)
        await reader.record(session, household_id=r.household_id, village_code=r.village_code,
                            resource_type="referral", resource_id=r.id, now=now,
                            purpose=f"referral list read by {principal.role.value}",
                            fields=disclosure.shown(REFERRAL_PRIVATE))
        views.append(disclosure.referral(r))
    return Page(items=views, next_cursor=next_cursor)


async def detail(*, session: AsyncSession, principal: Principal, referral: Referral, household_api: HouseholdApi,
                 authorization: str, now: datetime) -> ReferralDetail:
    """Gets a referral the caller may read; for its assigned agency with the member's NIK and name, fetched from
    the household service with the caller's own token (`authorization`). Audited."""
    disclosure = Disclosure.of(principal, referral)
    extra: dict[str, Any] = {}
    fields = disclosure.shown(REFERRAL_PRIVATE)
    if disclosure.member_details:
        if referral.member_id is None:
            extra["member_details_unavailable"] = "the referral is about the household, not one member"
        else:
            lookup = await household_api.member(household_id=referral.household_id, member_id=referral.member_id,
                                                authorization=authorization)
            extra = {"member_details": lookup.details, "member_details_unavailable": lookup.unavailable}
            fields += ["member_details"] if lookup.details is not None else []
    reader = await HouseholdReader.of(session, principal)
    await reader.record(session, household_id=referral.household_id, village_code=referral.village_code,
                        resource_type="referral", resource_id=referral.id, fields=fields, now=now,
                        purpose="assigned agency acting on the referral" if disclosure.member_details
                        else f"referral read by {principal.role.value}")
    return disclosure.referral(referral, ReferralDetail, **extra)


async def history(*, session: AsyncSession, principal: Principal, referral: Referral,
                  now: datetime) -> list[TransitionPublic]:
    """Gets every transition of a referral the caller may read, oldest first. Audited."""
    rows = await session.execute(select(ReferralTransition).where(ReferralTransition.referral_id == referral.id)
                                 .order_by(col(ReferralTransition.id)))
    disclosure = Disclosure.of(principal, referral)
    reader = await HouseholdReader.of(session, principal)
    await reader.record(session, household_id=referral.household_id, village_code=referral.village_code,
                        resource_type="referral.history", resource_id=referral.id, now=now,
                        fields=disclosure.shown(TRANSITION_PRIVATE),
                        purpose=f"referral history read by {principal.role.value}")
    return disclosure.transitions(rows.scalars())
