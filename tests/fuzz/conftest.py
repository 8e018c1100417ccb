"""The fuzzing suite's own objects, in Kepulauan Seribu (3101), a regency no other test uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from services.household.settings import HouseholdSettings
from services.referral.settings import ReferralSettings
from tests.support import tokens
from tests.support.reporting import (  # noqa: F401  (the reporting app on its own broker, as its tests run it)
    reporting,
    reporting_app,
    reporting_broker,
    reporting_settings,
)
from tests.support.world import Site, build_site, open_session_at

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
    #: An open session (today) at the site's posyandu.
    session_id: str = ""


@pytest.fixture(scope="session")
async def fuzz_world(registry: httpx.AsyncClient, household: httpx.AsyncClient, referral: httpx.AsyncClient,
                     household_settings: HouseholdSettings, referral_settings: ReferralSettings) -> FuzzWorld:
    household_db = await asyncpg.connect(household_settings.database_url)
    referral_db = await asyncpg.connect(referral_settings.database_url)
    try:
        site = await build_site(registry=registry, household=household, referral=referral,
                                household_db=household_db, referral_db=referral_db, village_code=FUZZ_VILLAGE)
        session_id = await open_session_at(registry, household, household_db, site)
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
    return FuzzWorld(site=site, posyandu_id=posyandu_id, cadre_id=cadre.json()["id"], agency_id=agency.json()["id"],
                     session_id=session_id)


#: The referral service's configuration tables, children after parents: fuzzed admin writes to them (a routing
#: rule for a whole field, an escalation delay, a holiday calendar) would steer every later test's referrals.
_CONFIGURATION = ("routing_rules", "sla_overrides", "sla_escalation_delays", "holiday_calendars", "holidays")


@pytest.fixture(autouse=True)
async def _referral_configuration_restored(request: pytest.FixtureRequest,
                                           referral_settings: ReferralSettings) -> AsyncIterator[None]:
    """Put the referral configuration back as it was after fuzzing one of its operations."""
    label = getattr(request.node, "callspec", None) and request.node.callspec.params.get("label", "")
    if not (label and ("/api/v1/sla/" in label or "/api/v1/routing-rules" in label)):
        yield
        return
    conn = await asyncpg.connect(referral_settings.database_url)
    try:
        saved = {table: await conn.fetch(f"SELECT * FROM {table}") for table in _CONFIGURATION}
        yield
        async with conn.transaction():
            for table in reversed(_CONFIGURATION):
                await conn.execute(f"DELETE FROM {table}")
            for table in _CONFIGURATION:
                if saved[table]:
                    await conn.copy_records_to_table(table, records=[tuple(r) for r in saved[table]],
                                                     columns=list(saved[table][0].keys()))
    finally:
        await conn.close()


@pytest.fixture(autouse=True)
async def _immunization_schedule_restored(request: pytest.FixtureRequest,
                                          household_settings: HouseholdSettings) -> AsyncIterator[None]:
    """Drop the national schedule versions a fuzzed admin POST added: a generated version in force from some
    future day would change every later status computed for that day."""
    label = getattr(request.node, "callspec", None) and request.node.callspec.params.get("label", "")
    if not (label and "/api/v1/immunization/schedule" in label):
        yield
        return
    conn = await asyncpg.connect(household_settings.database_url)
    try:
        kept = [row["version"] for row in await conn.fetch("SELECT version FROM immunization_schedule_versions")]
        yield
        await conn.execute("DELETE FROM immunization_schedule_versions WHERE NOT (version = ANY($1::text[]))", kept)
    finally:
        await conn.close()
