"""Visits: one per member per session, the services received checked against the member's age, sex and pregnancy
on the session date; the child's measurement goes through the measurements module and the kesehatan profile
follows the visit where the two hold the same item (one source of truth: the newest visit). Recording one and
reading a session's or a member's visits (each read audited) as use cases."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.access import readable_household, writable_household
from services.household.dates import age_in_months
from services.household.households.service import life_cycle_group
from services.household.measurements import service as measurements
from services.household.measurements.service import MeasurementCreate
from services.household.needs.service import refresh_needs
from services.household.profiles import service as profiles
from services.household.profiles.schemas import KesehatanMember, KesehatanProfile
from services.household.sessions import service as sessions
from services.household.tables import Household, Member, PosyanduSession, Visit
from services.household.visits.schemas import VisitCreate
from shared.audit import record_read
from shared.auth import Principal
from shared.conflicts import flush_unique
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.events import household as ev
from shared.events.topics import SpmField
from shared.outbox import publish
from shared.pagination import decode_cursor, page_of, timestamp

#: Vitamin A is given in the national supplementation months (bulan vitamin A): February and August.
VITAMIN_A_MONTHS = (2, 8)
VITAMIN_A_FROM_MONTHS = 6
DEWORMING_FROM_MONTHS = 12
CHILD_UNDER_MONTHS = 60
#: Adolescents (remaja) are 10-18 (Permenkes 25/2014); the adult screening starts at DOMAIN.md §8's adult age.
ADOLESCENT_YEARS = range(10, 19)
ADULT_FROM_YEARS = 19
PREGNANCY_FROM_YEARS = 10


class VisitExists(Conflict):
    pass


def _group_errors(member: Member, on: date, payload: VisitCreate) -> list[dict[str, Any]]:
    """What the member cannot have received, by age, sex and pregnancy on the session date."""
    months = age_in_months(member.birth_date, on)
    years = months // 12
    errors: list[dict[str, Any]] = []
    if payload.child is not None:
        if months >= CHILD_UNDER_MONTHS:
            errors.append({"field": "child", "message": f"the member is {years} years old on {on}: the child "
                                                        "section is for children under 60 months"})
        if payload.child.vitamin_a and on.month not in VITAMIN_A_MONTHS:
            errors.append({"field": "child.vitamin_a",
                           "message": "vitamin A is given in February and August only"})
        elif payload.child.vitamin_a and months < VITAMIN_A_FROM_MONTHS:
            errors.append({"field": "child.vitamin_a", "message": "vitamin A is given from 6 months of age"})
        if payload.child.deworming and months < DEWORMING_FROM_MONTHS:
            errors.append({"field": "child.deworming", "message": "deworming is given from 12 months of age"})
    if payload.pregnancy is not None:
        if member.sex != "female":
            errors.append({"field": "pregnancy", "message": "antenatal care is for pregnant women; the member is "
                                                            "male"})
        elif years < PREGNANCY_FROM_YEARS:
            errors.append({"field": "pregnancy", "message": f"the member is {years} years old"})
        elif not member.pregnant:
            errors.append({"field": "pregnancy", "message": "the member is not recorded as pregnant; record the "
                                                            "pregnancy on the member first"})
    if payload.adolescent is not None and years not in ADOLESCENT_YEARS:
        errors.append({"field": "adolescent", "message": f"the member is {years} years old on {on}: the "
                                                         "adolescent section is for ages 10-18"})
    if payload.adult is not None and years < ADULT_FROM_YEARS:
        errors.append({"field": "adult", "message": f"the member is {years} years old on {on}: the adult "
                                                    "section is from 19 years"})
    return errors


async def _member_at(session: AsyncSession, held: PosyanduSession, member_id: uuid.UUID) -> Member:
    member = await session.get(Member, member_id)
    household = await session.get(Household, member.household_id) if member is not None else None
    if member is None or household is None or member.status != "active":
        raise ValidationFailed("No active member has this id.",
                               errors=[{"field": "member_id", "message": "no active member"}])
    if household.posyandu_id != held.posyandu_id:
        raise ValidationFailed("The member's household belongs to another posyandu than the session's.",
                               errors=[{"field": "member_id", "message": "a member of another posyandu"}])
    if held.session_date < member.birth_date:
        raise ValidationFailed("The session is before the member's birth.",
                               errors=[{"field": "member_id", "message": "born after the session date"}])
    return member


async def _measure(session: AsyncSession, principal: Principal, household: Household, member: Member,
                   held: PosyanduSession, payload: VisitCreate) -> tuple[uuid.UUID | None, ev.ChildVisitData | None]:
    """The child's measurement through the measurements module (z-scores, KMS signal, event), and the section."""
    if payload.child is None:
        return None, None
    values = payload.child.measurement
    measurement = None
    if values is not None:
        try:
            body = MeasurementCreate(measured_on=held.session_date, **values.model_dump())
        except ValidationError as exc:
            raise ValidationFailed("The session's date cannot date a measurement.", errors=[
                {"field": "child.measurement", "message": e["msg"]} for e in exc.errors()]) from None
        try:
            _, measurement = await measurements.record(session=session, principal=principal,
                                                       household_id=household.id, member_id=member.id, payload=body)
        except ValidationFailed as exc:
            raise ValidationFailed(exc.detail, errors=[{**e, "field": f"child.measurement.{e['field']}"}
                                                       for e in exc.errors or []]) from None
    child = ev.ChildVisitData(**payload.child.model_dump(exclude={"measurement"}),
                              weighed=measurement is not None and measurement.weight_kg is not None,
                              kms_signal=measurement.kms_signal if measurement is not None else None)
    return (measurement.id if measurement is not None else None), child


def _bmi(adult: ev.AdultServices) -> float | None:
    if adult.weight_kg is None or adult.height_cm is None:
        return None
    return round(adult.weight_kg / (adult.height_cm / 100) ** 2, 1)


def _profile_items(visit: Visit) -> dict[str, Any]:
    """The visit's items the kesehatan member profile holds too (pregnancy care, blood pressure, sugar, cough)."""
    sections: list[dict[str, Any]] = []
    if visit.pregnancy:
        pregnancy = ev.PregnancyServices.model_validate(visit.pregnancy)
        sections.append({"antenatal_visits": pregnancy.antenatal_visit_number, "pregnant_muac_cm": pregnancy.muac_cm,
                         "systolic_bp": pregnancy.systolic_bp, "diastolic_bp": pregnancy.diastolic_bp})
    if visit.adult:
        adult = ev.AdultServices.model_validate(visit.adult)
        sections.append({"systolic_bp": adult.systolic_bp, "diastolic_bp": adult.diastolic_bp,
                         "blood_sugar_mg_dl": adult.blood_sugar_mg_dl, "long_cough": adult.long_cough})
    # An item left out of one section does not clear what the other recorded.
    return {k: v for section in sections for k, v in section.items() if v is not None}


async def _follow_profile(session: AsyncSession, principal: Principal, household: Household, visit: Visit) -> None:
    """The kesehatan profile takes the newest visit's values of the items both hold: a visit recorded late for an
    older session leaves alone what a newer visit or a profile observed later recorded. Through the profile
    service, so its version and event follow."""
    items = _profile_items(visit)
    newer = await session.scalar(sa.select(sa.func.count()).select_from(Visit).where(
        col(Visit.member_id) == visit.member_id, col(Visit.visited_on) > visit.visited_on))
    latest = await profiles.versions(session, household.id, SpmField.KESEHATAN, latest_only=True)
    observed_later = bool(latest) and latest[0].observed_on is not None and latest[0].observed_on > visit.visited_on
    if not items or newer or observed_later:
        return
    current = (await profiles.current_profiles(session, household.id)).get(SpmField.KESEHATAN)
    active = set((await session.execute(sa.select(col(Member.id)).where(
        col(Member.household_id) == household.id, col(Member.status) == "active"))).scalars().all())
    members = {m: s for m, s in (current.members if isinstance(current, KesehatanProfile) else {}).items()
               if m in active}
    section = members.get(visit.member_id) or KesehatanMember()
    updated = section.model_copy(update=items)
    if updated == section:
        return
    # The stored profile carries the computed immunisation statuses, which a write may not type: the profile
    # service computes them again.
    computed = {"immunization_status"}
    sections = {str(m): s.model_dump(mode="json", exclude_none=True, exclude=computed) for m, s in members.items()}
    sections[str(visit.member_id)] = updated.model_dump(mode="json", exclude_none=True, exclude=computed)
    profile = KesehatanProfile.model_validate({"members": sections})
    await profiles.record(session=session, principal=principal, household_id=household.id,
                          field=SpmField.KESEHATAN, profile=profile, observed_on=visit.visited_on)


def event_data(visit: Visit) -> ev.VisitData:
    return ev.VisitData(
        visit_id=visit.id, session_id=visit.session_id, posyandu_id=visit.posyandu_id,
        household_id=visit.household_id, member_id=visit.member_id, visited_on=visit.visited_on,
        life_cycle_group=visit.life_cycle_group, age_months=visit.age_months, pregnant=visit.pregnant,
        child=ev.ChildVisitData.model_validate(visit.child) if visit.child else None,
        pregnancy=ev.PregnancyServices.model_validate(visit.pregnancy) if visit.pregnancy else None,
        adolescent=ev.AdolescentServices.model_validate(visit.adolescent) if visit.adolescent else None,
        adult=ev.AdultVisitData.model_validate(visit.adult) if visit.adult else None,
        counselling=visit.counselling, measurement_id=visit.measurement_id)


async def record(*, session: AsyncSession, principal: Principal, session_id: uuid.UUID,
                 payload: VisitCreate) -> Visit:
    """Records one member's visit at an open session of their posyandu (a second one is a 409), with the
    measurement, the profile items it updates, its event, and the needs refreshed."""
    held = await sessions.for_visits(session=session, principal=principal, session_id=session_id)
    member = await _member_at(session, held, payload.member_id)
    household = await writable_household(session, principal, member.household_id)
    if errors := _group_errors(member, held.session_date, payload):
        raise ValidationFailed("The visit records services the member cannot receive on the session date.",
                               errors=errors)
    if await session.scalar(sa.select(col(Visit.id)).where(col(Visit.session_id) == held.id,
                                                           col(Visit.member_id) == member.id)):
        raise VisitExists("The member's visit at this session is recorded already.")
    measurement_id, child = await _measure(session, principal, household, member, held, payload)
    adult = (ev.AdultVisitData(**payload.adult.model_dump(), bmi=_bmi(payload.adult))
             if payload.adult is not None else None)
    visit = Visit(
        session_id=held.id, member_id=member.id, household_id=household.id, posyandu_id=held.posyandu_id,
        visited_on=held.session_date, life_cycle_group=life_cycle_group(member.birth_date, held.session_date).value,
        age_months=age_in_months(member.birth_date, held.session_date), pregnant=member.pregnant,
        child=child.model_dump(mode="json") if child else None,
        pregnancy=payload.pregnancy.model_dump(mode="json") if payload.pregnancy else None,
        adolescent=payload.adolescent.model_dump(mode="json") if payload.adolescent else None,
        adult=adult.model_dump(mode="json") if adult else None,
        counselling=[t.value for t in payload.counselling], measurement_id=measurement_id, recorded_by=principal.sub)
    session.add(visit)
    await flush_unique(session, conflict=VisitExists("The member's visit at this session is recorded already."))
    await _follow_profile(session, principal, household, visit)
    await publish(session, ev.VISIT_RECORDED, event_data(visit), subject=str(household.id),
                  regioncode=household.village_code)
    await refresh_needs(session, household)
    return visit


async def of_session(session: AsyncSession, session_id: uuid.UUID, *, after: tuple[Any, uuid.UUID] | None,
                     limit: int) -> list[Visit]:
    """A session's visits in the order they were recorded."""
    query: Any = select(Visit).where(Visit.session_id == session_id)
    if after is not None:
        query = query.where(sa.tuple_(Visit.recorded_at, Visit.id) > sa.tuple_(*after))
    query = query.order_by(col(Visit.recorded_at), col(Visit.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())


async def of_member(session: AsyncSession, member_id: uuid.UUID, *, after: tuple[date, uuid.UUID] | None,
                    limit: int) -> list[Visit]:
    """A member's visits, newest first."""
    query: Any = select(Visit).where(Visit.member_id == member_id)
    if after is not None:
        query = query.where(sa.tuple_(Visit.visited_on, Visit.id) < sa.tuple_(*after))
    query = query.order_by(col(Visit.visited_on).desc(), col(Visit.id).desc()).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())


async def session_visits(*, session: AsyncSession, principal: Principal, session_id: uuid.UUID,
                         cursor: str | None, limit: int) -> tuple[list[Visit], str | None]:
    """GET /sessions/{id}/visits: a page of a session the caller may read, the read audited."""
    held = await sessions.get(session=session, principal=principal, session_id=session_id)
    after = decode_cursor(cursor, timestamp, uuid.UUID)
    rows = await of_session(session, held.id, after=(after[0], after[1]) if after else None, limit=limit)
    items, next_cursor = page_of(rows, limit, lambda v: (v.recorded_at.isoformat(), v.id))
    await record_read(session, principal, resource_type="session.visits", resource_id=str(held.id),
                      purpose="list the visits of a posyandu session")
    return items, next_cursor


async def member_visits(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID,
                        member_id: uuid.UUID, cursor: str | None, limit: int) -> tuple[list[Visit], str | None]:
    """GET /households/{id}/members/{member_id}/visits: a page of a member of a household the caller may read,
    newest first, the read audited."""
    household, basis = await readable_household(session, principal, household_id)
    member = await session.get(Member, member_id)
    if member is None or member.household_id != household.id:
        raise NotFound(f"No member {member_id} in household {household_id}.")
    after = decode_cursor(cursor, date.fromisoformat, uuid.UUID)
    rows = await of_member(session, member.id, after=(after[0], after[1]) if after else None, limit=limit)
    items, next_cursor = page_of(rows, limit, lambda v: (v.visited_on, v.id))
    await record_read(session, principal, resource_type="visits", resource_id=str(member.id),
                      subject_ref=str(household.id), purpose=basis.purpose)
    return items, next_cursor
