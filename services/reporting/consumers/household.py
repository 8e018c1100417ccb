"""Handlers for posyandu.household.v1: households, members, profiles, measurements and needs as projections.

Only what the indicators need is kept: ids, region codes, age, sex and coded values; the masked NIK and
KK number and the needs' evidence are dropped on arrival.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.tables import (
    HouseholdRow,
    MeasurementRow,
    MemberMergeRow,
    MemberRow,
    NeedRow,
    ProfileVersionRow,
)
from shared.consumer import Handler
from shared.events import household as ev
from shared.events.envelope import CloudEvent

households = HouseholdRow.__table__  # type: ignore[attr-defined]
members = MemberRow.__table__  # type: ignore[attr-defined]
merges = MemberMergeRow.__table__  # type: ignore[attr-defined]
profiles = ProfileVersionRow.__table__  # type: ignore[attr-defined]
measurements = MeasurementRow.__table__  # type: ignore[attr-defined]
needs = NeedRow.__table__  # type: ignore[attr-defined]


def _newest_wins(table: sa.Table, values: dict[str, object]) -> dict[str, object]:
    """ON CONFLICT assignments: the columns take the incoming values only if its version is newer, and
    first_seen_at keeps the earliest event time seen, whichever arrives first (one statement per event)."""
    newer = table.c.version < sa.literal_column("excluded.version")
    assignments: dict[str, object] = {
        name: sa.case((newer, sa.literal_column(f"excluded.{name}")), else_=table.c[name]) for name in values}
    assignments["first_seen_at"] = sa.func.least(table.c.first_seen_at, sa.literal_column("excluded.first_seen_at"))
    return assignments


async def _upsert_household(session: AsyncSession, event: CloudEvent, household_id: object,
                            values: dict[str, object]) -> None:
    await session.execute(insert(households).values(id=household_id, first_seen_at=event.time, **values)
                          .on_conflict_do_update(index_elements=["id"], set_=_newest_wins(households, values)))


async def on_household(session: AsyncSession, event: CloudEvent) -> None:
    """Upserts a household's village, posyandu and status (newest version wins)."""
    data = ev.HouseholdData.model_validate(event.data)
    await _upsert_household(session, event, data.household_id,
                            {"village_code": data.village_code, "posyandu_id": data.posyandu_id,
                             "status": data.status, "version": data.version})


async def on_household_moved(session: AsyncSession, event: CloudEvent) -> None:
    """A move is a versioned household change: the new posyandu and village."""
    data = ev.HouseholdMovedData.model_validate(event.data)
    values: dict[str, object] = {"village_code": data.village_code, "posyandu_id": data.to_posyandu_id,
                                 "version": data.version}
    await session.execute(insert(households).values(id=data.household_id, first_seen_at=event.time,
                                                    status="active", **values)
                          .on_conflict_do_update(index_elements=["id"], set_=values,
                                                 where=households.c.version < data.version))


async def on_member(session: AsyncSession, event: CloudEvent) -> None:
    """Upserts a member's birth date, sex, pregnancy, disability and status (newest version wins)."""
    data = ev.MemberData.model_validate(event.data)
    values = {"household_id": data.household_id, "sex": data.sex, "birth_date": data.birth_date,
              "pregnant": data.pregnant, "disability": data.disability, "status": data.status,
              "version": data.version}
    await session.execute(insert(members).values(id=data.member_id, first_seen_at=event.time, **values)
                          .on_conflict_do_update(index_elements=["id"], set_=_newest_wins(members, values)))


async def on_member_merged(session: AsyncSession, event: CloudEvent) -> None:
    """Records that a duplicate is no longer a person of its own."""
    data = ev.MemberMergedData.model_validate(event.data)
    await session.execute(insert(merges).values(merged_id=data.merged_id, survivor_id=data.survivor_id)
                          .on_conflict_do_nothing())


async def on_profile(session: AsyncSession, event: CloudEvent) -> None:
    """Keeps every profile version (immutable), so each period reads the version observed by its end."""
    data = ev.ProfileUpdatedData.model_validate(event.data)
    await session.execute(insert(profiles).values(
        household_id=data.household_id, spm_field=data.spm_field.value, version=data.version,
        observed_on=data.observed_on, event_time=event.time, data=data.profile).on_conflict_do_nothing())


async def on_measurement(session: AsyncSession, event: CloudEvent) -> None:
    """Keeps a measurement's classes (immutable)."""
    data = ev.MeasurementData.model_validate(event.data)
    await session.execute(insert(measurements).values(
        id=data.measurement_id, household_id=data.household_id, member_id=data.member_id,
        measured_on=data.measured_on, age_days=data.age_days, haz_class=data.haz_class, waz_class=data.waz_class,
        whz_class=data.whz_class, muac_class=data.muac_class, kms_signal=data.kms_signal).on_conflict_do_nothing())


async def on_need(session: AsyncSession, event: CloudEvent) -> None:
    """A need's detection or resolution time; each event fills its own column, so either may come first."""
    data = ev.NeedData.model_validate(event.data)
    column = "resolved_at" if event.type == ev.NEED_RESOLVED.name else "detected_at"
    values = {"household_id": data.household_id, "village_code": data.village_code,
              "spm_field": data.spm_field.value, "category": data.category, "urgency": data.urgency}
    await session.execute(insert(needs).values(id=data.need_id, **values, **{column: event.time})
                          .on_conflict_do_update(index_elements=["id"], set_={column: event.time}))


def handlers() -> dict[str, Handler]:
    return {
        ev.HOUSEHOLD_REGISTERED.name: on_household,
        ev.HOUSEHOLD_UPDATED.name: on_household,
        ev.HOUSEHOLD_MOVED.name: on_household_moved,
        ev.MEMBER_ADDED.name: on_member,
        ev.MEMBER_UPDATED.name: on_member,
        ev.MEMBER_MERGED.name: on_member_merged,
        ev.PROFILE_UPDATED.name: on_profile,
        ev.MEASUREMENT_RECORDED.name: on_measurement,
        ev.NEED_DETECTED.name: on_need,
        ev.NEED_RESOLVED.name: on_need,
    }
