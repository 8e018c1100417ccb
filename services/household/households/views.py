"""The response data of a household and its members: full or masked identifiers by the caller's basis."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from services.household.access import ReadBasis
from services.household.dates import age_in_years
from services.household.households.groups import life_cycle_group
from services.household.households.registration import NewHousehold, NewMember
from services.household.households.schemas import HouseholdPublic, MemberPublic
from services.household.identifiers import mask_kk, mask_nik
from services.household.profiles.schemas import Disability, Relationship, Sex
from services.household.tables import Household, Member


def member_public(m: Member | NewMember, basis: ReadBasis, today: date) -> MemberPublic:
    full = basis.full_nik
    return MemberPublic(id=m.id, household_id=m.household_id, nik=(m.nik if full else mask_nik(m.nik)) if m.nik
                        else None, nik_masked=not full and m.nik is not None, name=m.name, sex=Sex(m.sex),
                        birth_date=m.birth_date, age_years=age_in_years(m.birth_date, today),
                        life_cycle_group=life_cycle_group(m.birth_date, today),
                        relationship=Relationship(m.relationship), pregnant=m.pregnant,
                        expected_delivery_date=m.expected_delivery_date, disability=Disability(m.disability),
                        nik_region_mismatch=m.nik_region_mismatch, status=m.status, version=m.version)


def household_public(h: Household | NewHousehold, members: Sequence[Member | NewMember], basis: ReadBasis,
                     today: date) -> HouseholdPublic:
    return HouseholdPublic(
        id=h.id, kk_number=h.kk_number if basis.full_nik else mask_kk(h.kk_number), village_code=h.village_code,
        posyandu_id=h.posyandu_id, address=h.address, rt=h.rt, rw=h.rw, latitude=h.latitude, longitude=h.longitude,
        status=h.status, needs_reassignment=h.needs_reassignment, version=h.version, created_at=h.created_at,
        updated_at=h.updated_at, members=[member_public(m, basis, today) for m in members])
