"""Factories more than one test tree needs: valid NIK and KK numbers, request bodies, and objects made in one service
that another service must have heard of before a test goes on.

A service's own tests take these through their `services/<svc>/tests/factories.py` (which adds that service's own
factories); the cross-service tests in `tests/` import them from here. No test tree imports another's factories.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import date
from typing import Any

import asyncpg
import httpx

from tests.support import tokens
from tests.support.waiting import eventually

#: Kelurahan Gambir, Kota Administrasi Jakarta Pusat: the default village of a body.
GAMBIR = "3171011001"

#: One counter for every number made here, so no two NIK or KK numbers of a test session are alike.
_serial = itertools.count(1)


def nik(birth_date: date, sex: str, district: str = "317101") -> str:
    """A valid NIK: district, birth day (plus 40 for a woman), month and year, then a serial."""
    day = birth_date.day + (40 if sex == "female" else 0)
    return f"{district}{day:02d}{birth_date:%m%y}{next(_serial) % 10000 or 1:04d}"


def kk_number(issued: date = date(2019, 5, 14), district: str = "317101") -> str:
    """A valid family card (KK) number: district, day of issue, then a serial."""
    return f"{district}{issued:%d%m%y}{next(_serial) % 10000 or 1:04d}"


def member(name: str, sex: str, birth_date: date, relationship: str, *, with_nik: bool = True,
           **extra: Any) -> dict[str, Any]:
    """A household member's body, with a fresh NIK unless `with_nik` is false or one is given."""
    body: dict[str, Any] = {"name": name, "sex": sex, "birth_date": birth_date.isoformat(),
                            "relationship": relationship, **extra}
    if with_nik and "nik" not in body:
        body["nik"] = nik(birth_date, sex)
    return body


def household_body(posyandu_id: str, village_code: str = GAMBIR, **overrides: Any) -> dict[str, Any]:
    """A household's registration body: a couple at a Gambir address."""
    body: dict[str, Any] = {
        "kk_number": kk_number(), "village_code": village_code, "posyandu_id": posyandu_id,
        "address": "Jl. Kebon Sirih No. 5", "rt": "003", "rw": "007",
        "members": [member("Ahmad Fauzi", "male", date(1985, 3, 12), "head"),
                    member("Siti Aminah", "female", date(1988, 7, 2), "spouse")],
    }
    body.update(overrides)
    return body


def posyandu_body(village_code: str = GAMBIR, **overrides: Any) -> dict[str, Any]:
    """A posyandu's registration body in the registry, with a unique code."""
    body = {"code": f"T{village_code}-{uuid.uuid4().hex[:6].upper()}", "name": f"Posyandu Uji {next(_serial)}",
            "village_code": village_code, "address": "Jl. Uji No. 1", "service_days": ["monday"]}
    body.update(overrides)
    return body


async def create_posyandu(registry: httpx.AsyncClient, village_code: str = GAMBIR, **overrides: Any) -> dict[str, Any]:
    """A posyandu registered in the registry (nobody else need have heard of it)."""
    response = await registry.post("/api/v1/posyandu", json=posyandu_body(village_code, **overrides),
                                   headers=tokens.admin())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def known_posyandu(registry: httpx.AsyncClient, household_db: asyncpg.Connection,
                         village_code: str = GAMBIR) -> str:
    """A posyandu registered in the registry, once the household service knows it (households can register there)."""
    response = await registry.post("/api/v1/posyandu", headers=tokens.admin(), json={
        "code": f"K{village_code}-{uuid.uuid4().hex[:6].upper()}", "name": "Posyandu Kenanga",
        "village_code": village_code})
    assert response.status_code == 201, response.text
    posyandu_id = uuid.UUID(response.json()["id"])

    async def known() -> bool:
        return bool(await household_db.fetchval("SELECT count(*) FROM known_posyandu WHERE id = $1", posyandu_id))

    await eventually(known, "the household service to learn the posyandu")
    return str(posyandu_id)


async def known_agency(registry: httpx.AsyncClient, service_db: asyncpg.Connection, jurisdiction_code: str,
                       fields: list[str]) -> str:
    """An agency registered in the registry, once the service whose database `service_db` is knows it (the referral
    service routes referrals to it; the household service checks beneficiary lists against it)."""
    response = await registry.post("/api/v1/agencies", headers=tokens.admin(), json={
        "name": f"Dinas Rujukan {next(_serial)}", "level": "province" if len(jurisdiction_code) == 2 else "regency",
        "jurisdiction_code": jurisdiction_code, "spm_fields": fields})
    assert response.status_code == 201, response.text
    agency_id = uuid.UUID(response.json()["id"])

    async def known() -> bool:
        return bool(await service_db.fetchval("SELECT count(*) FROM known_agencies WHERE id = $1", agency_id))

    await eventually(known, "the service to learn the agency")
    return str(agency_id)


async def known_household(household: httpx.AsyncClient, referral_db: asyncpg.Connection, posyandu_id: str,
                          village_code: str) -> dict[str, Any]:
    """A household with its head registered in the household service, once the referral service knows both."""
    district = village_code[:6]
    head = member("Budi Santoso", "male", date(1984, 2, 11), "head", nik=nik(date(1984, 2, 11), "male", district))
    response = await household.post("/api/v1/households", headers=tokens.kader([posyandu_id]), json={
        "kk_number": kk_number(district=district), "village_code": village_code, "posyandu_id": posyandu_id,
        "address": "Jl. Melati No. 3", "rt": "001", "rw": "002", "members": [head]})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    member_id, household_id = uuid.UUID(created["members"][0]["id"]), uuid.UUID(created["id"])

    async def known() -> bool:
        return bool(await referral_db.fetchval("SELECT count(*) FROM known_members WHERE id = $1", member_id)
                    and await referral_db.fetchval("SELECT count(*) FROM known_households WHERE id = $1",
                                                   household_id))

    await eventually(known, "the referral service to learn the household")
    return created


async def create_referral(referral: httpx.AsyncClient, created_household: dict[str, Any], *, spm_field: str,
                          category: str, member: bool = True, draft: bool = False,
                          **overrides: Any) -> dict[str, Any]:
    """A referral of the household (of its first member unless `member` is false), raised by its kader."""
    body: dict[str, Any] = {"household_id": created_household["id"], "spm_field": spm_field, "category": category,
                            "reason": "Batuk lebih dari dua minggu", "draft": draft}
    if member:
        body["member_id"] = created_household["members"][0]["id"]
    body.update(overrides)
    response = await referral.post("/api/v1/referrals", json=body,
                                   headers=tokens.kader([created_household["posyandu_id"]]))
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made
