"""Two sites in Jakarta Utara (3172), a regency no other test uses: A (kesehatan) and B (sosial), each with its
posyandu, cadre, agency, household and a referral routed to its agency; and a duplicate flag in A's household."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest

from conftest import Stack
from services.household.settings import HouseholdSettings
from services.referral.settings import ReferralSettings
from tests.support import tokens
from tests.support.factories import kk_number, nik
from tests.support.waiting import eventually
from tests.support.world import Site, build_site, open_session_at


@dataclass(frozen=True)
class SecurityWorld:
    a: Site
    b: Site
    #: An open duplicate flag between two members of A's household.
    flag_id: str
    #: The member of A's household the flag was raised for.
    twin_id: str
    #: A webhook subscription of A's agency.
    webhook_id: str
    #: An open session (today, an extra opening day) at A's posyandu.
    session_id: str = ""
    #: A programme of A's agency in A's field serving A's village (its beneficiary list is A's agency's to read).
    programme_id: str = ""
    #: An import job of A's kader (one household at A's posyandu).
    import_job_id: str = ""


@pytest.fixture(scope="session")
async def security_world(registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
                         household_settings: HouseholdSettings,
                         referral_settings: ReferralSettings, stack: Stack) -> SecurityWorld:
    household_db = await asyncpg.connect(household_settings.database_url)
    referral_db = await asyncpg.connect(referral_settings.database_url)
    try:
        common = {"registry": registry, "household": household, "referral": referral, "household_db": household_db,
                  "referral_db": referral_db}
        a = await build_site(**common, village_code="3172011001", spm_field="kesehatan",  # Penjaringan
                             category="kesehatan.immunization")
        b = await build_site(**common, village_code="3172011002", spm_field="sosial",  # Kamal Muara
                             category="sosial.neglected-elderly")
        # A member without a NIK with the head's name and birth date: a likely duplicate, flagged for review.
        twin = await household.post(f"/api/v1/households/{a.household_id}/members", headers=a.kader(), json={
            "name": "Budi Santoso", "sex": "male", "birth_date": "1984-02-11", "relationship": "other"})
        assert twin.status_code == 201, twin.text
        twin_id = twin.json()["id"]
        flag_id = await household_db.fetchval("SELECT id FROM duplicate_flags WHERE member_id = $1",
                                              uuid.UUID(twin_id))
        assert flag_id is not None
        profile = await household.put(f"/api/v1/households/{a.household_id}/profiles/kesehatan", json={},
                                      headers=a.kader())
        assert profile.status_code == 201, profile.text
        webhook = await referral.post("/api/v1/webhooks/subscriptions", headers=a.opd(), json={
            "url": "http://127.0.0.1:9/hook", "event_types": ["posyandu.referral.snapshot.v1"]})
        assert webhook.status_code == 201, webhook.text
        session_id = await open_session_at(registry, household, household_db, a)
        programme = await registry.post("/api/v1/programmes", headers=a.opd(), json={
            "name": "PMT Balita Penjaringan", "spm_field": a.spm_field, "service_type": "kesehatan.kab.balita",
            "region_codes": [a.village_code], "period_start": "2027-01-01", "period_end": "2027-12-31",
            "budget": [{"source": "apbd-regency", "amount": 1_000_000}],
            "outputs": [{"code": "pmt-packages", "name": "Paket PMT", "unit": "paket", "target": 10}]})
        assert programme.status_code == 201, programme.text
        programme_id = programme.json()["id"]
        await _known_to_the_household_service(household_db, programme_id)
        import_job_id = await _import_job(household, a)
    finally:
        await household_db.close()
        await referral_db.close()
    return SecurityWorld(a=a, b=b, flag_id=str(flag_id), twin_id=twin_id, webhook_id=webhook.json()["id"],
                         session_id=session_id, programme_id=programme_id,
                         import_job_id=import_job_id)


async def _import_job(household: httpx.AsyncClient, site: Site) -> str:
    born = date(1990, 6, 15)
    row = {"kk_number": kk_number(district="317201"), "village_code": "3172011001", "posyandu_id": site.posyandu_id,
           "nik": nik(born, "female", "317201"), "name": "Sri Wahyuni", "sex": "female",
           "birth_date": born.isoformat(), "relationship": "head"}
    imported = await household.post("/api/v1/households/import", content=json.dumps(row).encode(),
                                    headers={**site.kader(), "Content-Type": "application/x-ndjson"})
    assert imported.status_code == 200 and imported.json()["households_imported"] == 1, imported.text
    return str(imported.json()["job_id"])


async def _known_to_the_household_service(household_db: asyncpg.Connection, programme_id: str) -> None:
    """The registry announces the programme on its topic; the household service projects it (beneficiary lists)."""
    async def known() -> bool:
        return bool(await household_db.fetchval("SELECT count(*) FROM programmes WHERE id = $1",
                                                uuid.UUID(programme_id)))

    await eventually(known, "the household service to learn the programme", timeout=90)


def outsiders_of(world: SecurityWorld) -> dict[str, dict[str, str]]:
    """Callers with no business with site A's objects."""
    a, b = world.a, world.b
    return {
        "kader of another posyandu": b.kader(),
        "opd of another agency": b.opd(),
        "opd of A's agency, another field": tokens.opd(a.agency_id, ["sosial"]),
        "pembina of another region": tokens.pembina("1472"),
        "pembina of another regency": tokens.pembina("3171"),
    }


async def site_a_state(world: SecurityWorld, registry: httpx.AsyncClient, household: httpx.AsyncClient,
                 referral: httpx.AsyncClient) -> dict[str, Any]:
    """Site A's objects as the admin sees them (versions and statuses), to prove that nothing changed."""
    admin = tokens.admin()
    a = world.a
    return {
        "posyandu": (await registry.get(f"/api/v1/posyandu/{a.posyandu_id}", headers=admin)).json(),
        "cadres": (await registry.get(f"/api/v1/posyandu/{a.posyandu_id}/cadres", headers=admin)).json(),
        "agency": (await registry.get(f"/api/v1/agencies/{a.agency_id}", headers=admin)).json(),
        "household": (await household.get(f"/api/v1/households/{a.household_id}", headers=admin)).json(),
        "profile": (await household.get(f"/api/v1/households/{a.household_id}/profiles/kesehatan",
                                        headers=admin)).json()["version"],
        "flags": (await household.get("/api/v1/duplicates", headers=admin)).json(),
        "referral": (await referral.get(f"/api/v1/referrals/{a.referral_id}", headers=admin)).json()["version"],
        "notes": (await referral.get(f"/api/v1/referrals/{a.referral_id}/notes", headers=admin)).json(),
        "webhook": (await referral.get(f"/api/v1/webhooks/subscriptions/{world.webhook_id}", headers=admin)).json(),
        "schedule": (await registry.get(f"/api/v1/posyandu/{a.posyandu_id}/schedule", headers=admin)).json(),
        "session": (await household.get(f"/api/v1/sessions/{world.session_id}", headers=admin)).json(),
        "visits": (await household.get(f"/api/v1/sessions/{world.session_id}/visits", headers=admin)).json(),
        "programme": (await registry.get(f"/api/v1/programmes/{world.programme_id}/history", headers=admin)).json(),
    }
