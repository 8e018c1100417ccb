"""Factories for household tests: the shared bodies and numbers (tests/support/factories.py), households registered
through the API, and the household import's bodies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

import httpx

from tests.support import tokens
from tests.support.factories import (  # noqa: F401  (the household tests take every factory from here)
    GAMBIR,
    household_body,
    kk_number,
    known_posyandu,
    member,
    nik,
)

#: The household import (services/household/imports): its path and content types.
URL = "/api/v1/households/import"
NDJSON = "application/x-ndjson"
CSV = "text/csv"


def row(posyandu: str, kk: str, name: str, sex: str, born: date, relationship: str, **extra: Any) -> dict[str, Any]:
    """One member row of an import file, with a NIK that agrees with the member unless one is given."""
    body = {"kk_number": kk, "village_code": GAMBIR, "posyandu_id": posyandu, "address": "Jl. Kenari No. 3",
            "rt": "001", "rw": "002", "nik": nik(born, sex), "name": name, "sex": sex,
            "birth_date": born.isoformat(), "relationship": relationship}
    body.update(extra)
    return body


def family(posyandu: str, kk: str | None = None, **extra: Any) -> list[dict[str, Any]]:
    kk = kk or kk_number()
    return [row(posyandu, kk, "Bambang", "male", date(1982, 4, 9), "head", **extra),
            row(posyandu, kk, "Dewi", "female", date(1986, 11, 23), "spouse", **extra)]


def ndjson(rows: Sequence[dict[str, Any] | str]) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode() + b"\n"


async def post_import(client: httpx.AsyncClient, body: bytes, content_type: str,
                      headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post(URL, content=body, headers={**(headers or tokens.admin()), "Content-Type": content_type},
                             timeout=600)


async def register(client: httpx.AsyncClient, posyandu_id: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/households", json=household_body(posyandu_id, **overrides),
                                 headers=tokens.kader([posyandu_id]))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
