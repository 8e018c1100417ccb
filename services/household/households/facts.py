"""What the events and the need rules read of a household and its members, and the event data built from it."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Protocol

from services.household.identifiers import mask_kk, mask_nik
from shared.events import household as ev


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
