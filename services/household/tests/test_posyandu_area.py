"""A household's village lies in the district (kecamatan) of its posyandu's village: on registration, on a move
and in the import. A Gambir posyandu cannot register a family in Kalimantan Timur (whose referrals would then go
to Samarinda's agencies)."""

from __future__ import annotations

import json
import uuid

import asyncpg
import httpx

from services.household.tests.factories import GAMBIR, household_body, known_posyandu, register
from tests.support import tokens

CIDENG = "3171011002"  # Gambir district, another kelurahan: accepted
PASAR_BARU = "3171021001"  # Sawah Besar district of the same city: refused
TENUN_SAMARINDA = "6472021010"  # Kota Samarinda, Kalimantan Timur: refused


def problem_fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in response.json()["errors"]]


async def test_registration_is_within_the_posyandus_district(registry: httpx.AsyncClient,
                                                             household: httpx.AsyncClient,
                                                             household_db: asyncpg.Connection) -> None:
    gambir = await known_posyandu(registry, household_db, GAMBIR)
    kader = tokens.kader([gambir])
    for village in (TENUN_SAMARINDA, PASAR_BARU):
        refused = await household.post("/api/v1/households", json=household_body(gambir, village_code=village),
                                       headers=kader)
        assert problem_fields(refused) == ["village_code"], village
        assert "317101" in refused.json()["errors"][0]["message"]
    assert (await register(household, gambir, village_code=CIDENG))["village_code"] == CIDENG
    assert await household_db.fetchval("SELECT count(*) FROM households WHERE posyandu_id = $1 AND "
                                       "left(village_code, 6) <> '317101'", uuid.UUID(gambir)) == 0


async def test_a_move_keeps_the_household_within_its_new_posyandus_district(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    gambir = await known_posyandu(registry, household_db, GAMBIR)
    samarinda = await known_posyandu(registry, household_db, TENUN_SAMARINDA)
    created = await register(household, gambir)
    url = f"/api/v1/households/{created['id']}/move"
    admin = tokens.admin()
    assert problem_fields(await household.post(url, json={"posyandu_id": samarinda}, headers=admin)) == [
        "posyandu_id"]
    assert problem_fields(await household.post(url, json={"posyandu_id": samarinda, "village_code": GAMBIR},
                                               headers=admin)) == ["village_code"]
    assert problem_fields(await household.post(url, json={"posyandu_id": gambir, "village_code": PASAR_BARU},
                                               headers=admin)) == ["village_code"]
    moved = await household.post(url, json={"posyandu_id": samarinda, "village_code": TENUN_SAMARINDA},
                                 headers=admin)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["posyandu_id"], moved.json()["village_code"]) == (samarinda, TENUN_SAMARINDA)


async def test_the_import_refuses_a_household_outside_the_posyandus_district(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    gambir = await known_posyandu(registry, household_db, GAMBIR)
    outside, inside = household_body(gambir, village_code=TENUN_SAMARINDA), household_body(gambir)
    rows = [{**{k: v for k, v in h.items() if k != "members"}, **h["members"][0]} for h in (outside, inside)]
    response = await household.post("/api/v1/households/import", content="\n".join(map(json.dumps, rows)).encode(),
                                    headers={**tokens.kader([gambir]), "Content-Type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["households_imported"], report["households_rejected"]) == (1, 1)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(1, "village_code")]
