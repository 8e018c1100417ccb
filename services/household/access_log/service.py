"""Who may read a household's access log, and its entries: the household's own reads and those of the other
services (posyandu.audit.v1), newest first."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.household.access import readable_household
from services.household.tables import AccessLogOrigin, Household, metadata
from shared.audit import record_read
from shared.auth import Principal, Role
from shared.errors import Forbidden, ValidationFailed
from shared.tables import audit_log

EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)
#: The most entries one printed report lists (the newest of the period); it says so when there are more.
REPORT_MAX_ENTRIES = 1000


@dataclass(frozen=True)
class Period:
    """A half-open time range [since, until); either end may be open."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name, bound in (("from", self.since), ("to", self.until)):
            # Any year a person could mean; the others would overflow when shown in local time.
            if bound is not None and not EARLIEST <= bound <= LATEST:
                raise ValidationFailed(f"`{name}` lies outside the years 1900 to 9998.",
                                       errors=[{"field": f"query.{name}", "message": "must be between 1900 and 9998"}])
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValidationFailed("The period ends before it starts.",
                                   errors=[{"field": "query.to", "message": "must be later than `from`"}])


async def readable_access_log(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID) -> Household:
    """The household, if the caller may read its access log: an admin, or a kader of its posyandu. Not a pembina,
    nor an agency: the log names the officials and agencies that looked at one family, which is the family's and
    the data controller's business, not oversight's (a pembina oversees aggregates). A caller who may not read the
    household gets its 404; one who may read it, but not its log, a 403."""
    household, _ = await readable_household(session, principal, household_id)
    if principal.role not in (Role.ADMIN, Role.KADER):
        raise Forbidden("Only an admin or the household's kader reads its access log.")
    return household


def _entries_query(household_id: uuid.UUID, period: Period) -> Any:
    origin = metadata.tables[AccessLogOrigin.__tablename__]
    query = (sa.select(audit_log, sa.func.coalesce(origin.c.service, "household").label("service"),
                       origin.c.actor_agency_id, origin.c.actor_agency_name,
                       sa.func.coalesce(origin.c.actor_posyandu_ids, sa.text("'{}'::uuid[]"))
                       .label("actor_posyandu_ids"))
             .select_from(audit_log.outerjoin(origin, origin.c.audit_id == audit_log.c.id))
             .where(audit_log.c.subject_ref == str(household_id)))
    if period.since is not None:
        query = query.where(audit_log.c.at >= period.since)
    if period.until is not None:
        query = query.where(audit_log.c.at < period.until)
    return query


async def entries(*, session: AsyncSession, principal: Principal, household: Household, period: Period,
                  after: tuple[datetime, int] | None, limit: int) -> list[dict[str, Any]]:
    """Up to limit+1 entries of the period, newest first, after a keyset (time, id); the read is audited."""
    query = _entries_query(household.id, period)
    if after is not None:
        query = query.where(sa.tuple_(audit_log.c.at, audit_log.c.id) < sa.tuple_(*after))
    rows = await session.execute(query.order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit + 1))
    found = [dict(r) for r in rows.mappings().all()]
    # The log tells who looked at this family: reading it is itself a read of the family's data, and shows in it.
    await record_read(session, principal, resource_type="household.access-log", resource_id=str(household.id),
                      subject_ref=str(household.id), purpose=f"the family's access log read by {principal.role.value}")
    return found


@dataclass(frozen=True)
class Report:
    household: Household
    period: Period
    entries: list[dict[str, Any]]
    #: How many entries the period has in all (more than `entries` when the report is cut at REPORT_MAX_ENTRIES).
    total: int
    printed_at: datetime


async def report(*, session: AsyncSession, principal: Principal, household: Household, period: Period) -> Report:
    """The entries of the period for the printed report (the newest REPORT_MAX_ENTRIES); the read is audited first,
    so the report shows its own printing."""
    await record_read(session, principal, resource_type="household.access-report", resource_id=str(household.id),
                      subject_ref=str(household.id), purpose=f"the family's access report printed by "
                                                             f"{principal.role.value}")
    query = _entries_query(household.id, period)
    rows = await session.execute(query.order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
                                 .limit(REPORT_MAX_ENTRIES))
    total = await session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    printed_at: datetime = (await session.execute(sa.select(sa.func.now()))).scalar_one()
    return Report(household=household, period=period, entries=[dict(r) for r in rows.mappings().all()],
                  total=total or 0, printed_at=printed_at)
