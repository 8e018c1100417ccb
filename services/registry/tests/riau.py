"""Test data in the regions reserved for the issue-17 registry tests: Kabupaten Kampar (1401) and Kabupaten Indragiri
Hulu (1402) in Riau (14), with one village each, imported through the registry's region import."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support import tokens

RIAU_REGIONS = ("kode,nama\n14,Riau\n14.01,Kabupaten Kampar\n14.01.01,Uji Kampar\n14.01.01.2001,Desa Uji Kampar\n"
                "14.02,Kabupaten Indragiri Hulu\n14.02.01,Uji Inhu\n14.02.01.2001,Desa Uji Inhu\n")
KAMPAR, INHU = "1401", "1402"
KAMPAR_DESA, INHU_DESA = "1401012001", "1402012001"


async def riau(registry: httpx.AsyncClient) -> None:
    imported = await registry.post("/api/v1/regions/import", content=RIAU_REGIONS,
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text


def posyandu_body(village_code: str = KAMPAR_DESA, **overrides: Any) -> dict[str, Any]:
    body = {"code": f"R{village_code}-{uuid.uuid4().hex[:8].upper()}", "name": "Posyandu Uji Riau",
            "village_code": village_code, "service_days": ["tuesday"]}
    body.update(overrides)
    return body


async def riau_posyandu(registry: httpx.AsyncClient, village_code: str = KAMPAR_DESA) -> dict[str, Any]:
    await riau(registry)
    response = await registry.post("/api/v1/posyandu", json=posyandu_body(village_code), headers=tokens.admin())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def riau_agency(registry: httpx.AsyncClient, jurisdiction: str = KAMPAR,
                      fields: tuple[str, ...] = ("kesehatan",)) -> dict[str, Any]:
    await riau(registry)
    response = await registry.post("/api/v1/agencies", headers=tokens.admin(), json={
        "name": f"Dinas Uji Riau {uuid.uuid4().hex[:6]}", "level": "regency", "jurisdiction_code": jurisdiction,
        "spm_fields": list(fields)})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def programme_body(village_code: str = KAMPAR_DESA, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"PMT Balita Kampar {uuid.uuid4().hex[:6]}", "spm_field": "kesehatan",
        "service_type": "kesehatan.kab.balita", "region_codes": [village_code],
        "period_start": "2031-01-01", "period_end": "2031-06-30",
        "budget": [{"source": "apbd-regency", "amount": 100_000_000}],
        "outputs": [{"code": "pmt-packages", "name": "Paket PMT lokal", "unit": "paket", "target": 500}]}
    body.update(overrides)
    return body
