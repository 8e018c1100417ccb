"""Helpers for the immunisation tests: a posyandu in Kota Mataram (regency 5271, reserved for them) and a baby."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import httpx

from services.household.tests.factories import known_posyandu, member, register
from tests.support import tokens
from tests.support.waiting import eventually

AMPENAN_SELATAN = "5271011004"
AMPENAN_TENGAH = "5271011005"
#: Kota Bima (5272), the other reserved regency.
PARUGA = "5272011001"
REGIONS = ("kode,nama\n52,Nusa Tenggara Barat\n52.71,Kota Mataram\n52.71.01,Ampenan\n"
           "52.71.01.1004,Ampenan Selatan\n52.71.01.1005,Ampenan Tengah\n52.72,Kota Bima\n52.72.01,Rasanae Barat\n"
           "52.72.01.1001,Paruga\n")


async def mataram_posyandu(registry: httpx.AsyncClient, household_db: asyncpg.Connection,
                           village: str = AMPENAN_SELATAN) -> str:
    """A posyandu in a reserved regency, once the household service knows its village."""
    imported = await registry.post("/api/v1/regions/import", content=REGIONS,
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text

    async def known() -> bool:
        return bool(await household_db.fetchval("SELECT count(*) FROM known_regions WHERE code = $1", village))

    await eventually(known, "the household service to learn the region", timeout=60)
    return await known_posyandu(registry, household_db, village)


def nik_of(birth: date, sex: str) -> str:
    from services.household.tests.factories import nik

    return nik(birth, sex, district="527101")


async def family_with_baby(household: httpx.AsyncClient, posyandu: str, birth: date,
                           village: str = AMPENAN_SELATAN) -> tuple[dict[str, Any], dict[str, Any]]:
    """A household with a mother and a baby born on `birth`; returns (household, baby)."""
    created = await register(household, posyandu, village_code=village, members=[
        member("Baiq Nurul", "female", date(1994, 2, 11), "head", nik=nik_of(date(1994, 2, 11), "female")),
        member("Lalu Arya", "male", birth, "child", nik=nik_of(birth, "male"))])
    baby = next(m for m in created["members"] if m["name"] == "Lalu Arya")
    return created, baby


def doses_url(household_id: str, member_id: str) -> str:
    return f"/api/v1/households/{household_id}/members/{member_id}/immunizations"
