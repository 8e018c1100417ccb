"""A place of this test tree's own in regencies 1501 (Kerinci) and 1502 (Merangin), Jambi: agencies, posyandu,
households and members written straight into the referral service's read models (as its consumers write them from
the registry's and the household service's events), so a test needs no event round trip to set up."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

KERINCI = "1501012001"
MERANGIN = "1502012001"


@dataclass(frozen=True)
class Home:
    posyandu_id: uuid.UUID
    household_id: uuid.UUID
    member_id: uuid.UUID
    village_code: str


async def agency(referral_db: asyncpg.Connection, name: str, jurisdiction_code: str, fields: list[str]) -> uuid.UUID:
    """A regency (four digits) or province agency the referral service knows; the same name gives the same agency."""
    agency_id = uuid.uuid5(uuid.NAMESPACE_URL, f"posyandu-test:kerinci:{name}")
    level = "province" if len(jurisdiction_code) == 2 else "regency"
    await referral_db.execute(
        "INSERT INTO known_agencies (id, name, level, jurisdiction_code, spm_fields, status, version, registered_at)"
        " VALUES ($1, $2, $3, $4, $5, 'active', 1, now()) ON CONFLICT DO NOTHING",
        agency_id, name, level, jurisdiction_code, fields)
    return agency_id


async def home(referral_db: asyncpg.Connection, village_code: str) -> Home:
    """A new posyandu with an active household of one active member, in the village."""
    made = Home(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), village_code)
    await referral_db.execute("INSERT INTO known_households (id, posyandu_id, village_code, status, version)"
                              " VALUES ($1, $2, $3, 'active', 1)", made.household_id, made.posyandu_id, village_code)
    await referral_db.execute("INSERT INTO known_members (id, household_id, nik_masked, status, version)"
                              " VALUES ($1, $2, $3, 'active', 1)", made.member_id, made.household_id,
                              f"{village_code[:6]}******0001")
    return made


def referral_body(place: Home, *, spm_field: str = "kesehatan", category: str = "kesehatan.tb-suspect",
                  reason: str = "Batuk lebih dari dua minggu") -> dict[str, str]:
    return {"household_id": str(place.household_id), "member_id": str(place.member_id), "spm_field": spm_field,
            "category": category, "reason": reason}
