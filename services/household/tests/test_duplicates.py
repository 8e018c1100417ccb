"""Likely duplicate members (no NIK, same name, birth date and village): flagged, then merged or dismissed."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import httpx

from conftest import Stack
from services.household.tests.factories import known_posyandu, member, register
from tests.support import tokens
from tests.support.kafka import events_about, read_topic


async def test_a_likely_duplicate_is_flagged_and_merged(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                        household_db: asyncpg.Connection, stack: Stack) -> None:
    posyandu = await known_posyandu(registry, household_db)
    kader = tokens.kader([posyandu])
    birth = date.today() - timedelta(days=400)
    first = await register(household, posyandu, members=[
        member("Sari Wulandari", "female", date(1995, 6, 1), "head"),
        member("Putri Ayu", "female", birth, "child", with_nik=False)])
    child = next(m for m in first["members"] if m["name"] == "Putri Ayu")
    await household.post(f"/api/v1/households/{first['id']}/members/{child['id']}/measurements",
                         json={"measured_on": date.today().isoformat(), "weight_kg": 9.1}, headers=kader)
    # The same child registered again in another household of the same village, this time with her NIK.
    second = await register(household, posyandu, members=[
        member("Yanti", "female", date(1970, 1, 1), "head"), member("putri ayu", "female", birth, "grandchild")])
    again = next(m for m in second["members"] if m["name"] == "putri ayu")

    flags = (await household.get("/api/v1/duplicates", headers=kader)).json()
    flag = next(f for f in flags if {f["member_id"], f["candidate_id"]} == {child["id"], again["id"]})
    assert (await household.get("/api/v1/duplicates", headers=tokens.kader([second["id"]]))).json() == []

    merged = await household.post(f"/api/v1/duplicates/{flag['id']}/merge", json={"survivor_id": child["id"]},
                                  headers=kader)
    assert merged.status_code == 200 and merged.json()["status"] == "merged"
    survivor = next(m for m in (await household.get(f"/api/v1/households/{first['id']}", headers=kader)).json()
                    ["members"] if m["id"] == child["id"])
    assert survivor["nik"] == again["nik"]  # the survivor keeps what only the other record knew
    remaining = (await household.get(f"/api/v1/households/{second['id']}", headers=kader)).json()["members"]
    assert [m["name"] for m in remaining] == ["Yanti"]
    history = (await household.get(f"/api/v1/households/{first['id']}/members/{child['id']}/measurements",
                                   headers=kader)).json()
    assert len(history) == 1
    assert (await household.post(f"/api/v1/duplicates/{flag['id']}/dismiss", headers=kader)).status_code == 409

    received = await read_topic(stack.broker.bootstrap_servers, "posyandu.household.v1", until=lambda rs: any(
        e.type == "posyandu.member.merged.v1" for e in events_about(rs, first["id"])))
    event = next(e for e in events_about(received, first["id"]) if e.type == "posyandu.member.merged.v1")
    assert (event.data["survivor_id"], event.data["merged_id"]) == (child["id"], again["id"])


async def test_a_flag_can_be_dismissed_and_only_members_of_it_survive(registry: httpx.AsyncClient,
                                                                     household: httpx.AsyncClient,
                                                                     household_db: asyncpg.Connection) -> None:
    posyandu = await known_posyandu(registry, household_db)
    kader = tokens.kader([posyandu])
    twin = member("Agus", "male", date(2001, 2, 3), "child", with_nik=False)
    await register(household, posyandu, members=[member("Rudi", "male", date(1975, 5, 5), "head"), twin])
    await register(household, posyandu, members=[member("Tono", "male", date(1972, 3, 3), "head"),
                                                 {**twin, "relationship": "other"}])
    flag = (await household.get("/api/v1/duplicates", headers=kader)).json()[-1]
    wrong = await household.post(f"/api/v1/duplicates/{flag['id']}/merge",
                                 json={"survivor_id": "00000000-0000-0000-0000-000000000001"}, headers=kader)
    assert wrong.status_code == 422
    dismissed = await household.post(f"/api/v1/duplicates/{flag['id']}/dismiss", headers=kader)
    assert dismissed.json()["status"] == "dismissed"
    assert flag["id"] not in {f["id"] for f in (await household.get("/api/v1/duplicates", headers=kader)).json()}
