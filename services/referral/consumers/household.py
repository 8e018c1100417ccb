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

from services.referral.referrals import service
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
        await service.create_from_need(session=session, need=hh.NeedData.model_validate(event.data),
                                       draft_categories=settings.draft_categories, now=settings.clock())

    async def on_need_resolved(session: AsyncSession, event: CloudEvent) -> None:
        need = hh.NeedData.model_validate(event.data)
        await service.need_resolved(session=session, need_id=need.need_id, now=settings.clock())

    return {
        hh.HOUSEHOLD_REGISTERED.name: on_household,
        hh.HOUSEHOLD_UPDATED.name: on_household,
        hh.HOUSEHOLD_MOVED.name: on_moved,
        hh.MEMBER_ADDED.name: on_member,
        hh.MEMBER_UPDATED.name: on_member,
        hh.NEED_DETECTED.name: on_need_detected,
        hh.NEED_RESOLVED.name: on_need_resolved,
    }
