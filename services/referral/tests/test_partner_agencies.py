"""Partner organisations (agencies of kind `partner`: Baznas, Kemenag, BKKBN) run programmes but take no referrals:
the referral service does not keep them, so routing (and reassignment, escalation) never chooses one."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from services.referral.tests.factories import create_referral, known_household, known_posyandu
from tests.support import tokens
from tests.support.waiting import eventually

#: Reserved for the issue 15 tests: Kabupaten Tabanan (5102) in Bali.
BALI_REGIONS = "kode,nama\n51,Bali\n51.02,Kabupaten Tabanan\n51.02.01,Selemadeg\n51.02.01.2001,Antap\n"
TABANAN, ANTAP = "5102", "5102012001"


async def test_a_partner_agency_is_not_kept_for_routing_and_a_referral_waits_unrouted(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
        registry_db: asyncpg.Connection, household_db: asyncpg.Connection, referral_db: asyncpg.Connection) -> None:
    imported = await registry.post("/api/v1/regions/import", content=BALI_REGIONS,
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text

    async def village_known() -> bool:
        return bool(await household_db.fetchval("SELECT count(*) FROM known_regions WHERE code = $1", ANTAP))

    await eventually(village_known, "the household service to learn the Bali regions")
    baznas = await registry.post("/api/v1/agencies", headers=tokens.admin(), json={
        "name": "Baznas Kabupaten Tabanan", "level": "regency", "jurisdiction_code": TABANAN,
        "spm_fields": ["sosial"], "kind": "partner"})
    assert baznas.status_code == 201, baznas.text
    partner_id = uuid.UUID(baznas.json()["id"])
    event_id = await registry_db.fetchval("SELECT event_id FROM outbox WHERE key = $1", str(partner_id))

    async def consumed() -> bool:
        return bool(await referral_db.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", event_id))

    await eventually(consumed, "the referral service to consume the partner's event")
    assert await referral_db.fetchval("SELECT count(*) FROM known_agencies WHERE id = $1", partner_id) == 0

    place = await known_posyandu(registry, household_db, ANTAP)
    created = await known_household(household, referral_db, place, ANTAP)
    made = await create_referral(referral, created, spm_field="sosial", category="sosial.neglected-elderly")
    assert made["unrouted"] and made["agency_id"] is None
