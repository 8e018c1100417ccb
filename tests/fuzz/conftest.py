"""The fuzzing suite's own objects, in Kepulauan Seribu (3101), a regency no other test uses."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from services.household.settings import HouseholdSettings
from services.referral.settings import ReferralSettings
from services.reporting.tests.conftest import (  # noqa: F401  (the reporting app on its own broker, as its tests run it)
    reporting,
    reporting_app,
    reporting_broker,
    reporting_settings,
)
from tests.support import tokens
from tests.support.world import Site, build_site

#: The household and referral targets (their agency handles `kesehatan` in 3101).
FUZZ_VILLAGE = "3101011001"  # Pulau Panggang
#: The registry's own targets: the registry fuzzer may update or deactivate them, so nothing else uses them.
REGISTRY_VILLAGE = "3101021001"  # Pulau Untung Jawa


@dataclass(frozen=True)
class FuzzWorld:
    site: Site
    posyandu_id: str
    cadre_id: str
    agency_id: str


@pytest.fixture(scope="session")
async def fuzz_world(registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
                     household_settings: HouseholdSettings, referral_settings: ReferralSettings) -> FuzzWorld:
    household_db = await asyncpg.connect(household_settings.database_url)
    referral_db = await asyncpg.connect(referral_settings.database_url)
    try:
        site = await build_site(registry=registry, household=household, referral=referral,
                                household_db=household_db, referral_db=referral_db, village_code=FUZZ_VILLAGE)
    finally:
        await household_db.close()
        await referral_db.close()
    admin = tokens.admin()
    posyandu = await registry.post("/api/v1/posyandu", headers=admin, json={
        "code": "FUZZ-REGISTRY", "name": "Posyandu Fuzz", "village_code": REGISTRY_VILLAGE})
    assert posyandu.status_code == 201, posyandu.text
    posyandu_id = posyandu.json()["id"]
    cadre = await registry.post(f"/api/v1/posyandu/{posyandu_id}/cadres", headers=admin, json={
        "name": "Kader Fuzz", "duties": ["sosial"]})
    assert cadre.status_code == 201, cadre.text
    agency = await registry.post("/api/v1/agencies", headers=admin, json={
        "name": "Dinas Fuzz", "level": "regency", "jurisdiction_code": "3101", "spm_fields": ["pendidikan"]})
    assert agency.status_code == 201, agency.text
    return FuzzWorld(site=site, posyandu_id=posyandu_id, cadre_id=cadre.json()["id"], agency_id=agency.json()["id"])
