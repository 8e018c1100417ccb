"""Likely duplicate members: flagged on registration, then merged (the survivor keeps both histories) or dismissed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.access import readable_households, writable_households
from services.household.immunization import service as immunization
from services.household.needs.service import refresh_needs
from services.household.tables import DuplicateFlag, Household, Measurement, Member, Visit
from shared.audit import record_reads
from shared.auth import Principal, Role
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.events import household as ev
from shared.outbox import publish


class FlagNotFound(NotFound):
    pass


def likely_same(nik: str | None, other_nik: str | None) -> bool:
    """Whether two people with the same name and birth date may be one: two different NIKs are two people; a NIK on
    one side only (or on neither) leaves the doubt."""
    return nik is None or other_nik is None


async def flag_likely_duplicates(session: AsyncSession, household: Household, new_members: list[Member]) -> int:
    """Flags, for each new member, live members with the same name and birth date in the same village (registered
    before it, including earlier ones of `new_members`) where a NIK is missing; one query for all of them."""
    if not new_members:
        return 0
    new_ids = [m.id for m in new_members]
    keys = {(m.name.lower(), m.birth_date) for m in new_members}
    # Members by name and birth date first (ix_members_name_birth), their village second: the other way round
    # walks every household of the village, and a long import's stale statistics invited the planner to do so.
    same_person = (sa.select(col(Member.id), col(Member.nik), col(Member.household_id),
                             sa.func.lower(Member.name).label("name"), col(Member.birth_date))
                   .where(sa.tuple_(sa.func.lower(Member.name), col(Member.birth_date)).in_(sorted(keys)),
                          col(Member.status) == "active", col(Member.id).not_in(new_ids))
                   .cte("same_person").prefix_with("MATERIALIZED"))
    query = (sa.select(same_person.c.id, same_person.c.nik, same_person.c.name, same_person.c.birth_date)
             .join(Household, col(Household.id) == same_person.c.household_id)
             .where(col(Household.village_code) == household.village_code))
    existing = (await session.execute(query)).all()
    flags = []
    for i, member in enumerate(new_members):
        key = (member.name.lower(), member.birth_date)
        earlier = [(m.id, m.nik) for m in new_members[:i] if (m.name.lower(), m.birth_date) == key]
        flags += [DuplicateFlag(member_id=member.id, candidate_id=other_id)
                  for other_id, other_nik in [*((r[0], r[1]) for r in existing if (r[2], r[3]) == key), *earlier]
                  if likely_same(member.nik, other_nik)]
    session.add_all(flags)
    return len(flags)


async def visible_flags(session: AsyncSession, principal: Principal, status: str) -> list[DuplicateFlag]:
    """GET /duplicates: up to 500 flags the caller may decide, oldest first; their reads audited in one insert."""
    flags = await _visible(session, principal, status)
    await record_reads(session, principal, resource_type="duplicate-flag",
                       resources=[(str(flag.id), None) for flag in flags], purpose="review of likely duplicate members")
    return flags


async def _visible(session: AsyncSession, principal: Principal, status: str) -> list[DuplicateFlag]:
    query = select(DuplicateFlag).where(DuplicateFlag.status == status).order_by(col(DuplicateFlag.created_at))
    if principal.role not in (Role.KADER, Role.ADMIN):
        return []  # deciding is a kader's (or an admin's) work: the others see no flags
    if principal.role is Role.KADER:
        # A flag one of whose members lives in a household the kader may read (the household rule, as a query).
        readable = readable_households(principal).with_only_columns(col(Household.id)).subquery()
        theirs = select(Member.id).where(col(Member.household_id).in_(sa.select(readable.c.id)))
        query = query.where(sa.or_(col(DuplicateFlag.member_id).in_(theirs),
                                   col(DuplicateFlag.candidate_id).in_(theirs)))
    return list((await session.execute(query.limit(500))).scalars().all())


async def _decidable(session: AsyncSession, principal: Principal,
                     flag_id: uuid.UUID) -> tuple[DuplicateFlag, dict[uuid.UUID, tuple[Member, Household]]]:
    flag = await session.get(DuplicateFlag, flag_id, with_for_update=True)
    if flag is None:
        raise FlagNotFound(f"No duplicate flag {flag_id}.")
    records: dict[uuid.UUID, tuple[Member, Household]] = {}
    for member_id in (flag.member_id, flag.candidate_id):
        member = await session.get(Member, member_id, with_for_update=True)
        assert member is not None
        household = (await session.execute(writable_households(principal).where(
            Household.id == member.household_id).with_for_update().execution_options(populate_existing=True))
        ).scalars().first()
        if household is None:  # both records must be the caller's to change
            raise FlagNotFound(f"No duplicate flag {flag_id} that you may decide.")
        records[member_id] = (member, household)
    if flag.status != "open":
        raise Conflict(f"The flag was already decided: {flag.status}.")
    return flag, records


async def dismiss(*, session: AsyncSession, principal: Principal, flag_id: uuid.UUID) -> DuplicateFlag:
    """Two different people after all: the flag is closed and nothing else changes."""
    flag, _ = await _decidable(session, principal, flag_id)
    flag.status, flag.decided_by, flag.decided_at = "dismissed", principal.sub, datetime.now(UTC)
    await session.flush()
    return flag


async def merge(*, session: AsyncSession, principal: Principal, flag_id: uuid.UUID,
                survivor_id: uuid.UUID) -> tuple[DuplicateFlag, Member, list[Household]]:
    """Merges the other record into the survivor: measurements, visits and doses move over, a NIK is kept, an event
    tells everyone."""
    flag, records = await _decidable(session, principal, flag_id)
    if survivor_id not in records:
        raise ValidationFailed("The survivor must be one of the two flagged members.",
                               errors=[{"field": "survivor_id", "message": "not part of this flag"}])
    (merged_id,) = set(records) - {survivor_id}
    survivor, survivor_household = records[survivor_id]
    merged, merged_household = records[merged_id]
    now = datetime.now(UTC)
    merged.status, merged.merged_into = "merged", survivor.id
    merged.version, merged.updated_at = merged.version + 1, now
    if survivor.nik is None and merged.nik is not None:
        nik, merged.nik = merged.nik, None
        await session.flush()  # free the NIK's unique slot before the survivor takes it
        survivor.nik = nik
    survivor.version, survivor.updated_at = survivor.version + 1, now
    await session.execute(sa.update(Measurement).where(col(Measurement.member_id) == merged.id)
                          .values(member_id=survivor.id, household_id=survivor_household.id))
    # Visits move too, except at a session where the survivor has its own (one visit per member and session).
    await session.execute(sa.update(Visit).where(
        col(Visit.member_id) == merged.id,
        col(Visit.session_id).not_in(sa.select(col(Visit.session_id)).where(col(Visit.member_id) == survivor.id)))
        .values(member_id=survivor.id, household_id=survivor_household.id))
    await immunization.move_doses(session=session, merged=merged, survivor=survivor, household=survivor_household,
                                  recorded_by=principal.sub)
    flag.status, flag.decided_by, flag.decided_at = "merged", principal.sub, now
    await session.flush()
    await publish(session, ev.MEMBER_MERGED, ev.MemberMergedData(
        survivor_id=survivor.id, merged_id=merged.id, survivor_household_id=survivor_household.id,
        merged_household_id=merged_household.id), subject=str(survivor_household.id),
        regioncode=survivor_household.village_code)
    households = [survivor_household] + ([merged_household] if merged_household.id != survivor_household.id else [])
    for household in households:  # the merged doses change the statuses the kesehatan profile publishes
        await immunization.sync_profile_status(session=session, household=household, today=now.date())
        await refresh_needs(session, household, today=now.date())
    return flag, survivor, households
