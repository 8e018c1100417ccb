"""Programmes (issue 15): an agency's inputs to posyandu with their monthly realisation, ETag/If-Match changes, the
history of every change and the events; who may write and read them; the rules a programme must meet."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from services.registry.tests.factories import (
    ANTAP,
    BALER_BALE_AGUNG,
    BANJAR_TENGAH,
    JEMBRANA,
    TABANAN,
    create_posyandu,
    create_programme,
    events_of,
    jembrana_agency,
    opd_of,
    programme_body,
)
from tests.support import tokens


async def test_a_programmes_life_realised_monthly_corrected_changed_and_its_history(
        registry: httpx.AsyncClient, registry_db: asyncpg.Connection) -> None:
    agency = await jembrana_agency(registry)
    headers = opd_of(agency)
    body = programme_body()
    created = await registry.post("/api/v1/programmes", json=body, headers={**headers, "Idempotency-Key": "pmt-1"})
    assert created.status_code == 201, created.text
    programme = created.json()
    assert created.headers["ETag"] == '"1"' and programme["agency_id"] == agency["id"]
    assert programme["status"] == "active" and programme["version"] == 1
    replay = await registry.post("/api/v1/programmes", json=body, headers={**headers, "Idempotency-Key": "pmt-1"})
    assert replay.status_code == 201 and replay.json()["id"] == programme["id"]
    url = f"/api/v1/programmes/{programme['id']}"
    fetched = await registry.get(url, headers=headers)
    assert fetched.status_code == 200 and fetched.headers["ETag"] == '"1"' and fetched.json() == programme

    january = {"outputs": [{"code": "pmt-packages", "quantity": 300}],
               "spent": [{"source": "apbd-regency", "amount": 80_000_000}]}
    first = await registry.put(f"{url}/realisations/2027-01", json=january, headers=headers)
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] == '"1"' and first.json()["version"] == 1
    # The month's whole figures; CSR spending past its plan is accepted and shown as over budget.
    february = {"outputs": [{"code": "pmt-packages", "quantity": 350}, {"code": "kelas-ibu", "quantity": 2}],
                "spent": [{"source": "apbd-regency", "amount": 90_000_000}, {"source": "csr", "amount": 60_000_000}]}
    second = await registry.put(f"{url}/realisations/2027-02", json=february, headers=headers)
    assert second.status_code == 200 and second.json()["version"] == 1

    corrected = {**january, "outputs": [{"code": "pmt-packages", "quantity": 320}]}
    blind = await registry.put(f"{url}/realisations/2027-01", json=corrected, headers=headers)
    assert blind.status_code == 428 and blind.headers["content-type"] == "application/problem+json"
    stale = await registry.put(f"{url}/realisations/2027-01", json=corrected, headers={**headers, "If-Match": '"0"'})
    assert stale.status_code == 412
    fixed = await registry.put(f"{url}/realisations/2027-01", json=corrected, headers={**headers, "If-Match": '"1"'})
    assert fixed.status_code == 200 and fixed.headers["ETag"] == '"2"'
    again = await registry.put(f"{url}/realisations/2027-01", json=corrected, headers={**headers, "If-Match": '"2"'})
    assert again.json()["version"] == 2  # the same figures again: no new version

    realised = (await registry.get(f"{url}/realisations", headers=headers)).json()
    assert [(r["month"], r["version"]) for r in realised["items"]] == [("2027-01", 2), ("2027-02", 1)]
    assert {o["code"]: (o["target"], o["delivered"]) for o in realised["outputs"]} == {
        "pmt-packages": (2000, 670), "kelas-ibu": (12, 2)}
    assert {b["source"]: (b["planned"], b["spent"], b["over_budget"]) for b in realised["budget"]} == {
        "apbd-regency": (500_000_000, 170_000_000, False), "csr": (50_000_000, 60_000_000, True)}

    rename = {"name": "PMT Balita dan Kelas Ibu Jembrana"}
    assert (await registry.patch(url, json=rename, headers=headers)).status_code == 428
    assert (await registry.patch(url, json=rename, headers={**headers, "If-Match": '"2"'})).status_code == 412
    updated = await registry.patch(url, json=rename, headers={**headers, "If-Match": '"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.headers["ETag"] == '"2"' and updated.json()["name"] == rename["name"]

    history = (await registry.get(f"{url}/history", headers=headers)).json()
    assert [(h["action"], h["month"], h["version"]) for h in history] == [
        ("registered", None, 1), ("realised", "2027-01", 1), ("realised", "2027-02", 1),
        ("realised", "2027-01", 2), ("updated", None, 2)]
    assert {h["actor"] for h in history} == {f"opd-{agency['id']}"}
    assert history[0]["state"]["name"] == body["name"] and history[-1]["state"]["name"] == rename["name"]
    assert history[3]["state"]["outputs"] == [{"code": "pmt-packages", "quantity": 320}]

    events = await events_of(registry_db, programme["id"])
    assert [(e["type"], e["data"]["version"]) for e in events] == [
        ("posyandu.programme.registered.v1", 1), ("posyandu.programme.realised.v1", 1),
        ("posyandu.programme.realised.v1", 1), ("posyandu.programme.realised.v1", 2),
        ("posyandu.programme.updated.v1", 2)]
    registered = events[0]["data"]
    assert registered["agency_id"] == agency["id"] and registered["service_type"] == "kesehatan.kab.balita"
    assert registered["region_codes"] == [BALER_BALE_AGUNG, BANJAR_TENGAH]
    assert registered["budget"] == body["budget"] and registered["outputs"] == body["outputs"]
    assert events[3]["data"]["month"] == "2027-01" and events[3]["data"]["outputs"] == corrected["outputs"]
    assert events[4]["data"]["name"] == rename["name"] and events[4]["subject"] == programme["id"]


async def test_a_change_must_keep_the_reported_months_valid(registry: httpx.AsyncClient) -> None:
    agency = await jembrana_agency(registry)
    programme = await create_programme(registry, agency)
    url = f"/api/v1/programmes/{programme['id']}"
    headers = {**opd_of(agency), "If-Match": '"1"'}
    assert (await registry.put(f"{url}/realisations/2027-05", headers=opd_of(agency), json={
        "outputs": [{"code": "kelas-ibu", "quantity": 1}], "spent": [{"source": "csr", "amount": 1}]})
            ).status_code == 200
    unchanged = await registry.patch(url, json={"name": programme["name"]}, headers=headers)
    assert unchanged.status_code == 200 and unchanged.headers["ETag"] == '"1"'  # no change: no new version
    shorter = await registry.patch(url, json={"period_end": "2027-04-30"}, headers=headers)
    assert shorter.status_code == 422 and shorter.json()["errors"][0]["field"] == "period_end"
    unplanned = await registry.patch(url, json={"outputs": programme_body()["outputs"][:1]}, headers=headers)
    assert unplanned.status_code == 422 and unplanned.json()["errors"][0]["field"] == "outputs"
    unbudgeted = await registry.patch(url, json={"budget": programme_body()["budget"][:1]}, headers=headers)
    assert unbudgeted.status_code == 422 and unbudgeted.json()["errors"][0]["field"] == "budget"
    assert (await registry.patch(url, json={"name": None}, headers=headers)).status_code == 422
    assert (await registry.get(url, headers=headers)).json()["version"] == 1
    cancelled = await registry.patch(url, json={"status": "cancelled"}, headers=headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    late = await registry.put(f"{url}/realisations/2027-06", json={}, headers=opd_of(agency))
    assert late.status_code == 409


@pytest.mark.parametrize(("overrides", "field"), [
    ({"service_type": "kesehatan.kab.tidak-ada"}, "service_type"),
    ({"service_type": "pendidikan.kab.paud"}, "service_type"),                  # of another field
    ({"spm_field": "sosial", "service_type": "sosial.kab.lansia-terlantar"}, "spm_field"),  # not the agency's
    ({"region_codes": [ANTAP]}, "region_codes.0"),                              # outside the jurisdiction
    ({"region_codes": ["5101019999"]}, "region_codes.0"),                       # no such region
    ({"region_codes": [BALER_BALE_AGUNG, BALER_BALE_AGUNG]}, "region_codes.1"),
    ({"period_end": "2026-12-31"}, "period_end"),
    ({"budget": [{"source": "csr", "amount": -1}]}, "budget.0.amount"),
    ({"budget": [{"source": "csr", "amount": 1.5}]}, "budget.0.amount"),
    ({"budget": [{"source": "csr", "amount": 10**15}]}, "budget.0.amount"),
    ({"budget": [{"source": "csr", "amount": 1}, {"source": "csr", "amount": 2}]}, "budget.1.source"),
    ({"budget": [{"source": "hibah-asing", "amount": 1}]}, "budget.0.source"),
    ({"outputs": [{"code": "rtlh", "name": "RTLH", "unit": "rumah", "target": 5}] * 2}, "outputs.1.code"),
    ({"outputs": []}, "outputs"),
    ({"period_start": "2027-02-30"}, "period_start"),
])
async def test_a_bad_programme_is_refused_naming_the_field_and_nothing_is_stored(
        registry: httpx.AsyncClient, registry_db: asyncpg.Connection, overrides: dict[str, Any], field: str) -> None:
    agency = await jembrana_agency(registry)
    headers = tokens.opd(agency["id"], ["kesehatan", "sosial"])
    response = await registry.post("/api/v1/programmes", json=programme_body(**overrides), headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"].removeprefix("body.") for e in response.json()["errors"]]
    assert await registry_db.fetchval("SELECT count(*) FROM programmes WHERE agency_id = $1",
                                      uuid.UUID(agency["id"])) == 0


@pytest.mark.parametrize(("month", "payload", "field"), [
    ("2027-01", {"outputs": [{"code": "rtlh", "quantity": 1}]}, "outputs.0.code"),          # not planned
    ("2027-01", {"spent": [{"source": "zakat", "amount": 1}]}, "spent.0.source"),           # not budgeted
    ("2027-01", {"spent": [{"source": "csr", "amount": -5}]}, "spent.0.amount"),
    ("2027-01", {"outputs": [{"code": "kelas-ibu", "quantity": 1}] * 2}, "outputs.1.code"),
    ("2027-07", {}, "month"),                                                                # after the period
    ("2026-12", {}, "month"),                                                                # before it
    ("2027-13", {}, "month"),
    ("2027-1", {}, "month"),
    ("januari", {}, "month"),
])
async def test_a_bad_realisation_is_refused_naming_the_field_and_nothing_is_stored(
        registry: httpx.AsyncClient, registry_db: asyncpg.Connection, month: str, payload: dict[str, Any],
        field: str) -> None:
    agency = await jembrana_agency(registry)
    programme = await create_programme(registry, agency)
    response = await registry.put(f"/api/v1/programmes/{programme['id']}/realisations/{month}", json=payload,
                                  headers=opd_of(agency))
    assert response.status_code == 422, response.text
    fields = [e["field"].removeprefix("body.").removeprefix("path.") for e in response.json()["errors"]]
    assert field in fields
    assert await registry_db.fetchval("SELECT count(*) FROM programme_realisations WHERE programme_id = $1",
                                      uuid.UUID(programme["id"])) == 0
    assert [e["type"] for e in await events_of(registry_db, programme["id"])] == ["posyandu.programme.registered.v1"]


async def test_an_agency_writes_only_its_own_programmes(registry: httpx.AsyncClient,
                                                        registry_db: asyncpg.Connection) -> None:
    owner = await jembrana_agency(registry)
    other = await jembrana_agency(registry)
    programme = await create_programme(registry, owner)
    url = f"/api/v1/programmes/{programme['id']}"
    refused = {
        "another agency": opd_of(other),
        "the owner's token without the field": tokens.opd(owner["id"], ["sosial"]),
        "a pembina": tokens.pembina(JEMBRANA),
        "a kader": tokens.kader([]),
    }
    for who, headers in refused.items():
        patch = await registry.patch(url, json={"name": "Bukan milik saya"}, headers={**headers, "If-Match": '"1"'})
        assert patch.status_code == 403, (who, patch.text)
        assert patch.headers["content-type"] == "application/problem+json"
        realise = await registry.put(f"{url}/realisations/2027-01", json={}, headers=headers)
        assert realise.status_code == 403, (who, realise.text)
    # Registering for another agency, or in a field the token lacks, or as a pembina.
    for headers, body in [(opd_of(other), programme_body(agency_id=owner["id"])),
                          (tokens.opd(owner["id"], ["sosial"]), programme_body()),
                          (tokens.pembina(JEMBRANA), programme_body(agency_id=owner["id"]))]:
        assert (await registry.post("/api/v1/programmes", json=body, headers=headers)).status_code == 403
    assert await registry_db.fetchval("SELECT count(*) FROM programmes WHERE agency_id = $1",
                                      uuid.UUID(owner["id"])) == 1
    # An admin writes for any agency, naming it.
    assert (await registry.post("/api/v1/programmes", json=programme_body(), headers=tokens.admin())
            ).json()["errors"][0]["field"] == "agency_id"
    by_admin = await registry.post("/api/v1/programmes", json=programme_body(agency_id=owner["id"]),
                                   headers=tokens.admin())
    assert by_admin.status_code == 201 and by_admin.json()["agency_id"] == owner["id"]
    assert (await registry.patch(url, json={"status": "closed"}, headers={**tokens.admin(), "If-Match": '"1"'})
            ).status_code == 200


async def test_reads_follow_fields_and_regions(registry: httpx.AsyncClient) -> None:
    owner = await jembrana_agency(registry)
    programme = await create_programme(registry, owner, region_codes=[BALER_BALE_AGUNG])
    pid = programme["id"]
    url = f"/api/v1/programmes/{pid}"
    here = await create_posyandu(registry, BALER_BALE_AGUNG)
    next_village = await create_posyandu(registry, BANJAR_TENGAH)
    readers = {"another agency of the field": tokens.opd(uuid.uuid4(), ["kesehatan"]),
               "pembina of the regency": tokens.pembina(JEMBRANA), "pembina of the province": tokens.pembina("51"),
               "pembina of the village": tokens.pembina(BALER_BALE_AGUNG), "kader of the village": tokens.kader(
                   [here["id"]]), "admin": tokens.admin()}
    outsiders = {"agency of another field": tokens.opd(uuid.uuid4(), ["sosial"]),
                 "pembina of another regency": tokens.pembina(TABANAN),
                 "pembina of another village": tokens.pembina(BANJAR_TENGAH),
                 "kader of another village": tokens.kader([next_village["id"]])}

    async def listed(headers: dict[str, str], **params: str) -> set[str]:
        response = await registry.get("/api/v1/programmes", params={"limit": "500", **params}, headers=headers)
        assert response.status_code == 200, response.text
        return {p["id"] for p in response.json()["items"]}

    for who, headers in readers.items():
        for tail in ("", "/history", "/realisations"):
            assert (await registry.get(url + tail, headers=headers)).status_code == 200, (who, tail)
        assert pid in await listed(headers), who
    for who, headers in outsiders.items():
        for tail in ("", "/history", "/realisations"):
            response = await registry.get(url + tail, headers=headers)
            assert response.status_code == 403, (who, tail, response.text)
        assert pid not in await listed(headers), who

    admin = tokens.admin()
    assert pid in await listed(admin, spm_field="kesehatan", service_type="kesehatan.kab.balita",
                               agency_id=owner["id"], region="5101", year="2027", status="active")
    for miss in ({"spm_field": "sosial"}, {"service_type": "kesehatan.kab.ibu-hamil"},
                 {"agency_id": str(uuid.uuid4())}, {"region": TABANAN}, {"region": BANJAR_TENGAH},
                 {"year": "2028"}, {"status": "closed"}):
        assert pid not in await listed(admin, **miss), miss
    assert (await registry.get("/api/v1/programmes", params={"region": "51x"}, headers=admin)).status_code == 422
    assert (await registry.get(f"/api/v1/programmes/{uuid.uuid4()}", headers=admin)).status_code == 404


async def test_the_list_pages(registry: httpx.AsyncClient) -> None:
    agency = await jembrana_agency(registry)
    made = {(await create_programme(registry, agency))["id"] for _ in range(3)}
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", "agency_id": agency["id"], **({"cursor": cursor} if cursor else {})}
        page = (await registry.get("/api/v1/programmes", params=params, headers=tokens.admin())).json()
        seen += [p["id"] for p in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert sorted(seen) == sorted(made)
    assert (await registry.get("/api/v1/programmes", params={"cursor": "nonsense"}, headers=tokens.admin())
            ).status_code == 400
