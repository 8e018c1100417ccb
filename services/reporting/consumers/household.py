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
from shared.consumer import Batched, Handler
from shared.events import household as ev
from shared.events.envelope import CloudEvent

households = HouseholdRow.__table__  # type: ignore[attr-defined]
members = MemberRow.__table__  # type: ignore[attr-defined]
merges = MemberMergeRow.__table__  # type: ignore[attr-defined]
profiles = ProfileVersionRow.__table__  # type: ignore[attr-defined]
measurements = MeasurementRow.__table__  # type: ignore[attr-defined]
needs = NeedRow.__table__  # type: ignore[attr-defined]
sessions = SessionRow.__table__  # type: ignore[attr-defined]
visits = VisitRow.__table__  # type: ignore[attr-defined]
doses = DoseRow.__table__  # type: ignore[attr-defined]


def _newest_wins(table: sa.Table, columns: list[str]) -> dict[str, object]:
    """ON CONFLICT assignments: the columns take the incoming values only if its version is newer, and
    first_seen_at keeps the earliest event time seen, whichever arrives first."""
    newer = table.c.version < sa.literal_column("excluded.version")
    assignments: dict[str, object] = {
        name: sa.case((newer, sa.literal_column(f"excluded.{name}")), else_=table.c[name]) for name in columns}
    assignments["first_seen_at"] = sa.func.least(table.c.first_seen_at, sa.literal_column("excluded.first_seen_at"))
    return assignments


def _newest_per_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per id, as the rows applied one by one would leave it: the newest version's values (the later
    one on a tie) and the earliest first_seen_at. One statement may not touch a row twice."""
    merged: dict[object, dict[str, Any]] = {}
    for row in rows:
        kept = merged.get(row["id"])
        if kept is None:
            merged[row["id"]] = row
            continue
        first_seen = min(kept["first_seen_at"], row["first_seen_at"])
        merged[row["id"]] = {**(row if row["version"] >= kept["version"] else kept), "first_seen_at": first_seen}
    return list(merged.values())


async def _upsert_versioned(session: AsyncSession, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    rows = _newest_per_id(rows)
    columns = [name for name in rows[0] if name not in ("id", "first_seen_at")]
    await session.execute(insert(table).on_conflict_do_update(index_elements=["id"],
                                                              set_=_newest_wins(table, columns)), rows)


async def on_households(session: AsyncSession, events: list[CloudEvent]) -> None:
    """Upserts households' village, posyandu and status (newest version wins)."""
    rows = []
    for event in events:
        data = ev.HouseholdData.model_validate(event.data)
        rows.append({"id": data.household_id, "village_code": codes.village(data.village_code),
                     "posyandu_id": data.posyandu_id,
                     "status": data.status, "version": data.version, "first_seen_at": event.time})
    await _upsert_versioned(session, households, rows)


async def on_household_moved(session: AsyncSession, event: CloudEvent) -> None:
    """A move is a versioned household change: the new posyandu and village."""
    data = ev.HouseholdMovedData.model_validate(event.data)
    values: dict[str, object] = {"village_code": codes.village(data.village_code), "posyandu_id": data.to_posyandu_id,
                                 "version": data.version}
    await session.execute(insert(households).values(id=data.household_id, first_seen_at=event.time,
                                                    status="active", **values)
                          .on_conflict_do_update(index_elements=["id"], set_=values,
                                                 where=households.c.version < data.version))


async def on_members(session: AsyncSession, events: list[CloudEvent]) -> None:
    """Upserts members' birth date, sex, pregnancy, disability and status (newest version wins)."""
    rows = []
    for event in events:
        data = ev.MemberData.model_validate(event.data)
        rows.append({"id": data.member_id, "household_id": data.household_id, "sex": data.sex,
                     "birth_date": data.birth_date, "pregnant": data.pregnant, "disability": data.disability,
                     "status": data.status, "version": data.version, "first_seen_at": event.time})
    await _upsert_versioned(session, members, rows)


async def on_members_moved(session: AsyncSession, events: list[CloudEvent]) -> None:
    """A member moved to another household: its row as an update, and the open needs it took along are counted
    in the new household's village."""
    await on_members(session, events)
    for event in events:
        data = ev.MemberMovedData.model_validate(event.data)
        if data.moved_need_ids:
            await session.execute(needs.update().where(needs.c.id.in_(data.moved_need_ids)).values(
                household_id=data.household_id, village_code=codes.village(data.village_code)))


async def on_member_merged(session: AsyncSession, event: CloudEvent) -> None:
    """Records that a duplicate is no longer a person of its own."""
    data = ev.MemberMergedData.model_validate(event.data)
    await session.execute(insert(merges).values(merged_id=data.merged_id, survivor_id=data.survivor_id)
                          .on_conflict_do_nothing())


async def on_profiles(session: AsyncSession, events: list[CloudEvent]) -> None:
    """Keeps every profile version (immutable), so each period reads the version observed by its end."""
    rows = []
    for event in events:
        data = ev.ProfileUpdatedData.model_validate(event.data)
        rows.append({"household_id": data.household_id, "spm_field": data.spm_field.value, "version": data.version,
                     "observed_on": data.observed_on, "event_time": event.time, "data": data.profile,
                     "decided": data.decided.model_dump() if data.decided else None})
    await session.execute(insert(profiles).on_conflict_do_nothing(), rows)


async def on_measurements(session: AsyncSession, events: list[CloudEvent]) -> None:
    """Keeps measurements' classes (immutable)."""
    rows = []
    for event in events:
        data = ev.MeasurementData.model_validate(event.data)
        rows.append({"id": data.measurement_id, "household_id": data.household_id, "member_id": data.member_id,
                     "measured_on": data.measured_on, "age_days": data.age_days, "haz_class": data.haz_class,
                     "waz_class": data.waz_class, "whz_class": data.whz_class, "muac_class": data.muac_class,
                     "kms_signal": data.kms_signal})
    await session.execute(insert(measurements).on_conflict_do_nothing(), rows)


def _on_needs(column: str) -> Batched:
    async def apply(session: AsyncSession, events: list[CloudEvent]) -> None:
        rows: dict[object, dict[str, Any]] = {}  # the later event of a need wins, as one by one
        for event in events:
            data = ev.NeedData.model_validate(event.data)
            rows[data.need_id] = {"id": data.need_id, "household_id": data.household_id,
                                  "village_code": codes.village(data.village_code), "spm_field": data.spm_field.value,
                                  "category": data.category, "urgency": data.urgency, column: event.time}
        await session.execute(insert(needs).on_conflict_do_update(
            index_elements=["id"], set_={column: sa.literal_column(f"excluded.{column}")}), list(rows.values()))

    apply.__doc__ = f"A need's {column}; each event type fills its own column, so either may come first."
    return Batched(apply)


async def on_session(session: AsyncSession, event: CloudEvent) -> None:
    """A session opened or closed (newest version wins)."""
    data = ev.SessionData.model_validate(event.data)
    values = {"posyandu_id": data.posyandu_id, "village_code": codes.village(data.village_code),
              "session_date": data.session_date, "status": data.status, "version": data.version}
    await session.execute(insert(sessions).values(id=data.session_id, **values).on_conflict_do_update(
        index_elements=["id"], set_=values, where=sessions.c.version < data.version))


async def on_visits(session: AsyncSession, events: list[CloudEvent]) -> None:
    """Keeps visits' life-cycle group and SKDN items (immutable); the screening values stay in the household."""
    rows = {}
    for event in events:
        data = ev.VisitData.model_validate(event.data)
        child = data.child
        rows[data.visit_id] = {"id": data.visit_id, "household_id": data.household_id, "member_id": data.member_id,
                               "session_id": data.session_id, "visited_on": data.visited_on,
                               "life_cycle_group": data.life_cycle_group, "pregnant": data.pregnant,
                               "kms_book_held": child.kms_book_held if child else None,
                               "weighed": bool(child and child.weighed),
                               "kms_signal": child.kms_signal if child else None}
    await session.execute(insert(visits).on_conflict_do_nothing(), list(rows.values()))


def _on_doses(voided: bool) -> Batched:
    async def apply(session: AsyncSession, events: list[CloudEvent]) -> None:
        rows = {}
        for event in events:
            data = ev.ImmunizationData.model_validate(event.data)
            rows[data.dose_id] = {"id": data.dose_id, "household_id": data.household_id, "member_id": data.member_id,
                                  "vaccine": data.vaccine, "dose_number": data.dose_number,
                                  "given_on": data.given_on, "voided": voided}
        statement = insert(doses)
        # A void is final, whichever of the two events arrives first.
        await session.execute(statement.on_conflict_do_update(
            index_elements=["id"], set_={"voided": doses.c.voided | statement.excluded.voided}), list(rows.values()))

    apply.__doc__ = "A dose recorded" if not voided else "A dose voided (a recording mistake: no longer counted)"
    return Batched(apply)


def handlers() -> dict[str, Handler | Batched]:
    return {
        ev.HOUSEHOLD_REGISTERED.name: Batched(on_households),
        ev.HOUSEHOLD_UPDATED.name: Batched(on_households),
        ev.HOUSEHOLD_MOVED.name: on_household_moved,
        ev.MEMBER_ADDED.name: Batched(on_members),
        ev.MEMBER_UPDATED.name: Batched(on_members),
        ev.MEMBER_MERGED.name: on_member_merged,
        # Life events carry the member's or household's state after them: applied as updates, newest version wins.
        ev.MEMBER_DIED.name: Batched(on_members),
        ev.MEMBER_MOVED_OUT.name: Batched(on_members),
        ev.MEMBER_MOVED.name: Batched(on_members_moved),
        ev.HOUSEHOLD_CLOSED.name: Batched(on_households),
        ev.PROFILE_UPDATED.name: Batched(on_profiles),
        ev.MEASUREMENT_RECORDED.name: Batched(on_measurements),
        ev.NEED_DETECTED.name: _on_needs("detected_at"),
        ev.NEED_RESOLVED.name: _on_needs("resolved_at"),
        ev.SESSION_OPENED.name: on_session,
        ev.SESSION_CLOSED.name: on_session,
        ev.VISIT_RECORDED.name: Batched(on_visits),
        ev.IMMUNIZATION_RECORDED.name: _on_doses(voided=False),
        ev.IMMUNIZATION_VOIDED.name: _on_doses(voided=True),
    }
