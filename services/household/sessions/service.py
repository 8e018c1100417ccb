"""Sessions: one opening day at one posyandu, opened on a day of its schedule and closed (frozen) by its kader."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from services.household.dates import DATE_FLOOR, latest_allowed
from services.household.tables import KnownPosyandu, KnownSchedule, PosyanduSession, Visit
from shared.auth import Principal, Role
from shared.concurrency import check_if_match
from shared.conflicts import flush_unique
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.events import household as ev
from shared.events import registry as reg
from shared.iso_dates import IsoDate
from shared.outbox import publish


class SessionOpen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    posyandu_id: uuid.UUID
    session_date: IsoDate = Field(ge=DATE_FLOOR, description="An opening day of the posyandu's schedule")


class SessionNotFound(NotFound):
    pass


class SessionClosed(Conflict):
    pass


def may_run(principal: Principal, posyandu_id: uuid.UUID) -> bool:
    """Sessions are opened, closed and recorded by the posyandu's own kader (and admins)."""
    return principal.role is Role.ADMIN or (principal.role is Role.KADER and posyandu_id in principal.posyandu_ids)


def _readable(principal: Principal) -> Any:
    """The WHERE clause of the sessions the caller may read: an admin's all, a kader's of its posyandu, a pembina's
    of its region."""
    if principal.role is Role.ADMIN:
        return sa.true()
    if principal.role is Role.KADER:
        return col(PosyanduSession.posyandu_id).in_(list(principal.posyandu_ids) or [uuid.UUID(int=0)])
    if principal.role is Role.PEMBINA and principal.region_prefix:
        return col(PosyanduSession.village_code).startswith(principal.region_prefix)
    return sa.false()


def readable_sessions(principal: Principal) -> SelectOfScalar[PosyanduSession]:
    """The sessions the caller may read, as a SELECT to narrow (`.where(...)`) for a single read or a list: the
    one rule of who reads a session."""
    return select(PosyanduSession).where(_readable(principal))


def data(s: PosyanduSession) -> ev.SessionData:
    return ev.SessionData(session_id=s.id, posyandu_id=s.posyandu_id, village_code=s.village_code,
                          session_date=s.session_date, status=s.status, version=s.version)


async def open_session(*, session: AsyncSession, principal: Principal, payload: SessionOpen,
                       today: date) -> PosyanduSession:
    """Opens a session at a posyandu on one of its opening days (not in the future); one per posyandu and day."""
    if not may_run(principal, payload.posyandu_id):
        raise Forbidden("Only the posyandu's kader (or an admin) may open its sessions.")
    posyandu = await session.get(KnownPosyandu, payload.posyandu_id)
    if posyandu is None or posyandu.status != "active":
        raise ValidationFailed("No active posyandu has this id.",
                               errors=[{"field": "posyandu_id", "message": "no active posyandu"}])
    if payload.session_date > latest_allowed(today):
        raise ValidationFailed("A session cannot be opened for a day that has not come yet.",
                               errors=[{"field": "session_date", "message": "is in the future"}])
    known = await session.get(KnownSchedule, payload.posyandu_id)
    # An ad-hoc day is refused: the kader adds it to the schedule (an extra day, with its reason) first.
    schedule = reg.ScheduleRules.model_validate(known.schedule).to_schedule() if known is not None else None
    if schedule is None or not schedule.is_opening_day(payload.session_date):
        raise ValidationFailed(
            f"{payload.session_date} is not an opening day of this posyandu; add it to the posyandu's schedule "
            "(an extra or moved day) first.",
            errors=[{"field": "session_date", "message": "not an opening day of the posyandu's schedule"}])
    opened = PosyanduSession(posyandu_id=posyandu.id, village_code=posyandu.village_code,
                             session_date=payload.session_date, opened_by=principal.sub)
    session.add(opened)
    await flush_unique(session, conflict=f"The posyandu has a session on {payload.session_date} already.")
    await publish(session, ev.SESSION_OPENED, data(opened), subject=str(opened.id), regioncode=opened.village_code)
    return opened


async def get(*, session: AsyncSession, principal: Principal, session_id: uuid.UUID,
              lock: bool = False) -> PosyanduSession:
    """Gets (and with `lock`, locks) a session the caller may read; 404 for a missing one and for one they may not
    see."""
    query = readable_sessions(principal).where(col(PosyanduSession.id) == session_id)
    if lock:
        query = query.with_for_update()
    found = (await session.execute(query.execution_options(populate_existing=True))).scalars().first()
    if found is None:
        raise SessionNotFound(f"No session {session_id} that you may read.")
    return found


async def for_visits(*, session: AsyncSession, principal: Principal, session_id: uuid.UUID) -> PosyanduSession:
    """The open session a visit is recorded at, share-locked so that it cannot close meanwhile; 403 for another
    posyandu's session, 409 for a closed one."""
    found = await session.get(PosyanduSession, session_id, with_for_update={"read": True})
    if found is None:
        raise SessionNotFound(f"No session {session_id}.")
    if not may_run(principal, found.posyandu_id):
        raise Forbidden("Only the posyandu's kader (or an admin) may record visits at its sessions.")
    if found.status != "open":
        raise SessionClosed(f"The session of {found.session_date} is closed: it takes no more visits.")
    return found


async def visit_counts(session: AsyncSession, session_id: uuid.UUID) -> ev.VisitCounts:
    rows = (await session.execute(sa.select(col(Visit.life_cycle_group), sa.func.count(),
                                            sa.func.count().filter(col(Visit.pregnant)))
                                  .where(col(Visit.session_id) == session_id)
                                  .group_by(col(Visit.life_cycle_group)))).all()
    by_group = {group: n for group, n, _ in rows}
    return ev.VisitCounts(infant=by_group.get("infant", 0), toddler=by_group.get("toddler", 0),
                          school_age=by_group.get("school-age", 0), adult=by_group.get("adult", 0),
                          elderly=by_group.get("elderly", 0), pregnant=sum(p for _, _, p in rows),
                          total=sum(by_group.values()))


async def close_session(*, session: AsyncSession, principal: Principal, session_id: uuid.UUID,
                        if_match: str | None) -> PosyanduSession:
    """Closes a session: no visit is recorded at it afterwards. Closing a closed session changes nothing."""
    found = await get(session=session, principal=principal, session_id=session_id, lock=True)
    if not may_run(principal, found.posyandu_id):
        raise Forbidden("Only the posyandu's kader (or an admin) may close its sessions.")
    check_if_match(if_match, found.version)
    if found.status == "closed":
        return found
    found.status = "closed"
    found.closed_by = principal.sub
    found.closed_at = datetime.now(UTC)
    found.version += 1
    await session.flush()
    closed = ev.SessionClosedData(**data(found).model_dump(), visits=await visit_counts(session, found.id))
    await publish(session, ev.SESSION_CLOSED, closed, subject=str(found.id), regioncode=found.village_code)
    return found


async def list_sessions(*, session: AsyncSession, principal: Principal, posyandu_id: uuid.UUID | None,
                        start: date | None, end: date | None, after: tuple[date, uuid.UUID] | None,
                        limit: int) -> list[PosyanduSession]:
    """The sessions the caller may read (of one posyandu, or all), newest first."""
    query = readable_sessions(principal)
    if posyandu_id is not None:
        query = query.where(PosyanduSession.posyandu_id == posyandu_id)
    if start is not None:
        query = query.where(col(PosyanduSession.session_date) >= start)
    if end is not None:
        query = query.where(col(PosyanduSession.session_date) <= end)
    if after is not None:
        query = query.where(sa.tuple_(PosyanduSession.session_date, PosyanduSession.id) < sa.tuple_(*after))
    query = query.order_by(col(PosyanduSession.session_date).desc(), col(PosyanduSession.id).desc()).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())
