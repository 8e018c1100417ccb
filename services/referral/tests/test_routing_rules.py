"""Routing by category: rules by field, category and region, most specific first, within the one `coverage` rule
that routing, reassignment and escalation share.

Kabupaten Lebak (3602) in Banten (36) is this module's own: no other test registers agencies there.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.referral.routing.service import province_agency, responsible_agency, unmet_coverage
from services.referral.tests.factories import create_referral, known_agency, known_household, known_posyandu
from tests.support import tokens
from tests.support.waiting import eventually

LEBAK_DESA = "3602012002"  # Cilangkahan, Kabupaten Lebak, Banten
RULES = "/api/v1/routing-rules"
P, T = "pendidikan", "trantibumlinmas"


@dataclass
class Lebak:
    """The agencies of Lebak and Banten (registered in this order) and a household of a Lebak posyandu."""

    disdik_lebak: str
    disdik_banten: str
    satpol_pp: str
    damkar: str
    bpbd: str
    household: dict[str, Any]


_lebak: list[Lebak] = []


@pytest.fixture
async def lebak(registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection,
                referral_db: asyncpg.Connection) -> Lebak:
    if not _lebak:
        disdik_lebak, disdik_banten, satpol_pp, damkar, bpbd = [
            await known_agency(registry, referral_db, code, [field])
            for code, field in (("3602", P), ("36", P), ("3602", T), ("3602", T), ("3602", T))]
        place = await known_posyandu(registry, household_db, LEBAK_DESA)
        _lebak.append(Lebak(disdik_lebak, disdik_banten, satpol_pp, damkar, bpbd,
                            household=await known_household(household, referral_db, place, LEBAK_DESA)))
    return _lebak[0]


@pytest.fixture
async def rules(referral: httpx.AsyncClient) -> AsyncIterator[Any]:
    """Create rules in a test; each is deleted after it, so the module's tests do not see each other's rules."""
    made: list[int] = []

    async def add(**body: Any) -> dict[str, Any]:
        response = await referral.post(RULES, json=body, headers=tokens.admin())
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])
        rule: dict[str, Any] = response.json()
        return rule

    yield add
    for rule_id in made:
        assert (await referral.delete(f"{RULES}/{rule_id}", headers=tokens.admin())).status_code == 204


async def _routed_to(referral: httpx.AsyncClient, lebak: Lebak, field: str, category: str) -> str:
    made = await create_referral(referral, lebak.household, spm_field=field, category=category, member=False)
    agency: str = made["agency_id"]
    return agency


async def test_category_rules_send_special_schools_to_the_province_and_fires_and_floods_to_their_agencies(
        referral: httpx.AsyncClient, lebak: Lebak, rules: Any) -> None:
    # Without rules, today's rule: the regency's agency first, the earliest registered among equals.
    assert await _routed_to(referral, lebak, P, "pendidikan.special-needs") == lebak.disdik_lebak
    assert await _routed_to(referral, lebak, T, "trantibumlinmas.fire-hazard") == lebak.satpol_pp

    await rules(spm_field=P, category="pendidikan.special-needs", region_prefix="36", agency_level="province")
    await rules(spm_field=T, category="trantibumlinmas.fire-hazard", region_prefix="36", agency_id=lebak.damkar)
    await rules(spm_field=T, category="trantibumlinmas.displaced", region_prefix="3602", agency_id=lebak.bpbd)
    await rules(spm_field=T, category="trantibumlinmas.preparedness", region_prefix="3602", agency_id=lebak.bpbd)

    assert await _routed_to(referral, lebak, P, "pendidikan.special-needs") == lebak.disdik_banten  # SLB: province
    assert await _routed_to(referral, lebak, P, "pendidikan.ats") == lebak.disdik_lebak  # no rule: as before
    assert await _routed_to(referral, lebak, T, "trantibumlinmas.fire-hazard") == lebak.damkar
    assert await _routed_to(referral, lebak, T, "trantibumlinmas.displaced") == lebak.bpbd  # flood victims
    assert await _routed_to(referral, lebak, T, "trantibumlinmas.preparedness") == lebak.bpbd
    assert await _routed_to(referral, lebak, T, "trantibumlinmas.public-order") == lebak.satpol_pp


async def test_the_most_specific_rule_with_an_active_covering_agency_wins(
        registry: httpx.AsyncClient, referral: httpx.AsyncClient, referral_db: asyncpg.Connection, lebak: Lebak,
        rules: Any) -> None:
    order = "trantibumlinmas.public-order"
    await rules(spm_field=T, region_prefix="36", agency_id=lebak.bpbd)  # the whole field in Banten
    assert await _routed_to(referral, lebak, T, order) == lebak.bpbd
    await rules(spm_field=T, category=order, region_prefix="36", agency_level="regency")  # the category beats it
    assert await _routed_to(referral, lebak, T, order) == lebak.satpol_pp
    assert await _routed_to(referral, lebak, T, "trantibumlinmas.fire-hazard") == lebak.bpbd
    standby = await known_agency(registry, referral_db, "3602", [T])
    await rules(spm_field=T, category=order, region_prefix=LEBAK_DESA, agency_id=standby)  # the longer region
    assert await _routed_to(referral, lebak, T, order) == standby

    # Deactivated, the standby agency is passed over: the next rule decides.
    assert (await registry.post(f"/api/v1/agencies/{standby}/deactivate", headers=tokens.admin())).status_code == 200

    async def inactive() -> bool:
        return await referral_db.fetchval("SELECT status FROM known_agencies WHERE id = $1",
                                          uuid.UUID(standby)) == "inactive"

    await eventually(inactive, "the referral service to learn the deactivation")
    assert await _routed_to(referral, lebak, T, order) == lebak.satpol_pp


async def test_a_rule_only_chooses_among_the_agencies_coverage_admits_as_reassignment_and_escalation_do(
        registry: httpx.AsyncClient, referral: httpx.AsyncClient, referral_db: asyncpg.Connection,
        referral_session: AsyncSession, lebak: Lebak, rules: Any) -> None:
    # A rule for the province level where the field has no province agency routes by today's rule instead.
    await rules(spm_field=T, category="trantibumlinmas.fire-hazard", region_prefix="3602", agency_level="province")
    assert await _routed_to(referral, lebak, T, "trantibumlinmas.fire-hazard") == lebak.satpol_pp

    # A rule sent the SLB referral to the province; reassignment back to the regency office is the router's
    # coverage too (allowed), and to an agency outside it is refused with the condition it fails.
    await rules(spm_field=P, category="pendidikan.special-needs", region_prefix="3602", agency_level="province")
    made = await create_referral(referral, lebak.household, spm_field=P, category="pendidikan.special-needs",
                                 member=False)
    assert made["agency_id"] == lebak.disdik_banten
    elsewhere = await known_agency(registry, referral_db, "3101", [P])
    province = tokens.opd(lebak.disdik_banten, [P])
    refused = await referral.post(f"/api/v1/referrals/{made['id']}/reassign", headers=province,
                                  json={"agency_id": elsewhere, "reason": "Salah wilayah"})
    assert refused.status_code == 422 and "jurisdiction" in refused.json()["detail"]
    moved = await referral.post(f"/api/v1/referrals/{made['id']}/reassign", headers=province,
                                json={"agency_id": lebak.disdik_lebak, "reason": "Ditangani kabupaten"})
    assert moved.status_code == 200 and moved.json()["agency_id"] == lebak.disdik_lebak, moved.text

    # One coverage definition: the router, the escalation target and reassignment agree on every agency.
    session = referral_session
    escalation = await province_agency(session, spm_field=P, village_code=LEBAK_DESA)
    assert escalation is not None and str(escalation.id) == lebak.disdik_banten
    routed = await responsible_agency(session, spm_field=P, village_code=LEBAK_DESA,
                                      category="pendidikan.special-needs")
    assert routed is not None and str(routed.id) == lebak.disdik_banten
    for agency in (lebak.disdik_lebak, lebak.disdik_banten):
        assert await unmet_coverage(session, uuid.UUID(agency), spm_field=P, village_code=LEBAK_DESA) == []
    assert await unmet_coverage(session, uuid.UUID(elsewhere), spm_field=P, village_code=LEBAK_DESA) == ["jurisdiction"]


@pytest.mark.parametrize(("body", "field"), [
    ({"spm_field": P, "category": "pendidikan.madrasah", "agency_level": "regency"}, "body"),  # no such category
    ({"spm_field": P, "category": "kesehatan.stunting", "agency_level": "regency"}, "body"),  # of another field
    ({"spm_field": P, "agency_level": "regency", "agency_id": str(uuid.uuid4())}, "body"),  # two targets
    ({"spm_field": P}, "body"),  # no target
    ({"spm_field": P, "region_prefix": "36x", "agency_level": "regency"}, "body.region_prefix"),
    ({"spm_field": P, "agency_level": "village"}, "body.agency_level"),
    ({"spm_field": "agama", "agency_level": "regency"}, "body.spm_field"),
])
async def test_bad_rules_are_422_problems(referral: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    response = await referral.post(RULES, json=body, headers=tokens.admin())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert any(e["field"].startswith(field) for e in response.json()["errors"]), response.json()


async def test_a_rule_naming_an_agency_that_could_never_take_its_referrals_is_refused(
        referral: httpx.AsyncClient, lebak: Lebak) -> None:
    for body, why in (({"spm_field": P, "agency_id": lebak.damkar}, "does not serve"),
                      ({"spm_field": T, "region_prefix": "3101", "agency_id": lebak.damkar}, "does not meet"),
                      ({"spm_field": T, "agency_id": str(uuid.uuid4())}, "no agency")):
        response = await referral.post(RULES, json=body, headers=tokens.admin())
        assert response.status_code == 422 and why in response.json()["detail"], response.text


async def test_rules_are_admin_only_honour_if_match_and_idempotency_and_are_audited(
        referral: httpx.AsyncClient, referral_db: asyncpg.Connection, lebak: Lebak) -> None:
    body = {"spm_field": T, "category": "trantibumlinmas.displaced", "region_prefix": "360201",
            "agency_id": lebak.bpbd}
    for headers in (tokens.kader([uuid.uuid4()]), tokens.opd(lebak.bpbd, [T]), tokens.pembina("36")):
        assert (await referral.post(RULES, json=body, headers=headers)).status_code == 403
        assert (await referral.get(RULES, headers=headers)).status_code == 403
    key = {**tokens.admin(), "Idempotency-Key": f"rule-{uuid.uuid4()}"}
    first = await referral.post(RULES, json=body, headers=key)
    assert first.status_code == 201 and first.headers["ETag"] == '"1"', first.text
    assert (await referral.post(RULES, json=body, headers=key)).json()["id"] == first.json()["id"]
    assert (await referral.post(RULES, json=body, headers=tokens.admin())).status_code == 409  # same scope
    url = f"{RULES}/{first.json()['id']}"
    changed = {**body, "agency_id": None, "agency_level": "regency"}
    assert (await referral.put(url, json=changed, headers={**tokens.admin(), "If-Match": '"7"'})).status_code == 412
    updated = await referral.put(url, json=changed, headers={**tokens.admin(), "If-Match": '"1"'})
    assert updated.status_code == 200 and updated.headers["ETag"] == '"2"'
    assert updated.json()["agency_level"] == "regency" and updated.json()["agency_id"] is None
    listed = (await referral.get(RULES, params={"field": T}, headers=tokens.admin())).json()["items"]
    assert first.json()["id"] in [r["id"] for r in listed]
    assert (await referral.delete(url, headers={**tokens.admin(), "If-Match": '"1"'})).status_code == 412
    assert (await referral.delete(url, headers={**tokens.admin(), "If-Match": '"2"'})).status_code == 204
    audit = await referral_db.fetch("SELECT action, fields FROM audit_log WHERE resource_type = 'routing.rule' "
                                    "AND resource_id = $1 ORDER BY id", str(first.json()["id"]))
    assert [a["action"] for a in audit] == ["create", "update", "delete"]
    assert audit[1]["fields"] == '["agency_id", "agency_level"]'
