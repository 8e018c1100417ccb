"""Handlers for posyandu.household.v1: households and members (for hand-made referrals), and needs.

A detected need becomes one referral (never two: the inbox dedups the event, a unique index the need); a
resolved need adds a note and an event to its open referral. A household that moves takes its open referrals
with it (REFERRAL_MOVE_POLICY decides whether their agency follows the new route).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.referrals import life_events, service
from services.referral.referrals.lifecycle import LifeEventClosure
from services.referral.settings import ReferralSettings
from services.referral.tables import KnownHousehold, KnownMember, metadata
from shared.consumer import Handler
from shared.events import household as hh
from shared.events.envelope import CloudEvent


async def on_member(session: AsyncSession, event: CloudEvent) -> None:
    data = hh.MemberData.model_validate(event.data)
    table = metadata.tables[KnownMember.__tablename__]
    values = {"household_id": data.household_id, "nik_masked": data.nik_masked, "status": data.status,
              "version": data.version}
    await session.execute(insert(table).values(id=data.member_id, **values).on_conflict_do_update(
        index_elements=["id"], set_=values, where=table.c.version < data.version))


def handlers(settings: ReferralSettings) -> dict[str, Handler]:
    async def follow(session: AsyncSession, applied: Any, household_id: uuid.UUID, posyandu_id: uuid.UUID,
                     village_code: str) -> None:
        # Only when the event was applied (the newest version yet): an older one arriving late moves nothing back.
        # Any applied event may carry a new place (an update after a move that has not arrived yet, say).
        if applied.first() is not None:
            await service.household_moved(session=session, household_id=household_id, posyandu_id=posyandu_id,
                                          village_code=village_code, policy=settings.referral_move_policy,
                                          now=settings.clock())

    async def on_household(session: AsyncSession, event: CloudEvent) -> None:
        data = hh.HouseholdData.model_validate(event.data)
        table = metadata.tables[KnownHousehold.__tablename__]
        values = {"posyandu_id": data.posyandu_id, "village_code": data.village_code, "status": data.status,
                  "version": data.version}
        applied = await session.execute(insert(table).values(id=data.household_id, **values).on_conflict_do_update(
            index_elements=["id"], set_=values, where=table.c.version < data.version).returning(table.c.id))
        await follow(session, applied, data.household_id, data.posyandu_id, data.village_code)

    async def on_moved(session: AsyncSession, event: CloudEvent) -> None:
        data = hh.HouseholdMovedData.model_validate(event.data)
        table = metadata.tables[KnownHousehold.__tablename__]
        values = {"posyandu_id": data.to_posyandu_id, "village_code": data.village_code, "version": data.version}
        applied = await session.execute(insert(table).values(id=data.household_id, status="active", **values)
                                        .on_conflict_do_update(index_elements=["id"], set_=values,
                                                               where=table.c.version < data.version)
                                        .returning(table.c.id))
        await follow(session, applied, data.household_id, data.to_posyandu_id, data.village_code)

    async def on_need_detected(session: AsyncSession, event: CloudEvent) -> None:
        if event.snapshot:
            # A household republish: a referral is made once, from the live detection (its SLA runs from then);
            # a snapshot of a need, maybe long resolved, never makes one.
            return
        await service.create_from_need(session=session, need=hh.NeedData.model_validate(event.data),
                                       draft_categories=settings.draft_categories, now=settings.clock())

    async def on_need_resolved(session: AsyncSession, event: CloudEvent) -> None:
        need = hh.NeedData.model_validate(event.data)
        await service.need_resolved(session=session, need_id=need.need_id, now=settings.clock())

    async def on_member_died(session: AsyncSession, event: CloudEvent) -> None:
        await on_member(session, event)
        data = hh.MemberDiedData.model_validate(event.data)
        await life_events.close_for_life_event(session=session, reason=LifeEventClosure.DECEASED,
                                               member_id=data.member_id, now=settings.clock(),
                                               detail=f"the member died on {data.date_of_death.isoformat()}")

    async def on_member_moved_out(session: AsyncSession, event: CloudEvent) -> None:
        await on_member(session, event)
        data = hh.MemberMovedOutData.model_validate(event.data)
        await life_events.close_for_life_event(session=session, reason=LifeEventClosure.MOVED_OUT,
                                               member_id=data.member_id, now=settings.clock(),
                                               detail=f"the member moved out of the area on "
                                                      f"{data.moved_out_on.isoformat()}")

    async def on_member_moved(session: AsyncSession, event: CloudEvent) -> None:
        await on_member(session, event)
        await life_events.member_moved(session=session, moved=hh.MemberMovedData.model_validate(event.data),
                                       policy=settings.referral_move_policy, now=settings.clock())

    async def on_household_closed(session: AsyncSession, event: CloudEvent) -> None:
        await on_household(session, event)
        data = hh.HouseholdClosedData.model_validate(event.data)
        merged = f" into household {data.merged_into_household_id}" if data.merged_into_household_id else ""
        await life_events.close_for_life_event(session=session, reason=LifeEventClosure.HOUSEHOLD_CLOSED,
                                               household_id=data.household_id, now=settings.clock(),
                                               detail=f"the household closed ({data.reason}{merged}) on "
                                                      f"{data.closed_on.isoformat()}")

    return {
        hh.HOUSEHOLD_REGISTERED.name: on_household,
        hh.HOUSEHOLD_UPDATED.name: on_household,
        hh.HOUSEHOLD_MOVED.name: on_moved,
        hh.MEMBER_ADDED.name: on_member,
        hh.MEMBER_UPDATED.name: on_member,
        hh.NEED_DETECTED.name: on_need_detected,
        hh.NEED_RESOLVED.name: on_need_resolved,
        hh.MEMBER_DIED.name: on_member_died,
        hh.MEMBER_MOVED_OUT.name: on_member_moved_out,
        hh.MEMBER_MOVED.name: on_member_moved,
        hh.HOUSEHOLD_CLOSED.name: on_household_closed,
    }
