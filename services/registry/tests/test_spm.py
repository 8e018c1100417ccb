"""The SPM service types as the registry serves them, the agencies' own target figures, partner agencies, and the
republish of programmes, realisations and target figures."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from services.registry.demo.programmes import PROVINCE_PROGRAMMES, REALISED_MONTHS, REGENCY_PROGRAMMES, load_programmes
from services.registry.tests.factories import (
    ANTAP,
    JEMBRANA,
    TABANAN,
    agency_body,
    bali,
    create_agency,
    create_programme,
    events_of,
)
from shared.spm import SERVICE_TYPES
from tests.support import tokens

BALITA = "kesehatan.kab.balita"


async def test_the_service_types_are_listed_with_their_links_and_filtered(registry: httpx.AsyncClient) -> None:
    everything = await registry.get("/api/v1/spm/service-types", headers=tokens.kader([]))
    assert everything.status_code == 200, everything.text
    body = everything.json()
    assert body["version"] == "pp-2-2018" and len(body["items"]) == len(SERVICE_TYPES) > 40
    balita = next(t for t in body["items"] if t["code"] == BALITA)
    assert balita["spm_field"] == "kesehatan" and balita["level"] == "regency" and balita["name"].startswith("Pelay")
    assert balita["indicators"] == list(SERVICE_TYPES[BALITA].indicators) and balita["indicators"]
    assert balita["referral_categories"] == list(SERVICE_TYPES[BALITA].referral_categories)
    regency_health = (await registry.get("/api/v1/spm/service-types", params={"spm_field": "kesehatan",
                                                                             "level": "regency"},
                                         headers=tokens.pembina("51"))).json()["items"]
    assert len(regency_health) == 12 and {(t["spm_field"], t["level"]) for t in regency_health} == {
        ("kesehatan", "regency")}
    province = (await registry.get("/api/v1/spm/service-types", params={"level": "province"},
                                   headers=tokens.admin())).json()["items"]
    assert province and all(t["level"] == "province" for t in province)
    assert (await registry.get("/api/v1/spm/service-types", params={"level": "desa"},
                               headers=tokens.admin())).status_code == 422
    assert (await registry.get("/api/v1/spm/service-types")).status_code == 401


async def test_a_partner_agency_is_held_with_its_kind_and_never_routed(registry: httpx.AsyncClient,
                                                                      registry_db: asyncpg.Connection) -> None:
    await bali(registry)
    baznas = await create_agency(registry, TABANAN, ["sosial"], kind="partner", name="Baznas Kabupaten Tabanan")
    assert baznas["kind"] == "partner"
    assert (await registry.get(f"/api/v1/agencies/{baznas['id']}", headers=tokens.admin())).json()["kind"] == "partner"
    opd = await create_agency(registry, JEMBRANA, ["kesehatan"])
    assert opd["kind"] == "opd"
    # The kind is fixed at registration.
    changed = await registry.patch(f"/api/v1/agencies/{baznas['id']}", json={"kind": "opd"},
                                   headers={**tokens.admin(), "If-Match": '"1"'})
    assert changed.status_code == 422
    bad = await registry.post("/api/v1/agencies", json=agency_body(TABANAN, ["sosial"], kind="ngo"),
                              headers=tokens.admin())
    assert bad.status_code == 422
    [event] = await events_of(registry_db, baznas["id"])
    assert event["type"] == "posyandu.agency.registered.v1" and event["data"]["kind"] == "partner"
    # The registry's own routing rule passes partners by: no opd handles sosial in Tabanan.
    routed = await registry.get("/api/v1/agencies/route", params={"field": "sosial", "village": ANTAP},
                                headers=tokens.service())
    assert routed.status_code == 404, routed.text
    listed = (await registry.get("/api/v1/agencies", params={"region": TABANAN, "limit": "500"},
                                 headers=tokens.admin())).json()["items"]
    assert {a["id"]: a["kind"] for a in listed}[baznas["id"]] == "partner"


async def test_a_partner_registers_programmes_in_its_field(registry: httpx.AsyncClient,
                                                           registry_db: asyncpg.Connection) -> None:
    await bali(registry)
    baznas = await create_agency(registry, TABANAN, ["sosial"], kind="partner")
    programme = await create_programme(
        registry, baznas, spm_field="sosial", service_type="sosial.kab.lansia-terlantar", region_codes=[ANTAP],
        budget=[{"source": "zakat", "amount": 120_000_000}],
        outputs=[{"code": "paket-lansia", "name": "Paket sembako lansia", "unit": "paket", "target": 400}])
    assert programme["agency_id"] == baznas["id"]
    assert (await events_of(registry_db, programme["id"]))[0]["data"]["budget"] == [
        {"source": "zakat", "amount": 120_000_000}]


async def _figures(db: asyncpg.Connection, agency_id: str, region: str, year: int, service_type: str) -> list[dict]:
    return [json.loads(r["payload"]) for r in await db.fetch(
        "SELECT payload FROM outbox WHERE key = $1 ORDER BY id", f"{agency_id}:{region}:{year}:{service_type}")]


async def test_an_agency_sets_changes_and_withdraws_its_target_figure(registry: httpx.AsyncClient,
                                                                      registry_db: asyncpg.Connection) -> None:
    await bali(registry)
    agency = await create_agency(registry, JEMBRANA, ["kesehatan"])
    headers = tokens.opd(agency["id"], ["kesehatan"])
    url = f"/api/v1/spm/targets/{JEMBRANA}/2027/{BALITA}"
    first = await registry.put(url, json={"target": 1200}, headers=headers)
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] == '"1"' and first.json()["target"] == 1200
    assert first.json()["agency_id"] == agency["id"]
    assert (await registry.put(url, json={"target": 1300}, headers=headers)).status_code == 428
    assert (await registry.put(url, json={"target": 1300}, headers={**headers, "If-Match": '"7"'})).status_code == 412
    second = await registry.put(url, json={"target": 1300}, headers={**headers, "If-Match": '"1"'})
    assert second.status_code == 200 and second.headers["ETag"] == '"2"'
    same = await registry.put(url, json={"target": 1300}, headers={**headers, "If-Match": '"2"'})
    assert same.json()["version"] == 2
    withdrawn = await registry.put(url, json={"target": None}, headers={**headers, "If-Match": '"2"'})
    assert withdrawn.status_code == 200 and withdrawn.json()["target"] is None and withdrawn.json()["version"] == 3

    listed = (await registry.get("/api/v1/spm/targets", params={"region": "51", "year": "2027",
                                                                 "service_type": BALITA, "limit": "500"},
                                 headers=tokens.pembina("51"))).json()["items"]
    mine = [f for f in listed if f["agency_id"] == agency["id"]]
    assert [(f["region_code"], f["target"], f["version"]) for f in mine] == [(JEMBRANA, None, 3)]
    for miss in ({"year": "2028"}, {"region": TABANAN}, {"service_type": "kesehatan.kab.ibu-hamil"}):
        found = (await registry.get("/api/v1/spm/targets", params={"agency_id": agency["id"], **miss},
                                    headers=tokens.admin())).json()["items"]
        assert found == [], miss

    events = await _figures(registry_db, agency["id"], JEMBRANA, 2027, BALITA)
    assert [(e["type"], e["data"]["target"], e["data"]["version"]) for e in events] == [
        ("posyandu.spm-target.set.v1", 1200, 1), ("posyandu.spm-target.set.v1", 1300, 2),
        ("posyandu.spm-target.set.v1", None, 3)]
    assert events[0]["subject"] == f"{agency['id']}:{JEMBRANA}:2027:{BALITA}"
    assert events[0]["data"]["region_code"] == JEMBRANA and events[0]["data"]["service_type"] == BALITA

    # A village of the jurisdiction is a region too; by an admin on the agency's behalf.
    village = await registry.put(f"/api/v1/spm/targets/5101012001/2027/{BALITA}",
                                 json={"target": 40, "agency_id": agency["id"]}, headers=tokens.admin())
    assert village.status_code == 200 and village.json()["agency_id"] == agency["id"]


async def test_only_an_agency_of_the_field_level_and_jurisdiction_sets_a_figure(
        registry: httpx.AsyncClient, registry_db: asyncpg.Connection) -> None:
    await bali(registry)
    regency = await create_agency(registry, JEMBRANA, ["kesehatan"])
    province = await create_agency(registry, "51", ["kesehatan"])
    regency_token = tokens.opd(regency["id"], ["kesehatan", "sosial"])

    async def put(region: str, service_type: str, headers: dict[str, str], body: dict | None = None) -> int:
        response = await registry.put(f"/api/v1/spm/targets/{region}/2027/{service_type}",
                                      json=body or {"target": 10}, headers=headers)
        assert response.headers["content-type"].startswith("application/"), response.text
        return response.status_code

    assert await put(JEMBRANA, "kesehatan.prov.klb", regency_token) == 403             # a province service type
    assert await put(JEMBRANA, "sosial.kab.lansia-terlantar", regency_token) == 403    # not the agency's field
    assert await put(JEMBRANA, BALITA, tokens.opd(regency["id"], ["sosial"])) == 403   # not the token's field
    assert await put(TABANAN, BALITA, regency_token) == 403                            # outside its jurisdiction
    assert await put(JEMBRANA, BALITA, tokens.opd(province["id"], ["kesehatan"])) == 403  # a regency type
    assert await put(JEMBRANA, BALITA, regency_token, {"target": 1, "agency_id": province["id"]}) == 403
    assert await put(JEMBRANA, BALITA, tokens.pembina("51")) == 403
    assert await put(JEMBRANA, BALITA, tokens.kader([])) == 403
    assert await put(JEMBRANA, BALITA, tokens.admin()) == 422                          # names no agency
    assert await put("5109", BALITA, regency_token) == 422                             # no such region
    assert await put(JEMBRANA, "kesehatan.kab.tidak-ada", regency_token) == 422
    assert await put(JEMBRANA, BALITA, regency_token, {"target": -1}) == 422
    assert await put(JEMBRANA, BALITA, regency_token, {"target": "banyak"}) == 422
    assert await put(JEMBRANA, BALITA, regency_token, {"target": None}) == 404         # nothing to withdraw
    assert await registry_db.fetchval("SELECT count(*) FROM spm_target_figures WHERE agency_id = ANY($1)",
                                      [uuid.UUID(regency["id"]), uuid.UUID(province["id"])]) == 0
    assert await put("51", "kesehatan.prov.klb", tokens.opd(province["id"], ["kesehatan"])) == 200
    assert await put(JEMBRANA, "kesehatan.prov.klb", tokens.opd(province["id"], ["kesehatan"])) == 200


@pytest.mark.parametrize("path", ["/api/v1/spm/targets/5x/2027/a", "/api/v1/spm/targets/51/1999/a",
                                  "/api/v1/spm/targets/51/20270/a"])
async def test_a_bad_target_path_is_refused(registry: httpx.AsyncClient, path: str) -> None:
    response = await registry.put(path, json={"target": 1}, headers=tokens.admin())
    assert response.status_code == 422


async def test_the_republish_includes_programmes_realisations_and_target_figures(
        registry: httpx.AsyncClient, registry_db: asyncpg.Connection) -> None:
    await bali(registry)
    agency = await create_agency(registry, JEMBRANA, ["kesehatan"])
    programme = await create_programme(registry, agency)
    headers = tokens.opd(agency["id"], ["kesehatan"])
    for month in ("2027-01", "2027-02"):
        assert (await registry.put(f"/api/v1/programmes/{programme['id']}/realisations/{month}", headers=headers,
                                   json={"outputs": [{"code": "kelas-ibu", "quantity": 1}]})).status_code == 200
    assert (await registry.put(f"/api/v1/spm/targets/{JEMBRANA}/2026/{BALITA}", json={"target": 5},
                               headers=headers)).status_code == 200
    report = await registry.post("/api/v1/registry/republish", headers=tokens.admin())
    assert report.status_code == 200, report.text
    counts = report.json()
    assert counts["programmes"] >= 1 and counts["realisations"] >= 2 and counts["target_figures"] >= 1
    events = await events_of(registry_db, programme["id"])
    assert [e["type"] for e in events[3:]] == ["posyandu.programme.registered.v1", "posyandu.programme.realised.v1",
                                               "posyandu.programme.realised.v1"]
    assert [e["data"]["month"] for e in events[4:]] == ["2027-01", "2027-02"]
    figures = await _figures(registry_db, agency["id"], JEMBRANA, 2026, BALITA)
    assert [e["data"]["target"] for e in figures] == [5, 5]


async def test_the_demo_programmes_load_with_a_partner_and_their_months_and_replay(
        registry: httpx.AsyncClient, registry_db: asyncpg.Connection) -> None:
    await bali(registry)
    regions = [("51", "Bali"), (TABANAN, "Kabupaten Tabanan"), (ANTAP, "Antap")]
    agencies = {f"{label} {place}": (await create_agency(registry, code, fields, name=f"{label} {place} Demo"))["id"]
                for code, place, label, fields in [
                    (TABANAN, "Kabupaten Tabanan", "Dinas Kesehatan", ["kesehatan"]),
                    (TABANAN, "Kabupaten Tabanan", "Dinas PUPR dan Perumahan", ["pekerjaan-umum",
                                                                                 "perumahan-rakyat"]),
                    ("51", "Bali", "Dinas Kesehatan Provinsi", ["kesehatan"])]}
    auth = tokens.admin()

    def check(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code < 400, response.text
        body: dict[str, Any] = response.json()
        return body

    ids = await load_programmes(registry, auth, regions, dict(agencies), check)
    assert len(ids) == len(REGENCY_PROGRAMMES) + len(PROVINCE_PROGRAMMES)
    owners = {}
    for programme_id in ids.values():
        programme = (await registry.get(f"/api/v1/programmes/{programme_id}", headers=auth)).json()
        owner = (await registry.get(f"/api/v1/agencies/{programme['agency_id']}", headers=auth)).json()
        owners[owner["name"]] = owner["kind"]
        months = (await registry.get(f"/api/v1/programmes/{programme_id}/realisations", headers=auth)).json()
        assert [m["month"] for m in months["items"]] == list(REALISED_MONTHS)
        assert all(b["spent"] > 0 and not b["over_budget"] for b in months["budget"])
    assert owners["Baznas Kabupaten Tabanan"] == "partner"
    assert {kind for name, kind in owners.items() if not name.startswith("Baznas")} == {"opd"}
    events = await registry_db.fetchval("SELECT count(*) FROM outbox WHERE key = ANY($1)", list(ids.values()))

    again = await load_programmes(registry, auth, regions, dict(agencies), check)
    assert again == ids
    assert await registry_db.fetchval("SELECT count(*) FROM outbox WHERE key = ANY($1)", list(ids.values())) == events
