"""Life events as use cases: a death, a member moving to a known household or out of the area, a household splitting,
merging or closing (README: "Life events").

Each one checks its dates and states, changes the rows, leaves a life-event row and an audit row per household it
touches, resolves or moves the needs with it, refreshes the needs of every household touched and writes its events.
A member-level event is announced before the needs it resolves, so the referral service closes a deceased member's
referral (reason `deceased`) before the need's resolution could add a note asking a person to close it. A member's
move is keyed by the household it leaves: it stays behind that household's earlier events and before its closing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.access import Readable, ReadBasis, writable_household
from services.household.dates import check_past
from services.household.households import registration
from services.household.households import service as households
from services.household.households.schemas import HouseholdCreate, HouseholdPublic, MemberPublic
from services.household.households.views import household_public, member_public
from services.household.life_events.schemas import (
    DeathRecord,
    HouseholdClose,
    HouseholdMerge,
    HouseholdSplit,
    MemberMove,
    MemberMoveOut,
)
from services.household.needs.service import refresh_needs, resolve_needs
from services.household.tables import Household, LifeEvent, Measurement, Member, Need
from shared.audit import record, record_read
from shared.auth import Principal, Role
from shared.concurrency import check_if_match
from shared.errors import Conflict, ValidationFailed
from shared.events import household as ev
from shared.outbox import publish


class LifeEventConflict(Conflict):
    title, slug = "Life event not possible", "life-event-conflict"


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": field, "message": message}])


def _check_date(value: date, *, field: str, what: str, today: date, members: Iterable[Member] = ()) -> None:
    """422 unless the date is neither in the future (beyond the clock skew) nor before 1900 or a member's birth."""
    try:
        check_past(value, today=today)
    except ValueError as exc:
        raise _invalid(field, f"The {what} {exc}.") from None
    for member in members:
        if value < member.birth_date:
            raise _invalid(field, f"The {what} {value.isoformat()} is before the birth date of member {member.id} "
                                  f"({member.birth_date.isoformat()}).")


async def _open_households(session: AsyncSession, principal: Principal,
                           ids: list[uuid.UUID]) -> dict[uuid.UUID, Household]:
    """Locks the households (in id order, so two opposite moves cannot deadlock) the caller may change; 404 for
    one they may not, 409 for one that is closed."""
    return {household_id: await writable_household(session, principal, household_id)
            for household_id in sorted(set(ids))}


async def _active_member(session: AsyncSession, household: Household, member_id: uuid.UUID) -> Member:
    member = await session.get(Member, member_id, with_for_update=True)
    if member is None or member.household_id != household.id:
        raise households.MemberNotFound(f"No member {member_id} in household {household.id}.")
    if member.status != "active":
        raise LifeEventConflict(f"Member {member_id} is {member.status}: a life event needs an active member.",
                                current_status=member.status)
    return member


async def _active_members(session: AsyncSession, household: Household) -> list[Member]:
    return list((await session.execute(select(Member).where(
        Member.household_id == household.id, Member.status == "active").order_by(col(Member.id))
        .with_for_update())).scalars().all())


async def _audit(session: AsyncSession, principal: Principal, action: str, household: Household,
                 resource: Member | Household, fields: list[str]) -> None:
    await record(session, principal, action=action, resource_type="member" if isinstance(resource, Member)
                 else "household", resource_id=str(resource.id), subject_ref=str(household.id),
                 purpose=f"life event recorded: {action}", fields=fields)


def _member_view(member: Member, principal: Principal, now: datetime) -> MemberPublic:
    return member_public(member, ReadBasis("write", full_nik=principal.role is Role.KADER), now.date())


async def _household_view(session: AsyncSession, household: Household, principal: Principal,
                          now: datetime) -> HouseholdPublic:
    """The household as the response shows it: full identifiers to a kader of its posyandu."""
    basis = ReadBasis("write", full_nik=household.posyandu_id in principal.posyandu_ids)
    return household_public(household, await households.members_of(session, household.id), basis, now.date())


def _bump(row: Member | Household, now: datetime) -> None:
    row.version += 1
    row.updated_at = now


async def record_death(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID,
                       member_id: uuid.UUID, payload: DeathRecord, if_match: str | None,
                       now: datetime) -> MemberPublic:
    """The member died: status deceased, its open needs resolved (`deceased`), the household's needs refreshed."""
    household = (await _open_households(session, principal, [household_id]))[household_id]
    member = await _active_member(session, household, member_id)
    check_if_match(if_match, member.version)
    _check_date(payload.date_of_death, field="body.date_of_death", what="date of death", today=now.date(),
                members=[member])
    last = await session.scalar(sa.select(sa.func.max(Measurement.measured_on)).where(
        col(Measurement.member_id) == member.id))
    if last is not None and last > payload.date_of_death:
        raise _invalid("body.date_of_death", f"The member was measured on {last.isoformat()}, after this date of "
                                             "death.")
    member.status = "deceased"
    _bump(member, now)
    session.add(LifeEvent(kind="died", household_id=household.id, member_id=member.id,
                          occurred_on=payload.date_of_death, cause_category=payload.cause_category,
                          recorded_by=principal.sub))
    await session.flush()
    await _audit(session, principal, "record-death", household, member, ["status", "date_of_death", "cause_category"])
    await publish(session, ev.MEMBER_DIED, ev.MemberDiedData(
        **households.member_data(member).model_dump(), date_of_death=payload.date_of_death,
        cause_category=payload.cause_category), subject=str(household.id), regioncode=household.village_code)
    await resolve_needs(session, household, resolution="deceased", now=now, member_ids=[member.id])
    await refresh_needs(session, household, today=now.date())
    return _member_view(member, principal, now)


async def move_out(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID, member_id: uuid.UUID,
                   payload: MemberMoveOut, if_match: str | None, now: datetime) -> MemberPublic:
    """The member left for a place this service does not know: status moved-out, its open needs resolved."""
    household = (await _open_households(session, principal, [household_id]))[household_id]
    member = await _active_member(session, household, member_id)
    check_if_match(if_match, member.version)
    _check_date(payload.moved_out_on, field="body.moved_out_on", what="date of moving out", today=now.date(),
                members=[member])
    member.status = "moved-out"
    _bump(member, now)
    session.add(LifeEvent(kind="moved-out", household_id=household.id, member_id=member.id,
                          occurred_on=payload.moved_out_on, destination_region_code=payload.destination_region_code,
                          recorded_by=principal.sub))
    await session.flush()
    await _audit(session, principal, "record-move-out", household, member, ["status", "moved_out_on"])
    await publish(session, ev.MEMBER_MOVED_OUT, ev.MemberMovedOutData(
        **households.member_data(member).model_dump(), moved_out_on=payload.moved_out_on,
        destination_region_code=payload.destination_region_code), subject=str(household.id),
        regioncode=household.village_code)
    await resolve_needs(session, household, resolution="moved-out", now=now, member_ids=[member.id])
    await refresh_needs(session, household, today=now.date())
    return _member_view(member, principal, now)


async def _transfer(session: AsyncSession, principal: Principal, member: Member, source: Household,
                    target: Household, *, moved_on: date, reason: str, now: datetime) -> None:
    """Moves one member (with its open needs and its measurements) from `source` to `target` and announces it."""
    moved_needs = list((await session.execute(
        sa.update(Need).where(col(Need.household_id) == source.id, col(Need.member_id) == member.id,
                              col(Need.status) == "open")
        .values(household_id=target.id).returning(col(Need.id)))).scalars().all())
    await session.execute(sa.update(Measurement).where(col(Measurement.member_id) == member.id)
                          .values(household_id=target.id))
    member.household_id = target.id
    _bump(member, now)
    session.add(LifeEvent(kind="moved", household_id=source.id, member_id=member.id, occurred_on=moved_on,
                          reason=reason, to_household_id=target.id, recorded_by=principal.sub))
    await session.flush()
    for household in (source, target):
        await _audit(session, principal, f"record-move-{reason}", household, member, ["household_id"])
    await publish(session, ev.MEMBER_MOVED, ev.MemberMovedData(
        **households.member_data(member).model_dump(), from_household_id=source.id, moved_on=moved_on, reason=reason,
        posyandu_id=target.posyandu_id, village_code=target.village_code, moved_need_ids=moved_needs),
        subject=str(source.id), regioncode=source.village_code)


async def move_member(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID,
                      member_id: uuid.UUID, payload: MemberMove, if_match: str | None,
                      now: datetime) -> MemberPublic:
    """The member joins another household the service knows (a marriage, say); the caller must be able to change
    both. Its open needs and referrals go with it; both households' needs are refreshed."""
    if payload.to_household_id == household_id:
        raise _invalid("body.to_household_id", "The member already belongs to this household.")
    found = await _open_households(session, principal, [household_id, payload.to_household_id])
    source, target = found[household_id], found[payload.to_household_id]
    member = await _active_member(session, source, member_id)
    check_if_match(if_match, member.version)
    _check_date(payload.moved_on, field="body.moved_on", what="date of the move", today=now.date(), members=[member])
    await _transfer(session, principal, member, source, target, moved_on=payload.moved_on,
                    reason=payload.reason.value, now=now)
    for household in (source, target):
        await refresh_needs(session, household, today=now.date())
    return _member_view(member, principal, now)


async def split(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID, payload: HouseholdSplit,
                if_match: str | None, now: datetime) -> HouseholdPublic:
    """Some members form a new household with a new KK number (registered like any other), moving to it."""
    source = (await _open_households(session, principal, [household_id]))[household_id]
    check_if_match(if_match, source.version)
    if len(set(payload.member_ids)) != len(payload.member_ids):
        raise _invalid("body.member_ids", "A member is listed twice.")
    active = {m.id: m for m in await _active_members(session, source)}
    for i, member_id in enumerate(payload.member_ids):
        if member_id not in active:
            raise _invalid(f"body.member_ids.{i}", f"No active member {member_id} in household {source.id}.")
    if len(payload.member_ids) == len(active):
        raise _invalid("body.member_ids", "Every member would leave: give the household its new KK number "
                                          "(PATCH) instead of splitting it.")
    moving = [active[i] for i in payload.member_ids]
    _check_date(payload.moved_on, field="body.moved_on", what="date of the split", today=now.date(), members=moving)
    new, _ = await registration.register(session=session, principal=principal, today=now.date(),
                                         payload=HouseholdCreate(
        kk_number=payload.kk_number, posyandu_id=payload.posyandu_id or source.posyandu_id,
        village_code=payload.village_code or source.village_code, address=payload.address, rt=payload.rt,
        rw=payload.rw))
    created = await session.get_one(Household, new.id)
    for member in moving:
        await _transfer(session, principal, member, source, created, moved_on=payload.moved_on,
                        reason=payload.reason.value, now=now)
    _bump(source, now)
    await session.flush()
    for household in (source, created):
        await refresh_needs(session, household, today=now.date())
    return await _household_view(session, created, principal, now)


async def _close(session: AsyncSession, principal: Principal, household: Household, *, closed_on: date,
                 reason: str, merged_into: Household | None, now: datetime) -> None:
    household.status = "closed"
    _bump(household, now)
    session.add(LifeEvent(kind="closed", household_id=household.id, occurred_on=closed_on, reason=reason,
                          to_household_id=merged_into.id if merged_into else None, recorded_by=principal.sub))
    await session.flush()
    await _audit(session, principal, f"close-{reason}", household, household, ["status"])
    await publish(session, ev.HOUSEHOLD_CLOSED, ev.HouseholdClosedData(
        **households.household_data(household).model_dump(), closed_on=closed_on, reason=reason,
        merged_into_household_id=merged_into.id if merged_into else None), subject=str(household.id),
        regioncode=household.village_code)
    await resolve_needs(session, household, resolution="household-closed", now=now)


async def close(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID, payload: HouseholdClose,
                if_match: str | None, now: datetime) -> HouseholdPublic:
    """Closes a household none of whose members is active any more (each died, moved or left)."""
    household = (await _open_households(session, principal, [household_id]))[household_id]
    check_if_match(if_match, household.version)
    _check_date(payload.closed_on, field="body.closed_on", what="closing date", today=now.date())
    if remaining := await _active_members(session, household):
        raise LifeEventConflict(f"Household {household.id} still has {len(remaining)} active member(s): record "
                                "their death or move first, or merge the household into another.",
                                active_members=len(remaining))
    await _close(session, principal, household, closed_on=payload.closed_on, reason="members-gone",
                 merged_into=None, now=now)
    return await _household_view(session, household, principal, now)


async def merge(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID, payload: HouseholdMerge,
                if_match: str | None, now: datetime) -> HouseholdPublic:
    """Every active member moves to the other household (with needs and referrals); this one closes (`merged`)."""
    if payload.into_household_id == household_id:
        raise _invalid("body.into_household_id", "A household cannot merge into itself.")
    found = await _open_households(session, principal, [household_id, payload.into_household_id])
    source, target = found[household_id], found[payload.into_household_id]
    check_if_match(if_match, source.version)
    moving = await _active_members(session, source)
    _check_date(payload.merged_on, field="body.merged_on", what="date of the merge", today=now.date(),
                members=moving)
    for member in moving:
        await _transfer(session, principal, member, source, target, moved_on=payload.merged_on, reason="merge",
                        now=now)
    await _close(session, principal, source, closed_on=payload.merged_on, reason="merged", merged_into=target,
                 now=now)
    await refresh_needs(session, target, today=now.date())
    return await _household_view(session, target, principal, now)


async def history(*, session: AsyncSession, principal: Principal, readable: Readable,
                  after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[LifeEvent]:
    """Up to limit+1 of the household's life events, oldest first: those recorded on it, and the moves and merges
    into it; the read audited."""
    household_id = readable.household.id
    await record_read(session, principal, resource_type="life-events", resource_id=str(household_id),
                      subject_ref=str(household_id), purpose=readable.basis.purpose,
                      fields=["kind", "occurred_on", "cause_category", "destination_region_code"])
    query = select(LifeEvent).where(sa.or_(col(LifeEvent.household_id) == household_id,
                                           col(LifeEvent.to_household_id) == household_id))
    if after is not None:
        query = query.where(sa.tuple_(col(LifeEvent.recorded_at), col(LifeEvent.id)) > sa.tuple_(*after))
    query = query.order_by(col(LifeEvent.recorded_at), col(LifeEvent.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())
