"""Handlers for posyandu.household.v1: households and members (for hand-made referrals), and needs.

A detected need becomes one referral (never two: the inbox dedups the event, a unique index the need); a
resolved need adds a note and an event to its open referral. A household that moves takes its open referrals
with it (REFERRAL_MOVE_POLICY decides whether their agency follows the new route).
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.referral.referrals import life_events, service
from services.referral.referrals.lifecycle import OPEN, LifeEventClosure
from services.referral.settings import ReferralSettings
from services.referral.tables import KnownHousehold, KnownMember, Referral, metadata
from shared.events import household as hh
from shared.events.envelope import CloudEvent
from shared.events.topics import HOUSEHOLD_TOPIC
from shared.projection import Projection, Received, handles
from shared.versioned import upsert_newer, upsert_newer_many


def _member_row(data: hh.MemberData) -> dict[str, object]:
    return {"id": data.member_id, "household_id": data.household_id, "nik_masked": data.nik_masked,
            "status": data.status, "version": data.version}


def _household_row(data: hh.HouseholdData) -> dict[str, object]:
    return {"id": data.household_id, "posyandu_id": data.posyandu_id, "village_code": data.village_code,
            "status": data.status, "version": data.version}


class HouseholdEvents(Projection):
    topics = (HOUSEHOLD_TOPIC,)

    def __init__(self, settings: ReferralSettings) -> None:
        self.settings = settings

    async def _member(self, session: AsyncSession, data: hh.MemberData) -> None:
        await upsert_newer(session, metadata.tables[KnownMember.__tablename__], _member_row(data))

    async def _follow(self, session: AsyncSession, household_id: uuid.UUID, posyandu_id: uuid.UUID,
                      village_code: str) -> None:
        await service.household_moved(session=session, household_id=household_id, posyandu_id=posyandu_id,
                                      village_code=village_code, policy=self.settings.referral_move_policy,
                                      now=self.settings.clock())

    async def _household(self, session: AsyncSession, data: hh.HouseholdData) -> None:
        applied = await upsert_newer(session, metadata.tables[KnownHousehold.__tablename__], _household_row(data))
        # Only when the event was applied (the newest version yet): an older one arriving late moves nothing back.
        # Any applied event may carry a new place (an update after a move that has not arrived yet, say).
        if applied:
            await self._follow(session, data.household_id, data.posyandu_id, data.village_code)

    @handles(hh.HOUSEHOLD_UPDATED)
    async def on_household(self, session: AsyncSession, event: CloudEvent, data: hh.HouseholdData) -> None:
        await self._household(session, data)

    @handles(hh.HOUSEHOLD_REGISTERED, batched=True)
    async def on_registered(self, session: AsyncSession, events: list[Received[hh.HouseholdData]]) -> None:
        """A fetch's registrations in one upsert. A live registration has no referrals to move; a republished one
        (a snapshot at the household's current version) may find some elsewhere: those follow, as on an update."""
        written = await upsert_newer_many(session, metadata.tables[KnownHousehold.__tablename__], [
            _household_row(r.data) for r in events])
        if not written:
            return
        with_referrals = set((await session.execute(
            sa.select(col(Referral.household_id)).distinct()
            .where(col(Referral.household_id).in_([key[0] for key in written]),
                   col(Referral.status).in_([s.value for s in OPEN])))).scalars())
        for (household_id,), row in written.items():
            if household_id in with_referrals:
                await self._follow(session, household_id, row["posyandu_id"], row["village_code"])

    @handles(hh.HOUSEHOLD_MOVED)
    async def on_moved(self, session: AsyncSession, event: CloudEvent, data: hh.HouseholdMovedData) -> None:
        applied = await upsert_newer(session, metadata.tables[KnownHousehold.__tablename__], {
            "id": data.household_id, "status": "active", "posyandu_id": data.to_posyandu_id,
            "village_code": data.village_code, "version": data.version}, insert_only=("status",))
        if applied:
            await self._follow(session, data.household_id, data.to_posyandu_id, data.village_code)

    @handles(hh.MEMBER_ADDED, hh.MEMBER_UPDATED, batched=True)
    async def on_members(self, session: AsyncSession, events: list[Received[hh.MemberData]]) -> None:
        # Order-tolerant (the newest version wins): a fetch's members in one statement, not one each.
        await upsert_newer_many(session, metadata.tables[KnownMember.__tablename__], [
            _member_row(r.data) for r in events])

    @handles(hh.NEED_DETECTED)
    async def on_need_detected(self, session: AsyncSession, event: CloudEvent, data: hh.NeedData) -> None:
        if event.snapshot:
            # A household republish: a referral is made once, from the live detection (its SLA runs from then);
            # a snapshot of a need, maybe long resolved, never makes one.
            return
        await service.create_from_need(session=session, need=data, draft_categories=self.settings.draft_categories,
                                       now=self.settings.clock())

    @handles(hh.NEED_RESOLVED)
    async def on_need_resolved(self, session: AsyncSession, event: CloudEvent, data: hh.NeedData) -> None:
        await service.need_resolved(session=session, need_id=data.need_id, now=self.settings.clock())

    @handles(hh.MEMBER_DIED)
    async def on_member_died(self, session: AsyncSession, event: CloudEvent, data: hh.MemberDiedData) -> None:
        await self._member(session, data)
        await life_events.close_for_life_event(session=session, reason=LifeEventClosure.DECEASED,
                                               member_id=data.member_id, now=self.settings.clock(),
                                               detail=f"the member died on {data.date_of_death.isoformat()}")

    @handles(hh.MEMBER_MOVED_OUT)
    async def on_member_moved_out(self, session: AsyncSession, event: CloudEvent,
                                  data: hh.MemberMovedOutData) -> None:
        await self._member(session, data)
        await life_events.close_for_life_event(session=session, reason=LifeEventClosure.MOVED_OUT,
                                               member_id=data.member_id, now=self.settings.clock(),
                                               detail=f"the member moved out of the area on "
                                                      f"{data.moved_out_on.isoformat()}")

    @handles(hh.MEMBER_MOVED)
    async def on_member_moved(self, session: AsyncSession, event: CloudEvent, data: hh.MemberMovedData) -> None:
        await self._member(session, data)
        await life_events.member_moved(session=session, moved=data, policy=self.settings.referral_move_policy,
                                       now=self.settings.clock())

    @handles(hh.HOUSEHOLD_CLOSED)
    async def on_household_closed(self, session: AsyncSession, event: CloudEvent,
                                  data: hh.HouseholdClosedData) -> None:
        await self._household(session, data)
        merged = f" into household {data.merged_into_household_id}" if data.merged_into_household_id else ""
        await life_events.close_for_life_event(session=session, reason=LifeEventClosure.HOUSEHOLD_CLOSED,
                                               household_id=data.household_id, now=self.settings.clock(),
                                               detail=f"the household closed ({data.reason}{merged}) on "
                                                      f"{data.closed_on.isoformat()}")
