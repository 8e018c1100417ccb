"""Factories for registry test data: unique codes, valid bodies, created through the API (the posyandu's are shared
with other test trees: tests/support/factories.py)."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import asyncpg
import httpx

from tests.support import tokens
from tests.support.factories import GAMBIR, create_posyandu, posyandu_body  # noqa: F401  (the registry tests' factories)

_serial = itertools.count(1)

SAMARINDA_VILLAGE = "6472011001"  # a kelurahan in Kota Samarinda
LEBAK_DESA = "3602012002"  # a desa in Kabupaten Lebak


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


#: Programmes (issue 15). Reserved for their tests: Kabupaten Jembrana (5101) and Kabupaten Tabanan (5102) in Bali (51).
BALI_REGIONS = ("kode,nama\n51,Bali\n51.01,Kabupaten Jembrana\n51.01.01,Negara\n51.01.01.2001,Baler Bale Agung\n"
                "51.01.01.2002,Banjar Tengah\n51.02,Kabupaten Tabanan\n51.02.01,Selemadeg\n"
                "51.02.01.2001,Antap\n")
JEMBRANA, TABANAN = "5101", "5102"
BALER_BALE_AGUNG, BANJAR_TENGAH, ANTAP = "5101012001", "5101012002", "5102012001"


async def bali(registry: httpx.AsyncClient) -> None:
    imported = await registry.post("/api/v1/regions/import", content=BALI_REGIONS,
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text


def programme_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"PMT Balita Jembrana {uuid.uuid4().hex[:6]}", "spm_field": "kesehatan",
        "service_type": "kesehatan.kab.balita", "region_codes": [BALER_BALE_AGUNG, BANJAR_TENGAH],
        "period_start": "2027-01-01", "period_end": "2027-06-30",
        "budget": [{"source": "apbd-regency", "amount": 500_000_000}, {"source": "csr", "amount": 50_000_000}],
        "outputs": [{"code": "pmt-packages", "name": "Paket PMT lokal", "unit": "paket", "target": 2000},
                    {"code": "kelas-ibu", "name": "Kelas ibu balita", "unit": "kelas", "target": 12}]}
    body.update(overrides)
    return body


async def jembrana_agency(registry: httpx.AsyncClient, fields: list[str] | None = None,
                          jurisdiction: str = JEMBRANA, **overrides: Any) -> dict[str, Any]:
    await bali(registry)
    return await create_agency(registry, jurisdiction, fields or ["kesehatan"], **overrides)


def opd_of(agency: dict[str, Any]) -> dict[str, str]:
    return tokens.opd(agency["id"], agency["spm_fields"])


async def create_programme(registry: httpx.AsyncClient, agency: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    response = await registry.post("/api/v1/programmes", json=programme_body(**overrides), headers=opd_of(agency))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def events_of(db: asyncpg.Connection, key: str) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT payload FROM outbox WHERE key = $1 ORDER BY id", key)
    return [json.loads(row["payload"]) for row in rows]
