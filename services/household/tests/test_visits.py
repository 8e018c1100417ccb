"""Visits: a whole opening day with every life-cycle group, the measurement through the measurements module, the
kesehatan profile following the newest visit, events without NIK, audited lists; bad visits refused whole."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from conftest import Stack
from services.household.tests.factories import kk_number, member, nik
from services.household.tests.opening_days import (
    JADWAL,
    bali_posyandu,
    extra_days,
    life_cycle_household,
    open_session,
    schedule,
)
from shared.events.envelope import CloudEvent
from shared.opening_days import MonthlyRule, Ordinal, Weekday
from tests.support import tokens
from tests.support.kafka import Received, read_topic

SECOND_TUESDAY = {"ordinal": "second", "weekday": "tuesday"}


def last_august_session(today: date) -> date:
    """The second Tuesday of the last August that has passed (vitamin A month)."""
    return MonthlyRule(Ordinal.SECOND, Weekday.TUESDAY).day_in(today.year if today.month > 8 else today.year - 1, 8)


def not_a_vitamin_a_month(today: date) -> date:
    return today if today.month not in (2, 8) else today - timedelta(days=31)


async def kesehatan(household: httpx.AsyncClient, household_id: str, posyandu: str) -> dict[str, Any]:
    response = await household.get(f"/api/v1/households/{household_id}/profiles/kesehatan",
                                   headers=tokens.kader([posyandu]))
    assert response.status_code == 200, response.text
    profile: dict[str, Any] = response.json()
    return profile


async def test_a_whole_opening_day_across_the_life_cycle(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                         household_db: asyncpg.Connection, stack: Stack) -> None:
    posyandu = await bali_posyandu(registry, household_db)
    today = date.today()
    august = last_august_session(today)
    await schedule(registry, household_db, posyandu, {"rule": SECOND_TUESDAY})
    session = await open_session(household, posyandu, august)
    people = await life_cycle_household(household, posyandu, august)
    hid = people["household"]["id"]
    kader = tokens.kader([posyandu])
    url = f"/api/v1/sessions/{session['id']}/visits"
    bodies: dict[str, dict[str, Any]] = {
        "infant": {"child": {"measurement": {"weight_kg": 7.9, "length_height_cm": 69.0, "measured_lying": True},
                             "vitamin_a": True, "kms_book_held": True}, "counselling": ["breastfeeding"]},
        "toddler": {"child": {"measurement": {"weight_kg": 12.1, "length_height_cm": 88.0, "measured_lying": False},
                              "vitamin_a": True, "deworming": True, "supplementary_feeding": True,
                              "kms_book_held": False}, "counselling": ["nutrition"]},
        "pregnant": {"pregnancy": {"antenatal_visit_number": 3, "muac_cm": 22.0, "systolic_bp": 118,
                                   "diastolic_bp": 76, "iron_tablets": 30},
                     "adult": {"blood_sugar_mg_dl": 95}, "counselling": ["pregnancy-care", "nutrition"]},
        "adolescent": {"adolescent": {"haemoglobin_g_dl": 11.1, "anaemia": True, "muac_cm": 21.5},
                       "counselling": ["reproductive-health"]},
        "adult": {"adult": {"systolic_bp": 152, "diastolic_bp": 96, "blood_sugar_mg_dl": 210, "weight_kg": 82.0,
                            "height_cm": 165.0, "long_cough": True, "tb_screening": "positive",
                            "mental_health_screening": "negative"}},
        "elderly": {"adult": {"systolic_bp": 135, "diastolic_bp": 85, "mental_health_screening": "positive"},
                    "counselling": ["elderly-care"]},
    }
    recorded: dict[str, dict[str, Any]] = {}
    for role, body in bodies.items():
        response = await household.post(url, json={"member_id": people[role]["id"], **body}, headers=kader)
        assert response.status_code == 201, (role, response.text)
        recorded[role] = response.json()
    assert {r: v["life_cycle_group"] for r, v in recorded.items()} == {
        "infant": "infant", "toddler": "toddler", "pregnant": "adult", "adolescent": "school-age", "adult": "adult",
        "elderly": "elderly"}
    assert recorded["pregnant"]["pregnant"] is True and recorded["adult"]["adult"]["bmi"] == 30.1
    assert recorded["infant"]["child"]["weighed"] is True and recorded["infant"]["child"]["kms_signal"] == "B"
    assert all(v["visited_on"] == august.isoformat() for v in recorded.values())

    # The child's measurement is a measurement like any other, dated the session's day.
    measured = (await household.get(f"/api/v1/households/{hid}/members/{people['toddler']['id']}/measurements",
                                    headers=kader)).json()
    assert [(m["id"], m["measured_on"], m["weight_kg"]) for m in measured] == [
        (recorded["toddler"]["measurement_id"], august.isoformat(), 12.1)]

    # The kesehatan profile follows the visits where they overlap, and the needs follow the profile.
    members = (await kesehatan(household, hid, posyandu))["profile"]["members"]
    assert members[people["pregnant"]["id"]] == {"antenatal_visits": 3, "pregnant_muac_cm": 22.0,
                                                 "systolic_bp": 118, "diastolic_bp": 76, "blood_sugar_mg_dl": 95}
    assert members[people["adult"]["id"]] == {"systolic_bp": 152, "diastolic_bp": 96, "blood_sugar_mg_dl": 210,
                                              "long_cough": True}
    needs = {(n["category"], n["member_id"]) for n in
             (await household.get(f"/api/v1/households/{hid}/needs", headers=kader)).json()}
    assert {("kesehatan.hypertension", people["adult"]["id"]), ("kesehatan.tb-suspect", people["adult"]["id"]),
            ("kesehatan.high-risk-pregnancy", people["pregnant"]["id"])} <= needs

    again = await household.post(url, json={"member_id": people["adult"]["id"], "counselling": ["nutrition"]},
                                 headers=kader)
    assert again.status_code == 409

    # Lists: the session's visits in pages, a member's visits; both audited.
    first = await household.get(url, params={"limit": 4}, headers=kader)
    assert first.status_code == 200 and len(first.json()["items"]) == 4
    rest = await household.get(url, params={"limit": 4, "cursor": first.json()["next_cursor"]}, headers=kader)
    assert rest.json()["next_cursor"] is None
    assert {v["id"] for v in first.json()["items"] + rest.json()["items"]} == {v["id"] for v in recorded.values()}
    mine = await household.get(f"/api/v1/households/{hid}/members/{people['pregnant']['id']}/visits", headers=kader)
    assert [v["id"] for v in mine.json()["items"]] == [recorded["pregnant"]["id"]]
    audited = await household_db.fetch("SELECT resource_type, resource_id FROM audit_log WHERE resource_id = ANY($1)",
                                       [session["id"], people["pregnant"]["id"]])
    assert {(r["resource_type"], r["resource_id"]) for r in audited} >= {
        ("session.visits", session["id"]), ("visits", people["pregnant"]["id"])}
    assert (await household.get(url, headers=tokens.kader([uuid.uuid4()]))).status_code == 404

    # The visit events: one per visit, keyed by the household, typed per group, and no full NIK anywhere.
    def visit_events(rs: list[Received]) -> list[CloudEvent]:
        return [r.event for r in rs if r.event and r.event.type == "posyandu.visit.recorded.v1"
                and r.event.subject == hid]

    received = await read_topic(stack.broker.bootstrap_servers, "posyandu.household.v1", timeout=60,
                                until=lambda rs: len(visit_events(rs)) == 6)
    ours = [r for r in received if r.event and r.event.subject == hid]
    visits = {e.data["member_id"]: e.data for e in visit_events(received)}
    toddler = visits[people["toddler"]["id"]]
    assert toddler["child"] == {"vitamin_a": True, "deworming": True, "supplementary_feeding": True,
                                "kms_book_held": False, "weighed": True, "kms_signal": "B"}
    assert toddler["measurement_id"] == recorded["toddler"]["measurement_id"]
    assert visits[people["adolescent"]["id"]]["adolescent"] == {"haemoglobin_g_dl": 11.1, "anaemia": True,
                                                                "muac_cm": 21.5}
    niks = [people[role]["nik"] for role in bodies if people[role].get("nik")]
    assert len(niks) == 6 and not any(nik in r.record.value.decode() for r in ours for nik in niks)

    # Closing counts the visits per life-cycle group.
    closed = await household.post(f"/api/v1/sessions/{session['id']}/close", headers=kader)
    assert closed.status_code == 200
    payload = await household_db.fetchval("SELECT payload FROM outbox WHERE event_type = $1 AND key = $2",
                                          "posyandu.session.closed.v1", session["id"])
    assert json.loads(payload)["data"]["visits"] == {"infant": 1, "toddler": 1, "school_age": 1, "adult": 2,
                                                    "elderly": 1, "pregnant": 1, "total": 6}


async def test_the_profile_follows_the_newest_visit(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                                    household_db: asyncpg.Connection) -> None:
    posyandu = await bali_posyandu(registry, household_db)
    today = date.today()
    earlier, later = today - timedelta(days=60), today - timedelta(days=30)
    await schedule(registry, household_db, posyandu, extra_days(earlier, later))
    people = await life_cycle_household(household, posyandu, today)
    hid, woman = people["household"]["id"], people["pregnant"]["id"]
    kader = tokens.kader([posyandu])
    newer, older = await open_session(household, posyandu, later), await open_session(household, posyandu, earlier)
    for session, number in ((newer, 4), (older, 2)):
        response = await household.post(f"/api/v1/sessions/{session['id']}/visits", headers=kader, json={
            "member_id": woman, "pregnancy": {"antenatal_visit_number": number, "muac_cm": 25.0}})
        assert response.status_code == 201, response.text
    profile = await kesehatan(household, hid, posyandu)
    # The visit recorded late for the older session left the newer visit's number.
    assert profile["profile"]["members"][woman]["antenatal_visits"] == 4 and profile["version"] == 1
    assert profile["observed_on"] == later.isoformat()


async def _stored(household_db: asyncpg.Connection, member_id: str) -> tuple[int, int, int, int]:
    mid = uuid.UUID(member_id)
    household_id = await household_db.fetchval("SELECT household_id FROM members WHERE id = $1", mid)
    return (await household_db.fetchval("SELECT count(*) FROM visits WHERE member_id = $1", mid),
            await household_db.fetchval("SELECT count(*) FROM measurements WHERE member_id = $1", mid),
            await household_db.fetchval("SELECT count(*) FROM profile_versions WHERE household_id = $1", household_id),
            await household_db.fetchval("SELECT count(*) FROM outbox WHERE key = $1", str(household_id)))


@pytest.mark.parametrize(("role", "body", "status", "field"), [
    ("infant", {"child": {"measurement": {"weight_kg": 30.0}}}, 422, "child.measurement.weight_kg"),
    ("toddler", {"child": {"measurement": {"length_height_cm": 140.0, "measured_lying": False}}}, 422,
     "child.measurement.length_height_cm"),
    ("toddler", {"child": {"vitamin_a": True}}, 422, "child.vitamin_a"),
    ("infant", {"child": {"deworming": True}}, 422, "child.deworming"),
    ("adult", {"pregnancy": {"antenatal_visit_number": 1}}, 422, "pregnancy"),
    ("adolescent", {"pregnancy": {"antenatal_visit_number": 1}}, 422, "pregnancy"),
    ("elderly", {"pregnancy": {"muac_cm": 24.0}}, 422, "pregnancy"),
    ("adult", {"child": {"kms_book_held": True}}, 422, "child"),
    ("toddler", {"adult": {"systolic_bp": 120}}, 422, "adult"),
    ("adult", {"adolescent": {"haemoglobin_g_dl": 12.0}}, 422, "adolescent"),
    ("adult", {"adult": {"systolic_bp": 500}}, 422, "body.adult.systolic_bp"),
    ("adult", {"adult": {}}, 422, "body"),
    ("adult", {}, 422, "body"),
    ("adult", {"adult": {"systolic_bp": 120, "pulse": 70}}, 422, "body.adult.pulse"),
    ("pregnant", {"pregnancy": {"antenatal_visit_number": 0}}, 422, "body.pregnancy.antenatal_visit_number"),
])
async def test_a_visit_the_member_cannot_have_is_refused_and_nothing_is_stored(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection,
        role: str, body: dict[str, Any], status: int, field: str) -> None:
    posyandu = await bali_posyandu(registry, household_db)
    on = not_a_vitamin_a_month(date.today())
    await schedule(registry, household_db, posyandu, extra_days(on))
    session = await open_session(household, posyandu, on)
    people = await life_cycle_household(household, posyandu, on)
    before = await _stored(household_db, people[role]["id"])
    response = await household.post(f"/api/v1/sessions/{session['id']}/visits", headers=tokens.kader([posyandu]),
                                    json={"member_id": people[role]["id"], **body})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert await _stored(household_db, people[role]["id"]) == before


async def test_a_visit_outside_an_open_session_of_the_posyandu_is_refused(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    today = date.today()
    ours, theirs = await bali_posyandu(registry, household_db), await bali_posyandu(registry, household_db, JADWAL)
    for posyandu in (ours, theirs):
        await schedule(registry, household_db, posyandu, extra_days(today))
    session, their_session = await open_session(household, ours, today), await open_session(household, theirs, today)
    people = await life_cycle_household(household, ours, today)
    adult = people["adult"]["id"]
    body = {"member_id": adult, "adult": {"systolic_bp": 120, "diastolic_bp": 80}}
    before = await _stored(household_db, adult)
    cases = [
        # No such session.
        (f"/api/v1/sessions/{uuid.uuid4()}/visits", tokens.kader([ours]), body, 404),
        # Another posyandu's session, by our kader.
        (f"/api/v1/sessions/{their_session['id']}/visits", tokens.kader([ours]), body, 403),
        # Another posyandu's session, by a kader of both: the member is not of that posyandu.
        (f"/api/v1/sessions/{their_session['id']}/visits", tokens.kader([ours, theirs]), body, 422),
        # A wrong kader, a pembina, an agency.
        (f"/api/v1/sessions/{session['id']}/visits", tokens.kader([uuid.uuid4()]), body, 403),
        (f"/api/v1/sessions/{session['id']}/visits", tokens.pembina("51"), body, 403),
        (f"/api/v1/sessions/{session['id']}/visits", tokens.opd(uuid.uuid4(), ["kesehatan"]), body, 403),
        # A member nobody knows.
        (f"/api/v1/sessions/{session['id']}/visits", tokens.kader([ours]), {**body, "member_id": str(uuid.uuid4())},
         422),
    ]
    for url, headers, payload, status in cases:
        response = await household.post(url, json=payload, headers=headers)
        assert response.status_code == status, (url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert await _stored(household_db, adult) == before

    closed = await household.post(f"/api/v1/sessions/{session['id']}/close", headers=tokens.kader([ours]))
    assert closed.status_code == 200
    late = await household.post(f"/api/v1/sessions/{session['id']}/visits", json=body, headers=tokens.kader([ours]))
    assert late.status_code == 409 and "closed" in late.json()["detail"]
    assert await _stored(household_db, adult) == before


async def test_a_profile_observed_after_the_session_keeps_its_values(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    posyandu = await bali_posyandu(registry, household_db)
    today = date.today()
    earlier = today - timedelta(days=20)
    await schedule(registry, household_db, posyandu, extra_days(earlier))
    people = await life_cycle_household(household, posyandu, today)
    hid, man = people["household"]["id"], people["adult"]["id"]
    kader = tokens.kader([posyandu])
    observed = await household.put(f"/api/v1/households/{hid}/profiles/kesehatan", headers=kader,
                                   params={"observed_on": today.isoformat()},
                                   json={"members": {man: {"systolic_bp": 128, "diastolic_bp": 82}}})
    assert observed.status_code == 201, observed.text
    session = await open_session(household, posyandu, earlier)
    response = await household.post(f"/api/v1/sessions/{session['id']}/visits", headers=kader, json={
        "member_id": man, "adult": {"systolic_bp": 165, "diastolic_bp": 100}})
    assert response.status_code == 201, response.text
    profile = await kesehatan(household, hid, posyandu)
    assert profile["version"] == 1 and profile["profile"]["members"][man] == {"systolic_bp": 128, "diastolic_bp": 82}


async def test_a_merged_member_takes_its_visits_to_the_survivor(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    posyandu = await bali_posyandu(registry, household_db)
    today = date.today()
    first_day, second_day = today - timedelta(days=40), today - timedelta(days=10)
    await schedule(registry, household_db, posyandu, extra_days(first_day, second_day))
    kader = tokens.kader([posyandu])
    people = await life_cycle_household(household, posyandu, today)
    survivor = people["elderly"]
    # The same grandmother registered again, without a NIK, in another household of the village.
    again = await household.post("/api/v1/households", headers=kader, json={
        "kk_number": kk_number(district="517101"), "village_code": "5171011001", "posyandu_id": posyandu,
        "members": [member("Wayan Gede", "male", date(1980, 5, 5), "head", nik=nik(date(1980, 5, 5), "male",
                                                                                   district="517101")),
                    member(survivor["name"], "female", date.fromisoformat(survivor["birth_date"]), "parent",
                           with_nik=False)]})
    assert again.status_code == 201, again.text
    duplicate = next(m for m in again.json()["members"] if m["name"] == survivor["name"])
    first, second = await open_session(household, posyandu, first_day), await open_session(household, posyandu,
                                                                                            second_day)
    body = {"counselling": ["elderly-care"]}
    for session, who in ((first, survivor["id"]), (first, duplicate["id"]), (second, duplicate["id"])):
        response = await household.post(f"/api/v1/sessions/{session['id']}/visits", headers=kader,
                                        json={"member_id": who, **body})
        assert response.status_code == 201, response.text
    flag = next(f for f in (await household.get("/api/v1/duplicates", headers=kader)).json()
                if {f["member_id"], f["candidate_id"]} == {survivor["id"], duplicate["id"]})
    merged = await household.post(f"/api/v1/duplicates/{flag['id']}/merge", json={"survivor_id": survivor["id"]},
                                  headers=kader)
    assert merged.status_code == 200, merged.text
    visits = (await household.get(
        f"/api/v1/households/{people['household']['id']}/members/{survivor['id']}/visits", headers=kader)).json()
    # The second session's visit moved over; at the first, the survivor's own visit stays the one.
    assert [v["visited_on"] for v in visits["items"]] == [second_day.isoformat(), first_day.isoformat()]
    assert await household_db.fetchval("SELECT count(*) FROM visits WHERE member_id = $1",
                                       uuid.UUID(duplicate["id"])) == 1
