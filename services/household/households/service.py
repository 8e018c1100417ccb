"""Households and members as use cases: registration, updates, moves and members, each the whole job (access,
checks against the database, writes, needs, audit, events, response data), and the search of what a caller sees.

`register` is registration's building block (the import and a household split call it and detect the needs
themselves); `register_household` is the use case of POST /households.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.access import (
    Readable,
    ReadBasis,
    read_basis_of,
    readable_households,
    writable_household,
)
from services.household.duplicates.service import flag_likely_duplicates
from services.household.households import registration
from services.household.households.checks import (
    check_kk,
    check_new_member,
    check_pregnancy,
    check_served_by,
    invalid,
    kk_conflict,
    nik_conflict,
    nik_mismatch,
    require_posyandu,
    require_village,
)
from services.household.households.facts import household_data as household_data
from services.household.households.facts import member_data as member_data
from services.household.households.groups import life_cycle_group as life_cycle_group
from services.household.households.schemas import (
    HouseholdCreate,
    HouseholdMove,
    HouseholdPublic,
    HouseholdUpdate,
    MemberCreate,
    MemberPublic,
    MemberUpdate,
)
from services.household.households.views import household_public, member_public
from services.household.immunization.tables import Dose
from services.household.needs.service import refresh_needs
from services.household.tables import Household, KkNumberHistory, Measurement, Member
from shared.audit import record, record_read, record_reads
from shared.auth import Principal, Role
from shared.concurrency import check_if_match
from shared.conflicts import violated_unique
from shared.errors import NotFound
from shared.events import household as ev
from shared.events.envelope import CloudEvent
from shared.outbox import publish


class MemberNotFound(NotFound):
    pass


#: The unique indexes that refuse a taken KK number or NIK (migrations), and the field each guards.
_UNIQUE_FIELDS = {"uq_households_live_kk": "kk_number", "uq_members_live_nik": "nik"}


def _taken_field(exc: IntegrityError) -> str | None:
    """The field whose unique index refused the write, or None for any other integrity error."""
    return _UNIQUE_FIELDS.get(violated_unique(exc) or "")


@contextlib.asynccontextmanager
async def _claiming(session: AsyncSession, principal: Principal, *, kk_number: str | None = None,
                    household_id: uuid.UUID | None = None, niks: dict[str, str] | None = None,
                    member_id: uuid.UUID | None = None) -> AsyncIterator[None]:
    """Runs the writes of the block in a savepoint and flushes them: a KK number (of household `household_id`) or
    NIKs (field path -> NIK, of member `member_id`) that another live record holds make the unique index refuse
    them, and only then is the holder looked up for the 409. No pre-check query, and a concurrent registration of
    the same number (which the index makes wait for the other's commit) is the same 409, never a 500."""
    try:
        async with session.begin_nested():
            yield
            await session.flush()
    except IntegrityError as exc:
        field = _taken_field(exc)
        if field == "kk_number" and kk_number is not None:
            raise await kk_conflict(session, principal, kk_number, household_id) from None
        if field == "nik" and niks:
            raise await nik_conflict(session, principal, niks, member_id) from None
        raise


def _entry(event_type: Any, data: Any, household: Household) -> CloudEvent:
    return event_type.new(data, subject=str(household.id), regioncode=household.village_code)


async def _emit(session: AsyncSession, event_type: Any, data: Any, household: Household) -> None:
    await publish(session, event_type, data, subject=str(household.id), regioncode=household.village_code)


def new_member(household: Household, field: str, payload: MemberCreate) -> Member:
    mismatch = check_new_member(household.village_code, field, payload)
    return Member(household_id=household.id, **payload.model_dump(), nik_region_mismatch=mismatch)


async def _insert_members(session: AsyncSession, principal: Principal, household: Household,
                          payloads: list[tuple[str, MemberCreate]]) -> list[Member]:
    """Validates and inserts members (field path, payload) with a constant number of statements, however many."""
    members = [new_member(household, field, payload) for field, payload in payloads]
    niks = {f"{field}.nik": payload.nik for field, payload in payloads if payload.nik is not None}
    async with _claiming(session, principal, niks=niks):
        session.add_all(members)
    await flag_likely_duplicates(session, household, members)
    return members


async def _check_measured_after_birth(session: AsyncSession, member_id: uuid.UUID, birth_date: date) -> None:
    """422 when a new birth date would put the member's recorded measurements or doses before the birth."""
    first = await session.scalar(sa.select(sa.func.min(Measurement.measured_on)).where(
        col(Measurement.member_id) == member_id))
    if first is not None and first < birth_date:
        raise invalid("body.birth_date", f"The member has a measurement dated {first.isoformat()}, before this "
                                          "birth date.")
    first_dose = await session.scalar(sa.select(sa.func.min(Dose.given_on)).where(
        col(Dose.member_id) == member_id, col(Dose.status) == "active"))
    if first_dose is not None and first_dose < birth_date:
        raise invalid("body.birth_date", f"The member has a vaccine dose dated {first_dose.isoformat()}, before "
                                          "this birth date.")


def _write_basis(principal: Principal) -> ReadBasis:
    """What a writer sees of what it wrote: a kader its own records in full, an admin masked."""
    return ReadBasis("write", full_nik=principal.role is Role.KADER)


async def _audit(session: AsyncSession, principal: Principal, household: Household, *, action: str,
                 resource_type: str, resource_id: uuid.UUID, purpose: str, fields: list[str]) -> None:
    await record(session, principal, action=action, resource_type=resource_type, resource_id=str(resource_id),
                 subject_ref=str(household.id), purpose=purpose, fields=fields)


async def register_household(*, session: AsyncSession, principal: Principal, payload: HouseholdCreate,
                             today: date) -> HouseholdPublic:
    """POST /households: the household and its members with their events, their needs, the audit row of the
    registration (its response shows the identifiers), and the response data."""
    basis = read_basis_of(principal)
    household, members = await registration.register(
        session=session, principal=principal, payload=payload, today=today,
        audit=registration.Audit(["kk_number", "members", *(["nik"] if basis.full_nik else [])]))
    # In the order every read gives them (members_of).
    return household_public(household, sorted(members, key=lambda m: (m.birth_date, m.id)), basis, today)


async def members_of(session: AsyncSession, household_id: uuid.UUID, *, include_inactive: bool = False) -> list[Member]:
    query = select(Member).where(Member.household_id == household_id).order_by(col(Member.birth_date),
                                                                                 col(Member.id))
    if not include_inactive:
        query = query.where(Member.status == "active")
    return list((await session.execute(query)).scalars().all())


async def read_household(*, session: AsyncSession, principal: Principal, readable: Readable,
                         today: date) -> HouseholdPublic:
    """GET /households/{id}: the household with its members, the read audited."""
    household, basis = readable.household, readable.basis
    members = await members_of(session, household.id)
    await record_read(session, principal, resource_type="household", resource_id=str(household.id),
                      subject_ref=str(household.id), purpose=basis.purpose,
                      fields=["kk_number", "members", *(["nik"] if basis.full_nik else [])])
    return household_public(household, members, basis, today)


async def update(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID, payload: HouseholdUpdate,
                 if_match: str | None, today: date) -> HouseholdPublic:
    """PATCH /households/{id}: a new KK number keeps the household (and its history), never a new one; the needs
    are refreshed, the change audited and announced."""
    household = await writable_household(session, principal, household_id)
    check_if_match(if_match, household.version)
    changes = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if getattr(household, k) != v}
    if changes:
        now = datetime.now(UTC)
        new_kk = changes.get("kk_number")
        if new_kk is not None:
            check_kk(new_kk)
        async with _claiming(session, principal, kk_number=new_kk, household_id=household.id):
            if new_kk is not None:
                await session.execute(sa.update(KkNumberHistory).where(
                    col(KkNumberHistory.household_id) == household.id, col(KkNumberHistory.valid_to).is_(None)
                ).values(valid_to=now))
                session.add(KkNumberHistory(household_id=household.id, kk_number=new_kk, recorded_by=principal.sub))
            for key, value in changes.items():
                setattr(household, key, value)
            household.version += 1
            household.updated_at = now
        await _emit(session, ev.HOUSEHOLD_UPDATED, household_data(household), household)
        await refresh_needs(session, household, today=today)
    basis = read_basis_of(principal)
    await _audit(session, principal, household, action="update", resource_type="household",
                 resource_id=household.id, purpose="update by the kader", fields=sorted(changes))
    return household_public(household, await members_of(session, household.id), basis, today)


async def move(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID, payload: HouseholdMove,
               if_match: str | None, today: date) -> HouseholdPublic:
    """POST /households/{id}/move: to another posyandu (and village); its profile, needs and referrals stay with
    it, the needs refreshed, the move audited and announced."""
    household = await writable_household(session, principal, household_id)
    check_if_match(if_match, household.version)
    posyandu = await require_posyandu(session, payload.posyandu_id)
    if payload.village_code is not None:
        await require_village(session, payload.village_code)
        check_served_by(posyandu, payload.village_code)
        household.village_code = payload.village_code
        household.needs_reassignment = False
    else:
        # Staying in its village: the new posyandu must serve that village's district (else give village_code).
        check_served_by(posyandu, household.village_code, field="posyandu_id")
    previous = household.posyandu_id
    household.posyandu_id = payload.posyandu_id
    household.version += 1
    household.updated_at = datetime.now(UTC)
    await session.flush()
    await _emit(session, ev.HOUSEHOLD_MOVED, ev.HouseholdMovedData(
        household_id=household.id, from_posyandu_id=previous, to_posyandu_id=household.posyandu_id,
        village_code=household.village_code, version=household.version), household)
    await refresh_needs(session, household, today=today)
    await _audit(session, principal, household, action="move", resource_type="household", resource_id=household.id,
                 purpose="move to another posyandu", fields=["posyandu_id", "village_code"])
    # A kader who handed the household to a posyandu it does not serve no longer sees its full identifiers.
    basis = ReadBasis("move", full_nik=household.posyandu_id in principal.posyandu_ids)
    return household_public(household, await members_of(session, household.id), basis, today)


async def add_member(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID,
                     payload: MemberCreate, today: date) -> MemberPublic:
    """POST /households/{id}/members: the member, its event, the household's needs, the audit row."""
    household = await writable_household(session, principal, household_id)
    [member] = await _insert_members(session, principal, household, [("body", payload)])
    await _emit(session, ev.MEMBER_ADDED, member_data(member), household)
    await refresh_needs(session, household, today=today)
    await _audit(session, principal, household, action="add-member", resource_type="member", resource_id=member.id,
                 purpose="member added by the kader", fields=sorted(payload.model_fields_set | {"name"}))
    return member_public(member, _write_basis(principal), today)


async def update_member(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID,
                        member_id: uuid.UUID, payload: MemberUpdate, if_match: str | None,
                        today: date) -> MemberPublic:
    """PATCH /households/{id}/members/{member_id}: a NIK is checked against the (possibly updated) birth date and
    sex; the needs are refreshed, the change audited and announced."""
    household = await writable_household(session, principal, household_id)
    member = await session.get(Member, member_id, with_for_update=True)
    if member is None or member.household_id != household.id or member.status != "active":
        raise MemberNotFound(f"No member {member_id} in household {household_id}.")
    check_if_match(if_match, member.version)
    changes = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if getattr(member, k) != v}
    if changes:
        merged = {**member.model_dump(), **changes}
        check_pregnancy(merged["sex"], merged["pregnant"], merged["expected_delivery_date"], "body")
        if "birth_date" in changes:
            await _check_measured_after_birth(session, member.id, changes["birth_date"])
        niks = {}
        if merged["nik"] is not None and {"nik", "birth_date", "sex"} & changes.keys():
            changes["nik_region_mismatch"] = nik_mismatch(
                merged["nik"], birth_date=merged["birth_date"], sex=merged["sex"],
                village_code=household.village_code, field="body.nik")
            niks = {"body.nik": merged["nik"]}
        async with _claiming(session, principal, niks=niks, member_id=member.id):
            for key, value in changes.items():
                setattr(member, key, value)
            member.version += 1
            member.updated_at = datetime.now(UTC)
        await _emit(session, ev.MEMBER_UPDATED, member_data(member), household)
        await refresh_needs(session, household, today=today)
    await _audit(session, principal, household, action="update-member", resource_type="member",
                 resource_id=member.id, purpose="member updated by the kader", fields=sorted(changes))
    return member_public(member, _write_basis(principal), today)


async def search(*, session: AsyncSession, principal: Principal, kk: str | None, nik: str | None,
                 name: str | None, village: str | None, posyandu: uuid.UUID | None, after: uuid.UUID | None,
                 limit: int) -> list[Household]:
    """Live households the caller may read, by KK, NIK, member name, village prefix or posyandu, in id order."""
    query = readable_households(principal).where(Household.status == "active")
    if kk is not None:
        query = query.where(Household.kk_number == kk)
    if village is not None:
        query = query.where(col(Household.village_code).startswith(village))
    if posyandu is not None:
        query = query.where(Household.posyandu_id == posyandu)
    if nik is not None or name is not None:
        members = select(Member.household_id).where(Member.status == "active")
        if nik is not None:
            members = members.where(Member.nik == nik)
        if name is not None:
            members = members.where(sa.func.lower(Member.name).contains(name.lower(), autoescape=True))
        query = query.where(col(Household.id).in_(members))
    if after is not None:
        query = query.where(Household.id > after)
    query = query.order_by(col(Household.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())


async def list_households(*, session: AsyncSession, principal: Principal, households: list[Household],
                          today: date) -> list[HouseholdPublic]:
    """GET /households (a page found by `search`): the members of the page in one query, its reads audited in one
    multi-row insert, whatever the page's size."""
    basis = read_basis_of(principal)
    ids = [h.id for h in households]
    members: dict[uuid.UUID, list[Member]] = {i: [] for i in ids}
    if ids:
        rows = await session.execute(select(Member).where(col(Member.household_id).in_(ids),
                                                          Member.status == "active")
                                     .order_by(col(Member.birth_date), col(Member.id)))
        for m in rows.scalars().all():
            members[m.household_id].append(m)
    await record_reads(session, principal, resource_type="household", resources=[(str(i), str(i)) for i in ids],
                       purpose=f"search: {basis.purpose}", fields=["members"])
    return [household_public(h, members[h.id], basis, today) for h in households]
