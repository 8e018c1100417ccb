"""Uniqueness under a race: two creates of one unique value at once are one success and one 409, never a 500, and
store one row and one event (`shared/conflicts.py`, the idempotency keys, the region upsert)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx

from services.registry.tests.riau import KAMPAR_DESA, posyandu_body, programme_body, riau, riau_agency
from tests.support import tokens


async def test_two_concurrent_registrations_of_one_code_are_one_201_and_one_409(
        registry: httpx.AsyncClient, registry_db: asyncpg.Connection) -> None:
    await riau(registry)
    first = posyandu_body(KAMPAR_DESA)
    second = {**first, "name": "Posyandu Kembar"}
    responses = await asyncio.gather(*(
        registry.post("/api/v1/posyandu", json=body, headers={**tokens.admin(), "Idempotency-Key": str(uuid.uuid4())})
        for body in (first, second)))
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    lost = next(r for r in responses if r.status_code == 409)
    assert lost.headers["content-type"] == "application/problem+json"
    assert first["code"] in lost.json()["detail"]
    won = next(r for r in responses if r.status_code == 201).json()
    assert await registry_db.fetchval("SELECT count(*) FROM posyandu WHERE code = $1", first["code"]) == 1
    assert await registry_db.fetchval("SELECT count(*) FROM outbox WHERE event_type = $1 AND key = $2",
                                      "posyandu.posyandu.registered.v1", won["id"]) == 1
    # The loser's Idempotency-Key was released with its transaction: a retry with it is a plain 409 again.
    retried = await registry.post("/api/v1/posyandu", json=first, headers=tokens.admin())
    assert retried.status_code == 409


async def test_two_concurrent_creates_with_one_idempotency_key_are_one_programme(
        registry: httpx.AsyncClient, registry_db: asyncpg.Connection) -> None:
    agency = await riau_agency(registry)
    headers = {**tokens.opd(agency["id"], ["kesehatan"]), "Idempotency-Key": f"race-{uuid.uuid4()}"}
    body = programme_body()
    other = {**body, "name": f"{body['name']} lain"}
    same = await asyncio.gather(*(registry.post("/api/v1/programmes", json=body, headers=headers) for _ in range(2)))
    assert [r.status_code for r in same] == [201, 201], [r.text for r in same]
    assert same[0].json()["id"] == same[1].json()["id"]
    assert sorted(r.headers.get("idempotent-replayed", "") for r in same) == ["", "true"]

    headers = {**headers, "Idempotency-Key": f"race-{uuid.uuid4()}"}
    racing = await asyncio.gather(*(registry.post("/api/v1/programmes", json=b, headers=headers)
                                    for b in (body, other)))
    assert sorted(r.status_code for r in racing) == [201, 409], [r.text for r in racing]
    assert next(r for r in racing if r.status_code == 409).headers["content-type"] == "application/problem+json"
    assert await registry_db.fetchval("SELECT count(*) FROM programmes WHERE agency_id = $1",
                                      uuid.UUID(agency["id"])) == 2


async def test_two_concurrent_imports_of_new_regions_register_each_once(
        registry: httpx.AsyncClient, registry_db: asyncpg.Connection) -> None:
    await riau(registry)
    codes = sorted({f"14.01.01.{n}" for n in (5000 + uuid.uuid4().int % 4000 for _ in range(3))})
    listed = "kode,nama\n14,Riau\n14.01,Kabupaten Kampar\n14.01.01,Uji Kampar\n" + "".join(
        f"{code},Desa Baru {i}\n" for i, code in enumerate(codes))
    responses = await asyncio.gather(*(
        registry.post("/api/v1/regions/import", content=listed, headers={**tokens.admin(), "Content-Type": "text/csv"})
        for _ in range(2)))
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert sorted(r.json()["registered"] for r in responses) == [0, len(codes)]
    for code in codes:
        plain = code.replace(".", "")
        assert await registry_db.fetchval("SELECT count(*) FROM outbox WHERE event_type = $1 AND key = $2",
                                          "posyandu.region.registered.v1", plain) == 1
