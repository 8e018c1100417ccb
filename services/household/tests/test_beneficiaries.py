"""Programme beneficiary lists: matching, all-or-nothing uploads, review, the aid overlap and unserved reports, their
access and audit, and the aid-overlap need that follows a list. Region 52 (NTB), regencies 5201 and 5202.

The registry's programme API is another service's work: the tests publish the programme events themselves on the
registry topic, as the registry does, and wait until the household consumer has projected them.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from openpyxl import Workbook

from services.household.tests.factories import household_body, kk_number, known_posyandu, member, nik
from shared.events import household as ev
from shared.events.programmes import PROGRAMME_REGISTERED, PROGRAMME_UPDATED, ProgrammeData, ProgrammeStatus
from shared.events.topics import REGISTRY_TOPIC, SpmField
from tests.support import tokens
from tests.support.factories import known_agency
from tests.support.waiting import eventually

REGIONS_CSV = b"""kode,nama
52,Nusa Tenggara Barat
52.01,Kabupaten Lombok Barat
52.01.01,Gerung
52.01.01.2001,Gerung Utara
52.01.01.2002,Gerung Selatan
52.02,Kabupaten Lombok Tengah
52.02.01,Praya
52.02.01.1001,Praya
"""
GERUNG_UTARA, GERUNG_SELATAN, PRAYA = "5201012001", "5201012002", "5202011001"
DISTRICT = "520101"
TODAY = date.today()
PERIOD = f"{TODAY:%Y-%m}"
SERVICE_TYPE = "sosial.kab.korban-bencana"


@dataclass
class World:
    posyandu: dict[str, str]
    dinsos: str  # Dinas Sosial Lombok Barat (5201, sosial)
    baznas: str  # Baznas NTB (52, sosial): a partner organisation
    dinsos_other: str  # Dinas Sosial Lombok Tengah (5202, sosial)
    housing: str  # Dinas Perumahan Lombok Barat (5201, perumahan-rakyat)


@pytest.fixture(scope="module")
async def world(registry: httpx.AsyncClient, household: httpx.AsyncClient, household_settings: Any) -> World:
    imported = await registry.post("/api/v1/regions/import", content=REGIONS_CSV,
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    db = await asyncpg.connect(household_settings.database_url)
    try:
        async def villages_known() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM known_regions WHERE code = ANY($1)",
                                          [GERUNG_UTARA, GERUNG_SELATAN, PRAYA]) == 3)

        await eventually(villages_known, "the household service to learn the NTB villages", timeout=90)
        posyandu = {v: await known_posyandu(registry, db, v) for v in (GERUNG_UTARA, GERUNG_SELATAN, PRAYA)}
        return World(posyandu=posyandu, dinsos=await known_agency(registry, db, "5201", ["sosial"]),
                     baznas=await known_agency(registry, db, "52", ["sosial"]),
                     dinsos_other=await known_agency(registry, db, "5202", ["sosial"]),
                     housing=await known_agency(registry, db, "5201", ["perumahan-rakyat"]))
    finally:
        await db.close()


async def _publish(bootstrap: str, data: ProgrammeData, updated: bool = False) -> None:
    event = (PROGRAMME_UPDATED if updated else PROGRAMME_REGISTERED).new(data, subject=str(data.programme_id))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(REGISTRY_TOPIC, event.to_bytes(), key=str(data.programme_id).encode(),
                                     headers=event.kafka_headers())
    finally:
        await producer.stop()


def _programme_data(agency_id: str, *, field: SpmField = SpmField.SOSIAL, regions: list[str] | None = None,
                    version: int = 1, name: str = "Bantuan Sosial Daerah", **extra: Any) -> ProgrammeData:
    return ProgrammeData(programme_id=extra.pop("programme_id", uuid.uuid4()), agency_id=uuid.UUID(agency_id),
                         name=name, spm_field=field,
                         service_type=SERVICE_TYPE if field is SpmField.SOSIAL else "perumahan-rakyat.kab.bencana",
                         region_codes=regions or ["5201"], period_start=date(TODAY.year, 1, 1),
                         period_end=date(TODAY.year, 12, 31), budget=[], outputs=[],
                         status=extra.pop("status", ProgrammeStatus.ACTIVE), version=version)


async def programme(stack: Any, household_db: asyncpg.Connection, agency_id: str, **kwargs: Any) -> str:
    """A programme of the agency, announced on the registry topic and projected by the household service."""
    data = _programme_data(agency_id, **kwargs)
    await _publish(stack.broker.bootstrap_servers, data)

    async def known() -> bool:
        return bool(await household_db.fetchval("SELECT count(*) FROM programmes WHERE id = $1 AND version = $2",
                                                data.programme_id, data.version))

    await eventually(known, "the household service to learn the programme", timeout=90)
    return str(data.programme_id)


async def register(household: httpx.AsyncClient, world: World, village: str, members: list[dict[str, Any]],
                   **overrides: Any) -> dict[str, Any]:
    posyandu_id = world.posyandu[village]
    body = household_body(posyandu_id, village, kk_number=kk_number(district=DISTRICT), members=members,
                          **overrides)
    response = await household.post("/api/v1/households", json=body, headers=tokens.kader([posyandu_id]))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    created["kk_number_full"] = body["kk_number"]
    created["niks"] = [m.get("nik") for m in members]
    return created


def person(name: str, birth: date, relationship: str, sex: str = "male", with_nik: bool = True) -> dict[str, Any]:
    body = member(name, sex, birth, relationship, with_nik=False)
    if with_nik:
        body["nik"] = nik(birth, sex, district=DISTRICT)
    return body


async def put_sosial(household: httpx.AsyncClient, world: World, created: dict[str, Any], village: str,
                     decile: int, aid: list[str] | None) -> None:
    response = await household.put(f"/api/v1/households/{created['id']}/profiles/sosial",
                                   json={"household": {"dtsen_decile": decile, "aid_received": aid}},
                                   headers=tokens.kader([world.posyandu[village]]))
    assert response.status_code == 201, response.text


def csv_file(rows: list[dict[str, Any]], columns: tuple[str, ...] = ("nik", "kk_number", "name", "birth_date")
             ) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


async def upload(household: httpx.AsyncClient, programme_id: str, content: bytes, headers: dict[str, str],
                 filename: str = "penerima.csv") -> httpx.Response:
    kind = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if filename.endswith(".xlsx")
            else "text/csv")
    return await household.post(f"/api/v1/programmes/{programme_id}/beneficiaries",
                                files={"file": (filename, content, kind)}, headers=headers)


def dinsos(world: World) -> dict[str, str]:
    return tokens.opd(world.dinsos, ["sosial"])


async def list_rows(household: httpx.AsyncClient, programme_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await household.get(f"/api/v1/programmes/{programme_id}/beneficiaries", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# --- matching -----------------------------------------------------------------------------------------------------


async def test_a_list_matches_by_nik_by_kk_and_likely_and_reports_the_unknown(
        stack: Any, world: World, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    prog = await programme(stack, household_db, world.dinsos)
    by_nik = await register(household, world, GERUNG_UTARA, [person("Lalu Ahmad", date(1980, 4, 2), "head")])
    by_kk = await register(household, world, GERUNG_UTARA, [person("Baiq Nurul", date(1990, 6, 9), "head", "female")])
    likely = await register(household, world, GERUNG_UTARA, [
        person("Inaq Rahmah", date(1955, 1, 20), "head", "female", with_nik=False)])
    rows = [
        {"nik": by_nik["niks"][0], "name": "LALU AHMAD", "birth_date": "1980-04-02"},
        {"kk_number": by_kk["kk_number_full"], "name": "Baiq Nurul", "birth_date": "09-06-1990"},
        {"name": "inaq rahmah", "birth_date": "1955-01-20", "kk_number": kk_number(district=DISTRICT)},
        {"nik": nik(date(1977, 8, 17), "male", DISTRICT), "name": "Tidak Terdaftar", "birth_date": "1977-08-17"},
    ]
    response = await upload(household, prog, csv_file(rows), dinsos(world))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["counts"] == {"exact_nik": 1, "exact_kk": 1, "likely": 1, "unmatched": 1}
    assert report["replaced_rows"] == 0
    outcomes = {o["row"]: o for o in report["outcomes"]}
    assert (outcomes[2]["match"], outcomes[2]["status"], outcomes[2]["household_id"]) == ("nik", "confirmed",
                                                                                         by_nik["id"])
    assert outcomes[2]["member_id"] == by_nik["members"][0]["id"]
    assert (outcomes[3]["match"], outcomes[3]["household_id"], outcomes[3]["member_id"]) == ("kk", by_kk["id"], None)
    assert (outcomes[4]["match"], outcomes[4]["status"]) == ("likely", "pending")
    assert outcomes[4]["member_id"] == likely["members"][0]["id"]
    assert (outcomes[5]["match"], outcomes[5]["status"], outcomes[5]["household_id"]) == ("none", "unmatched", None)
    assert "no member" in outcomes[5]["reason"]

    # The owner reads the list with full identifiers, the likely match still pending.
    listed = {r["row_number"]: r for r in await list_rows(household, prog, dinsos(world))}
    assert listed[2]["nik"] == by_nik["niks"][0] and listed[5]["status"] == "unmatched"
    assert listed[4]["status"] == "pending"
    # Confirmed, the likely match counts; a second decision is refused.
    review = f"/api/v1/programmes/{prog}/beneficiaries/{outcomes[4]['row_id']}/review"
    confirmed = await household.post(review, json={"decision": "confirm"}, headers=dinsos(world))
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed" and confirmed.json()["reviewed_by"] == f"opd-{world.dinsos}"
    again = await household.post(review, json={"decision": "reject"}, headers=dinsos(world))
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    assert [r["status"] for r in await list_rows(household, prog, dinsos(world))] == [
        "confirmed", "confirmed", "confirmed", "unmatched"]

    # A new upload replaces the list.
    replaced = await upload(household, prog, csv_file(rows[:1]), dinsos(world))
    assert replaced.status_code == 200 and replaced.json()["replaced_rows"] == 4
    assert [r["row_number"] for r in await list_rows(household, prog, dinsos(world))] == [2]


async def test_two_members_with_the_name_and_birth_date_are_no_likely_match(
        stack: Any, world: World, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    prog = await programme(stack, household_db, world.dinsos)
    for _ in range(2):
        await register(household, world, GERUNG_SELATAN, [person("Amaq Sahnan", date(1961, 2, 2), "head",
                                                                 with_nik=False)])
    response = await upload(household, prog, csv_file([{"kk_number": kk_number(district=DISTRICT),
                                                        "name": "Amaq Sahnan", "birth_date": "1961-02-02"}]),
                            dinsos(world))
    assert response.status_code == 200, response.text
    outcome = response.json()["outcomes"][0]
    assert outcome["match"] == "none" and "2 members share" in outcome["reason"]


# --- malformed lists ------------------------------------------------------------------------------------------------


async def test_a_malformed_list_is_refused_by_row_and_stores_nothing(
        stack: Any, world: World, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    prog = await programme(stack, household_db, world.dinsos)
    someone = await register(household, world, GERUNG_UTARA, [person("Lalu Budi", date(1975, 5, 5), "head")])
    good = await upload(household, prog, csv_file([{"nik": someone["niks"][0], "name": "Lalu Budi",
                                                    "birth_date": "1975-05-05"}]), dinsos(world))
    assert good.status_code == 200, good.text

    async def counts() -> tuple[int, int]:
        return (await household_db.fetchval("SELECT count(*) FROM beneficiaries WHERE programme_id = $1",
                                            uuid.UUID(prog)),
                await household_db.fetchval("SELECT count(*) FROM beneficiary_uploads WHERE programme_id = $1",
                                            uuid.UUID(prog)))

    before = await counts()
    bad = csv_file([
        {"nik": nik(date(1980, 1, 1), "male", DISTRICT), "name": "Benar", "birth_date": "1980-01-01"},
        {"nik": nik(date(1980, 1, 1), "male", DISTRICT), "name": "Tanggal Salah", "birth_date": "1980-13-45"},
        {"nik": "0001010101800001", "name": "Provinsi Salah", "birth_date": "1980-01-01"},
        {"nik": nik(date(1980, 1, 1), "male", DISTRICT), "name": "Tidak Cocok", "birth_date": "1981-01-01"},
        {"name": "Tanpa Nomor", "birth_date": "1980-01-01"},
        {"nik": "12345", "name": "", "birth_date": ""},
    ])
    response = await upload(household, prog, bad, dinsos(world))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert "nothing was stored" in problem["detail"]
    by_row = {(e["row"], e["field"]) for e in problem["errors"]}
    assert (3, "birth_date") in by_row and (4, "nik") in by_row and (5, "nik") in by_row and (6, "nik") in by_row
    assert {(7, "nik"), (7, "name"), (7, "birth_date")} <= by_row
    assert not any(e["row"] == 2 for e in problem["errors"])
    messages = {(e["row"], e["field"]): e["message"] for e in problem["errors"]}
    assert "province" in messages[(4, "nik")] and "birth date" in messages[(5, "nik")]
    assert "NIK or a KK number" in messages[(6, "nik")]

    wrong_columns = await upload(household, prog, b"nama,tanggal_lahir\nBudi,1980-01-01\n", dinsos(world))
    assert wrong_columns.status_code == 422
    assert {e["field"] for e in wrong_columns.json()["errors"]} >= {"nama", "name", "birth_date"}
    outside = await upload(household, prog, csv_file(
        [{"nik": someone["niks"][0], "name": "Lalu Budi", "birth_date": "1975-05-05",
          "period": f"{TODAY.year + 1}-01"}],
        ("nik", "name", "birth_date", "period")), dinsos(world))
    assert outside.status_code == 422 and outside.json()["errors"][0]["field"] == "period"
    too_many = csv_file([{"kk_number": kk_number(district=DISTRICT), "name": f"Warga {i}", "birth_date": "1980-01-01"}
                         for i in range(10_001)])
    refused = await upload(household, prog, too_many, dinsos(world))
    assert refused.status_code == 422 and "more than 10000 rows" in refused.json()["detail"]
    for garbage in (b"", b"\xff\xfe\x00garbage", b"PK\x03\x04 not really a workbook"):
        assert (await upload(household, prog, garbage, dinsos(world))).status_code == 422
    assert await counts() == before


def xlsx_file(header: list[str], rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def test_an_xlsx_list_matches_and_a_number_cell_nik_is_refused(
        stack: Any, world: World, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    prog = await programme(stack, household_db, world.dinsos)
    someone = await register(household, world, GERUNG_UTARA, [person("Lalu Wira", date(1988, 10, 30), "head")])
    good = xlsx_file(["nik", "name", "birth_date", "period", "note"],
                     [[someone["niks"][0], "Lalu Wira", date(1988, 10, 30), PERIOD, "tahap 1"]])
    response = await upload(household, prog, good, dinsos(world), filename="penerima.xlsx")
    assert response.status_code == 200, response.text
    assert response.json()["counts"]["exact_nik"] == 1
    row = (await list_rows(household, prog, dinsos(world)))[0]
    assert row["note"] == "tahap 1" and row["period_start"] == f"{PERIOD}-01"
    number = xlsx_file(["nik", "name", "birth_date"], [[int(someone["niks"][0]), "Lalu Wira", "1988-10-30"]])
    refused = await upload(household, prog, number, dinsos(world), filename="penerima.xlsx")
    assert refused.status_code == 422 and "number cell" in refused.json()["errors"][0]["message"]
    assert len(await list_rows(household, prog, dinsos(world))) == 1


# --- access -------------------------------------------------------------------------------------------------------


async def test_only_the_owning_agency_uploads_and_reads_the_list(
        stack: Any, world: World, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    prog = await programme(stack, household_db, world.dinsos)
    someone = await register(household, world, GERUNG_UTARA, [person("Lalu Sakti", date(1970, 3, 3), "head")])
    body = csv_file([{"nik": someone["niks"][0], "name": "Lalu Sakti", "birth_date": "1970-03-03"}])
    outsiders = {"another agency": tokens.opd(world.dinsos_other, ["sosial"]),
                 "the province's partner": tokens.opd(world.baznas, ["sosial"]),
                 "the owning agency acting in another field": tokens.opd(world.dinsos, ["perumahan-rakyat"]),
                 "pembina": tokens.pembina("5201"), "kader": tokens.kader([world.posyandu[GERUNG_UTARA]])}
    for who, headers in outsiders.items():
        assert (await upload(household, prog, body, headers)).status_code == 403, who
    assert await household_db.fetchval("SELECT count(*) FROM beneficiaries WHERE programme_id = $1",
                                       uuid.UUID(prog)) == 0
    assert (await upload(household, prog, body, dinsos(world))).status_code == 200
    for who, headers in outsiders.items():
        response = await household.get(f"/api/v1/programmes/{prog}/beneficiaries", headers=headers)
        assert response.status_code == 403 and response.headers["content-type"] == "application/problem+json", who
    # An admin reads it masked; an unknown programme is a 404.
    admin_row = (await list_rows(household, prog, tokens.admin()))[0]
    assert admin_row["nik"] == f"{someone['niks'][0][:6]}******{someone['niks'][0][12:]}"
    unknown = await household.get(f"/api/v1/programmes/{uuid.uuid4()}/beneficiaries", headers=tokens.admin())
    assert unknown.status_code == 404
    # Reading the list is audited per row, naming the household.
    assert await household_db.fetchval(
        "SELECT count(*) FROM audit_log WHERE resource_type = 'programme-beneficiary' AND actor = 'admin-test' "
        "AND subject_ref = $1", someone["id"]) >= 1
    # A cancelled programme takes no list.
    data = _programme_data(world.dinsos, programme_id=uuid.UUID(prog), status=ProgrammeStatus.CANCELLED, version=2)
    await _publish(stack.broker.bootstrap_servers, data, updated=True)

    async def cancelled() -> bool:
        return bool(await household_db.fetchval("SELECT status = 'cancelled' FROM programmes WHERE id = $1",
                                                uuid.UUID(prog)))

    await eventually(cancelled, "the programme to be cancelled", timeout=90)
    assert (await upload(household, prog, body, dinsos(world))).status_code == 409


async def test_a_late_programme_version_changes_nothing(stack: Any, world: World,
                                                        household_db: asyncpg.Connection) -> None:
    prog = uuid.UUID(await programme(stack, household_db, world.dinsos, version=3, name="Versi Tiga"))
    await _publish(stack.broker.bootstrap_servers, _programme_data(world.dinsos, programme_id=prog, version=2,
                                                                   name="Versi Dua"), updated=True)
    newer = _programme_data(world.dinsos, programme_id=prog, version=4, name="Versi Empat", regions=["5201", "5202"])
    await _publish(stack.broker.bootstrap_servers, newer, updated=True)

    async def at_four() -> bool:
        return bool(await household_db.fetchval("SELECT version = 4 FROM programmes WHERE id = $1", prog))

    await eventually(at_four, "version 4 of the programme", timeout=90)
    row = await household_db.fetchrow("SELECT name, region_codes FROM programmes WHERE id = $1", prog)
    assert (row["name"], row["region_codes"]) == ("Versi Empat", ["5201", "5202"])


# --- the reports and the need ---------------------------------------------------------------------------------------


async def _need_events(db: asyncpg.Connection, household_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT payload FROM outbox WHERE event_type = $1 AND key = $2 ORDER BY id",
                          ev.NEED_DETECTED.name, household_id)
    return [json.loads(r["payload"])["data"] for r in rows]


async def test_an_overlap_across_three_programmes_is_reported_masked_and_audited_and_raises_the_need(
        stack: Any, world: World, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    mine = await programme(stack, household_db, world.dinsos, name="Bantuan Lansia Lombok Barat")
    zakat = await programme(stack, household_db, world.baznas, regions=["52"], name="Zakat Produktif")
    village = GERUNG_SELATAN
    family = await register(household, world, village, [person("Amaq Rusni", date(1950, 7, 7), "head"),
                                                        person("Inaq Rusni", date(1953, 8, 8), "spouse", "female")])
    await put_sosial(household, world, family, village, decile=2, aid=["pkh"])
    assert not [n for n in await _need_events(household_db, family["id"]) if n["category"] == "sosial.aid-overlap"]

    head, spouse = family["niks"]
    first = await upload(household, mine, csv_file([{"nik": head, "name": "Amaq Rusni", "birth_date": "1950-07-07"}]),
                         dinsos(world))
    assert first.status_code == 200, first.text
    # One programme list beside the profile's PKH: two sources of the sosial field already.
    raised = [n for n in await _need_events(household_db, family["id"]) if n["category"] == "sosial.aid-overlap"]
    assert len(raised) == 1 and "programme-overlap" in raised[0]["evidence"]["reasons"]
    assert raised[0]["evidence"]["programmes"] == [mine]
    second = await upload(household, zakat, csv_file([{"nik": spouse, "name": "Inaq Rusni",
                                                       "birth_date": "1953-08-08"}]),
                          tokens.opd(world.baznas, ["sosial"]))
    assert second.status_code == 200, second.text
    # A third source keeps the need open: an unchanged condition emits nothing more.
    assert len([n for n in await _need_events(household_db, family["id"])
                if n["category"] == "sosial.aid-overlap"]) == 1
    assert await household_db.fetchval("SELECT count(*) FROM needs WHERE household_id = $1 AND status = 'open' "
                                       "AND category = 'sosial.aid-overlap'", uuid.UUID(family["id"])) == 1

    params = {"region": "5201", "spm_field": "sosial", "period": PERIOD}

    async def report(headers: dict[str, str]) -> dict[str, Any]:
        response = await household.get("/api/v1/aid/overlaps", params={**params, "limit": 500}, headers=headers)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = next(i for i in response.json()["items"] if i["household_id"] == family["id"])
        return found

    last_audit = await household_db.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    pembina = await report(tokens.pembina("5201"))
    kinds = sorted((s["kind"], s.get("aid_code") or s["programme_id"]) for s in pembina["sources"])
    assert kinds == sorted([("profile", "pkh"), ("programme", mine), ("programme", zakat)])
    assert pembina["identifiers_full"] is False
    assert pembina["kk_number"] == f"{family['kk_number_full'][:6]}******{family['kk_number_full'][12:]}"
    assert {s["member_nik"] for s in pembina["sources"] if s["kind"] == "programme"} == {
        f"{n[:6]}******{n[12:]}" for n in (head, spouse)}
    owner = await report(dinsos(world))
    assert owner["identifiers_full"] is True and owner["kk_number"] == family["kk_number_full"]
    assert {s["member_nik"] for s in owner["sources"] if s["kind"] == "programme"} == {head, spouse}
    # The other regency's agency of the field owns none of the programmes: masked, and only within its own region.
    assert (await household.get("/api/v1/aid/overlaps", params=params,
                                headers=tokens.opd(world.dinsos_other, ["sosial"]))).status_code == 403
    partner = await report(tokens.opd(world.baznas, ["sosial"]))
    assert partner["identifiers_full"] is True  # Baznas owns the zakat programme
    audited = await household_db.fetch(
        "SELECT actor, purpose FROM audit_log WHERE id > $1 AND resource_type = 'aid-overlap' AND subject_ref = $2",
        last_audit, family["id"])
    assert {r["actor"] for r in audited} == {"pembina-5201", f"opd-{world.dinsos}", f"opd-{world.baznas}"}
    assert all(r["purpose"].startswith("aid overlap report") for r in audited)
    # Another field's agency does not read the sosial report; the housing field's report has no sosial lists.
    assert (await household.get("/api/v1/aid/overlaps", params=params,
                                headers=tokens.opd(world.housing, ["perumahan-rakyat"]))).status_code == 403
    housing = await household.get("/api/v1/aid/overlaps", params={**params, "spm_field": "perumahan-rakyat"},
                                  headers=tokens.opd(world.housing, ["perumahan-rakyat"]))
    assert housing.status_code == 200 and family["id"] not in housing.text


async def test_a_likely_match_is_shown_apart_and_counts_once_confirmed(
        stack: Any, world: World, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    prog = await programme(stack, household_db, world.dinsos, name="Bantuan Pangan Daerah")
    village = GERUNG_UTARA
    family = await register(household, world, village, [person("Papuq Minah", date(1945, 9, 1), "head", "female",
                                                               with_nik=False)])
    await put_sosial(household, world, family, village, decile=3, aid=["bpnt"])
    uploaded = await upload(household, prog, csv_file([{"kk_number": kk_number(district=DISTRICT),
                                                        "name": "Papuq Minah", "birth_date": "1945-09-01"}]),
                            dinsos(world))
    row_id = uploaded.json()["outcomes"][0]["row_id"]
    params: dict[str, str | int] = {"region": village, "period": PERIOD, "limit": 500}
    before = await household.get("/api/v1/aid/overlaps", params=params, headers=tokens.admin())
    assert family["id"] not in before.text  # a pending match does not count
    confirmed = await household.post(f"/api/v1/programmes/{prog}/beneficiaries/{row_id}/review",
                                     json={"decision": "confirm"}, headers=dinsos(world))
    assert confirmed.status_code == 200, confirmed.text
    after = await household.get("/api/v1/aid/overlaps", params=params, headers=tokens.admin())
    item = next(i for i in after.json()["items"] if i["household_id"] == family["id"])
    assert [s["match"] for s in item["sources"] if s["kind"] == "programme"] == ["likely"]
    assert [n for n in await _need_events(household_db, family["id"]) if n["category"] == "sosial.aid-overlap"]
    # The admin may not review: only the owner decides.
    other = await upload(household, prog, csv_file([{"kk_number": kk_number(district=DISTRICT),
                                                     "name": "Papuq Minah", "birth_date": "1945-09-01"}]),
                         dinsos(world))
    pending = other.json()["outcomes"][0]["row_id"]
    assert (await household.post(f"/api/v1/programmes/{prog}/beneficiaries/{pending}/review",
                                 json={"decision": "confirm"}, headers=tokens.admin())).status_code == 403


async def test_a_needy_household_with_no_aid_is_unserved(
        stack: Any, world: World, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    village = PRAYA
    needy = await register(household, world, village, [person("Lalu Miskin", date(1982, 2, 2), "head")])
    await put_sosial(household, world, needy, village, decile=2, aid=[])
    listed = await register(household, world, village, [person("Lalu Terbantu", date(1983, 3, 3), "head")])
    await put_sosial(household, world, listed, village, decile=2, aid=[])
    well_off = await register(household, world, village, [person("Lalu Mampu", date(1984, 4, 4), "head")])
    await put_sosial(household, world, well_off, village, decile=8, aid=[])
    served = await register(household, world, village, [person("Lalu Penerima", date(1985, 5, 5), "head")])
    await put_sosial(household, world, served, village, decile=3, aid=["pkh"])
    prog = await programme(stack, household_db, world.dinsos_other, regions=["5202"])
    response = await upload(household, prog, csv_file([{"nik": listed["niks"][0], "name": "Lalu Terbantu",
                                                        "birth_date": "1983-03-03"}]),
                            tokens.opd(world.dinsos_other, ["sosial"]))
    assert response.status_code == 200, response.text
    # On a sosial list, the household receives aid: its aid-exclusion need resolves.
    resolved = await household_db.fetchval(
        "SELECT count(*) FROM outbox WHERE event_type = $1 AND key = $2 "
        "AND convert_from(payload, 'UTF8')::jsonb #>> '{data,category}' = 'sosial.aid-exclusion'",
        ev.NEED_RESOLVED.name, listed["id"])
    assert resolved == 1

    last_audit = await household_db.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    report = await household.get("/api/v1/aid/unserved", params={"region": "5202", "period": PERIOD, "limit": 500},
                                 headers=tokens.pembina("52"))
    assert report.status_code == 200, report.text
    found = {i["household_id"]: i for i in report.json()["items"]}
    assert needy["id"] in found and not {listed["id"], well_off["id"], served["id"]} & set(found)
    item = found[needy["id"]]
    assert item["dtsen_decile"] == 2 and item["aid_recorded"] is True
    assert item["open_sosial_needs"] == ["sosial.aid-exclusion"]
    assert item["kk_number"] == f"{needy['kk_number_full'][:6]}******{needy['kk_number_full'][12:]}"
    assert await household_db.fetchval(
        "SELECT count(*) FROM audit_log WHERE id > $1 AND resource_type = 'aid-unserved' AND subject_ref = $2 "
        "AND actor = 'pembina-52'", last_audit, needy["id"]) == 1
    # The agency of the field reads its jurisdiction only; a pembina of another region is refused; a kader sees
    # their posyandu's households.
    agency = await household.get("/api/v1/aid/unserved", params={"period": PERIOD, "limit": 500},
                                 headers=tokens.opd(world.dinsos_other, ["sosial"]))
    assert agency.status_code == 200 and needy["id"] in agency.text
    assert (await household.get("/api/v1/aid/unserved", params={"region": "5202"},
                                headers=tokens.opd(world.dinsos, ["sosial"]))).status_code == 403
    assert (await household.get("/api/v1/aid/unserved", params={"region": "5202"},
                                headers=tokens.pembina("5201"))).status_code == 403
    kader = await household.get("/api/v1/aid/unserved", params={"period": PERIOD, "limit": 500},
                                headers=tokens.kader([world.posyandu[GERUNG_UTARA]]))
    assert kader.status_code == 200 and needy["id"] not in kader.text


async def test_report_queries_are_checked(world: World, household: httpx.AsyncClient) -> None:
    for params in ({"region": "5"}, {"period": "2026-13"}, {"spm_field": "zakat"}, {"cursor": "bukan"}):
        response = await household.get("/api/v1/aid/overlaps", params=params, headers=tokens.admin())
        assert response.status_code in (400, 422), (params, response.text)
    assert (await household.get("/api/v1/aid/overlaps", headers=tokens.service())).status_code == 403


async def test_an_upload_without_a_file_is_refused(stack: Any, world: World, household: httpx.AsyncClient,
                                                   household_db: asyncpg.Connection) -> None:
    prog = await programme(stack, household_db, world.dinsos)
    path = f"/api/v1/programmes/{prog}/beneficiaries"
    no_file = await household.post(path, json={"nik": "1"}, headers=dinsos(world))
    assert no_file.status_code == 422 and no_file.json()["errors"][0]["field"] == "body.file", no_file.text
    field_only = await household.post(path, data={"file": "nik,name,birth_date"}, headers=dinsos(world))
    assert field_only.status_code == 422, field_only.text
    broken = await household.post(path, content=b"--x\r\nbroken", headers={
        **dinsos(world), "Content-Type": "multipart/form-data; boundary=x"})
    assert 400 <= broken.status_code < 500 and broken.headers["content-type"] == "application/problem+json"
    assert await household_db.fetchval("SELECT count(*) FROM beneficiary_uploads WHERE programme_id = $1",
                                       uuid.UUID(prog)) == 0


async def test_a_period_outside_the_years_1900_to_9998_is_refused(world: World, household: httpx.AsyncClient) -> None:
    for path in ("/api/v1/aid/overlaps", "/api/v1/aid/unserved"):
        for period in ("0000-01", "9999-12"):
            response = await household.get(path, params={"period": period}, headers=tokens.admin())
            assert response.status_code == 422 and response.json()["errors"][0]["field"] == "query.period", period


async def test_a_list_over_the_size_limit_is_413(stack: Any, world: World, household: httpx.AsyncClient,
                                                 household_db: asyncpg.Connection) -> None:
    prog = await programme(stack, household_db, world.dinsos)
    response = await upload(household, prog, b"nik,name,birth_date\n" + b"x" * (6 * 1024 * 1024), dinsos(world))
    assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"
    assert await household_db.fetchval("SELECT count(*) FROM beneficiary_uploads WHERE programme_id = $1",
                                       uuid.UUID(prog)) == 0
