"""Sessions: opened by the posyandu's kader only on an opening day of its schedule (learnt from the registry's
events), one per day, and closed (frozen) with its visits counted per life-cycle group."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx

from services.household.tests.opening_days import (
    bali_posyandu,
    extra_days,
    life_cycle_household,
    open_session,
    schedule,
)
from tests.support import tokens


async def _events(household_db: asyncpg.Connection, event_type: str, key: str) -> list[dict[str, Any]]:
    rows = await household_db.fetch("SELECT payload FROM outbox WHERE event_type = $1 AND key = $2 ORDER BY id",
                                    event_type, key)
    return [json.loads(r["payload"]) for r in rows]


async def test_a_session_opens_only_on_an_opening_day(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                      household_db: asyncpg.Connection) -> None:
    posyandu = await bali_posyandu(registry, household_db)
    today = date.today()
    kader = tokens.kader([posyandu])
    body = {"posyandu_id": posyandu, "session_date": today.isoformat()}
    # No schedule yet: no day is an opening day.
    unscheduled = await household.post("/api/v1/sessions", json=body, headers=kader)
    assert unscheduled.status_code == 422 and unscheduled.json()["errors"][0]["field"] == "session_date"

    await schedule(registry, household_db, posyandu, extra_days(today, today + timedelta(days=10)))
    opened = await household.post("/api/v1/sessions", json=body, headers=kader)
    assert opened.status_code == 201, opened.text
    session = opened.json()
    assert session["status"] == "open" and session["village_code"] == "5171011001"
    assert opened.headers["ETag"] == '"1"'
    [event] = await _events(household_db, "posyandu.session.opened.v1", session["id"])
    assert event["subject"] == session["id"] and event["regioncode"] == "5171011001"
    assert event["data"] == {"session_id": session["id"], "posyandu_id": posyandu, "village_code": "5171011001",
                             "session_date": today.isoformat(), "status": "open", "version": 1}
    again = await household.post("/api/v1/sessions", json=body, headers=kader)
    assert again.status_code == 409

    # An ad-hoc day is refused until the schedule lists it.
    yesterday = {"posyandu_id": posyandu, "session_date": (today - timedelta(days=1)).isoformat()}
    adhoc = await household.post("/api/v1/sessions", json=yesterday, headers=kader)
    assert adhoc.status_code == 422 and "not an opening day" in adhoc.json()["detail"]
    future = await household.post("/api/v1/sessions", headers=kader, json={
        "posyandu_id": posyandu, "session_date": (today + timedelta(days=10)).isoformat()})
    assert future.status_code == 422 and future.json()["errors"][0]["message"] == "is in the future"
    await schedule(registry, household_db, posyandu, extra_days(today, today - timedelta(days=1)))
    assert (await household.post("/api/v1/sessions", json=yesterday, headers=kader)).status_code == 201

    listed = await household.get("/api/v1/sessions", params={"posyandu_id": posyandu, "limit": 1}, headers=kader)
    assert listed.status_code == 200 and [s["session_date"] for s in listed.json()["items"]] == [today.isoformat()]
    rest = await household.get("/api/v1/sessions", headers=kader, params={
        "posyandu_id": posyandu, "limit": 1, "cursor": listed.json()["next_cursor"]})
    assert [s["session_date"] for s in rest.json()["items"]] == [yesterday["session_date"]]
    assert await household_db.fetchval("SELECT count(*) FROM sessions WHERE posyandu_id = $1",
                                       uuid.UUID(posyandu)) == 2


async def test_only_the_posyandus_kader_opens_reads_and_closes_its_sessions(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    posyandu = await bali_posyandu(registry, household_db)
    today = date.today()
    await schedule(registry, household_db, posyandu, extra_days(today))
    body = {"posyandu_id": posyandu, "session_date": today.isoformat()}
    for headers in (tokens.kader([uuid.uuid4()]), tokens.pembina("51"), tokens.opd(uuid.uuid4(), ["kesehatan"])):
        refused = await household.post("/api/v1/sessions", json=body, headers=headers)
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert await household_db.fetchval("SELECT count(*) FROM sessions WHERE posyandu_id = $1",
                                       uuid.UUID(posyandu)) == 0
    unknown = await household.post("/api/v1/sessions", json={**body, "posyandu_id": str(uuid.uuid4())},
                                   headers=tokens.admin())
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "posyandu_id"

    session = await open_session(household, posyandu, today)
    url = f"/api/v1/sessions/{session['id']}"
    assert (await household.get(url, headers=tokens.pembina("5171"))).status_code == 200
    assert (await household.get(url, headers=tokens.pembina("3171"))).status_code == 404
    assert (await household.get(url, headers=tokens.kader([uuid.uuid4()]))).status_code == 404
    assert (await household.get(url, headers=tokens.opd(uuid.uuid4(), ["kesehatan"]))).status_code == 404
    assert (await household.post(f"{url}/close", headers=tokens.pembina("5171"))).status_code == 403
    assert (await household.post(f"{url}/close", headers=tokens.kader([uuid.uuid4()]))).status_code == 404
    for outsider in (tokens.kader([uuid.uuid4()]), tokens.pembina("3171"), tokens.opd(uuid.uuid4(), ["kesehatan"])):
        listed = await household.get("/api/v1/sessions", params={"posyandu_id": posyandu}, headers=outsider)
        assert listed.status_code == 200 and listed.json()["items"] == []
    for insider in (tokens.kader([posyandu]), tokens.pembina("5171"), tokens.admin()):
        listed = await household.get("/api/v1/sessions", headers=insider, params={"limit": 500})
        assert session["id"] in [s["id"] for s in listed.json()["items"]]
    assert (await household.get(url, headers=tokens.admin())).json()["status"] == "open"


async def test_closing_freezes_a_session_and_counts_its_visits(registry: httpx.AsyncClient,
                                                               household: httpx.AsyncClient,
                                                               household_db: asyncpg.Connection) -> None:
    posyandu = await bali_posyandu(registry, household_db)
    today = date.today()
    await schedule(registry, household_db, posyandu, extra_days(today))
    session = await open_session(household, posyandu, today)
    people = await life_cycle_household(household, posyandu, today)
    kader = tokens.kader([posyandu])
    visits = f"/api/v1/sessions/{session['id']}/visits"
    for role in ("toddler", "pregnant", "elderly"):
        recorded = await household.post(visits, json={"member_id": people[role]["id"], "counselling": ["nutrition"]},
                                        headers=kader)
        assert recorded.status_code == 201, recorded.text

    url = f"/api/v1/sessions/{session['id']}/close"
    stale = await household.post(url, headers={**kader, "If-Match": '"7"'})
    assert stale.status_code == 412
    closed = await household.post(url, headers={**kader, "If-Match": '"1"'})
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["closed_by"] == "kader-test"
    [event] = await _events(household_db, "posyandu.session.closed.v1", session["id"])
    assert event["data"] == {**event["data"], "status": "closed", "version": 2, "visits": {
        "infant": 0, "toddler": 1, "school_age": 0, "adult": 1, "elderly": 1, "pregnant": 1, "total": 3}}

    late = await household.post(visits, json={"member_id": people["adult"]["id"], "counselling": ["nutrition"]},
                                headers=kader)
    assert late.status_code == 409 and late.headers["content-type"] == "application/problem+json"
    assert await household_db.fetchval("SELECT count(*) FROM visits WHERE session_id = $1",
                                       uuid.UUID(session["id"])) == 3
    # Closing again changes nothing and announces nothing.
    assert (await household.post(url, headers=kader)).json()["version"] == 2
    assert len(await _events(household_db, "posyandu.session.closed.v1", session["id"])) == 1
