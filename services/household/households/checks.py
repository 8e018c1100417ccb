"""The checks of a household's and its members' data, and the 409 of a KK number or NIK another live record holds
(naming the holder only to a caller who may read it): shared by registration, the import and the other write paths."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.access import may_read
from services.household.dates import latest_allowed
from services.household.households.schemas import HouseholdCreate, MemberCreate
from services.household.identifiers import (
    IdentifierError,
    check_nik_against_member,
    nik_region_mismatch,
    parse_kk,
    parse_nik,
)
from services.household.tables import Household, KnownPosyandu, KnownRegion, Member
from shared.auth import Principal
from shared.errors import Conflict, ValidationFailed


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": field, "message": message}])


def check_village(region: KnownRegion | None, code: str, field: str = "village_code") -> None:
    """422 unless `region` (the known region of `code`, or None) is an active village."""
    if region is None or region.level != "village" or region.retired:
        raise invalid(field, f"{code} is not an active village known to the registry.")


async def require_village(session: AsyncSession, code: str, field: str = "village_code") -> None:
    check_village(await session.get(KnownRegion, code), code, field)


def check_posyandu(posyandu: KnownPosyandu | None, posyandu_id: uuid.UUID) -> KnownPosyandu:
    """422 unless `posyandu` (the known posyandu of `posyandu_id`, or None) is active."""
    if posyandu is None or posyandu.status != "active":
        raise invalid("posyandu_id", f"{posyandu_id} is not an active posyandu known to the registry.")
    return posyandu


async def require_posyandu(session: AsyncSession, posyandu_id: uuid.UUID) -> KnownPosyandu:
    return check_posyandu(await session.get(KnownPosyandu, posyandu_id), posyandu_id)


def check_served_by(posyandu: KnownPosyandu, village_code: str, field: str = "village_code") -> None:
    """A household lives in the district (kecamatan, 6 digits) of its posyandu's village (README: Decisions)."""
    district = posyandu.village_code[:6]
    if village_code[:6] != district:
        raise invalid(field, f"Village {village_code} is outside district {district}, which posyandu "
                              f"{posyandu.id} serves: a household registers at a posyandu of its own district.")


def check_kk(kk_number: str) -> None:
    try:
        parse_kk(kk_number, today=latest_allowed())
    except IdentifierError as exc:
        raise invalid("kk_number", str(exc)) from exc


def kk_taken(existing: uuid.UUID, *, may_read: bool) -> Conflict:
    """The 409 of a KK number live household `existing` holds, naming it only to a caller who may read it."""
    if may_read:
        return Conflict(f"A live household already has this KK number: {existing}.",
                        errors=[{"field": "kk_number", "message": f"already registered to household {existing}"}],
                        existing_household_id=str(existing))
    # Ids, or even details, of a household the caller may not read would make the 409 an existence oracle.
    return Conflict("This KK number is already registered.",
                    errors=[{"field": "kk_number", "message": "already registered"}])


def nik_taken(field: str, member_id: uuid.UUID, household_id: uuid.UUID, *, may_read: bool) -> Conflict:
    """The 409 of a NIK (at `field`) that live member `member_id` holds, naming it only to a caller who may read
    its household."""
    if may_read:
        holder = f"member {member_id} of household {household_id}"
        return Conflict(f"This NIK belongs to {holder}.",
                        errors=[{"field": field, "message": f"already registered to {holder}"}],
                        existing_member_id=str(member_id), existing_household_id=str(household_id))
    return Conflict("This NIK is already registered.", errors=[{"field": field, "message": "already registered"}])


async def kk_holder(session: AsyncSession, kk_number: str, household_id: uuid.UUID | None = None) -> uuid.UUID | None:
    """The live household (other than `household_id`) that holds the KK number, if any."""
    query = select(Household.id).where(Household.kk_number == kk_number, Household.status == "active")
    if household_id is not None:
        query = query.where(Household.id != household_id)
    return (await session.execute(query)).scalars().first()


async def kk_conflict(session: AsyncSession, principal: Principal, kk_number: str,
                      household_id: uuid.UUID | None = None) -> Conflict:
    """The 409 of a KK number the unique index refused."""
    holder = await kk_holder(session, kk_number, household_id)
    if holder is None:  # the holder closed meanwhile: still taken for this write
        return Conflict("This KK number was registered at the same moment by another request.",
                        errors=[{"field": "kk_number", "message": "already registered"}])
    return kk_taken(holder, may_read=await may_read(session, principal, holder))


async def nik_conflict(session: AsyncSession, principal: Principal, niks: dict[str, str],
                        member_id: uuid.UUID | None) -> Conflict:
    """The 409 of the lowest taken NIK (as the import reports it), naming its holder to a caller who may read it."""
    query = select(Member.id, Member.household_id, Member.nik).where(
        col(Member.nik).in_(list(niks.values())), Member.status == "active")
    if member_id is not None:
        query = query.where(Member.id != member_id)
    holder = (await session.execute(query.order_by(col(Member.nik)).limit(1))).first()
    if holder is None:
        field = min(niks, key=lambda f: niks[f])
        return Conflict("This NIK was registered at the same moment by another request.",
                        errors=[{"field": field, "message": "already registered"}])
    field = next(f for f, nik in niks.items() if nik == holder.nik)
    return nik_taken(field, holder.id, holder.household_id,
                     may_read=await may_read(session, principal, holder.household_id))


def nik_mismatch(nik: str, *, birth_date: date, sex: str, village_code: str, field: str) -> bool:
    """Checks a NIK against the member; returns the region-mismatch flag. 422 on problems."""
    try:
        info = parse_nik(nik, today=latest_allowed())
    except IdentifierError as exc:
        raise invalid(field, str(exc)) from exc
    if problems := check_nik_against_member(info, birth_date=birth_date, sex=sex):
        raise ValidationFailed("The NIK disagrees with the member: " + "; ".join(problems) + ".",
                               errors=[{"field": field, "message": p} for p in problems])
    return nik_region_mismatch(info, village_code)


def check_new_member(village_code: str, field: str, payload: MemberCreate) -> bool:
    """Checks a new member (its payload at field path `field`) of a household in `village_code` on its own; 422 on
    problems. Returns its NIK region-mismatch flag."""
    check_pregnancy(payload.sex, payload.pregnant, payload.expected_delivery_date, field)
    return payload.nik is not None and nik_mismatch(
        payload.nik, birth_date=payload.birth_date, sex=payload.sex, village_code=village_code, field=f"{field}.nik")


def check_distinct_niks(payload: HouseholdCreate) -> None:
    niks = [m.nik for m in payload.members if m.nik]
    if len(niks) != len(set(niks)):
        raise invalid("members", "The same NIK appears twice in this household.")


def check_pregnancy(sex: str, pregnant: bool, expected: date | None, field: str) -> None:
    if pregnant and sex != "female":
        raise invalid(f"{field}.pregnant", "Only a female member can be recorded as pregnant.")
    if expected is not None and not pregnant:
        raise invalid(f"{field}.expected_delivery_date", "An expected delivery date needs pregnant = true.")
