"""The due list: for a posyandu and an opening day, who is due for what, and who missed the last session.

What is due on the day (README "The due list"):

* `immunization`: each dose the computed status (immunization/status.py) lists as due or overdue that day;
* `weighing`: every child under five (weighed monthly: SKDN's D);
* `vitamin-a`: children of 6-59 months in February and August;
* `antenatal-visit`: pregnant women;
* `screening`: adolescents (10-18) and adults (19-59) not screened at a visit in the last 12 months, and the
  elderly (60+) not screened at the previous session (posyandu lansia screen monthly).

What a member received at a visit to the session itself is no longer due (a dose through the status, a weighing,
vitamin A, an antenatal visit or a screening through the visit's sections): the list shrinks as the day goes on.

Who missed the last session: members who were in its monthly target group (under five, pregnant or 60+ on its
date), had no visit at it, and have not come to this one yet. Each entry carries the household's address, RT and
RW so that the kader can visit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.dates import age_in_months, age_in_years
from services.household.households.service import life_cycle_group
from services.household.immunization.repository import given, live_doses, load_schedule
from services.household.immunization.status import status
from services.household.sessions.service import may_run
from services.household.tables import Household, KnownPosyandu, KnownSchedule, Member, PosyanduSession, Visit
from shared.audit import record_read
from shared.auth import Principal
from shared.errors import NotFound, ValidationFailed
from shared.events import registry as reg

CHILD_UNDER_MONTHS = 60
VITAMIN_A_MONTHS = (2, 8)
VITAMIN_A_AGE_MONTHS = range(6, 60)
ADOLESCENT_YEARS = range(10, 19)
ELDERLY_FROM_YEARS = 60
#: Adolescents and adults are screened once a year; the elderly at every monthly session.
SCREENING_INTERVAL = timedelta(days=365)


class PosyanduNotFound(NotFound):
    pass


@dataclass
class DueItem:
    service: str
    vaccine: str | None = None
    dose: int | None = None
    #: `due` or `overdue` (doses); None for the services of every session.
    status: str | None = None
    #: The day a dose fell due.
    since: date | None = None


@dataclass
class DueEntry:
    member: Member
    household: Household
    on: date
    age_months: int
    due: list[DueItem] = field(default_factory=list)
    missed_last_session: bool = False


@dataclass
class DueList:
    posyandu_id: uuid.UUID
    on: date
    #: The session held (or open) on the day, if any.
    session_id: uuid.UUID | None
    #: The previous session, whose visits decide who missed it.
    previous_session: PosyanduSession | None
    entries: list[DueEntry]


#: How far ahead the next opening day is looked for when no `session` is named.
NEXT_DAY_HORIZON = timedelta(days=92)


async def _schedule(session: AsyncSession, posyandu_id: uuid.UUID) -> Any:
    known = await session.get(KnownSchedule, posyandu_id)
    return reg.ScheduleRules.model_validate(known.schedule).to_schedule() if known is not None else None


async def _target_day(session: AsyncSession, posyandu_id: uuid.UUID, target: str | None,
                      today: date) -> tuple[date, PosyanduSession | None]:
    """The day a `?session=` names: a session of this posyandu by id, or an opening day by date; without one, the
    posyandu's next opening day from today."""
    if target is None:
        schedule = await _schedule(session, posyandu_id)
        days = schedule.opening_days(today, today + NEXT_DAY_HORIZON) if schedule is not None else []
        if not days:
            raise ValidationFailed("The posyandu has no opening day in the next three months: name the session.",
                                   errors=[{"field": "session", "message": "no upcoming opening day"}])
        target = days[0].date.isoformat()
    try:
        session_id = uuid.UUID(target)
    except ValueError:
        session_id = None
    if session_id is not None:
        held = await session.get(PosyanduSession, session_id)
        if held is None or held.posyandu_id != posyandu_id:
            raise ValidationFailed("No session of this posyandu has this id.",
                                   errors=[{"field": "session", "message": "not a session of this posyandu"}])
        return held.session_date, held
    try:
        day = date.fromisoformat(target)
    except ValueError:
        raise ValidationFailed("`session` is a session id or a date (YYYY-MM-DD).",
                               errors=[{"field": "session", "message": "neither a session id nor a date"}]) from None
    held = (await session.execute(select(PosyanduSession).where(
        PosyanduSession.posyandu_id == posyandu_id, PosyanduSession.session_date == day))).scalars().first()
    if held is None:
        schedule = await _schedule(session, posyandu_id)
        if schedule is None or not schedule.is_opening_day(day):
            raise ValidationFailed(f"{day} is not an opening day of this posyandu.",
                                   errors=[{"field": "session", "message": "not an opening day of the posyandu"}])
    return day, held


async def due_list(*, session: AsyncSession, principal: Principal, posyandu_id: uuid.UUID, target: str | None,
                   today: date) -> DueList:
    """GET /posyandu/{id}/due: who is due for what at the posyandu's session on a day, and who missed the session
    before it; the read (names, birth dates, addresses) audited once, whichever page or format is rendered."""
    posyandu = await session.get(KnownPosyandu, posyandu_id)
    if posyandu is None or not may_run(principal, posyandu_id):
        raise PosyanduNotFound(f"No posyandu {posyandu_id} whose due list you may read.")
    day, held = await _target_day(session, posyandu_id, target, today)
    previous = (await session.execute(select(PosyanduSession).where(
        PosyanduSession.posyandu_id == posyandu_id, col(PosyanduSession.session_date) < day)
        .order_by(col(PosyanduSession.session_date).desc()).limit(1))).scalars().first()
    rows = (await session.execute(
        select(Member, Household).join(Household, col(Household.id) == col(Member.household_id))
        .where(Household.posyandu_id == posyandu_id, Household.status == "active", Member.status == "active",
               col(Member.birth_date) <= day)
        .order_by(col(Member.id)))).tuples().all()
    members = [m for m, _ in rows]
    children = [m.id for m in members if age_in_months(m.birth_date, day) < CHILD_UNDER_MONTHS]
    doses = await live_doses(session, children)
    schedule = await load_schedule(session)
    screened = await _last_screening(session, [m.id for m in members], before=day)
    visited_previous = set((await session.execute(select(Visit.member_id).where(
        Visit.session_id == previous.id))).scalars().all()) if previous is not None else set()
    served = {v.member_id: v for v in (await session.execute(select(Visit).where(
        Visit.session_id == held.id))).scalars().all()} if held is not None else {}
    entries = []
    for member, household in rows:
        months = age_in_months(member.birth_date, day)
        entry = DueEntry(member=member, household=household, on=day, age_months=months)
        if months < CHILD_UNDER_MONTHS:
            computed = status(member.birth_date, given(doses[member.id]), on=day, schedule=schedule,
                              village_code=household.village_code)
            entry.due += [DueItem("immunization", d.vaccine, d.dose, "overdue", d.due_on) for d in computed.overdue]
            entry.due += [DueItem("immunization", d.vaccine, d.dose, "due", d.due_on) for d in computed.due]
            entry.due.append(DueItem("weighing"))
            if day.month in VITAMIN_A_MONTHS and months in VITAMIN_A_AGE_MONTHS:
                entry.due.append(DueItem("vitamin-a"))
        if member.pregnant:
            entry.due.append(DueItem("antenatal-visit"))
        years = age_in_years(member.birth_date, day)
        last = screened.get(member.id)
        if years >= ELDERLY_FROM_YEARS:
            if previous is None or last is None or last < previous.session_date:
                entry.due.append(DueItem("screening"))
        elif years in ADOLESCENT_YEARS or years >= 19:
            if last is None or last <= day - SCREENING_INTERVAL:
                entry.due.append(DueItem("screening"))
        if (visit := served.get(member.id)) is not None:
            entry.due = [d for d in entry.due if not _received(d, visit)]
        if (previous is not None and member.id not in visited_previous and member.id not in served
                and _target_group(member, previous.session_date)):
            entry.missed_last_session = True
        if entry.due or entry.missed_last_session:
            entries.append(entry)
    await record_read(session, principal, resource_type="due-list", resource_id=str(posyandu_id),
                      purpose=f"due list for {day.isoformat()}", fields=["name", "birth_date", "address"])
    return DueList(posyandu_id=posyandu_id, on=day, session_id=held.id if held else None, previous_session=previous,
                   entries=entries)


def _received(item: DueItem, visit: Visit) -> bool:
    """Whether the visit gave the service (doses are settled by the status, from the doses recorded)."""
    child = visit.child or {}
    return {"weighing": bool(child.get("weighed")), "vitamin-a": bool(child.get("vitamin_a")),
            "antenatal-visit": visit.pregnancy is not None,
            "screening": visit.adolescent is not None or visit.adult is not None}.get(item.service, False)


def _target_group(member: Member, on: date) -> bool:
    """The monthly target group of a session: under five, pregnant, or elderly on its date."""
    return (0 <= age_in_months(member.birth_date, on) < CHILD_UNDER_MONTHS or member.pregnant
            or age_in_years(member.birth_date, on) >= ELDERLY_FROM_YEARS)


async def _last_screening(session: AsyncSession, member_ids: list[uuid.UUID], *, before: date) -> dict[uuid.UUID, date]:
    """Each member's latest visit before the day with an adolescent or adult screening section."""
    if not member_ids:
        return {}
    rows = (await session.execute(
        sa.select(col(Visit.member_id), sa.func.max(col(Visit.visited_on)))
        .where(col(Visit.member_id).in_(member_ids), col(Visit.visited_on) < before,
               sa.or_(col(Visit.adolescent).is_not(None), col(Visit.adult).is_not(None)))
        .group_by(col(Visit.member_id)))).tuples().all()
    return dict(rows)


def row_of(entry: DueEntry) -> dict[str, Any]:
    """An entry as the API and the CSV show it."""
    m, h = entry.member, entry.household
    return {"member_id": m.id, "household_id": h.id, "name": m.name, "sex": m.sex, "birth_date": m.birth_date,
            "age_months": entry.age_months, "life_cycle_group": str(life_cycle_group(m.birth_date, entry.on)),
            "pregnant": m.pregnant, "address": h.address, "rt": h.rt, "rw": h.rw,
            "due": [{"service": d.service, "vaccine": d.vaccine, "dose": d.dose, "status": d.status,
                     "since": d.since} for d in entry.due],
            "missed_last_session": entry.missed_last_session}

