"""Factories for household tests: valid NIK/KK numbers, bodies, and posyandu the service has heard of."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from datetime import date
from typing import Any

import asyncpg
import httpx

from tests.support import tokens

GAMBIR = "3171011001"
_serial = itertools.count(1)


def nik(birth_date: date, sex: str, district: str = "317101") -> str:
    day = birth_date.day + (40 if sex == "female" else 0)
    return f"{district}{day:02d}{birth_date:%m%y}{next(_serial) % 10000 or 1:04d}"


def kk_number(issued: date = date(2019, 5, 14), district: str = "317101") -> str:
    return f"{district}{issued:%d%m%y}{next(_serial) % 10000 or 1:04d}"


def member(name: str, sex: str, birth_date: date, relationship: str, *, with_nik: bool = True,
           **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "sex": sex, "birth_date": birth_date.isoformat(),
                            "relationship": relationship, **extra}
    if with_nik and "nik" not in body:
        body["nik"] = nik(birth_date, sex)
    return body


def household_body(posyandu_id: str, village_code: str = GAMBIR, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kk_number": kk_number(), "village_code": village_code, "posyandu_id": posyandu_id,
        "address": "Jl. Kebon Sirih No. 5", "rt": "003", "rw": "007",
        "members": [member("Ahmad Fauzi", "male", date(1985, 3, 12), "head"),
                    member("Siti Aminah", "female", date(1988, 7, 2), "spouse")],
    }
    body.update(overrides)
    return body


async def known_posyandu(registry: httpx.AsyncClient, household_db: asyncpg.Connection,
                         village_code: str = GAMBIR) -> str:
    """Register a posyandu in the registry and wait until the household service has consumed its event."""
    code = f"H{village_code}-{uuid.uuid4().hex[:6].upper()}"
    response = await registry.post("/api/v1/posyandu", json={"code": code, "name": "Posyandu Kenanga",
                                                              "village_code": village_code},
                                   headers=tokens.admin())
    assert response.status_code == 201, response.text
    posyandu_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while not await household_db.fetchval("SELECT count(*) FROM known_posyandu WHERE id = $1",
                                          uuid.UUID(posyandu_id)):
        assert time.monotonic() < deadline, "the household service never heard of the posyandu"
        await asyncio.sleep(0.1)
    return str(posyandu_id)


async def register(client: httpx.AsyncClient, posyandu_id: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/households", json=household_body(posyandu_id, **overrides),
                                 headers=tokens.kader([posyandu_id]))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
