"""Child measurements through the API: WHO z-scores and classes stored, growth needs detected and resolved."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import asyncpg
import httpx

from services.household.growth import assess
from services.household.tests.factories import known_posyandu, member, register
from tests.support import tokens


def months_ago(today: date, months: int) -> date:
    return today - timedelta(days=round(months * 30.4375))


async def test_measurement_scores_classes_and_growth_needs(registry: httpx.AsyncClient,
                                                           household: httpx.AsyncClient,
                                                           household_db: asyncpg.Connection) -> None:
    posyandu = await known_posyandu(registry, household_db)
    today = date.today()
    birth = months_ago(today, 30)
    created = await register(household, posyandu, members=[
        member("Dewi", "female", date(1992, 4, 4), "head"), member("Bima", "male", birth, "child")])
    bima = next(m for m in created["members"] if m["name"] == "Bima")
    url = f"/api/v1/households/{created['id']}/members/{bima['id']}/measurements"
    kader = tokens.kader([posyandu])

    # Short for his age and thin for his height: stunted and severely wasted.
    body = {"measured_on": today.isoformat(), "weight_kg": 8.2, "length_height_cm": 82.0, "measured_lying": False}
    response = await household.post(url, json=body, headers=kader)
    assert response.status_code == 201, response.text
    recorded = response.json()
    expected = assess(sex="male", birth_date=birth, measured_on=today, weight_kg=8.2, length_height_cm=82.0,
                      measured_lying=False)
    assert (recorded["waz"], recorded["haz"], recorded["whz"]) == (expected.waz, expected.haz, expected.whz)
    assert recorded["haz_class"] == "stunted" and recorded["whz_class"] == "severely-wasted"
    assert recorded["kms_signal"] == "B"  # first weighing

    needs = {n["category"]: n for n in
             (await household.get(f"/api/v1/households/{created['id']}/needs", headers=kader)).json()}
    assert needs["kesehatan.stunting"]["member_id"] == bima["id"]
    assert needs["kesehatan.severe-malnutrition"]["urgency"] == "emergency"

    # A healthy measurement a month later clears the wasting (stunting is about height: it stays).
    better = {"measured_on": today.isoformat(), "weight_kg": 11.5, "length_height_cm": 82.5, "measured_lying": False}
    assert (await household.post(url, json=better, headers=kader)).status_code == 201
    after = {n["category"] for n in
             (await household.get(f"/api/v1/households/{created['id']}/needs", headers=kader)).json()}
    assert "kesehatan.severe-malnutrition" not in after and "kesehatan.stunting" in after
    listed = (await household.get(url, headers=kader)).json()
    assert len(listed) == 2


async def test_bad_measurements_are_refused(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                                            household_db: asyncpg.Connection) -> None:
    posyandu = await known_posyandu(registry, household_db)
    created = await register(household, posyandu)
    adult = created["members"][0]
    kader = tokens.kader([posyandu])
    url = f"/api/v1/households/{created['id']}/members/{adult['id']}/measurements"
    too_old = await household.post(url, json={"measured_on": date.today().isoformat(), "weight_kg": 60.0},
                                   headers=kader)
    assert too_old.status_code == 422
    for body in ({"measured_on": date.today().isoformat()},
                 {"measured_on": date.today().isoformat(), "length_height_cm": 80.0},
                 {"measured_on": date.today().isoformat(), "weight_kg": -1},
                 {"measured_on": (date.today() + timedelta(days=3)).isoformat(), "weight_kg": 9.0}):
        response = await household.post(url, json=body, headers=kader)
        assert response.status_code == 422, body
    other = await household.post(url, json={"measured_on": date.today().isoformat(), "weight_kg": 9.0},
                                 headers=tokens.kader([uuid.uuid4()]))
    assert other.status_code == 404
