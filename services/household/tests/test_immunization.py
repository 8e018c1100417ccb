"""Doses through the API: recorded and voided under the member, the status computed (never typed), the
immunisation need following it, the kesehatan profile publishing it, and bad doses refused with nothing stored."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.household.immunization import service
from services.household.immunization.schedule import add_months
from services.household.immunization.service import DoseCreate, DoseVoid
from services.household.needs.service import open_needs
from services.household.tests.factories import member, register
from services.household.tests.immunization_support import doses_url, family_with_baby, mataram_posyandu
from shared.auth import Principal, Role
from tests.support import tokens


def ago(months: int, days: int = 0) -> date:
    return add_months(date.today(), -months) - timedelta(days=days)


async def needs_of(household: httpx.AsyncClient, household_id: str, kader: dict[str, str]) -> dict[str, Any]:
    response = await household.get(f"/api/v1/households/{household_id}/needs", headers=kader)
    assert response.status_code == 200, response.text
    return {n["category"]: n for n in response.json()}


async def test_doses_make_the_status_and_the_need_follows_it(registry: httpx.AsyncClient,
                                                             household: httpx.AsyncClient,
                                                             household_db: asyncpg.Connection) -> None:
    posyandu = await mataram_posyandu(registry, household_db)
    kader = tokens.kader([posyandu])
    birth = ago(3, 10)  # 3 months and 10 days: polio 1, DPT-HB-Hib 1, PCV 1, RV 1 and more overdue by now
    created, baby = await family_with_baby(household, posyandu, birth)
    url = doses_url(created["id"], baby["id"])

    # No dose recorded yet: the status is unknown (not evidence of no vaccination), so no need.
    assert (await household.get(f"{url}/status", headers=kader)).json()["status"] == "unknown"
    bcg = await household.post(url, headers=kader, json={"vaccine": "bcg", "dose_number": 1,
                                                         "given_on": birth.isoformat(), "place": "puskesmas",
                                                         "lot_number": "B-2026-117"})
    assert bcg.status_code == 201, bcg.text
    status = (await household.get(f"{url}/status", headers=kader)).json()
    assert status["status"] == "incomplete" and status["schedule_version"] == "kemenkes-2023"
    assert {f"{d['vaccine']}-{d['dose']}" for d in status["overdue"]} >= {"opv-1", "dpt-hb-hib-1", "pcv-1"}
    # HB0 is given in the first week only: past it, a birth dose not recorded is missed (listed, no catch-up).
    assert [f"{d['vaccine']}-{d['dose']}" for d in status["missed"]] == ["hb0-1"]
    need = (await needs_of(household, created["id"], kader))["kesehatan.immunization"]
    assert need["member_id"] == baby["id"] and "opv-1" in need["evidence"]["overdue"]
    profile = (await household.get(f"/api/v1/households/{created['id']}/profiles/kesehatan", headers=kader)).json()
    assert profile["profile"]["members"][baby["id"]]["immunization_status"] == "incomplete"
    assert profile["recorded_by"] == "system:immunization"

    # Every dose due by now, each on time: complete for age, the need resolves, the profile says so.
    for vaccine, number, given in [("hb0", 1, birth), ("opv", 1, add_months(birth, 1)),
                                   ("opv", 2, add_months(birth, 2)), ("dpt-hb-hib", 1, add_months(birth, 2)),
                                   ("pcv", 1, add_months(birth, 2)), ("rotavirus", 1, add_months(birth, 2)),
                                   ("opv", 3, add_months(birth, 3)), ("dpt-hb-hib", 2, add_months(birth, 3)),
                                   ("pcv", 2, add_months(birth, 3)), ("rotavirus", 2, add_months(birth, 3))]:
        response = await household.post(url, headers=kader, json={"vaccine": vaccine, "dose_number": number,
                                                                  "given_on": given.isoformat(), "place": "posyandu"})
        assert response.status_code == 201, (vaccine, number, response.text)
    status = (await household.get(f"{url}/status", headers=kader)).json()
    assert status["status"] == "complete-for-age" and status["complete_for_age"] is True, status
    assert "kesehatan.immunization" not in await needs_of(household, created["id"], kader)
    profile = (await household.get(f"/api/v1/households/{created['id']}/profiles/kesehatan", headers=kader)).json()
    assert profile["profile"]["members"][baby["id"]]["immunization_status"] == "complete-for-age"
    # A month ahead, polio 4, DPT-HB-Hib 3, rotavirus 3 and IPV 1 will be due.
    ahead = (await household.get(f"{url}/status", headers=kader,
                                 params={"on": add_months(birth, 4).isoformat()})).json()
    assert {f"{d['vaccine']}-{d['dose']}" for d in ahead["due"]} == {"opv-4", "dpt-hb-hib-3", "rotavirus-3", "ipv-1"}

    # Voiding the last polio dose (recorded by mistake) makes it due again; the record stays, voided.
    listed = (await household.get(url, headers=kader)).json()
    opv3 = next(d for d in listed if (d["vaccine"], d["dose_number"]) == ("opv", 3))
    voided = await household.post(f"{url}/{opv3['id']}/void", headers=kader, json={"reason": "wrong child"})
    assert voided.status_code == 200 and voided.json()["status"] == "voided", voided.text
    assert {d["status"] for d in (await household.get(url, headers=kader)).json()} == {"active", "voided"}
    again = await household.post(f"{url}/{opv3['id']}/void", headers=kader, json={"reason": "twice"})
    assert again.status_code == 409
    # Voiding an earlier dose while a later one stands would leave the numbering broken: refused.
    opv1 = next(d for d in listed if (d["vaccine"], d["dose_number"]) == ("opv", 1))
    assert (await household.post(f"{url}/{opv1['id']}/void", headers=kader,
                                 json={"reason": "x"})).status_code == 409


async def test_the_dose_use_cases_do_needs_and_audit_without_an_endpoint(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection,
        household_session: AsyncSession) -> None:
    """The service functions are the whole use case: called as a CLI or a consumer would (no HTTP), recording a dose
    detects the immunisation need, reading the status writes its audit row, voiding the dose resolves the need.
    (The family is registered through the API; the use cases run in the test's rolled-back session.)"""
    posyandu = await mataram_posyandu(registry, household_db)
    birth = ago(3, 10)
    created, baby = await family_with_baby(household, posyandu, birth)
    household_id, member_id = uuid.UUID(created["id"]), uuid.UUID(baby["id"])
    principal = Principal(sub="kader-without-http", role=Role.KADER, posyandu_ids=frozenset({uuid.UUID(posyandu)}))
    session = household_session

    async def open_categories() -> dict[str, uuid.UUID | None]:
        return {n.category: n.member_id for n in await open_needs(session, household_id)}

    dose = await service.record_dose(session=session, principal=principal, household_id=household_id,
                                     member_id=member_id, today=date.today(), payload=DoseCreate.model_validate(
                                         {"vaccine": "bcg", "dose_number": 1, "given_on": birth.isoformat(),
                                          "place": "puskesmas"}))
    await session.commit()
    assert (await open_categories())["kesehatan.immunization"] == member_id

    computed = await service.read_status(session=session, principal=principal, household_id=household_id,
                                         member_id=member_id, on=date.today())
    await session.commit()
    assert computed.status == "incomplete"
    audited = await session.execute(sa.text(
        "SELECT action, resource_type, resource_id, subject_ref FROM audit_log WHERE actor = :actor"),
        {"actor": principal.sub})
    assert [dict(r) for r in audited.mappings()] == [{"action": "read", "resource_type": "immunization.status",
                                                      "resource_id": baby["id"], "subject_ref": created["id"]}]

    await service.void_dose(session=session, principal=principal, household_id=household_id, member_id=member_id,
                            dose_id=dose.id, payload=DoseVoid(reason="wrong child"), today=date.today())
    await session.commit()
    # No live dose: the status is unknown again, which is no evidence of a need.
    assert "kesehatan.immunization" not in await open_categories()
    # Committed for the test only: the household service itself never saw the dose or the need.
    assert await household_db.fetchval("SELECT count(*) FROM audit_log WHERE actor = $1", principal.sub) == 0
    kader = tokens.kader([posyandu])
    assert "kesehatan.immunization" not in await needs_of(household, created["id"], kader)


async def test_bad_doses_are_refused_and_nothing_is_stored(registry: httpx.AsyncClient,
                                                           household: httpx.AsyncClient,
                                                           household_db: asyncpg.Connection) -> None:
    posyandu = await mataram_posyandu(registry, household_db)
    kader = tokens.kader([posyandu])
    birth = ago(5)
    created, baby = await family_with_baby(household, posyandu, birth)
    url = doses_url(created["id"], baby["id"])
    first = await household.post(url, headers=kader, json={"vaccine": "opv", "dose_number": 1, "place": "posyandu",
                                                           "given_on": add_months(birth, 1).isoformat()})
    assert first.status_code == 201, first.text

    def body(vaccine: str, number: int, given: date, **extra: Any) -> dict[str, Any]:
        return {"vaccine": vaccine, "dose_number": number, "given_on": given.isoformat(), "place": "posyandu",
                **extra}

    cases = [
        (body("bcg", 1, birth - timedelta(days=1)), "given_on", "before the birth date"),
        (body("bcg", 1, date.today() + timedelta(days=3)), "given_on", "future"),
        (body("dpt-hb-hib", 2, add_months(birth, 3)), "dose_number", "dose 1 is not recorded"),
        (body("opv", 2, add_months(birth, 1) + timedelta(days=10)), "given_on", "at least 28"),
        (body("opv", 2, add_months(birth, 1) - timedelta(days=5)), "given_on", "-5 days after dose 1"),
        (body("opv", 9, add_months(birth, 4)), "dose_number", "not a dose"),
        (body("varicella", 1, add_months(birth, 2)), "vaccine", "not a vaccine"),
    ]
    before = await household_db.fetchval("SELECT count(*) FROM immunization_doses WHERE member_id = $1",
                                         uuid.UUID(baby["id"]))
    for payload, field, message in cases:
        response = await household.post(url, headers=kader, json=payload)
        assert response.status_code == 422, (payload, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        errors = response.json()["errors"]
        assert errors[0]["field"] == field and message in errors[0]["message"], (payload, errors)
    # Dose 1 dated after the recorded dose 2 would put them out of order too.
    second = await household.post(url, headers=kader, json=body("opv", 2, add_months(birth, 2)))
    assert second.status_code == 201
    duplicate = await household.post(url, headers=kader, json=body("opv", 2, add_months(birth, 3)))
    assert duplicate.status_code == 409 and duplicate.headers["content-type"] == "application/problem+json"
    after = await household_db.fetchval("SELECT count(*) FROM immunization_doses WHERE member_id = $1",
                                        uuid.UUID(baby["id"]))
    assert after == before + 1
    # A corrected birth date may not put the recorded doses before the birth.
    moved = await household.patch(f"/api/v1/households/{created['id']}/members/{baby['id']}", headers=kader,
                                  json={"birth_date": (add_months(birth, 1) + timedelta(days=1)).isoformat()})
    assert moved.status_code == 422 and moved.json()["errors"][0]["field"] == "body.birth_date", moved.text
    assert "vaccine dose" in moved.json()["detail"]
    # Only the two accepted doses wrote dose events; no refused one did.
    assert await household_db.fetchval("SELECT count(*) FROM outbox WHERE key = $1 AND event_type = "
                                       "'posyandu.immunization.recorded.v1'", created["id"]) == 2


@pytest.mark.parametrize("status", ["complete-for-age", "incomplete", "unknown"])
async def test_a_typed_status_is_refused(status: str, registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                         household_db: asyncpg.Connection) -> None:
    posyandu = await mataram_posyandu(registry, household_db)
    kader = tokens.kader([posyandu])
    created, baby = await family_with_baby(household, posyandu, ago(6))
    response = await household.put(f"/api/v1/households/{created['id']}/profiles/kesehatan", headers=kader,
                                   json={"members": {baby["id"]: {"immunization_status": status}}})
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"field": f"members.{baby['id']}.immunization_status",
                                          "message": "read-only: computed from the doses"}]
    assert await household_db.fetchval("SELECT count(*) FROM profile_versions WHERE household_id = $1",
                                       uuid.UUID(created["id"])) == 0


async def test_a_kaders_kesehatan_profile_keeps_the_computed_status(registry: httpx.AsyncClient,
                                                                    household: httpx.AsyncClient,
                                                                    household_db: asyncpg.Connection) -> None:
    posyandu = await mataram_posyandu(registry, household_db)
    kader = tokens.kader([posyandu])
    birth = ago(2, 5)
    created, baby = await family_with_baby(household, posyandu, birth)
    url = doses_url(created["id"], baby["id"])
    assert (await household.post(url, headers=kader, json={"vaccine": "bcg", "dose_number": 1, "place": "puskesmas",
                                                           "given_on": birth.isoformat()})).status_code == 201
    mother = next(m for m in created["members"] if m["relationship"] == "head")
    put = await household.put(f"/api/v1/households/{created['id']}/profiles/kesehatan", headers=kader,
                              json={"members": {mother["id"]: {"systolic_bp": 150, "diastolic_bp": 95}}})
    assert put.status_code == 201, put.text
    members = put.json()["profile"]["members"]
    assert members[baby["id"]] == {"immunization_status": "incomplete"}
    assert members[mother["id"]]["systolic_bp"] == 150


async def test_a_merged_duplicate_brings_its_doses_without_counting_one_twice(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    posyandu = await mataram_posyandu(registry, household_db)
    kader = tokens.kader([posyandu])
    birth = ago(1, 10)
    records = []
    for head in ("Baiq Sumiati", "Lalu Saprudin"):
        created = await register(household, posyandu, village_code="5271011004", members=[
            member(head, "female", date(1990, 3, 3), "head", with_nik=False),
            member("Baiq Aulia", "female", birth, "child", with_nik=False)])
        records.append((created, next(m for m in created["members"] if m["name"] == "Baiq Aulia")))
    (first, survivor), (_, duplicate) = records

    async def dose(who: tuple[dict[str, Any], dict[str, Any]], vaccine: str, given: date) -> None:
        response = await household.post(doses_url(who[0]["id"], who[1]["id"]), headers=kader, json={
            "vaccine": vaccine, "dose_number": 1, "given_on": given.isoformat(), "place": "puskesmas"})
        assert response.status_code == 201, response.text

    await dose(records[0], "bcg", birth)
    await dose(records[0], "opv", add_months(birth, 1))
    await dose(records[1], "bcg", birth + timedelta(days=2))  # the same BCG, written down by another kader
    await dose(records[1], "hb0", birth)
    flags = (await household.get("/api/v1/duplicates", headers=kader)).json()
    flag = next(f for f in flags if {f["member_id"], f["candidate_id"]} == {survivor["id"], duplicate["id"]})
    merged = await household.post(f"/api/v1/duplicates/{flag['id']}/merge", json={"survivor_id": survivor["id"]},
                                  headers=kader)
    assert merged.status_code == 200, merged.text

    listed = (await household.get(doses_url(first["id"], survivor["id"]), headers=kader)).json()
    assert sorted((d["vaccine"], d["status"]) for d in listed) == [
        ("bcg", "active"), ("bcg", "voided"), ("hb0", "active"), ("opv", "active")]
    kept = next(d for d in listed if d["vaccine"] == "bcg" and d["status"] == "active")
    assert kept["given_on"] == birth.isoformat()  # the survivor's own record of the dose wins
    profile = (await household.get(f"/api/v1/households/{first['id']}/profiles/kesehatan", headers=kader)).json()
    assert profile["profile"]["members"][survivor["id"]]["immunization_status"] == "complete-for-age"
