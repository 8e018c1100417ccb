"""The schedule's admin API (versions read and added, validated) and the dose events on the household topic."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from conftest import Stack
from services.household.immunization.schedule import add_months
from services.household.tests.immunization_support import doses_url, family_with_baby, mataram_posyandu
from tests.support import tokens
from tests.support.kafka import events_about, read_topic

SCHEDULE = "/api/v1/immunization/schedule"
#: Far enough ahead that no other test computes a status under it; removed again after the test.
FUTURE = date(2090, 1, 1)


def version_body(label: str, valid_from: date, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"version": label, "valid_from": valid_from.isoformat(), "source": "Surat Edaran uji",
            "rows": rows if rows is not None else [
                {"vaccine": "bcg", "name": "BCG", "cvx": "19", "dose": 1, "due_age": "0d", "overdue_age": "1m"}]}


@pytest.fixture
async def future_versions_removed(household_db: asyncpg.Connection) -> AsyncIterator[None]:
    yield
    await household_db.execute("DELETE FROM immunization_schedule_versions WHERE valid_from >= $1", FUTURE)


async def test_the_national_versions_are_seeded_and_listed(household: httpx.AsyncClient) -> None:
    response = await household.get(SCHEDULE, headers=tokens.kader([]))
    assert response.status_code == 200, response.text
    versions = {v["version"]: v for v in response.json()}
    assert {"permenkes-12-2017", "kemenkes-2023"} <= set(versions)
    current = versions["kemenkes-2023"]
    assert current["valid_from"] == "2023-01-01" and current["created_by"] == "schedule.csv"
    doses = {(r["vaccine"], r["dose"]) for r in current["rows"]}
    assert {("hb0", 1), ("bcg", 1), ("opv", 4), ("dpt-hb-hib", 4), ("ipv", 2), ("pcv", 3), ("rotavirus", 3),
            ("mr", 2)} <= doses
    assert next(r for r in current["rows"] if r["vaccine"] == "je")["regions"] == ["51"]


async def test_a_new_version_applies_from_its_start_date_only(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection,
        future_versions_removed: None) -> None:
    posyandu = await mataram_posyandu(registry, household_db)
    kader = tokens.kader([posyandu])
    birth = add_months(date.today(), -2)
    created, baby = await family_with_baby(household, posyandu, birth)
    url = doses_url(created["id"], baby["id"])
    assert (await household.post(url, headers=kader, json={"vaccine": "bcg", "dose_number": 1, "place": "posyandu",
                                                           "given_on": birth.isoformat()})).status_code == 201

    added = await household.post(SCHEDULE, headers=tokens.admin(), json=version_body("uji-2090", FUTURE))
    assert added.status_code == 201, added.text
    assert added.json()["rows"][0]["vaccine"] == "bcg"

    async def status_on(day: date) -> dict[str, Any]:
        response = await household.get(f"{url}/status", headers=kader, params={"on": day.isoformat()})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    # Today and the day before the new version: the 2023 schedule, under which much is missing by then.
    assert (await status_on(date.today()))["schedule_version"] == "kemenkes-2023"
    before = await status_on(FUTURE - timedelta(days=1))
    assert (before["schedule_version"], before["status"]) == ("kemenkes-2023", "incomplete")
    # From its first day only BCG is asked for, which the child had.
    for day in (FUTURE, FUTURE + timedelta(days=1)):
        on = await status_on(day)
        assert (on["schedule_version"], on["status"], on["overdue"]) == ("uji-2090", "complete-for-age", []), day


@pytest.mark.parametrize(("body", "status", "field"), [
    (version_body("uji-past", date.today() - timedelta(days=1)), 422, "valid_from"),
    (version_body("uji-gap", FUTURE, [
        {"vaccine": "opv", "name": "OPV", "dose": 1, "due_age": "1m", "overdue_age": "2m"},
        {"vaccine": "opv", "name": "OPV", "dose": 3, "due_age": "3m", "overdue_age": "4m"}]), 422, "body.rows"),
    (version_body("uji-age", FUTURE, [
        {"vaccine": "opv", "name": "OPV", "dose": 1, "due_age": "1 month", "overdue_age": "2m"}]), 422,
     "body.rows.0.due_age"),
    (version_body("kemenkes-2023", FUTURE), 409, None),
])
async def test_bad_versions_are_refused(body: dict[str, Any], status: int, field: str | None,
                                        household: httpx.AsyncClient, household_db: asyncpg.Connection,
                                        future_versions_removed: None) -> None:
    before = await household_db.fetchval("SELECT count(*) FROM immunization_schedule_versions")
    response = await household.post(SCHEDULE, headers=tokens.admin(), json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert await household_db.fetchval("SELECT count(*) FROM immunization_schedule_versions") == before


async def test_a_version_must_start_after_the_latest_and_only_admins_add(
        household: httpx.AsyncClient, household_db: asyncpg.Connection, future_versions_removed: None) -> None:
    assert (await household.post(SCHEDULE, headers=tokens.kader([]),
                                 json=version_body("uji-kader", FUTURE))).status_code == 403
    assert (await household.post(SCHEDULE, headers=tokens.admin(),
                                 json=version_body("uji-2091", FUTURE + timedelta(days=365)))).status_code == 201
    earlier = await household.post(SCHEDULE, headers=tokens.admin(), json=version_body("uji-2090b", FUTURE))
    assert earlier.status_code == 422
    assert earlier.json()["errors"] == [{"field": "valid_from", "message": "is not after 2091-01-01"}]


async def test_dose_events_carry_the_computed_status_and_no_nik(
        registry: httpx.AsyncClient, household: httpx.AsyncClient, household_db: asyncpg.Connection,
        stack: Stack) -> None:
    posyandu = await mataram_posyandu(registry, household_db)
    kader = tokens.kader([posyandu])
    birth = add_months(date.today(), -1) - timedelta(days=3)
    created, baby = await family_with_baby(household, posyandu, birth)
    url = doses_url(created["id"], baby["id"])
    body = {"vaccine": "hb0", "dose_number": 1, "given_on": birth.isoformat(), "place": "elsewhere",
            "lot_number": "HB0-77"}
    first = await household.post(url, headers={**kader, "Idempotency-Key": "hb0-once"}, json=body)
    replay = await household.post(url, headers={**kader, "Idempotency-Key": "hb0-once"}, json=body)
    assert first.status_code == replay.status_code == 201 and first.json()["id"] == replay.json()["id"]
    bcg = (await household.post(url, headers=kader, json={**body, "vaccine": "bcg", "lot_number": None})).json()
    voided = await household.post(f"{url}/{bcg['id']}/void", headers=kader, json={"reason": "entered twice"})
    assert voided.status_code == 200

    received = await read_topic(stack.broker.bootstrap_servers, "posyandu.household.v1", until=lambda rs: any(
        e.type == "posyandu.immunization.voided.v1" for e in events_about(rs, created["id"])))
    events = [e for e in events_about(received, created["id"]) if e.type.startswith("posyandu.immunization.")]
    assert [(e.type, e.data["vaccine"], e.data["immunization_status"]) for e in events] == [
        ("posyandu.immunization.recorded.v1", "hb0", "incomplete"),  # BCG overdue at one month
        ("posyandu.immunization.recorded.v1", "bcg", "complete-for-age"),
        ("posyandu.immunization.voided.v1", "bcg", "incomplete")]
    assert events[0].data["age_days"] == 0 and events[0].data["schedule_version"] == "kemenkes-2023"
    assert all(e.regioncode == created["village_code"] for e in events)
    # The profile events publish the status too (reporting reads them); no event carries the full NIK.
    profiles = [e for e in events_about(received, created["id"]) if e.type == "posyandu.profile.updated.v1"]
    assert [p.data["profile"]["members"][baby["id"]]["immunization_status"] for p in profiles] == [
        "incomplete", "complete-for-age", "incomplete"]
    assert all(baby["nik"] not in json.dumps(e.data) for e in events_about(received, created["id"]))
