"""Factories for session and visit tests: a posyandu in the reserved Bali regions with a schedule the household
service has heard of, and a household of one member per life-cycle group."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx

from services.household.tests.factories import kk_number, member, nik, register
from tests.support import tokens
from tests.support.waiting import eventually

#: Reserved for the issue-14 session tests: Kota Denpasar (5171) in Bali (51), and 5172.
BALI_REGIONS = ("kode,nama\n51,Bali\n51.71,Kota Denpasar\n51.71.01,Denpasar Selatan\n51.71.01.1001,Sesetan\n"
                "51.72,Kota Uji Jadwal\n51.72.01,Uji Jadwal\n51.72.01.1001,Jadwal\n")
SESETAN, JADWAL = "5171011001", "5172011001"


async def _until(household_db: asyncpg.Connection, query: str, *args: Any, timeout: float = 60) -> None:
    async def seen() -> bool:
        return bool(await household_db.fetchval(query, *args))

    await eventually(seen, f"the household service to see: {query} {args}", timeout, interval=0.1)


async def bali_posyandu(registry: httpx.AsyncClient, household_db: asyncpg.Connection,
                        village_code: str = SESETAN) -> str:
    """A posyandu in a reserved village, known to the household service (with its region)."""
    imported = await registry.post("/api/v1/regions/import", content=BALI_REGIONS,
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    response = await registry.post("/api/v1/posyandu", headers=tokens.admin(), json={
        "code": f"P{village_code}-{uuid.uuid4().hex[:6].upper()}", "name": "Posyandu Cempaka",
        "village_code": village_code})
    assert response.status_code == 201, response.text
    posyandu = str(response.json()["id"])
    await _until(household_db, "SELECT count(*) FROM known_posyandu WHERE id = $1", uuid.UUID(posyandu))
    await _until(household_db, "SELECT count(*) FROM known_regions WHERE code = $1", village_code)
    return posyandu


async def schedule(registry: httpx.AsyncClient, household_db: asyncpg.Connection, posyandu: str,
                   body: dict[str, Any]) -> None:
    """Write a posyandu's schedule in the registry and wait until the household service holds that version."""
    response = await registry.put(f"/api/v1/posyandu/{posyandu}/schedule", json=body, headers=tokens.kader([posyandu]))
    assert response.status_code == 200, response.text
    await _until(household_db, "SELECT count(*) FROM known_schedules WHERE posyandu_id = $1 AND version = $2",
                 uuid.UUID(posyandu), response.json()["version"])


def extra_days(*days: date) -> dict[str, Any]:
    return {"rule": None, "extra_days": [{"date": d.isoformat(), "reason": "Hari buka"} for d in days]}


async def open_session(household: httpx.AsyncClient, posyandu: str, on: date) -> dict[str, Any]:
    response = await household.post("/api/v1/sessions", json={"posyandu_id": posyandu, "session_date": on.isoformat()},
                                    headers=tokens.kader([posyandu]))
    assert response.status_code == 201, response.text
    opened: dict[str, Any] = response.json()
    return opened


def years_before(on: date, years: int, months: int = 0) -> date:
    return on - timedelta(days=round(years * 365.25 + months * 30.4375))


async def life_cycle_household(household: httpx.AsyncClient, posyandu: str, on: date,
                               village_code: str = SESETAN) -> dict[str, dict[str, Any]]:
    """A household with one member per group on `on`, by role: infant, toddler, pregnant, adolescent, adult,
    elderly (their NIKs are registered in Denpasar Selatan)."""
    def person(name: str, sex: str, birth: date, relationship: str, **extra: Any) -> dict[str, Any]:
        return member(name, sex, birth, relationship, nik=nik(birth, sex, district="517101"), **extra)

    people = {
        "adult": person("Made Wirawan", "male", years_before(on, 45), "head"),
        "pregnant": person("Ni Luh Sari", "female", years_before(on, 28), "spouse", pregnant=True,
                           expected_delivery_date=(date.today() + timedelta(days=120)).isoformat()),
        "adolescent": person("Kadek Ayu", "female", years_before(on, 14), "child"),
        "toddler": person("Komang Putra", "male", years_before(on, 2, 6), "child"),
        "infant": person("Ketut Dewi", "female", years_before(on, 0, 8), "child"),
        "elderly": person("Nyoman Rai", "female", years_before(on, 67), "parent"),
    }
    created = await register(household, posyandu, village_code=village_code, kk_number=kk_number(district="517101"),
                             members=list(people.values()))
    by_name = {m["name"]: m for m in created["members"]}
    return {"household": created, **{role: by_name[body["name"]] for role, body in people.items()}}
