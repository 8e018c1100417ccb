"""Factories for registry test data: unique codes, valid bodies, created through the API."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx

from tests.support import tokens

_serial = itertools.count(1)

GAMBIR = "3171011001"  # Kelurahan Gambir, Kota Administrasi Jakarta Pusat
SAMARINDA_VILLAGE = "6472011001"  # a kelurahan in Kota Samarinda
LEBAK_DESA = "3602012002"  # a desa in Kabupaten Lebak


def posyandu_body(village_code: str = GAMBIR, **overrides: Any) -> dict[str, Any]:
    n = next(_serial)
    body = {"code": f"T{village_code}-{uuid.uuid4().hex[:6].upper()}", "name": f"Posyandu Uji {n}",
            "village_code": village_code, "address": "Jl. Uji No. 1", "service_days": ["monday"]}
    body.update(overrides)
    return body


async def create_posyandu(client: httpx.AsyncClient, village_code: str = GAMBIR, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/posyandu", json=posyandu_body(village_code, **overrides),
                                 headers=tokens.admin())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def agency_body(jurisdiction_code: str, fields: list[str], level: str | None = None,
                **overrides: Any) -> dict[str, Any]:
    body = {"name": f"Dinas Uji {next(_serial)}",
            "level": level or ("province" if len(jurisdiction_code) == 2 else "regency"),
            "jurisdiction_code": jurisdiction_code, "spm_fields": fields}
    body.update(overrides)
    return body


async def create_agency(client: httpx.AsyncClient, jurisdiction_code: str, fields: list[str],
                        **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/agencies", json=agency_body(jurisdiction_code, fields, **overrides),
                                 headers=tokens.admin())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
