"""A household's life events as the referral service follows them: a deceased or departed member's open referrals,
and a closed household's, are cancelled by the system with the reason; a member who moves to another household
takes its open referrals there (re-routed if the new place has another route). Each change leaves a history entry
and the usual event on the field's topic. Only open referrals not yet changed are touched, so a redelivered or
replayed event changes nothing twice."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.referral.referrals import service
from services.referral.referrals.events import emit
from services.referral.referrals.history import SYSTEM, record_transition
from services.referral.referrals.lifecycle import OPEN, LifeEventClosure, Status
from services.referral.settings import MovePolicy
from services.referral.tables import Referral
from shared.events import household as household_events
from shared.events import referral as ev

_OPEN = [s.value for s in OPEN]


async def close_for_life_event(*, session: AsyncSession, reason: LifeEventClosure, detail: str, now: datetime,
                               household_id: uuid.UUID | None = None,
                               member_id: uuid.UUID | None = None) -> list[Referral]:
    """Cancels the open referrals of the member (or, with `household_id`, of the whole household)."""
    query = select(Referral).where(col(Referral.status).in_(_OPEN))
    query = (query.where(Referral.member_id == member_id) if member_id is not None
             else query.where(Referral.household_id == household_id))
    closed = list((await session.execute(query.order_by(col(Referral.created_at), col(Referral.id))
                                         .with_for_update())).scalars().all())
    for referral in closed:
        from_status = referral.status
        referral.status, referral.closed_at = Status.CANCELLED.value, now
        referral.version += 1
        referral.updated_at = now
        await session.flush()
        record_transition(session, referral, reason.value, actor=SYSTEM, at=now, from_status=from_status,
                          from_agency_id=referral.agency_id, reason=detail)
        await emit(session, ev.REFERRAL_STATUS_CHANGED, referral, action=reason.value)
    return closed


async def member_moved(*, session: AsyncSession, moved: household_events.MemberMovedData, policy: MovePolicy,
                       now: datetime) -> list[Referral]:
    """The member's open referrals follow it to its new household; where the new household's place differs, they
    move as a household move does (REFERRAL_MOVE_POLICY decides whether the agency follows the route)."""
    rows = list((await session.execute(
        select(Referral).where(Referral.member_id == moved.member_id, col(Referral.status).in_(_OPEN),
                               Referral.household_id != moved.household_id)
        .order_by(col(Referral.created_at), col(Referral.id)).with_for_update())).scalars().all())
    for referral in rows:
        referral.household_id = moved.household_id
        if (referral.posyandu_id, referral.village_code) != (moved.posyandu_id, moved.village_code):
            continue  # household_moved below moves it to the new place, with its history entry and event
        referral.version += 1
        referral.updated_at = now
        await session.flush()
        record_transition(session, referral, "member-move", actor=SYSTEM, at=now, from_status=referral.status,
                          from_agency_id=referral.agency_id,
                          reason=f"member moved ({moved.reason}) to household {moved.household_id}")
        await emit(session, ev.REFERRAL_STATUS_CHANGED, referral, action="member-move")
    await session.flush()
    await service.household_moved(session=session, household_id=moved.household_id, posyandu_id=moved.posyandu_id,
                                  village_code=moved.village_code, policy=policy, now=now)
    return rows
