"""Handlers for posyandu.household.v1: households, members, profiles, measurements and needs as projections.

Only what the indicators need is kept: ids, region codes, age, sex and coded values; the masked NIK and
KK number and the needs' evidence are dropped on arrival.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.consumers import codes
from services.reporting.tables import (
    DoseRow,
    HouseholdRow,
    MeasurementRow,
    MemberMergeRow,
    MemberRow,
    NeedRow,
    ProfileVersionRow,
    SessionRow,
    VisitRow,
)
from shared.events import household as ev
from shared.events.envelope import CloudEvent
from shared.events.topics import HOUSEHOLD_TOPIC
from shared.projection import Projection, Received, handles
from shared.versioned import upsert_newer, upsert_newer_many

households = HouseholdRow.__table__  # type: ignore[attr-defined]
members = MemberRow.__table__  # type: ignore[attr-defined]
merges = MemberMergeRow.__table__  # type: ignore[attr-defined]
profiles = ProfileVersionRow.__table__  # type: ignore[attr-defined]
measurements = MeasurementRow.__table__  # type: ignore[attr-defined]
needs = NeedRow.__table__  # type: ignore[attr-defined]
sessions = SessionRow.__table__  # type: ignore[attr-defined]
visits = VisitRow.__table__  # type: ignore[attr-defined]
doses = DoseRow.__table__  # type: ignore[attr-defined]


class HouseholdEvents(Projection):
    topics = (HOUSEHOLD_TOPIC,)

    # Life events carry the member's or household's state after them: applied as updates, newest version wins.
    @handles(ev.HOUSEHOLD_REGISTERED, ev.HOUSEHOLD_UPDATED, ev.HOUSEHOLD_CLOSED, batched=True)
    async def on_households(self, session: AsyncSession, events: list[Received[ev.HouseholdData]]) -> None:
        """Upserts households' village, posyandu and status (newest version wins; first_seen_at the earliest)."""
        await upsert_newer_many(session, households, [
            {"id": r.data.household_id, "village_code": codes.village(r.data.village_code),
             "posyandu_id": r.data.posyandu_id, "status": r.data.status, "version": r.data.version,
             "first_seen_at": r.event.time} for r in events], earliest=("first_seen_at",))

    @handles(ev.HOUSEHOLD_MOVED)
    async def on_household_moved(self, session: AsyncSession, event: CloudEvent, data: ev.HouseholdMovedData) -> None:
        """A move is a versioned household change: the new posyandu and village."""
        await upsert_newer(session, households, {
            "id": data.household_id, "first_seen_at": event.time, "status": "active",
            "village_code": codes.village(data.village_code), "posyandu_id": data.to_posyandu_id,
            "version": data.version}, insert_only=("first_seen_at", "status"))

    @handles(ev.MEMBER_ADDED, ev.MEMBER_UPDATED, ev.MEMBER_DIED, ev.MEMBER_MOVED_OUT, batched=True)
    async def on_members(self, session: AsyncSession, events: list[Received[ev.MemberData]]) -> None:
        """Upserts members' birth date, sex, pregnancy, disability and status (newest version wins)."""
        await _upsert_members(session, events)

    @handles(ev.MEMBER_MOVED, batched=True)
    async def on_members_moved(self, session: AsyncSession, events: list[Received[ev.MemberMovedData]]) -> None:
        """A member moved to another household: its row as an update, and the open needs it took along are counted
        in the new household's village."""
        await _upsert_members(session, events)
        for r in events:
            if r.data.moved_need_ids:
                await session.execute(needs.update().where(needs.c.id.in_(r.data.moved_need_ids)).values(
                    household_id=r.data.household_id, village_code=codes.village(r.data.village_code)))

    @handles(ev.MEMBER_MERGED)
    async def on_member_merged(self, session: AsyncSession, event: CloudEvent, data: ev.MemberMergedData) -> None:
        """Records that a duplicate is no longer a person of its own."""
        await session.execute(insert(merges).values(merged_id=data.merged_id, survivor_id=data.survivor_id)
                              .on_conflict_do_nothing())

    @handles(ev.PROFILE_UPDATED, batched=True)
    async def on_profiles(self, session: AsyncSession, events: list[Received[ev.ProfileUpdatedData]]) -> None:
        """Keeps every profile version (immutable), so each period reads the version observed by its end."""
        await session.execute(insert(profiles).on_conflict_do_nothing(), [
            {"household_id": r.data.household_id, "spm_field": r.data.spm_field.value, "version": r.data.version,
             "observed_on": r.data.observed_on, "event_time": r.event.time, "data": r.data.profile,
             "decided": r.data.decided.model_dump() if r.data.decided else None} for r in events])

    @handles(ev.MEASUREMENT_RECORDED, batched=True)
    async def on_measurements(self, session: AsyncSession, events: list[Received[ev.MeasurementData]]) -> None:
        """Keeps measurements' classes (immutable)."""
        await session.execute(insert(measurements).on_conflict_do_nothing(), [
            {"id": d.measurement_id, "household_id": d.household_id, "member_id": d.member_id,
             "measured_on": d.measured_on, "age_days": d.age_days, "haz_class": d.haz_class,
             "waz_class": d.waz_class, "whz_class": d.whz_class, "muac_class": d.muac_class,
             "kms_signal": d.kms_signal} for d in (r.data for r in events)])

    @handles(ev.NEED_DETECTED, batched=True)
    async def on_needs_detected(self, session: AsyncSession, events: list[Received[ev.NeedData]]) -> None:
        """A need's detection time; each event type fills its own column, so either may come first."""
        await _upsert_needs(session, events, "detected_at")

    @handles(ev.NEED_RESOLVED, batched=True)
    async def on_needs_resolved(self, session: AsyncSession, events: list[Received[ev.NeedData]]) -> None:
        """A need's resolution time; each event type fills its own column, so either may come first."""
        await _upsert_needs(session, events, "resolved_at")

    @handles(ev.SESSION_OPENED, ev.SESSION_CLOSED)
    async def on_session(self, session: AsyncSession, event: CloudEvent, data: ev.SessionData) -> None:
        """A session opened or closed (newest version wins)."""
        await upsert_newer(session, sessions, {
            "id": data.session_id, "posyandu_id": data.posyandu_id, "village_code": codes.village(data.village_code),
            "session_date": data.session_date, "status": data.status, "version": data.version})

    @handles(ev.VISIT_RECORDED, batched=True)
    async def on_visits(self, session: AsyncSession, events: list[Received[ev.VisitData]]) -> None:
        """Keeps visits' life-cycle group and SKDN items (immutable); the screening values stay in the household."""
        rows = {}
        for r in events:
            data, child = r.data, r.data.child
            rows[data.visit_id] = {"id": data.visit_id, "household_id": data.household_id,
                                   "member_id": data.member_id, "session_id": data.session_id,
                                   "visited_on": data.visited_on, "life_cycle_group": data.life_cycle_group,
                                   "pregnant": data.pregnant, "kms_book_held": child.kms_book_held if child else None,
                                   "weighed": bool(child and child.weighed),
                                   "kms_signal": child.kms_signal if child else None}
        await session.execute(insert(visits).on_conflict_do_nothing(), list(rows.values()))

    @handles(ev.IMMUNIZATION_RECORDED, batched=True)
    async def on_doses_recorded(self, session: AsyncSession, events: list[Received[ev.ImmunizationData]]) -> None:
        """A dose recorded."""
        await _upsert_doses(session, events, voided=False)

    @handles(ev.IMMUNIZATION_VOIDED, batched=True)
    async def on_doses_voided(self, session: AsyncSession, events: list[Received[ev.ImmunizationData]]) -> None:
        """A dose voided (a recording mistake: no longer counted)."""
        await _upsert_doses(session, events, voided=True)


async def _upsert_members(session: AsyncSession, events: list[Received[ev.MemberData]] |
                          list[Received[ev.MemberMovedData]]) -> None:
    await upsert_newer_many(session, members, [
        {"id": r.data.member_id, "household_id": r.data.household_id, "sex": r.data.sex,
         "birth_date": r.data.birth_date, "pregnant": r.data.pregnant, "disability": r.data.disability,
         "status": r.data.status, "version": r.data.version, "first_seen_at": r.event.time} for r in events],
        earliest=("first_seen_at",))


async def _upsert_needs(session: AsyncSession, events: list[Received[ev.NeedData]], column: str) -> None:
    rows: dict[object, dict[str, Any]] = {}  # the later event of a need wins, as one by one
    for r in events:
        data = r.data
        rows[data.need_id] = {"id": data.need_id, "household_id": data.household_id,
                              "village_code": codes.village(data.village_code), "spm_field": data.spm_field.value,
                              "category": data.category, "urgency": data.urgency, column: r.event.time}
    await session.execute(insert(needs).on_conflict_do_update(
        index_elements=["id"], set_={column: sa.literal_column(f"excluded.{column}")}), list(rows.values()))


async def _upsert_doses(session: AsyncSession, events: list[Received[ev.ImmunizationData]], *, voided: bool) -> None:
    rows = {}
    for r in events:
        data = r.data
        rows[data.dose_id] = {"id": data.dose_id, "household_id": data.household_id, "member_id": data.member_id,
                              "vaccine": data.vaccine, "dose_number": data.dose_number, "given_on": data.given_on,
                              "voided": voided}
    statement = insert(doses)
    # A void is final, whichever of the two events arrives first.
    await session.execute(statement.on_conflict_do_update(
        index_elements=["id"], set_={"voided": doses.c.voided | statement.excluded.voided}), list(rows.values()))
