"""Factories for referral tests: agencies, posyandu and households the referral service has heard of, referrals.

Each test module uses its own regency (and field) so that the agencies other tests register never route its
referrals.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

import asyncpg
import httpx

from tests.support import tokens

T = TypeVar("T")

CENGKARENG_BARAT = "3173011001"  # Kota Administrasi Jakarta Barat
TEBET_TIMUR = "3174011001"  # Kota Administrasi Jakarta Selatan
PISANGAN_BARU = "3175011001"  # Kota Administrasi Jakarta Timur
RAWA_MAKMUR = "6472011001"  # Kota Samarinda, Kalimantan Timur

_serial = itertools.count(1)


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 240) -> T:
    """Poll `check` until it returns something (events are consumed asynchronously). The bound is generous: the
    household service's import tests put some 10,000 households on the session's household topic, which the
    referral consumer works through before it sees the next test's events."""
    deadline = time.monotonic() + timeout
    while (found := await check()) is None or found is False:
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return found


def nik(birth_date: date, sex: str, district: str = "317401") -> str:
    day = birth_date.day + (40 if sex == "female" else 0)
    return f"{district}{day:02d}{birth_date:%m%y}{(next(_serial) + 5000) % 10000 or 1:04d}"


def kk_number(district: str = "317401") -> str:
    return f"{district}140519{(next(_serial) + 5000) % 10000 or 1:04d}"


async def known_agency(registry: httpx.AsyncClient, referral_db: asyncpg.Connection, jurisdiction_code: str,
                 fields: list[str]) -> str:
    """Register an agency in the registry and wait until the referral service knows it."""
    response = await registry.post("/api/v1/agencies", headers=tokens.admin(), json={
        "name": f"Dinas Rujukan {next(_serial)}", "level": "province" if len(jurisdiction_code) == 2 else "regency",
        "jurisdiction_code": jurisdiction_code, "spm_fields": fields})
    assert response.status_code == 201, response.text
    agency_id = uuid.UUID(response.json()["id"])

    async def known() -> bool:
        return bool(await referral_db.fetchval("SELECT count(*) FROM known_agencies WHERE id = $1", agency_id))

    await eventually(known, "the referral service to learn the agency")
    return str(agency_id)


async def known_posyandu(registry: httpx.AsyncClient, household_db: asyncpg.Connection, village_code: str) -> str:
    """Register a posyandu and wait until the household service knows it (so households can register there)."""
    response = await registry.post("/api/v1/posyandu", headers=tokens.admin(), json={
        "code": f"R{village_code}-{uuid.uuid4().hex[:6].upper()}", "name": "Posyandu Melati",
        "village_code": village_code})
    assert response.status_code == 201, response.text
    posyandu_id = uuid.UUID(response.json()["id"])

    async def known() -> bool:
        return bool(await household_db.fetchval("SELECT count(*) FROM known_posyandu WHERE id = $1", posyandu_id))

    await eventually(known, "the household service to learn the posyandu")
    return str(posyandu_id)


async def known_household(household_client: httpx.AsyncClient, referral_db: asyncpg.Connection, posyandu_id: str,
                    village_code: str) -> dict[str, Any]:
    """Register a household with a member in the household service; wait until the referral service knows both."""
    district = village_code[:6]
    head = {"name": "Budi Santoso", "sex": "male", "birth_date": "1984-02-11", "relationship": "head",
            "nik": nik(date(1984, 2, 11), "male", district)}
    response = await household_client.post("/api/v1/households", headers=tokens.kader([posyandu_id]), json={
        "kk_number": kk_number(district), "village_code": village_code, "posyandu_id": posyandu_id,
        "address": "Jl. Melati No. 3", "rt": "001", "rw": "002", "members": [head]})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    member_id = uuid.UUID(created["members"][0]["id"])

    async def known() -> bool:
        return bool(await referral_db.fetchval("SELECT count(*) FROM known_members WHERE id = $1", member_id)
                    and await referral_db.fetchval("SELECT count(*) FROM known_households WHERE id = $1",
                                                   uuid.UUID(created["id"])))

    await eventually(known, "the referral service to learn the household")
    return created


async def create_referral(client: httpx.AsyncClient, created_household: dict[str, Any], *, spm_field: str,
                          category: str, member: bool = True, draft: bool = False,
                          **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"household_id": created_household["id"], "spm_field": spm_field, "category": category,
                            "reason": "Batuk lebih dari dua minggu", "draft": draft}
    if member:
        body["member_id"] = created_household["members"][0]["id"]
    body.update(overrides)
    response = await client.post("/api/v1/referrals", json=body,
                                 headers=tokens.kader([created_household["posyandu_id"]]))
    assert response.status_code == 201, response.text
    referral: dict[str, Any] = response.json()
    return referral


async def outbox_types(referral_db: asyncpg.Connection, referral_id: str) -> list[str]:
    """The event types written for a referral, in order."""
    rows = await referral_db.fetch("SELECT event_type FROM outbox WHERE key = $1 ORDER BY id", referral_id)
    return [r["event_type"] for r in rows]
