"""Agencies (OPD) and the routing rule: regency/city agency first, then the province's."""

from __future__ import annotations

import uuid

import httpx

from services.registry.tests.factories import agency_body, create_agency
from tests.support import tokens

# Kabupaten Mamuju (Sulawesi Barat): the demo data of the test session registers no agencies, so the
# routing cases below control every agency that could answer.
MAMUJU_VILLAGE = "7602011002"


async def route(client: httpx.AsyncClient, field: str, village: str) -> httpx.Response:
    return await client.get("/api/v1/agencies/route", params={"field": field, "village": village},
                            headers=tokens.service())


async def test_routing_prefers_the_regency_agency_then_falls_back_to_the_province(registry: httpx.AsyncClient) -> None:
    none = await route(registry, "sosial", MAMUJU_VILLAGE)
    assert none.status_code == 404
    assert none.json()["type"].endswith("/no-responsible-agency")

    province = await create_agency(registry, "76", ["sosial"])
    assert (await route(registry, "sosial", MAMUJU_VILLAGE)).json()["id"] == province["id"]

    regency = await create_agency(registry, "7602", ["sosial", "kesehatan"])
    assert (await route(registry, "sosial", MAMUJU_VILLAGE)).json()["id"] == regency["id"]

    deactivated = await registry.post(f"/api/v1/agencies/{regency['id']}/deactivate", headers=tokens.admin())
    assert deactivated.json()["status"] == "inactive"
    assert (await route(registry, "sosial", MAMUJU_VILLAGE)).json()["id"] == province["id"]


async def test_routing_matches_the_field(registry: httpx.AsyncClient) -> None:
    await create_agency(registry, "7602", ["perumahan-rakyat"])
    assert (await route(registry, "pekerjaan-umum", MAMUJU_VILLAGE)).status_code == 404
    assert (await route(registry, "perumahan-rakyat", MAMUJU_VILLAGE)).status_code == 200


async def test_routing_refuses_bad_input(registry: httpx.AsyncClient) -> None:
    assert (await route(registry, "kebersihan", MAMUJU_VILLAGE)).status_code == 422
    assert (await route(registry, "sosial", "7602")).status_code == 422
    unknown = await route(registry, "sosial", "7602019999")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "village_code"


async def test_register_validates_level_and_jurisdiction(registry: httpx.AsyncClient) -> None:
    mismatched = await registry.post("/api/v1/agencies", json=agency_body("7602", ["sosial"], level="province"),
                                     headers=tokens.admin())
    assert mismatched.status_code == 422
    unknown = await registry.post("/api/v1/agencies", json=agency_body("99", ["sosial"]), headers=tokens.admin())
    assert unknown.status_code == 422
    no_fields = await registry.post("/api/v1/agencies", json=agency_body("76", []), headers=tokens.admin())
    assert no_fields.status_code == 422
    not_admin = await registry.post("/api/v1/agencies", json=agency_body("76", ["sosial"]),
                                    headers=tokens.pembina("76"))
    assert not_admin.status_code == 403


async def test_update_with_if_match_and_list_by_field_and_region(registry: httpx.AsyncClient) -> None:
    agency = await create_agency(registry, "1472", ["pendidikan"])
    url = f"/api/v1/agencies/{agency['id']}"
    updated = await registry.patch(url, json={"spm_fields": ["pendidikan", "sosial"]},
                                   headers={**tokens.admin(), "If-Match": '"1"'})
    assert updated.json()["spm_fields"] == ["pendidikan", "sosial"]
    assert (await registry.patch(url, json={"name": "Lama"}, headers={**tokens.admin(), "If-Match": '"1"'})
            ).status_code == 412
    listed = (await registry.get("/api/v1/agencies", params={"field": "sosial", "region": "1472", "limit": "500"},
                                 headers=tokens.kader([]))).json()
    assert agency["id"] in {a["id"] for a in listed["items"]}
    other_field = (await registry.get("/api/v1/agencies", params={"field": "kesehatan", "region": "1472"},
                                      headers=tokens.admin())).json()
    assert agency["id"] not in {a["id"] for a in other_field["items"]}
    assert (await registry.get(f"/api/v1/agencies/{uuid.uuid4()}", headers=tokens.admin())).status_code == 404
