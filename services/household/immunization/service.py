"""The immunisation use cases: schedule versions, recording and voiding doses (each with the household's needs),
reading a child's doses and status (each read audited), and publishing the computed status.

After every change of a household's doses the status of its under-fives is computed again and, where it changed,
a new kesehatan profile version carries it (recorded by `system:immunization`): the profile event is how reporting
learns it, so it never recomputes the rule. The need rules compute it themselves on the day they run.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.access import ReadBasis, readable_household, writable_household
from services.household.dates import check_past
from services.household.immunization import repository
from services.household.immunization.schedule import Schedule, ScheduleVersionIn
from services.household.immunization.status import ImmunizationStatus, status
from services.household.immunization.tables import Dose, ImportedResource, ScheduleVersionRecord
from services.household.needs.service import refresh_needs
from services.household.profiles.service import current_profile_data, store_version
from services.household.tables import Household, Member
from shared.audit import record_read
from shared.auth import Principal
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.events import household as ev
from shared.events.topics import SpmField
from shared.iso_dates import IsoDate
from shared.outbox import publish

SYSTEM_RECORDER = "system:immunization"


class Place(StrEnum):
    POSYANDU = "posyandu"
    PUSKESMAS = "puskesmas"
    ELSEWHERE = "elsewhere"
    PARENT_REPORT = "parent-report"


class DoseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vaccine: str = Field(min_length=1, max_length=30, description="A vaccine code of the schedule, e.g. `bcg`")
    dose_number: int = Field(ge=1, le=10)
    given_on: IsoDate
    place: Place = Field(description="Where it was given, or `parent-report` when the parent reported it")
    lot_number: str | None = Field(default=None, min_length=1, max_length=40)


class DoseVoid(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="Why the record is a mistake")


class ScheduleVersionExists(Conflict):
    pass


class DoseAlreadyRecorded(Conflict):
    pass


class DoseNotFound(NotFound):
    pass


class MemberNotFound(NotFound):
    pass


def _invalid(field: str, message: str, detail: str) -> ValidationFailed:
    return ValidationFailed(detail, errors=[{"field": field, "message": message}])


# --- the schedule -------------------------------------------------------------------------------------------------


async def add_schedule_version(*, session: AsyncSession, principal: Principal, payload: ScheduleVersionIn,
                               today: date) -> ScheduleVersionRecord:
    """Adds a national schedule version, in force from a day that is neither past nor before a version's start."""
    await session.execute(sa.text("LOCK TABLE immunization_schedule_versions IN SHARE ROW EXCLUSIVE MODE"))
    existing = await repository.schedule_records(session)
    if any(r.version == payload.version for r in existing):
        raise ScheduleVersionExists(f"Schedule version {payload.version} exists: a change is a new version.")
    if payload.valid_from < today:
        raise _invalid("valid_from", "is in the past", "A schedule version cannot start in the past: statuses "
                       "already computed and published would change behind the kaders' backs.")
    if existing and payload.valid_from <= existing[-1].valid_from:
        raise _invalid("valid_from", f"is not after {existing[-1].valid_from.isoformat()}",
                       f"A new version must start after the latest one ({existing[-1].version}, from "
                       f"{existing[-1].valid_from.isoformat()}).")
    record = ScheduleVersionRecord(version=payload.version, valid_from=payload.valid_from, source=payload.source,
                                   rows=[r.model_dump(mode="json") for r in payload.rows], created_by=principal.sub)
    session.add(record)
    await session.flush()
    return record


# --- doses --------------------------------------------------------------------------------------------------------


async def _member(session: AsyncSession, household: Household, member_id: uuid.UUID) -> Member:
    member = await session.get(Member, member_id)
    if member is None or member.household_id != household.id or member.status != "active":
        raise MemberNotFound(f"No member {member_id} in household {household.id}.")
    return member


def check_dose(payload: DoseCreate, *, member: Member, doses: list[Dose], schedule: Schedule, today: date) -> None:
    """Refuses (422) a dose the child cannot have had: unknown vaccine or dose, before birth, in the future, out of
    order or too soon after the previous dose; 409 for a dose already recorded. (No later dose can be recorded
    without this one: doses are recorded in order and only a vaccine's latest dose can be voided.)"""
    field = "given_on"
    try:
        check_past(payload.given_on, today=today)
    except ValueError as exc:
        raise _invalid(field, str(exc), f"The dose's date {exc}.") from None
    if payload.given_on < member.birth_date:
        raise _invalid(field, "before the birth date", "The dose is dated before the child's birth.")
    if payload.vaccine not in schedule.vaccines:
        raise _invalid("vaccine", "not a vaccine of the schedule",
                       f"Unknown vaccine {payload.vaccine!r}; the schedule has {', '.join(sorted(schedule.vaccines))}.")
    row = schedule.row(payload.vaccine, payload.dose_number, payload.given_on)
    if row is None:
        raise _invalid("dose_number", "not a dose of this vaccine in the schedule",
                       f"The schedule has no dose {payload.dose_number} of {payload.vaccine}.")
    same = {d.dose_number: d for d in doses if d.vaccine == payload.vaccine}
    if payload.dose_number in same:
        raise DoseAlreadyRecorded(f"Dose {payload.dose_number} of {payload.vaccine} is already recorded (given on "
                                  f"{same[payload.dose_number].given_on.isoformat()}); void it to correct it.")
    previous = same.get(payload.dose_number - 1)
    if payload.dose_number > 1 and previous is None:
        raise _invalid("dose_number", f"dose {payload.dose_number - 1} is not recorded",
                       f"Dose {payload.dose_number} of {payload.vaccine} comes after dose "
                       f"{payload.dose_number - 1}, which is not recorded: record it first.")
    if previous is not None:
        gap = (payload.given_on - previous.given_on).days
        if gap < (row.min_interval_days or 1):
            raise _invalid(field, f"{gap} days after dose {previous.dose_number}, at least "
                                  f"{row.min_interval_days or 1} needed",
                           f"Dose {payload.dose_number} of {payload.vaccine} is dated {gap} days after dose "
                           f"{previous.dose_number}; the schedule wants at least {row.min_interval_days or 1}.")


async def add_dose(*, session: AsyncSession, principal: Principal, household: Household, member: Member,
                   payload: DoseCreate, schedule: Schedule, today: date, source: str = "api") -> Dose:
    """Records a checked dose of a loaded, writable household's member and announces it with the new status."""
    doses = (await repository.live_doses(session, [member.id]))[member.id]
    check_dose(payload, member=member, doses=doses, schedule=schedule, today=today)
    dose = Dose(member_id=member.id, household_id=household.id, vaccine=payload.vaccine,
                dose_number=payload.dose_number, given_on=payload.given_on, place=payload.place.value,
                lot_number=payload.lot_number, recorded_by=principal.sub)
    session.add(dose)
    await session.flush()
    await _announce(session, ev.IMMUNIZATION_RECORDED, household, member, dose, [*doses, dose], schedule, today,
                    source)
    return dose


async def record_dose(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID,
                      member_id: uuid.UUID, payload: DoseCreate, today: date) -> Dose:
    """POST .../immunizations: a dose given to a child of a household the caller may change, with its event, the
    published status and the household's needs."""
    household = await writable_household(session, principal, household_id)
    member = await _member(session, household, member_id)
    dose = await add_dose(session=session, principal=principal, household=household, member=member,
                          payload=payload, schedule=await repository.load_schedule(session), today=today)
    await sync_profile_status(session=session, household=household, today=today)
    await refresh_needs(session, household, today=today)
    return dose


async def void_dose(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID, member_id: uuid.UUID,
                    dose_id: uuid.UUID, payload: DoseVoid, today: date) -> Dose:
    """POST .../immunizations/{dose_id}/void: a dose recorded by mistake voided (the row stays, marked voided, with
    who and why), with its event, the published status and the household's needs."""
    household = await writable_household(session, principal, household_id)
    member = await _member(session, household, member_id)
    dose = await session.get(Dose, dose_id, with_for_update=True)
    if dose is None or dose.member_id != member.id:
        raise DoseNotFound(f"No dose {dose_id} of member {member_id}.")
    if dose.status != "active":
        raise Conflict(f"Dose {dose_id} is already voided.")
    following = (await session.execute(select(Dose.id).where(
        Dose.member_id == member.id, Dose.vaccine == dose.vaccine, Dose.status == "active",
        col(Dose.dose_number) > dose.dose_number))).first()
    if following is not None:
        raise Conflict(f"A later dose of {dose.vaccine} is recorded: void the latest dose first.")
    dose.status, dose.void_reason, dose.voided_by, dose.voided_at = (
        "voided", payload.reason, principal.sub, datetime.now(UTC))
    await session.flush()
    schedule = await repository.load_schedule(session)
    remaining = (await repository.live_doses(session, [member.id]))[member.id]
    await _announce(session, ev.IMMUNIZATION_VOIDED, household, member, dose, remaining, schedule, today, "api")
    await sync_profile_status(session=session, household=household, today=today)
    await refresh_needs(session, household, today=today)
    return dose


async def _announce(session: AsyncSession, event: Any, household: Household, member: Member, dose: Dose,
                    doses: list[Dose], schedule: Schedule, today: date, source: str) -> None:
    computed = status(member.birth_date, repository.given(doses), on=today, schedule=schedule,
                      village_code=household.village_code)
    await publish(session, event, ev.ImmunizationData(
        dose_id=dose.id, household_id=household.id, member_id=member.id, vaccine=dose.vaccine,
        dose_number=dose.dose_number, given_on=dose.given_on, place=dose.place, lot_number=dose.lot_number,
        age_days=(dose.given_on - member.birth_date).days, source=source, immunization_status=computed.status,
        schedule_version=computed.schedule_version), subject=str(household.id), regioncode=household.village_code)


async def move_doses(*, session: AsyncSession, merged: Member, survivor: Member, household: Household,
                     recorded_by: str) -> None:
    """A duplicate member's dose records move to the survivor (merge): a dose the survivor already has stays the
    survivor's, and the other record's copy is voided, so no dose is counted twice."""
    theirs = {(d.vaccine, d.dose_number) for d in (await repository.live_doses(session, [survivor.id]))[survivor.id]}
    for dose in (await session.execute(select(Dose).where(Dose.member_id == merged.id).with_for_update())
                 ).scalars().all():
        if dose.status == "active" and (dose.vaccine, dose.dose_number) in theirs:
            dose.status, dose.voided_by, dose.voided_at = "voided", recorded_by, datetime.now(UTC)
            dose.void_reason = f"merged into member {survivor.id}, who has this dose recorded"
        dose.member_id, dose.household_id = survivor.id, household.id
    await session.execute(sa.update(ImportedResource).where(col(ImportedResource.member_id) == merged.id)
                          .values(member_id=survivor.id))
    await session.flush()


async def read_member(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID,
                      member_id: uuid.UUID, resource_type: str) -> tuple[Household, Member, ReadBasis]:
    """A member of a household the caller may read (404 otherwise), the read audited as `resource_type`."""
    household, basis = await readable_household(session, principal, household_id)
    member = await session.get(Member, member_id)
    if member is None or member.household_id != household.id:
        raise MemberNotFound(f"No member {member_id} in household {household_id}.")
    await record_read(session, principal, resource_type=resource_type, resource_id=str(member_id),
                      subject_ref=str(household.id), purpose=basis.purpose)
    return household, member, basis


async def dose_records(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID,
                       member_id: uuid.UUID) -> list[Dose]:
    """GET .../immunizations: a child's dose records, voided ones too, the read audited."""
    _, member, _ = await read_member(session=session, principal=principal, household_id=household_id,
                                     member_id=member_id, resource_type="immunizations")
    return await doses_of(session, member.id)


async def read_status(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID,
                      member_id: uuid.UUID, on: date) -> ImmunizationStatus:
    """GET .../immunizations/status: a child's computed status on a day, the read audited."""
    household, member, _ = await read_member(session=session, principal=principal, household_id=household_id,
                                             member_id=member_id, resource_type="immunization.status")
    return await member_status(session=session, household=household, member=member, on=on)


async def member_status(*, session: AsyncSession, household: Household, member: Member,
                        on: date) -> ImmunizationStatus:
    """A member's status on a day (past or future), from their live doses and the schedule in force then."""
    doses = (await repository.live_doses(session, [member.id]))[member.id]
    return status(member.birth_date, repository.given(doses), on=on, schedule=await repository.load_schedule(session),
                  village_code=household.village_code)


async def doses_of(session: AsyncSession, member_id: uuid.UUID) -> list[Dose]:
    """Every dose record of a member, voided ones too, by date given."""
    return list((await session.execute(select(Dose).where(Dose.member_id == member_id).order_by(
        col(Dose.given_on), col(Dose.vaccine), col(Dose.dose_number), col(Dose.recorded_at)))).scalars().all())


async def sync_profile_status(*, session: AsyncSession, household: Household, today: date) -> bool:
    """Publishes the household's computed statuses: a new kesehatan profile version where one changed.

    Call it after anything that changes a household's doses, and daily (statuses change as children age).
    Returns whether a version was written."""
    members = list((await session.execute(select(Member).where(
        Member.household_id == household.id, Member.status == "active"))).scalars().all())
    statuses = await repository.computed_statuses(session, household, members, today=today)
    current = await current_profile_data(session, household.id, SpmField.KESEHATAN)
    updated = repository.with_statuses(current or {}, statuses)
    if updated == (current or {"members": {}}) or (current is None and not updated["members"]):
        return False
    await store_version(session=session, household=household, field=SpmField.KESEHATAN, data=updated,
                        observed_on=today, recorded_by=SYSTEM_RECORDER)
    return True
