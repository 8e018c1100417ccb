"""The household demo for `make run`: loaded through the API, needs in every SPM field, valid NIKs, idempotent."""

from __future__ import annotations

import json
import uuid
from datetime import date

import asyncpg
import httpx

from services.household import demo
from services.household.demo.generator import DemoPosyandu
from services.household.identifiers import check_nik_against_member, parse_kk, parse_nik
from shared.auth import Role, mint_token
from shared.events.topics import SpmField
from shared.settings import DEV_JWT_SECRET
from tests.support import tokens

#: One village per demo region (Dumai, Gambir, a desa in Lebak, Samarinda, Mamuju), as the registry demo uses them.
VILLAGES = ["1472011003", "3171011001", "3602012002", "6472011001", "7602011002"]
ADMIN = mint_token(DEV_JWT_SECRET, Role.ADMIN, sub="demo-loader")
HOUSEHOLDS = 40


async def register_demo_posyandu(registry: httpx.AsyncClient) -> None:
    """The registry demo's posyandu codes, in a few villages (the full registry demo would add agencies that other
    tests of the session must not see)."""
    for village in VILLAGES:
        code = f"P{village}-001"
        response = await registry.post(
            "/api/v1/posyandu", json={"code": code, "name": "Posyandu Melati Uji", "village_code": village},
            headers={"Authorization": f"Bearer {ADMIN}", "Idempotency-Key": f"demo-posyandu-{code}"})
        assert response.status_code == 201, response.text
        # The registry demo's schedule: the household demo holds its sessions on these days.
        scheduled = await registry.put(f"/api/v1/posyandu/{response.json()['id']}/schedule",
                                       json={"rule": {"ordinal": "second", "weekday": "tuesday"}},
                                       headers={"Authorization": f"Bearer {ADMIN}"})
        assert scheduled.status_code == 200, scheduled.text


def test_the_plan_is_reproducible() -> None:
    places = [DemoPosyandu(str(uuid.UUID(int=i)), f"P{v}-001", v, "Posyandu Melati Uji")
              for i, v in enumerate(VILLAGES)]
    reference = date(2026, 3, 1)
    plans = demo.plan_households(places, 60, reference)
    again = demo.plan_households(places, 60, reference)
    fewer = demo.plan_households(places, 20, reference)
    assert [p.body() for p in plans] == [p.body() for p in again]
    assert [p.body() for p in fewer] == [p.body() for p in plans[:20]]
    assert {p.scenario for p in plans} - {None} == set(demo.SCENARIOS)
    assert len({m.nik for p in plans for m in p.members if m.nik}) == sum(1 for p in plans for m in p.members if m.nik)


async def test_the_demo_loads_needs_in_every_field_and_replays(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    await register_demo_posyandu(registry)
    reference = date.today()
    summary = await demo.load(household, registry, admin_token=ADMIN, households=HOUSEHOLDS,
                              reference_date=reference, wait_seconds=60)

    assert (summary.households, summary.created, summary.replayed, summary.conflicts) == (HOUSEHOLDS, HOUSEHOLDS, 0, 0)
    assert summary.profiles_written == HOUSEHOLDS * len(SpmField)
    assert {field for field, n in summary.needs.items() if n > 0} == {f.value for f in SpmField}, summary.needs
    # Realistic: many households have no open need, and the average stays small.
    assert summary.households_without_needs >= HOUSEHOLDS // 10
    assert sum(summary.needs.values()) < 4 * HOUSEHOLDS
    if summary.measurements_skipped is None:
        assert summary.measurements > 0
    # The children were weighed at the posyandu's last sessions, each opened, visited and closed.
    assert summary.sessions == len(VILLAGES) * 3 and summary.visits > summary.measurements
    sessions = await household_db.fetch(
        "SELECT s.status, s.session_date, count(v.id) AS visits, count(v.measurement_id) AS weighed FROM sessions s"
        " JOIN visits v ON v.session_id = s.id WHERE v.household_id = ANY($1::uuid[]) GROUP BY s.id",
        [uuid.UUID(h) for h in summary.household_ids])
    assert len(sessions) == summary.sessions and all(s["status"] == "closed" for s in sessions)
    assert all(s["session_date"].weekday() == 1 and 8 <= s["session_date"].day <= 14 for s in sessions)
    assert sum(s["weighed"] for s in sessions) == summary.measurements
    ids = [uuid.UUID(h) for h in summary.household_ids]

    # Members: every NIK valid and consistent with birth date and sex; a few from another district are flagged.
    rows = await household_db.fetch(
        "SELECT m.nik, m.birth_date, m.sex, m.pregnant, m.expected_delivery_date, m.nik_region_mismatch,"
        " h.village_code, h.kk_number FROM members m JOIN households h ON h.id = m.household_id"
        " WHERE h.id = ANY($1::uuid[])", ids)
    assert len(rows) == summary.members
    for row in rows:
        parse_kk(row["kk_number"])
        if row["nik"] is None:
            continue
        info = parse_nik(row["nik"])
        assert check_nik_against_member(info, birth_date=row["birth_date"], sex=row["sex"]) == [], row["nik"]
        assert row["nik_region_mismatch"] is (info.district_code != row["village_code"][:6])
    assert any(row["nik_region_mismatch"] for row in rows)
    ages = [(reference - row["birth_date"]).days / 365.25 for row in rows]
    assert any(a < 2 for a in ages) and any(6 < a < 18 for a in ages) and any(a >= 60 for a in ages)
    assert any(row["pregnant"] and row["expected_delivery_date"] > reference for row in rows)

    # Doses for the under-fives, consistent with their ages: most children complete for age, some late.
    doses = await household_db.fetch(
        "SELECT d.given_on, m.birth_date FROM immunization_doses d JOIN members m ON m.id = d.member_id"
        " WHERE d.household_id = ANY($1::uuid[])", ids)
    assert len(doses) == summary.doses > 0
    assert all(row["birth_date"] <= row["given_on"] <= reference for row in doses)
    latest_health = await household_db.fetch(
        "SELECT DISTINCT ON (household_id) data FROM profile_versions WHERE household_id = ANY($1::uuid[])"
        " AND spm_field = 'kesehatan' ORDER BY household_id, version DESC", ids)
    statuses = [section.get("immunization_status") for row in latest_health
                for section in json.loads(row["data"]).get("members", {}).values()]
    assert statuses.count("complete-for-age") > statuses.count("incomplete") > 0, statuses

    # The kader of a posyandu sees its demo households.
    posyandu_id, count = next(iter(summary.posyandu_households.items()))
    listed = await household.get("/api/v1/households", params={"posyandu": posyandu_id, "limit": 100},
                                 headers=tokens.kader([posyandu_id]))
    assert listed.status_code == 200 and len(listed.json()["items"]) == count

    # A second run replays: no new household, profile version, need or measurement.
    async def counts() -> list[int]:
        return [await household_db.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = ANY($1::uuid[])", ids)
                for table, column in (("households", "id"), ("members", "household_id"),
                                      ("profile_versions", "household_id"), ("needs", "household_id"),
                                      ("measurements", "household_id"), ("visits", "household_id"),
                                      ("immunization_doses", "household_id"))]

    households_before = await household_db.fetchval("SELECT count(*) FROM households")
    before = await counts()
    again = await demo.load(household, registry, admin_token=ADMIN, households=HOUSEHOLDS, reference_date=reference)
    assert (again.created, again.replayed, again.conflicts) == (0, HOUSEHOLDS, 0)
    assert (again.profiles_written, again.measurements, again.visits, again.sessions, again.doses) == (
        0, 0, 0, summary.sessions, 0)
    assert again.household_ids == summary.household_ids and again.needs == summary.needs
    assert await counts() == before
    assert await household_db.fetchval("SELECT count(*) FROM households") == households_before
