"""A duplicate KK number or NIK is a 409 that names the holder only to a caller who may read the holder's
household: to anyone else it is a bare "already registered" (no existence oracle for ids or details)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from typing import Any

import asyncpg
import httpx

from services.household.tests.factories import household_body, kk_number, known_posyandu, member, register
from tests.support import tokens
from tests.support.waiting import eventually


def assert_bare_conflict(response: httpx.Response, *secrets: str) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert "existing_household_id" not in body and "existing_member_id" not in body
    for secret in secrets:
        assert secret not in response.text


async def test_a_conflict_outside_the_callers_posyandu_names_nothing(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    theirs, mine = await known_posyandu(registry, household_db), await known_posyandu(registry, household_db)
    holder = await register(household, theirs)
    holder_member = holder["members"][0]
    secrets = (holder["id"], holder_member["id"], theirs)
    kader = tokens.kader([mine])

    same_kk = await household.post("/api/v1/households", json=household_body(mine, kk_number=holder["kk_number"]),
                                   headers=kader)
    assert_bare_conflict(same_kk, *secrets)
    assert same_kk.json()["errors"] == [{"field": "kk_number", "message": "already registered"}]
    twin = member("Ahmad Fauzi", "male", date.fromisoformat(holder_member["birth_date"]), "head",
                  nik=holder_member["nik"])
    same_nik = await household.post("/api/v1/households", json=household_body(mine, members=[twin]), headers=kader)
    assert_bare_conflict(same_nik, *secrets)
    assert same_nik.json()["errors"] == [{"field": "members.0.nik", "message": "already registered"}]

    own = await register(household, mine)
    url = f"/api/v1/households/{own['id']}"
    assert_bare_conflict(await household.post(f"{url}/members", json=twin, headers=kader), *secrets)
    assert_bare_conflict(await household.patch(url, json={"kk_number": holder["kk_number"]}, headers=kader), *secrets)
    head = own["members"][0]
    changed = await household.patch(f"{url}/members/{head['id']}", headers=kader, json={
        "nik": holder_member["nik"], "birth_date": holder_member["birth_date"], "sex": holder_member["sex"]})
    assert_bare_conflict(changed, *secrets)

    # The import's per-row errors say as little, on the row that holds the taken number.
    rows = [{**household_body(mine, kk_number=kk_number()), "members": None, **twin},
            {**household_body(mine, kk_number=holder["kk_number"]), "members": None,
             **member("Sari", "female", date(1990, 1, 1), "head")}]
    body = "\n".join(json.dumps({k: v for k, v in r.items() if v is not None}) for r in rows).encode()
    report = await household.post("/api/v1/households/import", content=body,
                                  headers={**kader, "Content-Type": "application/x-ndjson"})
    assert report.status_code == 200, report.text
    assert [(e["row"], e["field"]) for e in report.json()["errors"]] == [(1, "nik"), (2, "kk_number")]
    for secret in secrets:
        assert secret not in report.text


async def test_a_caller_who_may_read_the_holder_is_told_which_it_is(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    posyandu = await known_posyandu(registry, household_db)
    holder = await register(household, posyandu)
    for headers in (tokens.kader([posyandu]), tokens.admin()):
        again = await household.post("/api/v1/households", json=household_body(posyandu,
                                     kk_number=holder["kk_number"]), headers=headers)
        assert again.status_code == 409 and again.json()["existing_household_id"] == holder["id"]


async def test_a_registration_racing_another_is_a_409_not_a_500(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection,
        household_settings: Any) -> None:
    """Another transaction holds the KK number, uncommitted, when this request inserts: the unique index makes the
    request wait for it, then refuses it, and the 409 names the rival's household (the kader may read it)."""
    posyandu = await known_posyandu(registry, household_db)
    body = household_body(posyandu)
    rival_id = uuid.uuid4()
    rival = await asyncpg.connect(household_settings.database_url)
    try:
        transaction = rival.transaction()
        await transaction.start()
        await rival.execute(
            "INSERT INTO households (id, kk_number, village_code, posyandu_id, status, needs_reassignment, version, "
            "created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, 'active', false, 1, 'rival', now(), now())",
            rival_id, body["kk_number"], body["village_code"], uuid.UUID(posyandu))
        # The request inserts (the rival's row is not committed) and waits on the unique index.
        request = asyncio.create_task(household.post("/api/v1/households", json=body,
                                                     headers=tokens.kader([posyandu])))

        async def waits_on_the_rival() -> bool:
            assert not request.done(), "the request never waited on the rival"
            return bool(await household_db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%INSERT INTO households%'"))

        await eventually(waits_on_the_rival, "the request to wait on the rival's row", timeout=30)
        await transaction.commit()
        response = await request
    finally:
        await rival.close()
    assert response.status_code == 409, response.text
    assert response.json()["existing_household_id"] == str(rival_id)
    assert response.json()["errors"] == [{"field": "kk_number",
                                          "message": f"already registered to household {rival_id}"}]
