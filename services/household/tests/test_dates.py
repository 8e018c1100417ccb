"""Dates the household service takes: none in the future (beyond a day of clock skew) or before a plausible floor,
none before the birth of the member they are about; over the API and per row in the bulk import."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.household.tests.factories import household_body, kk_number, known_posyandu, member, register
from tests.support import tokens

TODAY = date.today()
TOMORROW = TODAY + timedelta(days=1)
LATER = TODAY + timedelta(days=2)


def problem_fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in response.json()["errors"]]


@pytest.fixture
async def posyandu(registry: httpx.AsyncClient, household_db: asyncpg.Connection) -> str:
    return await known_posyandu(registry, household_db)


def future_kk() -> str:
    """A KK number dated tomorrow next year: it can only be read as issued in the future, or a century ago."""
    return kk_number(date(TODAY.year - 99, 1, 1) if TODAY.year % 100 == 99 else TODAY.replace(
        year=TODAY.year + 1, day=min(TODAY.day, 28)))


@pytest.mark.parametrize("born", [LATER, date(1, 1, 1), date(1899, 12, 31)], ids=["future", "year-1", "before-1900"])
async def test_an_impossible_birth_date_is_refused_everywhere(household: httpx.AsyncClient, posyandu: str,
                                                              born: date) -> None:
    kader = tokens.kader([posyandu])
    bad = member("Ani", "female", born, "child", with_nik=False)
    created = await household.post("/api/v1/households", json=household_body(posyandu, members=[bad]), headers=kader)
    assert problem_fields(created) == ["body.members.0.birth_date"]
    existing = await register(household, posyandu)
    url = f"/api/v1/households/{existing['id']}/members"
    assert problem_fields(await household.post(url, json=bad, headers=kader)) == ["body.birth_date"]
    head = existing["members"][0]
    updated = await household.patch(f"{url}/{head['id']}", json={"birth_date": born.isoformat()}, headers=kader)
    assert problem_fields(updated) == ["body.birth_date"]


async def test_a_birth_today_or_tomorrow_is_accepted(household: httpx.AsyncClient, posyandu: str) -> None:
    """Tomorrow too: the server's date may be behind a kader's in WIT (UTC+9)."""
    created = await register(household, posyandu, members=[member("Dewi", "female", date(1990, 1, 1), "head"),
                                                           member("Bayi", "female", TODAY, "child"),
                                                           member("Bayu", "male", TOMORROW, "child")])
    assert sorted(m["birth_date"] for m in created["members"])[-2:] == [TODAY.isoformat(), TOMORROW.isoformat()]


async def test_a_kk_number_issued_in_the_future_is_refused(household: httpx.AsyncClient, posyandu: str) -> None:
    kader = tokens.kader([posyandu])
    kk = future_kk()
    created = await household.post("/api/v1/households", json=household_body(posyandu, kk_number=kk), headers=kader)
    assert problem_fields(created) == ["kk_number"]
    assert "future" in created.json()["errors"][0]["message"]
    existing = await register(household, posyandu)
    updated = await household.patch(f"/api/v1/households/{existing['id']}", json={"kk_number": kk}, headers=kader)
    assert problem_fields(updated) == ["kk_number"]


@pytest.mark.parametrize("expected", [TODAY + timedelta(days=320), TODAY - timedelta(days=100)],
                         ids=["too-far-ahead", "long-past"])
async def test_an_implausible_expected_delivery_date_is_refused(household: httpx.AsyncClient, posyandu: str,
                                                                expected: date) -> None:
    mother = member("Rina", "female", date(1995, 5, 5), "spouse", pregnant=True,
                    expected_delivery_date=expected.isoformat())
    response = await household.post("/api/v1/households", json=household_body(posyandu, members=[mother]),
                                    headers=tokens.kader([posyandu]))
    assert problem_fields(response) == ["body.members.0.expected_delivery_date"]


async def test_profile_observations_are_not_in_the_future_nor_before_the_member(
        household: httpx.AsyncClient, posyandu: str) -> None:
    kader = tokens.kader([posyandu])
    baby_born = TODAY - timedelta(days=100)
    created = await register(household, posyandu, members=[member("Dewi", "female", date(1990, 1, 1), "head"),
                                                           member("Bayi", "female", baby_born, "child")])
    url = f"/api/v1/households/{created['id']}/profiles"
    housing = {"household": {"floor_area_m2": 36, "occupants": 3}}
    for observed in ("9999-01-01", LATER.isoformat(), "1899-12-31", "0001-01-01"):
        response = await household.put(f"{url}/perumahan-rakyat", params={"observed_on": observed}, json=housing,
                                       headers=kader)
        assert problem_fields(response) == ["observed_on"], observed
    accepted = await household.put(f"{url}/perumahan-rakyat", params={"observed_on": TOMORROW.isoformat()},
                                   json=housing, headers=kader)
    assert accepted.status_code == 201, accepted.text
    baby = next(m for m in created["members"] if m["name"] == "Bayi")
    health = {"members": {baby["id"]: {"health_insurance": "jkn-pbi"}}}
    before_birth = await household.put(f"{url}/kesehatan", json=health, headers=kader,
                                       params={"observed_on": (baby_born - timedelta(days=1)).isoformat()})
    assert problem_fields(before_birth) == [f"members.{baby['id']}"]


async def test_measurements_are_not_in_the_future_and_births_not_after_them(
        household: httpx.AsyncClient, posyandu: str) -> None:
    kader = tokens.kader([posyandu])
    born = TODAY - timedelta(days=200)
    created = await register(household, posyandu, members=[member("Dewi", "female", date(1990, 1, 1), "head"),
                                                           member("Nia", "female", born, "child")])
    nia = next(m for m in created["members"] if m["name"] == "Nia")
    url = f"/api/v1/households/{created['id']}/members/{nia['id']}"
    too_late = await household.post(f"{url}/measurements", json={"measured_on": LATER.isoformat(), "weight_kg": 7.0},
                                    headers=kader)
    assert problem_fields(too_late) == ["body.measured_on"]
    measured = TODAY - timedelta(days=30)
    for day in (TOMORROW, measured):
        ok = await household.post(f"{url}/measurements", json={"measured_on": day.isoformat(), "weight_kg": 7.0},
                                  headers=kader)
        assert ok.status_code == 201, ok.text
    # A later birth date would put the recorded measurements before the birth.
    moved_birth = await household.patch(url, json={"birth_date": (measured + timedelta(days=1)).isoformat()},
                                        headers=kader)
    assert problem_fields(moved_birth) == ["body.birth_date"]


async def test_the_import_applies_the_same_rules_per_row(household: httpx.AsyncClient, posyandu: str,
                                                         household_db: asyncpg.Connection) -> None:
    def row(kk: str, name: str, born: date, **extra: Any) -> dict[str, Any]:
        return {"kk_number": kk, "village_code": "3171011001", "posyandu_id": posyandu, "name": name,
                "sex": "female", "birth_date": born.isoformat(), "relationship": "head", **extra}

    good, bad_birth, bad_kk = kk_number(), kk_number(), future_kk()
    rows = [row(good, "Ani", date(1990, 2, 2)),
            row(bad_birth, "Budi", date(1991, 3, 3)), row(bad_birth, "Cici", LATER, relationship="child"),
            row(bad_kk, "Dodi", date(1992, 4, 4))]
    body = "\n".join(json.dumps(r) for r in rows).encode()
    response = await household.post("/api/v1/households/import", content=body,
                                    headers={**tokens.kader([posyandu]), "Content-Type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["households_imported"], report["households_rejected"]) == (1, 2)
    errors = {(e["row"], e["field"]) for e in report["errors"]}
    assert {(3, "birth_date"), (4, "kk_number")} <= errors
    assert await household_db.fetchval("SELECT count(*) FROM households WHERE kk_number = ANY($1)",
                                       [bad_birth, bad_kk]) == 0
    assert await household_db.fetchval("SELECT count(*) FROM households WHERE kk_number = $1", good) == 1
