"""Households and members: registration with KK/NIK validation, updates with history, moves, search."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, ParamSpec, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.access import may_register_at, read_basis, writable_household
from services.household.dates import age_in_months, age_in_years, latest_allowed
from services.household.duplicates.service import flag_likely_duplicates
from services.household.households.schemas import (
    HouseholdCreate,
    HouseholdMove,
    HouseholdUpdate,
    LifeCycleGroup,
    MemberCreate,
    MemberUpdate,
)
from services.household.identifiers import (
    IdentifierError,
    check_nik_against_member,
    mask_kk,
    mask_nik,
    nik_region_mismatch,
    parse_kk,
    parse_nik,
)
from services.household.immunization.tables import Dose
from services.household.tables import Household, KkNumberHistory, KnownPosyandu, KnownRegion, Measurement, Member
from shared.auth import Principal
from shared.concurrency import check_if_match
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.events import household as ev
from shared.events.envelope import CloudEvent
from shared.outbox import publish, publish_many

P = ParamSpec("P")
T = TypeVar("T")


class MemberNotFound(NotFound):
    pass


def life_cycle_group(birth_date: date, on: date) -> LifeCycleGroup:
    """DOMAIN.md §8: infant 0-11 months, toddler 12-59 months, school-age 5-18, adult 19-59, elderly 60+."""
    months, years = age_in_months(birth_date, on), age_in_years(birth_date, on)
    if months < 12:
        return LifeCycleGroup.INFANT
    if months < 60:
        return LifeCycleGroup.TODDLER
    if years <= 18:
        return LifeCycleGroup.SCHOOL_AGE
    return LifeCycleGroup.ADULT if years < 60 else LifeCycleGroup.ELDERLY


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": field, "message": message}])


def check_village(region: KnownRegion | None, code: str, field: str = "village_code") -> None:
    """422 unless `region` (the known region of `code`, or None) is an active village."""
    if region is None or region.level != "village" or region.retired:
        raise _invalid(field, f"{code} is not an active village known to the registry.")


async def _require_village(session: AsyncSession, code: str, field: str = "village_code") -> None:
    check_village(await session.get(KnownRegion, code), code, field)


def check_posyandu(posyandu: KnownPosyandu | None, posyandu_id: uuid.UUID) -> KnownPosyandu:
    """422 unless `posyandu` (the known posyandu of `posyandu_id`, or None) is active."""
    if posyandu is None or posyandu.status != "active":
        raise _invalid("posyandu_id", f"{posyandu_id} is not an active posyandu known to the registry.")
    return posyandu


async def _require_posyandu(session: AsyncSession, posyandu_id: uuid.UUID) -> KnownPosyandu:
    return check_posyandu(await session.get(KnownPosyandu, posyandu_id), posyandu_id)


def _check_served_by(posyandu: KnownPosyandu, village_code: str, field: str = "village_code") -> None:
    """A household lives in the district (kecamatan, 6 digits) of its posyandu's village (README: Decisions)."""
    district = posyandu.village_code[:6]
    if village_code[:6] != district:
        raise _invalid(field, f"Village {village_code} is outside district {district}, which posyandu "
                              f"{posyandu.id} serves: a household registers at a posyandu of its own district.")


def _check_kk(kk_number: str) -> None:
    try:
        parse_kk(kk_number, today=latest_allowed())
    except IdentifierError as exc:
        raise _invalid("kk_number", str(exc)) from exc


async def _may_read(session: AsyncSession, principal: Principal, household_id: uuid.UUID) -> bool:
    holder = await session.get(Household, household_id)
    return holder is not None and await read_basis(session, principal, holder) is not None


async def _check_kk_free(session: AsyncSession, principal: Principal, kk_number: str,
                         household_id: uuid.UUID | None) -> None:
    """409 if another live household has the KK number, naming it only to a caller who may read it."""
    query = select(Household.id).where(Household.kk_number == kk_number, Household.status == "active")
    if household_id is not None:
        query = query.where(Household.id != household_id)
    existing = (await session.execute(query)).scalars().first()
    if existing is None:
        return
    raise kk_taken(existing, may_read=await _may_read(session, principal, existing))


def kk_taken(existing: uuid.UUID, *, may_read: bool) -> Conflict:
    """The 409 of a KK number live household `existing` holds, naming it only to a caller who may read it."""
    if may_read:
        return Conflict(f"A live household already has this KK number: {existing}.",
                        errors=[{"field": "kk_number", "message": f"already registered to household {existing}"}],
                        existing_household_id=str(existing))
    # Ids, or even details, of a household the caller may not read would make the 409 an existence oracle.
    return Conflict("This KK number is already registered.",
                    errors=[{"field": "kk_number", "message": "already registered"}])


#: The unique indexes a concurrent registration can trip after this request's checks, and the field each guards.
_UNIQUE_FIELDS = {"uq_households_live_kk": "kk_number", "uq_members_live_nik": "nik"}


def _taken_concurrently(write: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """A request that took the KK number or a NIK between this one's check and its insert: a bare 409 too."""

    @functools.wraps(write)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await write(*args, **kwargs)
        except IntegrityError as exc:
            field = next((f for index, f in _UNIQUE_FIELDS.items() if index in str(exc.orig)), None)
            if getattr(exc.orig, "sqlstate", None) != "23505" or field is None:
                raise
            what = "KK number" if field == "kk_number" else "NIK"
            raise Conflict(f"This {what} was registered at the same moment by another request.",
                           errors=[{"field": field, "message": "already registered"}]) from None

    return guarded


def _nik_mismatch(nik: str, *, birth_date: date, sex: str, village_code: str, field: str) -> bool:
    """Checks a NIK against the member; returns the region-mismatch flag. 422 on problems."""
    try:
        info = parse_nik(nik, today=latest_allowed())
    except IdentifierError as exc:
        raise _invalid(field, str(exc)) from exc
    if problems := check_nik_against_member(info, birth_date=birth_date, sex=sex):
        raise ValidationFailed("The NIK disagrees with the member: " + "; ".join(problems) + ".",
                               errors=[{"field": field, "message": p} for p in problems])
    return nik_region_mismatch(info, village_code)


async def _check_niks_free(session: AsyncSession, principal: Principal, niks: dict[str, str],
                           member_id: uuid.UUID | None = None) -> None:
    """409 if a live member (other than `member_id`) already holds one of the NIKs (by field path); one query.

    The holder is named only to a caller who may read the holder's household.
    """
    if not niks:
        return
    query = select(Member.id, Member.household_id, Member.nik).where(col(Member.nik).in_(list(niks.values())),
                                                                     Member.status == "active")
    if member_id is not None:
        query = query.where(Member.id != member_id)
    existing = (await session.execute(query.limit(1))).first()
    if existing is None:
        return
    field = next(f for f, nik in niks.items() if nik == existing.nik)
    raise nik_taken(field, existing.id, existing.household_id,
                    may_read=await _may_read(session, principal, existing.household_id))


def nik_taken(field: str, member_id: uuid.UUID, household_id: uuid.UUID, *, may_read: bool) -> Conflict:
    """The 409 of a NIK (at `field`) that live member `member_id` holds, naming it only to a caller who may read
    its household."""
    if may_read:
        holder = f"member {member_id} of household {household_id}"
        return Conflict(f"This NIK belongs to {holder}.",
                        errors=[{"field": field, "message": f"already registered to {holder}"}],
                        existing_member_id=str(member_id), existing_household_id=str(household_id))
    return Conflict("This NIK is already registered.", errors=[{"field": field, "message": "already registered"}])


class HouseholdFacts(Protocol):
    """What the events tell of a household: a Household, or the bulk import's row of a new one."""

    id: uuid.UUID
    kk_number: str
    village_code: str
    posyandu_id: uuid.UUID
    status: str
    needs_reassignment: bool
    version: int


class MemberFacts(Protocol):
    """What the events and the need rules read of a member: a Member, or the bulk import's row of a new one."""

    id: uuid.UUID
    household_id: uuid.UUID
    nik: str | None
    sex: str
    birth_date: date
    relationship: str
    pregnant: bool
    expected_delivery_date: date | None
    disability: str
    status: str
    version: int


def household_data(h: HouseholdFacts) -> ev.HouseholdData:
    return ev.HouseholdData(household_id=h.id, kk_number_masked=mask_kk(h.kk_number), village_code=h.village_code,
                            posyandu_id=h.posyandu_id, status=h.status, needs_reassignment=h.needs_reassignment,
                            version=h.version)


def member_data(m: MemberFacts) -> ev.MemberData:
    return ev.MemberData(member_id=m.id, household_id=m.household_id, nik_masked=mask_nik(m.nik) if m.nik else None,
                         sex=m.sex, birth_date=m.birth_date, relationship=m.relationship, pregnant=m.pregnant,
                         disability=m.disability, status=m.status, version=m.version)


def _entry(event_type: Any, data: Any, household: Household) -> CloudEvent:
    return event_type.new(data, subject=str(household.id), regioncode=household.village_code)


async def _emit(session: AsyncSession, event_type: Any, data: Any, household: Household) -> None:
    await publish(session, event_type, data, subject=str(household.id), regioncode=household.village_code)


def check_new_member(village_code: str, field: str, payload: MemberCreate) -> bool:
    """Checks a new member (its payload at field path `field`) of a household in `village_code` on its own; 422 on
    problems. Returns its NIK region-mismatch flag."""
    _check_pregnancy(payload.sex, payload.pregnant, payload.expected_delivery_date, field)
    return payload.nik is not None and _nik_mismatch(
        payload.nik, birth_date=payload.birth_date, sex=payload.sex, village_code=village_code, field=f"{field}.nik")


def new_member(household: Household, field: str, payload: MemberCreate) -> Member:
    mismatch = check_new_member(household.village_code, field, payload)
    return Member(household_id=household.id, **payload.model_dump(), nik_region_mismatch=mismatch)


async def _insert_members(session: AsyncSession, principal: Principal, household: Household,
                          payloads: list[tuple[str, MemberCreate]]) -> list[Member]:
    """Validates and inserts members (field path, payload) with a constant number of statements, however many."""
    members, niks = [], {}
    for field, payload in payloads:
        members.append(new_member(household, field, payload))
        if payload.nik is not None:
            niks[f"{field}.nik"] = payload.nik
    await _check_niks_free(session, principal, niks)
    session.add_all(members)
    await session.flush()
    await flag_likely_duplicates(session, household, members)
    return members


async def _check_measured_after_birth(session: AsyncSession, member_id: uuid.UUID, birth_date: date) -> None:
    """422 when a new birth date would put the member's recorded measurements or doses before the birth."""
    first = await session.scalar(sa.select(sa.func.min(Measurement.measured_on)).where(
        col(Measurement.member_id) == member_id))
    if first is not None and first < birth_date:
        raise _invalid("body.birth_date", f"The member has a measurement dated {first.isoformat()}, before this "
                                          "birth date.")
    first_dose = await session.scalar(sa.select(sa.func.min(Dose.given_on)).where(
        col(Dose.member_id) == member_id, col(Dose.status) == "active"))
    if first_dose is not None and first_dose < birth_date:
        raise _invalid("body.birth_date", f"The member has a vaccine dose dated {first_dose.isoformat()}, before "
                                          "this birth date.")


def check_distinct_niks(payload: HouseholdCreate) -> None:
    niks = [m.nik for m in payload.members if m.nik]
    if len(niks) != len(set(niks)):
        raise _invalid("members", "The same NIK appears twice in this household.")


def _check_pregnancy(sex: str, pregnant: bool, expected: date | None, field: str) -> None:
    if pregnant and sex != "female":
        raise _invalid(f"{field}.pregnant", "Only a female member can be recorded as pregnant.")
    if expected is not None and not pregnant:
        raise _invalid(f"{field}.expected_delivery_date", "An expected delivery date needs pregnant = true.")


@_taken_concurrently
async def register(*, session: AsyncSession, principal: Principal,
                   payload: HouseholdCreate) -> tuple[Household, list[Member]]:
    """Registers a household (KK) with its members at a posyandu the caller serves."""
    if not may_register_at(principal, payload.posyandu_id):
        raise Forbidden("You may register households only at your own posyandu.")
    _check_kk(payload.kk_number)
    posyandu = await _require_posyandu(session, payload.posyandu_id)
    await _require_village(session, payload.village_code)
    _check_served_by(posyandu, payload.village_code)
    check_distinct_niks(payload)
    await _check_kk_free(session, principal, payload.kk_number, None)
    household = Household(**payload.model_dump(exclude={"members"}), created_by=principal.sub)
    session.add(household)
    session.add(KkNumberHistory(household_id=household.id, kk_number=household.kk_number,
                                recorded_by=principal.sub))
    members = await _insert_members(session, principal, household,
                                    [(f"members.{i}", m) for i, m in enumerate(payload.members)])
    await publish_many(session, [
        _entry(ev.HOUSEHOLD_REGISTERED, household_data(household), household),
        *(_entry(ev.MEMBER_ADDED, member_data(m), household) for m in members)])
    return household, members


async def members_of(session: AsyncSession, household_id: uuid.UUID, *, include_inactive: bool = False) -> list[Member]:
    query = select(Member).where(Member.household_id == household_id).order_by(col(Member.birth_date),
                                                                                 col(Member.id))
    if not include_inactive:
        query = query.where(Member.status == "active")
    return list((await session.execute(query)).scalars().all())


@_taken_concurrently
async def update(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID, payload: HouseholdUpdate,
                 if_match: str | None) -> Household:
    """Updates a household; a new KK number keeps the household (and its history), never a new one."""
    household = await writable_household(session, principal, household_id)
    check_if_match(if_match, household.version)
    changes = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if getattr(household, k) != v}
    if not changes:
        return household
    now = datetime.now(UTC)
    if "kk_number" in changes:
        _check_kk(changes["kk_number"])
        await _check_kk_free(session, principal, changes["kk_number"], household.id)
        await session.execute(sa.update(KkNumberHistory).where(
            col(KkNumberHistory.household_id) == household.id, col(KkNumberHistory.valid_to).is_(None)
        ).values(valid_to=now))
        session.add(KkNumberHistory(household_id=household.id, kk_number=changes["kk_number"],
                                    recorded_by=principal.sub))
    for key, value in changes.items():
        setattr(household, key, value)
    household.version += 1
    household.updated_at = now
    await session.flush()
    await _emit(session, ev.HOUSEHOLD_UPDATED, household_data(household), household)
    return household


async def move(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID, payload: HouseholdMove,
               if_match: str | None) -> Household:
    """Moves a household to another posyandu (and village); its profile, needs and referrals stay with it."""
    household = await writable_household(session, principal, household_id)
    check_if_match(if_match, household.version)
    posyandu = await _require_posyandu(session, payload.posyandu_id)
    if payload.village_code is not None:
        await _require_village(session, payload.village_code)
        _check_served_by(posyandu, payload.village_code)
        household.village_code = payload.village_code
        household.needs_reassignment = False
    else:
        # Staying in its village: the new posyandu must serve that village's district (else give village_code).
        _check_served_by(posyandu, household.village_code, field="posyandu_id")
    previous = household.posyandu_id
    household.posyandu_id = payload.posyandu_id
    household.version += 1
    household.updated_at = datetime.now(UTC)
    await session.flush()
    await _emit(session, ev.HOUSEHOLD_MOVED, ev.HouseholdMovedData(
        household_id=household.id, from_posyandu_id=previous, to_posyandu_id=household.posyandu_id,
        village_code=household.village_code, version=household.version), household)
    return household


@_taken_concurrently
async def add_member(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID,
                     payload: MemberCreate) -> tuple[Household, Member]:
    """Adds a member to a household."""
    household = await writable_household(session, principal, household_id)
    [member] = await _insert_members(session, principal, household, [("body", payload)])
    await _emit(session, ev.MEMBER_ADDED, member_data(member), household)
    return household, member


@_taken_concurrently
async def update_member(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID,
                        member_id: uuid.UUID, payload: MemberUpdate, if_match: str | None) -> tuple[Household, Member]:
    """Updates a member; a NIK is checked against the (possibly updated) birth date and sex."""
    household = await writable_household(session, principal, household_id)
    member = await session.get(Member, member_id, with_for_update=True)
    if member is None or member.household_id != household.id or member.status != "active":
        raise MemberNotFound(f"No member {member_id} in household {household_id}.")
    check_if_match(if_match, member.version)
    changes = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if getattr(member, k) != v}
    if not changes:
        return household, member
    merged = {**member.model_dump(), **changes}
    _check_pregnancy(merged["sex"], merged["pregnant"], merged["expected_delivery_date"], "body")
    if "birth_date" in changes:
        await _check_measured_after_birth(session, member.id, changes["birth_date"])
    if merged["nik"] is not None and {"nik", "birth_date", "sex"} & changes.keys():
        changes["nik_region_mismatch"] = _nik_mismatch(
            merged["nik"], birth_date=merged["birth_date"], sex=merged["sex"], village_code=household.village_code,
            field="body.nik")
        await _check_niks_free(session, principal, {"body.nik": merged["nik"]}, member.id)
    for key, value in changes.items():
        setattr(member, key, value)
    member.version += 1
    member.updated_at = datetime.now(UTC)
    await session.flush()
    await _emit(session, ev.MEMBER_UPDATED, member_data(member), household)
    return household, member


async def search(*, session: AsyncSession, scope: Any, kk: str | None, nik: str | None, name: str | None,
                 village: str | None, posyandu: uuid.UUID | None, after: uuid.UUID | None,
                 limit: int) -> list[Household]:
    """Households the caller may see, by KK, NIK, member name, village prefix or posyandu, in id order."""
    query = select(Household).where(Household.status == "active")
    if scope is not None:
        query = query.where(scope)
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
