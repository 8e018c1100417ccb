"""Reads of the immunisation data: the schedule's versions, members' live doses, and their computed statuses."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.households.facts import HouseholdFacts
from services.household.immunization.schedule import Schedule, ScheduleRow, ScheduleVersion
from services.household.immunization.status import GivenDose, ImmunizationStatus, status
from services.household.immunization.tables import Dose, ScheduleVersionRecord
from services.household.tables import Household, Member

#: The status is computed (and published in the kesehatan profile) for the posyandu's under-fives (balita).
STATUS_MAX_AGE_MONTHS = 60


async def schedule_records(session: AsyncSession) -> list[ScheduleVersionRecord]:
    """Every stored version, oldest first."""
    return list((await session.execute(select(ScheduleVersionRecord).order_by(
        col(ScheduleVersionRecord.valid_from)))).scalars().all())


def to_version(record: ScheduleVersionRecord) -> ScheduleVersion:
    return ScheduleVersion(version=record.version, valid_from=record.valid_from, source=record.source,
                           rows=tuple(ScheduleRow.model_validate(r) for r in record.rows))


async def load_schedule(session: AsyncSession) -> Schedule:
    """The national schedule with every version."""
    return Schedule(tuple(to_version(r) for r in await schedule_records(session)))


async def live_doses(session: AsyncSession, member_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[Dose]]:
    """Members' live (not voided) doses, by member, in the order given."""
    ids = list(member_ids)
    rows = (await session.execute(select(Dose).where(col(Dose.member_id).in_(ids), Dose.status == "active")
                                  .order_by(col(Dose.given_on), col(Dose.vaccine), col(Dose.dose_number)))
            ).scalars().all() if ids else []
    found: dict[uuid.UUID, list[Dose]] = {i: [] for i in ids}
    for row in rows:
        found[row.member_id].append(row)
    return found


def given(doses: Iterable[Dose]) -> list[GivenDose]:
    return [GivenDose(vaccine=d.vaccine, dose=d.dose_number, given_on=d.given_on) for d in doses]


class Born(Protocol):
    id: uuid.UUID
    birth_date: date
    status: str


def _under_five(member: Born, today: date) -> bool:
    months = (today.year - member.birth_date.year) * 12 + today.month - member.birth_date.month \
        - (today.day < member.birth_date.day)
    return 0 <= months < STATUS_MAX_AGE_MONTHS


def under_fives(members: Iterable[Born], today: date) -> list[Born]:
    """The active members whose status is computed on `today` (the balita)."""
    return [m for m in members if m.status == "active" and _under_five(m, today)]


async def computed_statuses(session: AsyncSession, household: Household, members: Sequence[Member], *,
                            today: date, schedule: Schedule | None = None) -> dict[uuid.UUID, ImmunizationStatus]:
    """The status on `today` of each active under-five among `members`."""
    children = under_fives(members, today)
    if not children:
        return {}
    doses = await live_doses(session, [m.id for m in children])
    return await statuses_of(session, household, children, {i: given(d) for i, d in doses.items()}, today=today,
                             schedule=schedule)


async def statuses_of(session: AsyncSession, household: HouseholdFacts, children: Sequence[Born],
                      doses: Mapping[uuid.UUID, list[GivenDose]], *, today: date,
                      schedule: Schedule | None = None) -> dict[uuid.UUID, ImmunizationStatus]:
    """The status on `today` of each of `children` (`under_fives`) from their live doses, oldest first; the schedule
    is read only when one of them has a dose."""
    if not any(doses.get(m.id) for m in children):
        # Nothing recorded for any of them: unknown, without reading the schedule (most households, most runs).
        return {m.id: ImmunizationStatus(status="unknown", schedule_version=None) for m in children}
    schedule = schedule or await load_schedule(session)
    return {m.id: status(m.birth_date, doses.get(m.id, []), on=today, schedule=schedule,
                         village_code=household.village_code) for m in children}


def with_statuses(profile: dict[str, Any], statuses: dict[uuid.UUID, ImmunizationStatus]) -> dict[str, Any]:
    """A kesehatan profile (as stored) carrying the computed statuses: set where known, removed where unknown."""
    members: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (profile.get("members") or {}).items()}
    for member_id, computed in statuses.items():
        section = members.get(str(member_id), {})
        section.pop("immunization_status", None)
        if computed.status != "unknown":
            section["immunization_status"] = computed.status
        if section:
            members[str(member_id)] = section
        else:
            members.pop(str(member_id), None)
    return {**profile, "members": members}
