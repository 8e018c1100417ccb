"""Households and members through the API: validation, access scoping, masking, audit, needs, events."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date

import asyncpg
import httpx
import sqlalchemy as sa

from conftest import Stack
from services.household.tests.factories import (
    household_body,
    kk_number,
    known_posyandu,
    member,
    nik,
    register,
)
from tests.support import tokens
from tests.support.kafka import events_about, read_topic

TOPIC = "posyandu.household.v1"


async def test_kader_registers_a_household_and_sees_full_identifiers(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    posyandu = await known_posyandu(registry, household_db)
    body = household_body(posyandu)
    response = await household.post("/api/v1/households", json=body, headers=tokens.kader([posyandu]))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["kk_number"] == body["kk_number"]
    assert [m["nik"] for m in created["members"]] == [m["nik"] for m in body["members"]]
    assert {m["life_cycle_group"] for m in created["members"]} == {"adult"}
    assert response.headers["etag"] == '"1"'


async def test_registration_costs_the_same_statements_for_eight_members_as_for_two(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    """Members, their NIK checks, duplicate candidates and events are written in batches, not one by one."""
    posyandu = await known_posyandu(registry, household_db)
    statements: list[str] = []
    # The test transport runs the request in this task; the relay and the consumers run in tasks of their own and
    # may read the outbox or write households meanwhile.
    request_task = asyncio.current_task()

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if asyncio.current_task() is not request_task:
            return
        if any(table in statement for table in ("households", "members", "outbox", "duplicate_flags", "needs")):
            statements.append(statement)

    async def statements_for(members: int) -> int:
        statements.clear()
        body = household_body(posyandu, members=[
            member(f"Anggota {i}", "female", date(1990, 1, 1 + i), "head" if i == 0 else "child")
            for i in range(members)])
        response = await household.post("/api/v1/households", json=body, headers=tokens.kader([posyandu]))
        assert response.status_code == 201, response.text
        return len(statements)

    sa.event.listen(sa.Engine, "before_cursor_execute", count)
    try:
        two, eight = await statements_for(2), await statements_for(8)
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", count)
    assert two > 0
    assert eight == two, statements


async def test_other_roles_see_masked_nik_and_other_posyandu_gets_404(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    own, other = await known_posyandu(registry, household_db), await known_posyandu(registry, household_db)
    created = await register(household, own)
    url = f"/api/v1/households/{created['id']}"
    assert (await household.get(url, headers=tokens.kader([other]))).status_code == 404
    assert (await household.get(url, headers=tokens.pembina("6472"))).status_code == 404
    assert (await household.get(url, headers=tokens.opd(uuid.uuid4(), ["kesehatan"]))).status_code == 404
    for headers in (tokens.pembina("3171"), tokens.admin()):
        seen = (await household.get(url, headers=headers)).json()
        full = created["members"][0]["nik"]
        assert seen["members"][0]["nik"] == f"{full[:6]}******{full[-4:]}"
        assert seen["members"][0]["nik_masked"] is True
        assert seen["kk_number"].count("*") == 6
    audit = await household_db.fetch("SELECT actor_role, purpose FROM audit_log WHERE subject_ref = $1 ORDER BY id",
                                     created["id"])
    assert [a["actor_role"] for a in audit] == ["kader", "pembina", "admin"]
    log = await household.get(f"{url}/access-log", headers=tokens.kader([own]))
    assert [e["actor_role"] for e in log.json()["items"]][:3] == ["admin", "pembina", "kader"]


async def test_nik_must_agree_with_the_member(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                              household_db: asyncpg.Connection) -> None:
    posyandu = await known_posyandu(registry, household_db)
    before = await household_db.fetchval("SELECT count(*) FROM households")
    wrong_date = member("Budi", "male", date(1990, 1, 5), "head", nik=nik(date(1990, 1, 6), "male"))
    wrong_sex = member("Budi", "male", date(1990, 1, 5), "head", nik=nik(date(1990, 1, 5), "female"))
    for bad in (wrong_date, wrong_sex):
        response = await household.post("/api/v1/households", json=household_body(posyandu, members=[bad]),
                                        headers=tokens.kader([posyandu]))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
    bad_kk = await household.post("/api/v1/households", json=household_body(posyandu, kk_number="3171013213190001"),
                                  headers=tokens.kader([posyandu]))
    assert bad_kk.status_code == 422 and bad_kk.json()["errors"][0]["field"] == "kk_number"
    unknown_village = await household.post("/api/v1/households", json=household_body(posyandu,
                                           village_code="3171019999"), headers=tokens.kader([posyandu]))
    assert unknown_village.status_code == 422
    assert await household_db.fetchval("SELECT count(*) FROM households") == before


async def test_a_nik_and_a_live_kk_belong_to_one_record(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                        household_db: asyncpg.Connection) -> None:
    posyandu = await known_posyandu(registry, household_db)
    first = await register(household, posyandu)
    again = household_body(posyandu, members=[{**household_body(posyandu)["members"][0],
                                               "nik": first["members"][0]["nik"], "name": "Ahmad Fauzi",
                                               "birth_date": "1985-03-12"}])
    duplicate_nik = await household.post("/api/v1/households", json=again, headers=tokens.kader([posyandu]))
    assert duplicate_nik.status_code == 409
    assert duplicate_nik.json()["existing_member_id"] == first["members"][0]["id"]
    duplicate_kk = await household.post("/api/v1/households", json=household_body(posyandu,
                                        kk_number=first["kk_number"]), headers=tokens.kader([posyandu]))
    assert duplicate_kk.status_code == 409 and duplicate_kk.json()["existing_household_id"] == first["id"]


async def test_a_new_kk_number_keeps_the_household(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                   household_db: asyncpg.Connection) -> None:
    posyandu = await known_posyandu(registry, household_db)
    created = await register(household, posyandu)
    new_kk = kk_number(date(2024, 2, 1))
    response = await household.patch(f"/api/v1/households/{created['id']}", json={"kk_number": new_kk},
                                     headers={**tokens.kader([posyandu]), "If-Match": '"1"'})
    assert response.status_code == 200 and response.json()["kk_number"] == new_kk
    assert response.json()["id"] == created["id"]
    history = await household_db.fetch("SELECT kk_number, valid_to FROM kk_number_history WHERE household_id = $1 "
                                       "ORDER BY id", uuid.UUID(created["id"]))
    assert [h["kk_number"] for h in history] == [created["kk_number"], new_kk]
    assert history[0]["valid_to"] is not None and history[1]["valid_to"] is None
    stale = await household.patch(f"/api/v1/households/{created['id']}", json={"rt": "001"},
                                  headers={**tokens.kader([posyandu]), "If-Match": '"1"'})
    assert stale.status_code == 412


async def test_profile_versions_and_needs_detected_once_then_resolved(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection,
        stack: Stack) -> None:
    posyandu = await known_posyandu(registry, household_db)
    created = await register(household, posyandu)
    url = f"/api/v1/households/{created['id']}/profiles/pekerjaan-umum"
    kader = tokens.kader([posyandu])
    for _ in range(2):  # the same condition twice: detected once
        response = await household.put(url, json={"household": {"toilet": "none"}}, headers=kader)
        assert response.status_code == 201, response.text
    needs = (await household.get(f"/api/v1/households/{created['id']}/needs", headers=kader)).json()
    assert [(n["category"], n["urgency"], n["member_id"]) for n in needs] == [
        ("pekerjaan-umum.sanitation", "high", None)]
    await household.put(url, json={"household": {"toilet": "private-with-septic"}}, headers=kader)
    assert (await household.get(f"/api/v1/households/{created['id']}/needs", headers=kader)).json() == []
    history = (await household.get(f"{url}/history", headers=kader)).json()
    assert [v["version"] for v in history] == [3, 2, 1]
    assert history[0]["profile"] == {"household": {"toilet": "private-with-septic"}}

    received = await read_topic(stack.broker.bootstrap_servers, TOPIC, timeout=30, until=lambda rs: any(
        e.type.endswith("need-resolved.v1") for e in events_about(rs, created["id"])))
    types = [e.type for e in events_about(received, created["id"])]
    assert types.count("posyandu.household.need-detected.v1") == 1
    assert types.count("posyandu.household.need-resolved.v1") == 1
    assert types.count("posyandu.profile.updated.v1") == 3
    assert types[:3] == ["posyandu.household.registered.v1", "posyandu.member.added.v1", "posyandu.member.added.v1"]
    for record in received:
        if record.event and record.event.subject == created["id"]:
            raw = record.record.value.decode()
            assert all(m["nik"] not in raw for m in created["members"])  # never a full NIK on the bus
    added = [e for e in events_about(received, created["id"]) if e.type == "posyandu.member.added.v1"]
    assert added[0].data["nik_masked"].count("*") == 6


async def test_member_level_need_for_a_child_out_of_school(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                           household_db: asyncpg.Connection) -> None:
    posyandu = await known_posyandu(registry, household_db)
    today = date.today()
    child = member("Rina", "female", date(today.year - 10, 1, 15), "child")
    created = await register(household, posyandu, members=[member("Joko", "male", date(1980, 2, 2), "head"), child])
    rina = next(m for m in created["members"] if m["name"] == "Rina")
    kader = tokens.kader([posyandu])
    response = await household.put(f"/api/v1/households/{created['id']}/profiles/pendidikan",
                                   json={"members": {rina["id"]: {"enrolled": False}}}, headers=kader)
    assert response.status_code == 201, response.text
    needs = (await household.get(f"/api/v1/households/{created['id']}/needs", headers=kader)).json()
    assert [(n["category"], n["member_id"]) for n in needs] == [("pendidikan.ats", rina["id"])]
    stranger = await household.put(f"/api/v1/households/{created['id']}/profiles/pendidikan",
                                   json={"members": {str(uuid.uuid4()): {"enrolled": True}}}, headers=kader)
    assert stranger.status_code == 422
    bad_enum = await household.put(f"/api/v1/households/{created['id']}/profiles/pekerjaan-umum",
                                   json={"household": {"toilet": "golden"}}, headers=kader)
    assert bad_enum.status_code == 422 and bad_enum.json()["errors"][0]["field"] == "household.toilet"


async def test_move_hands_the_household_to_the_new_posyandu(registry: httpx.AsyncClient,
                                                           household: httpx.AsyncClient,
                                                           household_db: asyncpg.Connection) -> None:
    old, new = await known_posyandu(registry, household_db), await known_posyandu(registry, household_db)
    created = await register(household, old)
    moved = await household.post(f"/api/v1/households/{created['id']}/move", json={"posyandu_id": new},
                                 headers=tokens.kader([old]))
    assert moved.status_code == 200 and moved.json()["posyandu_id"] == new
    assert (await household.get(f"/api/v1/households/{created['id']}", headers=tokens.kader([old]))).status_code == 404
    assert (await household.get(f"/api/v1/households/{created['id']}", headers=tokens.kader([new]))).status_code == 200
    found = (await household.get("/api/v1/households", params={"nik": created["members"][0]["nik"]},
                                 headers=tokens.kader([new]))).json()
    assert [h["id"] for h in found["items"]] == [created["id"]]
    assert (await household.get("/api/v1/households", params={"nik": created["members"][0]["nik"]},
                                headers=tokens.kader([old]))).json()["items"] == []


async def test_kader_cannot_register_at_another_posyandu(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                         household_db: asyncpg.Connection) -> None:
    posyandu = await known_posyandu(registry, household_db)
    response = await household.post("/api/v1/households", json=household_body(posyandu),
                                    headers=tokens.kader([uuid.uuid4()]))
    assert response.status_code == 403
    assert json.loads(response.text)["status"] == 403
