"""A small, real world of objects across the three services, for the fuzzing and security suites.

One `Site` is a posyandu in a village with a cadre, an agency (OPD) of one SPM field for the village's regency,
a household with one member registered by the posyandu's kader, and a referral of that member routed to the
agency. Each suite builds its sites in regencies no other test uses, so that its agencies never route another
test's referrals (and the other tests' agencies never route its own).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import httpx

from tests.support import tokens
from tests.support.factories import create_referral, known_agency, known_household, known_posyandu
from tests.support.waiting import eventually


@dataclass(frozen=True)
class Site:
    village_code: str
    posyandu_id: str
    cadre_id: str
    agency_id: str
    spm_field: str
    household: dict[str, Any]
    referral: dict[str, Any]

    @property
    def household_id(self) -> str:
        return str(self.household["id"])

    @property
    def member_id(self) -> str:
        return str(self.household["members"][0]["id"])

    @property
    def referral_id(self) -> str:
        return str(self.referral["id"])

    def kader(self) -> dict[str, str]:
        return tokens.kader([self.posyandu_id])

    def opd(self) -> dict[str, str]:
        return tokens.opd(self.agency_id, [self.spm_field])


async def build_site(*, registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
                     household_db: asyncpg.Connection, referral_db: asyncpg.Connection, village_code: str,
                     spm_field: str = "kesehatan", category: str = "kesehatan.immunization") -> Site:
    agency_id = await known_agency(registry, referral_db, village_code[:4], [spm_field])
    posyandu_id = await known_posyandu(registry, household_db, village_code)
    cadre = await registry.post(f"/api/v1/posyandu/{posyandu_id}/cadres", headers=tokens.admin(), json={
        "name": "Siti Aminah", "duties": [spm_field], "phone": "081234567890"})
    assert cadre.status_code == 201, cadre.text
    created = await known_household(household, referral_db, posyandu_id, village_code)
    ref = await create_referral(referral, created, spm_field=spm_field, category=category)
    assert ref["agency_id"] == agency_id, ref

    # The household service learns from the referral's event that the agency may read the household.
    async def agency_may_read() -> bool:
        return bool(await household_db.fetchval(
            "SELECT count(*) FROM agency_access WHERE referral_id = $1 AND open", uuid.UUID(ref["id"])))

    await eventually(agency_may_read, "the household service to learn the referral")
    return Site(village_code=village_code, posyandu_id=posyandu_id, cadre_id=cadre.json()["id"], agency_id=agency_id,
                spm_field=spm_field, household=created, referral=ref)


async def open_session_at(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                          household_db: asyncpg.Connection, site: Site) -> str:
    """Today made an opening day of the site's posyandu, and its session opened by the site's kader."""
    today = date.today().isoformat()
    scheduled = await registry.put(f"/api/v1/posyandu/{site.posyandu_id}/schedule", headers=site.kader(),
                                   json={"rule": None, "extra_days": [{"date": today, "reason": "Hari buka"}]})
    assert scheduled.status_code == 200, scheduled.text

    async def schedule_known() -> bool:
        return bool(await household_db.fetchval("SELECT count(*) FROM known_schedules WHERE posyandu_id = $1",
                                                uuid.UUID(site.posyandu_id)))

    await eventually(schedule_known, "the household service to learn the schedule")
    opened = await household.post("/api/v1/sessions", json={"posyandu_id": site.posyandu_id, "session_date": today},
                                  headers=site.kader())
    assert opened.status_code == 201, opened.text
    return str(opened.json()["id"])
