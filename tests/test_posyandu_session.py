"""A whole opening day, end to end: the schedule in the registry, the due list before, a session opened, a visit of
each life-cycle group recorded, the session closed, the due list after; SKDN and the services per group in
reporting (through the broker) equal the counts from the visits; no event on the household topic carries a NIK.

Nunbaun Sabu (5371011002) in Kota Kupang (5371), reserved for these tests; the reporting app runs on a database
of its own with a consumer group of its own on the session's broker.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from conftest import Stack
from shared.events.topics import HOUSEHOLD_TOPIC
from tests.support import tokens
from tests.support.kafka import read_topic
from tests.support.reporting import Reporting, private_reporting
from tests.support.waiting import eventually

REGIONS = ("kode,nama\n53,Nusa Tenggara Timur\n53.71,Kota Kupang\n53.71.01,Alak\n53.71.01.1002,Nunbaun Sabu\n")
NUNBAUN_SABU = "5371011002"
#: A text a spreadsheet would run as a formula: the CSV must hold it as text.
FORMULA = "=HYPERLINK(\"http://example.invalid\")"


@pytest.fixture(scope="module")
async def reporting(stack: Stack) -> AsyncIterator[Reporting]:
    # A group of its own: the whole history of the session's broker, and nobody else's offsets.
    async with private_reporting(stack, database="reporting_session", group="reporting-session-test") as reporting:
        yield reporting


def _nik(birth: date, sex: str, serial: int) -> str:
    return f"537101{birth.day + (40 if sex == 'female' else 0):02d}{birth:%m%y}{7000 + serial:04d}"


def _years(on: date, years: int, months: int = 0) -> date:
    return on - timedelta(days=round(years * 365.25 + months * 30.4375))


async def _register(household: httpx.AsyncClient, posyandu: str, members: dict[str, dict[str, Any]],
                    serial: int, address: str) -> dict[str, Any]:
    body = {"kk_number": f"537101140519{7000 + serial:04d}", "village_code": NUNBAUN_SABU, "posyandu_id": posyandu,
            "address": address, "rt": "004", "rw": "002",
            "members": [{**m, "birth_date": m["birth_date"].isoformat(),
                         "nik": _nik(m["birth_date"], m["sex"], serial * 10 + i)}
                        for i, m in enumerate(members.values())]}
    response = await household.post("/api/v1/households", json=body, headers=tokens.kader([posyandu]))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    by_name = {m["name"]: m for m in created["members"]}
    return {"household": created, **{role: by_name[m["name"]] for role, m in members.items()}}


async def _due(household: httpx.AsyncClient, posyandu: str, target: str | None) -> dict[str, dict[str, Any]]:
    """The due list by member name (every page)."""
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3, **({"session": target} if target else {}),
                                        **({"cursor": cursor} if cursor else {})}
        response = await household.get(f"/api/v1/posyandu/{posyandu}/due", params=params,
                                       headers=tokens.kader([posyandu]))
        assert response.status_code == 200, response.text
        page = response.json()
        found.update({e["name"]: e for e in page["items"]})
        if not (cursor := page["next_cursor"]):
            return found


def _services(entry: dict[str, Any] | None) -> set[str]:
    return {d["service"] if d["service"] != "immunization" else f"{d['vaccine']}-{d['dose']}"
            for d in (entry or {}).get("due", [])}


async def test_a_whole_opening_day_from_the_due_list_to_skdn(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection,
        reporting: Reporting, stack: Stack) -> None:
    today = date.today()
    previous_day = today - timedelta(days=28)
    imported = await registry.post("/api/v1/regions/import", content=REGIONS.encode(),
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    made = await registry.post("/api/v1/posyandu", headers=tokens.admin(), json={
        "code": f"K{uuid.uuid4().hex[:8].upper()}", "name": "Posyandu Flamboyan", "village_code": NUNBAUN_SABU})
    assert made.status_code == 201, made.text
    posyandu = made.json()["id"]
    kader = tokens.kader([posyandu])
    scheduled = await registry.put(f"/api/v1/posyandu/{posyandu}/schedule", headers=kader, json={
        "rule": None, "extra_days": [{"date": d.isoformat(), "reason": "Hari buka"} for d in (previous_day, today)]})
    assert scheduled.status_code == 200, scheduled.text

    async def schedule_known() -> bool:
        return bool(await household_db.fetchval("SELECT count(*) FROM known_schedules WHERE posyandu_id = $1 AND "
                                                "version = $2", uuid.UUID(posyandu), scheduled.json()["version"]))

    await eventually(schedule_known, "the household service to learn the schedule")

    family = await _register(household, posyandu, {
        "adult": {"name": "Yakobus Ndolu", "sex": "male", "birth_date": _years(today, 45), "relationship": "head"},
        "pregnant": {"name": "Maria Ndolu", "sex": "female", "birth_date": _years(today, 28), "relationship": "spouse",
                     "pregnant": True, "expected_delivery_date": (today + timedelta(days=150)).isoformat()},
        "adolescent": {"name": "Ana Ndolu", "sex": "female", "birth_date": _years(today, 14), "relationship": "child"},
        "toddler": {"name": "Yosua Ndolu", "sex": "male", "birth_date": _years(today, 2, 6), "relationship": "child"},
        "infant": {"name": "Rut Ndolu", "sex": "female", "birth_date": _years(today, 0, 8), "relationship": "child"},
        "elderly": {"name": "Sara Bana", "sex": "female", "birth_date": _years(today, 67), "relationship": "parent"},
    }, serial=1, address=FORMULA)
    neighbours = await _register(household, posyandu, {
        "mother": {"name": "Lena Tefa", "sex": "female", "birth_date": _years(today, 31), "relationship": "head"},
        "toddler": {"name": "Daud Tefa", "sex": "male", "birth_date": _years(today, 3, 2), "relationship": "child"},
    }, serial=2, address="Jl. Timor Raya No. 9")

    # The last opening day: only Daud came, and was weighed.
    opened = await household.post("/api/v1/sessions", headers=kader,
                                  json={"posyandu_id": posyandu, "session_date": previous_day.isoformat()})
    assert opened.status_code == 201, opened.text
    last = opened.json()
    daud = await household.post(f"/api/v1/sessions/{last['id']}/visits", headers=kader, json={
        "member_id": neighbours["toddler"]["id"],
        "child": {"measurement": {"weight_kg": 13.0, "length_height_cm": 94.0, "measured_lying": False},
                  "kms_book_held": True}})
    assert daud.status_code == 201, daud.text
    closed = await household.post(f"/api/v1/sessions/{last['id']}/close", headers={**kader, "If-Match": '"1"'})
    assert closed.status_code == 200, closed.text
    rut = family["infant"]["id"]
    bcg = await household.post(f"/api/v1/households/{family['household']['id']}/members/{rut}/immunizations",
                               headers=kader, json={"vaccine": "bcg", "dose_number": 1, "place": "puskesmas",
                                                    "given_on": family["infant"]["birth_date"]})
    assert bcg.status_code == 201, bcg.text

    # The due list before today's session.
    before = await _due(household, posyandu, today.isoformat())
    assert await _due(household, posyandu, None) == before  # without a session: the next opening day, today
    vitamin_a = {"vitamin-a"} if today.month in (2, 8) else set()
    assert {"weighing", *vitamin_a} <= _services(before["Rut Ndolu"]) and "bcg-1" not in _services(before["Rut Ndolu"])
    assert "opv-4" in _services(before["Rut Ndolu"])  # every dose after BCG is overdue at eight months
    assert _services(before["Maria Ndolu"]) >= {"antenatal-visit", "screening"}
    assert _services(before["Ana Ndolu"]) == {"screening"} and _services(before["Yakobus Ndolu"]) == {"screening"}
    assert _services(before["Sara Bana"]) == {"screening"}
    assert {n for n, e in before.items() if e["missed_last_session"]} == {"Rut Ndolu", "Yosua Ndolu", "Maria Ndolu",
                                                                          "Sara Bana"}
    assert before["Daud Tefa"]["missed_last_session"] is False and "weighing" in _services(before["Daud Tefa"])
    assert "Lena Tefa" in before  # an adult not screened this year
    assert before["Rut Ndolu"]["address"] == FORMULA and before["Rut Ndolu"]["rt"] == "004"
    audit = await household_db.fetchrow("SELECT * FROM audit_log WHERE resource_type = 'due-list' AND resource_id = $1 "
                                        "ORDER BY id DESC LIMIT 1", posyandu)
    assert audit is not None and audit["actor_role"] == "kader"
    exported = await household.get(f"/api/v1/posyandu/{posyandu}/due", params={"session": today.isoformat()},
                                   headers={**kader, "Accept": "text/csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert {r["name"] for r in rows} == set(before)
    assert {r["address"] for r in rows if r["name"] == "Rut Ndolu"} == {"'" + FORMULA}

    # Today's session: a visit of each life-cycle group.
    opened = await household.post("/api/v1/sessions", headers=kader,
                                  json={"posyandu_id": posyandu, "session_date": today.isoformat()})
    assert opened.status_code == 201, opened.text
    held = opened.json()
    bodies: dict[str, dict[str, Any]] = {
        family["infant"]["id"]: {"child": {"measurement": {"weight_kg": 7.8, "length_height_cm": 69.0,
                                                            "measured_lying": True}, "kms_book_held": True},
                                 "counselling": ["breastfeeding"]},
        family["toddler"]["id"]: {"child": {"measurement": {"weight_kg": 12.0, "length_height_cm": 88.0,
                                                             "measured_lying": False}, "kms_book_held": True}},
        neighbours["toddler"]["id"]: {"child": {"measurement": {"weight_kg": 13.4, "length_height_cm": 94.5,
                                                                 "measured_lying": False}, "kms_book_held": False}},
        family["pregnant"]["id"]: {"pregnancy": {"antenatal_visit_number": 2, "iron_tablets": 30},
                                   "adult": {"systolic_bp": 112, "diastolic_bp": 70}},
        family["adolescent"]["id"]: {"adolescent": {"haemoglobin_g_dl": 12.6, "anaemia": False}},
        family["adult"]["id"]: {"adult": {"systolic_bp": 128, "diastolic_bp": 82, "tb_screening": "negative"}},
        family["elderly"]["id"]: {"adult": {"systolic_bp": 138, "diastolic_bp": 86}, "counselling": ["elderly-care"]},
    }
    for member_id, body in bodies.items():
        visit = await household.post(f"/api/v1/sessions/{held['id']}/visits", headers=kader,
                                     json={"member_id": member_id, **body})
        assert visit.status_code == 201, visit.text
    closing = await household.post(f"/api/v1/sessions/{held['id']}/close", headers={**kader, "If-Match": '"1"'})
    assert closing.status_code == 200, closing.text

    # After: what the visits gave is no longer due; the doses still are, and Lena, who did not come, still is.
    after = await _due(household, posyandu, held["id"])
    assert _services(after["Rut Ndolu"]) == _services(before["Rut Ndolu"]) - {"weighing", *vitamin_a}
    for child in ("Yosua Ndolu", "Daud Tefa"):  # no dose recorded yet: every dose of their age is still listed
        assert _services(after.get(child)) == _services(before[child]) - {"weighing", *vitamin_a}
        assert after[child]["missed_last_session"] is False
    assert "Maria Ndolu" not in after and "Ana Ndolu" not in after and "Sara Bana" not in after
    assert "Yakobus Ndolu" not in after
    assert _services(after["Lena Tefa"]) == {"screening"}

    # SKDN and the services per group in reporting equal the counts from the household's own visits.
    month = today.strftime("%Y-%m")
    visits = await household_db.fetch(
        "SELECT v.*, m.birth_date FROM visits v JOIN members m ON m.id = v.member_id "
        "WHERE v.posyandu_id = $1 AND to_char(v.visited_on, 'YYYY-MM') = $2", uuid.UUID(posyandu), month)
    by_member: dict[uuid.UUID, asyncpg.Record] = {}
    for v in sorted(visits, key=lambda v: v["visited_on"]):
        by_member[v["member_id"]] = v  # the latest of the month
    children = [c for v in by_member.values() if v["child"] is not None and (c := json.loads(v["child"]))]
    expected = {
        "kesehatan.children_under_five": 3,
        "kesehatan.children_measured": sum(1 for c in children if c["weighed"]),
        "kesehatan.weight_rose": sum(1 for c in children if c["weighed"] and c["kms_signal"] == "N"),
        "kesehatan.kms_book_held": sum(1 for c in children if c["kms_book_held"]),
        "kesehatan.children_under_two": 1, "kesehatan.vaccinated_bcg": 1, "kesehatan.vaccinated_opv": 0,
        "services.visits": len(visits),
        **{f"services.{g.replace('-', '_')}": sum(1 for v in visits if v["life_cycle_group"] == g)
           for g in ("infant", "toddler", "school-age", "adult", "elderly")},
        "services.pregnant": sum(1 for v in visits if v["pregnant"]),
        "services.sessions": len({v["session_id"] for v in visits}),
    }
    assert expected["kesehatan.children_measured"] == 3 and expected["kesehatan.kms_book_held"] == 2

    async def reported() -> dict[str, Any] | None:
        response = await reporting.client.get("/api/v1/indicators", headers=tokens.admin(),
                                              params={"region": NUNBAUN_SABU, "period": month})
        assert response.status_code == 200, response.text
        row = response.json()["rows"][0]
        return row if all(row.get(k) == v for k, v in expected.items()) else None

    await eventually(reported, "reporting to count the opening day", timeout=120)

    # No event about the household or the sessions carries a member's full NIK.
    niks = [m["nik"] for h in (family, neighbours) for m in h["household"]["members"]]
    subjects = {family["household"]["id"], neighbours["household"]["id"], last["id"], held["id"]}
    wanted = {"posyandu.session.opened.v1", "posyandu.session.closed.v1", "posyandu.visit.recorded.v1",
              "posyandu.immunization.recorded.v1"}

    def all_read(rs: list[Any]) -> bool:
        # The sessions' events are keyed by session, the visits' by household: other partitions, read in any
        # order, so wait for every type (stopping at eight visits once missed the sessions' partition).
        ours = [r.event for r in rs if r.event is not None and r.event.subject in subjects]
        return sum(1 for e in ours if e.type == "posyandu.visit.recorded.v1") >= 8 and wanted <= {e.type for e in ours}

    received = await read_topic(stack.broker.bootstrap_servers, HOUSEHOLD_TOPIC, until=all_read, timeout=60)
    ours = [r for r in received if r.event is not None and r.event.subject in subjects]
    assert {r.event.type for r in ours if r.event} >= {"posyandu.session.opened.v1", "posyandu.session.closed.v1",
                                                        "posyandu.visit.recorded.v1",
                                                        "posyandu.immunization.recorded.v1"}
    assert not [n for r in ours for n in niks if n in r.record.value.decode()]


async def test_the_due_list_is_the_kaders_and_refuses_a_day_that_is_no_opening_day(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    imported = await registry.post("/api/v1/regions/import", content=REGIONS.encode(),
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    made = await registry.post("/api/v1/posyandu", headers=tokens.admin(), json={
        "code": f"K{uuid.uuid4().hex[:8].upper()}", "name": "Posyandu Kenari", "village_code": NUNBAUN_SABU})
    assert made.status_code == 201, made.text
    posyandu = made.json()["id"]

    async def known() -> bool:
        return bool(await household_db.fetchval("SELECT count(*) FROM known_posyandu WHERE id = $1",
                                                uuid.UUID(posyandu)))

    await eventually(known, "the household service to learn the posyandu")
    url = f"/api/v1/posyandu/{posyandu}/due"
    audited = await household_db.fetchval("SELECT count(*) FROM audit_log WHERE resource_id = $1", posyandu)
    kader = tokens.kader([posyandu])
    for target, field_message in [(date.today().isoformat(), "not an opening day of the posyandu"),
                                  ("yesterday", "neither a session id nor a date"),
                                  (str(uuid.uuid4()), "not a session of this posyandu")]:
        refused = await household.get(url, params={"session": target}, headers=kader)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"] == [{"field": "session", "message": field_message}]
    missing = await household.get(url, headers=kader)  # no schedule: no next opening day
    assert missing.status_code == 422
    assert missing.json()["errors"] == [{"field": "session", "message": "no upcoming opening day"}]
    for outsider in (tokens.kader([str(uuid.uuid4())]), tokens.pembina("5371"), tokens.opd(str(uuid.uuid4()),
                                                                                           ["kesehatan"])):
        hidden = await household.get(url, params={"session": date.today().isoformat()}, headers=outsider)
        assert hidden.status_code == 404, hidden.text
    unknown = await household.get(f"/api/v1/posyandu/{uuid.uuid4()}/due", params={"session": "2026-01-01"},
                                  headers=tokens.admin())
    assert unknown.status_code == 404
    assert await household_db.fetchval("SELECT count(*) FROM audit_log WHERE resource_id = $1", posyandu) == audited
