"""The SPM matrix (issue 15): targets computed from a known household set and the agencies' figures, a
programme's life through its events, budgets, suppression, access, the Excel report and the CSV export.

The registry's programme and target-figure events are published here onto the reporting broker, as the
registry's relay would (services/reporting/tests/spm_scenario.py builds them).
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from openpyxl import load_workbook
from pydantic import BaseModel

from services.reporting.exports.render import XLSX
from services.reporting.settings import ReportingSettings
from services.reporting.spm.targets import RULES
from services.reporting.tests import spm_scenario
from services.reporting.tests.factories import Stream, publish, until_consumed
from services.reporting.tests.spm_scenario import EXPECTED, SATU, TIGA, Sulut, figure, programme, realisation
from shared.errors import PROBLEM_MEDIA_TYPE
from shared.events import programmes as pg
from shared.events.catalogue import EventType
from shared.events.topics import dead_letter_topic
from shared.spm import SERVICE_TYPES, GovernmentLevel
from tests.support import tokens
from tests.support.kafka import read_topic

MATRIX = "/api/v1/spm/matrix"


@pytest.fixture(scope="session")
async def sulut(reporting: httpx.AsyncClient, reporting_settings: ReportingSettings) -> Sulut:
    """The household set, shuffled and every third event twice, consumed."""
    world = spm_scenario.build()
    events = list(world.stream.events)
    random.Random(15).shuffle(events)
    await send(reporting_settings, events + events[::3])
    return world


async def send(settings: ReportingSettings, events: list[tuple[EventType, Any]]) -> None:
    await publish(settings.kafka_bootstrap_servers, events)
    await until_consumed(settings.database_url, events)


async def registry_events(settings: ReportingSettings, *items: tuple[EventType, BaseModel, str]) -> None:
    """Publish registry events (type, data, subject) in this order and wait until reporting applied them."""
    stream = Stream(default_time=spm_scenario.at(spm_scenario.previous_month()[1]))
    for event_type, data, subject in items:
        stream.add(event_type, data, subject=subject)
    await send(settings, stream.events)


async def matrix(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get(MATRIX, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def cell(table: dict[str, Any], column: str, service_type: str) -> dict[str, Any]:
    [row] = [r for r in table["rows"] if service_type == r["service_type"] and column in (r.get("agency_id"),
                                                                                           r["region_code"])]
    return dict(row)


def test_every_target_key_is_a_documented_rule_and_every_indicator_exists() -> None:
    from services.reporting.indicators.catalogue import ALL

    for st in SERVICE_TYPES.values():
        assert st.target is None or st.target in RULES, st.code
        assert all(i in ALL for i in st.indicators), st.code
    assert all(rule.description and rule.unit in ("orang", "rumah tangga") for rule in RULES.values())
    computable = {st.code for st in SERVICE_TYPES.values() if st.target and RULES[st.target].computable}
    # Every type with a target rule computes it (none is pending an indicator); the scenario counts regency types.
    assert computable == {st.code for st in SERVICE_TYPES.values() if st.target}
    assert all(rule.computable and "pending" not in rule.description for rule in RULES.values())
    assert set(EXPECTED["7101"]) <= computable


async def test_targets_computed_from_the_households_equal_the_hand_counts(reporting: httpx.AsyncClient,
                                                                         sulut: Sulut) -> None:
    table = await matrix(reporting, tokens.admin(), region="71", year=sulut.year)
    assert table["suppression_threshold"] is None and table["period"]["label"] == str(sulut.year)
    regency_types = [st for st in SERVICE_TYPES.values() if st.level is GovernmentLevel.REGENCY]
    assert {r["service_type"] for r in table["rows"]} == {st.code for st in regency_types}
    assert {r["region_code"] for r in table["rows"]} == {"7101", "7102", "71"}
    for st in regency_types:
        computable = bool(st.target and RULES[st.target].computable)
        counts = {code: cell(table, code, st.code)["target_computed"] for code in ("7101", "7102", "71")}
        if not computable:
            assert counts == {"7101": None, "7102": None, "71": None}, st.code
            continue
        expected = {code: EXPECTED[code].get(st.code, 0) for code in ("7101", "7102")}
        assert counts == {**expected, "71": sum(expected.values())}, st.code
        row = cell(table, "7101", st.code)
        assert row["target_effective"] == (expected["7101"] if row["target_agency"] is None else row["target_agency"])
    pregnant = cell(table, "7101", "kesehatan.kab.ibu-hamil")
    assert (pregnant["in_need"], pregnant["served"], pregnant["target_unit"]) == (5, 6, "orang")
    assert pregnant["achievement_percent"] == 100.0  # 6 served of 6
    assert cell(table, "7102", "kesehatan.kab.ibu-hamil")["served"] == 1
    assert cell(table, "7101", "pekerjaan-umum.kab.air-minum")["target_unit"] == "rumah tangga"
    # Province columns by default at the nation; the province's own at ?level=province.
    province = await matrix(reporting, tokens.admin(), region="71", year=sulut.year, level="province")
    assert cell(province, "7101", "sosial.prov.lansia-terlantar")["target_computed"] == 1
    assert cell(province, "71", "kesehatan.prov.krisis-bencana")["target_computed"] == 1
    assert cell(province, "7101", "pendidikan.prov.khusus")["target_computed"] == 1  # the disabled 12-year-old
    assert cell(province, "7101", "perumahan-rakyat.prov.relokasi")["target_computed"] == 1
    # A village breakdown at a district; the month narrows to the year to date.
    villages = await matrix(reporting, tokens.admin(), region="710101", year=sulut.year, month=sulut.last.month)
    assert cell(villages, SATU, "kesehatan.kab.balita")["target_computed"] == 6
    assert villages["period"]["start"] == f"{sulut.year}-01-01"


async def test_the_agency_figure_overrides_the_computed_target_and_both_are_shown(
        reporting: httpx.AsyncClient, reporting_settings: ReportingSettings, sulut: Sulut) -> None:
    agency = sulut.agencies["kesehatan-7101"]
    subject = str(agency)
    balita: dict[str, Any] = {"agency_id": agency, "region": "7101", "year": sulut.year,
                              "service_type": "kesehatan.kab.balita"}
    await registry_events(reporting_settings,
                          (pg.TARGET_FIGURE_SET, figure(**balita, target=50, version=1), subject),
                          (pg.TARGET_FIGURE_SET, figure(**balita, target=40, version=2), subject),
                          (pg.TARGET_FIGURE_SET, figure(**balita, target=99, version=1), subject))  # stale
    table = await matrix(reporting, tokens.admin(), region="71", year=sulut.year)
    row = cell(table, "7101", "kesehatan.kab.balita")
    assert (row["target_computed"], row["target_agency"], row["target_effective"]) == (7, 40, 40)
    assert row["achievement_percent"] == 0.0  # none served of 40
    # Suppressed, the computed 7 is withheld (Minahasa's 3 is small); the agency's figure stands.
    shown = cell(await matrix(reporting, tokens.pembina("71"), region="71", year=sulut.year), "7101",
                 "kesehatan.kab.balita")
    assert (shown["target_computed"], shown["target_agency"], shown["target_effective"]) == (None, 40, 40)
    # Another year's figure does not apply; a withdrawn figure gives way to the computed target again.
    elderly: dict[str, Any] = {"agency_id": sulut.agencies["kesehatan-7102"], "region": "7102", "year": sulut.year,
               "service_type": "kesehatan.kab.usia-lanjut"}
    await registry_events(reporting_settings,
                          (pg.TARGET_FIGURE_SET, figure(**{**elderly, "year": sulut.year - 1}, target=8, version=1),
                           subject),
                          (pg.TARGET_FIGURE_SET, figure(**elderly, target=10, version=1), subject))
    row = cell(await matrix(reporting, tokens.admin(), region="71", year=sulut.year), "7102",
               "kesehatan.kab.usia-lanjut")
    assert (row["target_computed"], row["target_agency"], row["target_effective"]) == (0, 10, 10)
    await registry_events(reporting_settings, (pg.TARGET_FIGURE_SET, figure(**elderly, target=None, version=2),
                                               subject))
    row = cell(await matrix(reporting, tokens.admin(), region="71", year=sulut.year), "7102",
               "kesehatan.kab.usia-lanjut")
    assert (row["target_computed"], row["target_agency"], row["target_effective"]) == (0, None, 0)
    assert row["achievement_percent"] is None  # over a target of 0


async def test_a_programmes_life_makes_the_matrix_cells_follow(reporting: httpx.AsyncClient,
                                                               reporting_settings: ReportingSettings,
                                                               sulut: Sulut) -> None:
    agency, year = sulut.agencies["kesehatan-7101"], sulut.year
    mine = programme(agency_id=agency, year=year, service_type="kesehatan.kab.ibu-hamil", regions=[SATU],
                     budget={"apbd-regency": 100_000_000, "zakat": 20_000_000})
    cancelled = programme(agency_id=agency, year=year, service_type="kesehatan.kab.ibu-hamil", regions=["7101"],
                          budget={"apbd-regency": 1_000_000}, status="cancelled")
    wide = programme(agency_id=sulut.agencies["baznas-71"], year=year, service_type="kesehatan.kab.ibu-hamil",
                     regions=["71"], budget={"zakat": 7_000_000}, name="Zakat untuk ibu hamil")
    subject = str(mine.programme_id)
    # February's realisation arrives before the programme it belongs to.
    await registry_events(
        reporting_settings,
        (pg.PROGRAMME_REALISED, realisation(mine, f"{year}-02", {"apbd-regency": 15_000_000, "zakat": 5_000_000}),
         subject),
        (pg.PROGRAMME_REGISTERED, mine, subject),
        (pg.PROGRAMME_REALISED, realisation(mine, f"{year}-01", {"apbd-regency": 10_000_000}), subject),
        (pg.PROGRAMME_REGISTERED, cancelled, str(cancelled.programme_id)),
        (pg.PROGRAMME_REGISTERED, wide, str(wide.programme_id)))
    table = await matrix(reporting, tokens.admin(), region="71", year=year)
    row = cell(table, "7101", "kesehatan.kab.ibu-hamil")
    assert (row["programmes"], row["budget_planned"], row["planned_apbd_regency"], row["planned_zakat"]) == (
        1, 120_000_000, 100_000_000, 20_000_000)
    assert (row["budget_realised"], row["realised_apbd_regency"], row["realised_zakat"]) == (
        30_000_000, 25_000_000, 5_000_000)
    assert row["budget_per_served"] == 5_000_000  # 30 million over 6 served
    assert cell(table, "7102", "kesehatan.kab.ibu-hamil")["programmes"] == 0
    # The province-wide programme is in the province's total only, not split among its regencies.
    total = cell(table, "71", "kesehatan.kab.ibu-hamil")
    assert (total["programmes"], total["budget_planned"], total["planned_zakat"]) == (2, 127_000_000, 27_000_000)

    # Corrected: a new version of the programme and of January; the stale versions that arrive after are ignored.
    corrected = mine.model_copy(update={"version": 2, "budget": [
        pg.BudgetLine(source=pg.BudgetSource.APBD_REGENCY, amount=150_000_000),
        pg.BudgetLine(source=pg.BudgetSource.ZAKAT, amount=20_000_000)]})
    await registry_events(
        reporting_settings,
        (pg.PROGRAMME_UPDATED, corrected, subject),
        (pg.PROGRAMME_REALISED, realisation(mine, f"{year}-01", {"apbd-regency": 12_000_000}, version=2), subject),
        (pg.PROGRAMME_UPDATED, mine.model_copy(update={"budget": []}), subject),  # version 1 again
        (pg.PROGRAMME_REALISED, realisation(mine, f"{year}-01", {"apbd-regency": 99_000_000}), subject))
    row = cell(await matrix(reporting, tokens.admin(), region="71", year=year), "7101", "kesehatan.kab.ibu-hamil")
    assert (row["budget_planned"], row["budget_realised"]) == (170_000_000, 32_000_000)
    assert row["budget_per_served"] == round(32_000_000 / 6)
    # The year to date through January: January's spending only.
    january = cell(await matrix(reporting, tokens.admin(), region="71", year=year, month=1), "7101",
                   "kesehatan.kab.ibu-hamil")
    assert (january["budget_planned"], january["budget_realised"]) == (170_000_000, 12_000_000)
    # The agency's own column holds its programme; Baznas's holds its own.
    agencies = await matrix(reporting, tokens.admin(), region="7101", year=year, columns="agencies")
    health = cell(agencies, str(agency), "kesehatan.kab.ibu-hamil")
    assert (health["programmes"], health["budget_realised"], health["served"]) == (1, 32_000_000, 6)
    assert cell(agencies, str(sulut.agencies["baznas-71"]), "sosial.prov.lansia-terlantar")["region_code"] == "7101"
    assert not [r for r in agencies["rows"] if r.get("agency_id") == str(sulut.agencies["baznas-71"])
                and r["service_type"] == "kesehatan.kab.ibu-hamil"]  # a province body: province types only
    # The regency's own report holds its programme and the province-wide one that serves it too.
    excel = await reporting.get(MATRIX, params={"region": "7101", "year": year, "format": "xlsx"},
                                headers=tokens.admin())
    report = _sheet_rows(excel.content, "Laporan SPM")
    [header] = [r for r in report if r[0] == "No"]
    [pregnancy] = [dict(zip(header, r, strict=True)) for r in report if r[1] == "Pelayanan kesehatan ibu hamil"]
    assert (pregnancy["Anggaran (Rp)"], pregnancy["Realisasi Anggaran (Rp)"]) == (177_000_000, 32_000_000)
    assert pregnancy["Jumlah yang Terlayani"] == 6 and pregnancy["Capaian (%)"] == 100.0


async def test_small_cells_are_suppressed_and_what_derives_from_them(reporting: httpx.AsyncClient,
                                                                     sulut: Sulut) -> None:
    table = await matrix(reporting, tokens.pembina("71"), region="71", year=sulut.year)
    assert table["suppression_threshold"] == 5
    minahasa = cell(table, "7102", "kesehatan.kab.ibu-hamil")
    assert (minahasa["target_computed"], minahasa["served"], minahasa["achievement_percent"]) == (None, None, None)
    assert {"target_computed", "target_effective", "served", "achievement_percent", "budget_per_served",
            "in_need"} <= set(minahasa["suppressed"])
    # Bolaang Mongondow's 6 served and 6 pregnant would be the province's 7 and 9 minus Minahasa's: withheld too.
    bolmong = cell(table, "7101", "kesehatan.kab.ibu-hamil")
    assert (bolmong["target_computed"], bolmong["served"]) == (None, None)
    province = cell(table, "71", "kesehatan.kab.ibu-hamil")
    assert (province["target_computed"], province["served"], province["in_need"]) == (9, 7, 5)
    assert province["achievement_percent"] == round(100 * 7 / 9, 2)
    # An agency's served protect the region's: Bolaang Mongondow's is withheld, so its one agency's 6 are too.
    agencies = await matrix(reporting, tokens.pembina("71"), region="7101", year=sulut.year, columns="agencies")
    health = cell(agencies, str(sulut.agencies["kesehatan-7101"]), "kesehatan.kab.ibu-hamil")
    assert health["served"] is None and "served" in health["suppressed"]
    # Budgets are never withheld (nor the agency's figure: see the figure's test).
    assert bolmong["budget_realised"] is not None and "budget_realised" not in bolmong["suppressed"]


async def test_access_follows_the_indicators(reporting: httpx.AsyncClient, sulut: Sulut) -> None:
    year = sulut.year
    outside = await reporting.get(MATRIX, params={"region": "7101", "year": year}, headers=tokens.pembina("7102"))
    assert outside.status_code == 403 and outside.headers["content-type"] == PROBLEM_MEDIA_TYPE
    own = await matrix(reporting, tokens.pembina("7102"))
    assert own["region"] == "7102" and own["period"]["label"] == str(datetime.now(UTC).year)  # by default
    health = tokens.opd(sulut.agencies["kesehatan-7101"], ["kesehatan"])
    assert (await reporting.get(MATRIX, params={"spm_field": "sosial", "year": year},
                                headers=health)).status_code == 403
    assert (await reporting.get(MATRIX, params={"region": "7102", "year": year}, headers=health)).status_code == 403
    fields = {r["spm_field"] for r in (await matrix(reporting, health, year=year))["rows"]}
    assert fields == {"kesehatan"}
    unknown = tokens.opd(uuid.uuid4(), ["kesehatan"])
    assert (await reporting.get(MATRIX, params={"year": year}, headers=unknown)).status_code == 403
    assert (await reporting.get(MATRIX, params={"year": year})).status_code == 401


def _sheet_rows(content: bytes, title: str) -> list[list[Any]]:
    sheet = load_workbook(io.BytesIO(content))[title]
    return [list(r) for r in sheet.iter_rows(values_only=True)]


@pytest.mark.parametrize("role", ["admin", "pembina"])
async def test_the_excel_report_opens_and_its_totals_equal_the_apis(reporting: httpx.AsyncClient, sulut: Sulut,
                                                                    role: str) -> None:
    headers = tokens.admin() if role == "admin" else tokens.pembina("71")
    api = await matrix(reporting, headers, region="7101", year=sulut.year)
    response = await reporting.get(MATRIX, params={"region": "7101", "year": sulut.year, "format": "xlsx"},
                                   headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX and "laporan-spm-7101" in response.headers["content-disposition"]
    rows = _sheet_rows(response.content, "Laporan SPM")
    assert rows[0][0] == "LAPORAN PENERAPAN STANDAR PELAYANAN MINIMAL (SPM)"
    assert rows[1][0] == "Pemerintah Daerah: Kabupaten Bolaang Mongondow (7101)"
    [header] = [r for r in rows if r[0] == "No"]
    for expected in ("Jenis Pelayanan Dasar", "Jumlah Sasaran", "Jumlah yang Terlayani", "Capaian (%)",
                     "Anggaran (Rp)", "Realisasi Anggaran (Rp)"):
        assert expected in header
    by_label = {r[1]: dict(zip(header, r, strict=True)) for r in rows if r[1]}
    own = [r for r in api["rows"] if r["region_code"] == "7101"]
    for field, name in (("kesehatan", "Kesehatan"), ("pekerjaan-umum", "Pekerjaan Umum"), ("sosial", "Sosial")):
        parts = [r for r in own if r["spm_field"] == field]
        totals = by_label[f"Jumlah Bidang {name}"]
        for key, label in (("target_effective", "Jumlah Sasaran"), ("served", "Jumlah yang Terlayani"),
                           ("budget_planned", "Anggaran (Rp)"), ("budget_realised", "Realisasi Anggaran (Rp)"),
                           ("programmes", "Jumlah Program")):
            if any(key in r["suppressed"] for r in parts):
                assert totals[label] == "x", (field, key)
            else:
                assert totals[label] == sum(r[key] or 0 for r in parts), (field, key)
        for r in parts:  # and each service type's row is the API's
            shown = by_label[r["service_type_name"]]
            assert shown["Jumlah yang Terlayani"] == ("x" if "served" in r["suppressed"] else r["served"])
    budget = _sheet_rows(response.content, "Sumber Anggaran")
    assert any(r[1] == "Pelayanan kesehatan ibu hamil" for r in budget)
    assert _sheet_rows(response.content, "Matriks")[0][:2] == ["Kode wilayah", "Wilayah"]


async def test_the_csv_export_escapes_formulas(reporting: httpx.AsyncClient, sulut: Sulut) -> None:
    response = await reporting.get(MATRIX, params={"region": "710201", "year": sulut.year, "format": "csv",
                                                   "lang": "id"}, headers=tokens.admin())
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    tiga = [r for r in rows if r["Kode wilayah"] == TIGA]
    assert tiga and {r["Wilayah"] for r in tiga} == {"'=Desa Tiga"}
    pregnant = next(r for r in tiga if r["Kode jenis pelayanan"] == "kesehatan.kab.ibu-hamil")
    assert (pregnant["Jumlah sasaran (data posyandu)"], pregnant["Jumlah yang terlayani"]) == ("3", "1")
    excel = await reporting.get(MATRIX, params={"region": "710201", "year": sulut.year, "format": "xlsx"},
                                headers=tokens.admin())
    sheet = load_workbook(io.BytesIO(excel.content))["Matriks"]
    names = {c.value for c in sheet["B"]}
    assert "'=Desa Tiga" in names and all(c.data_type == "s" for c in sheet["B"] if c.value)


@pytest.mark.parametrize("params", [{"year": "abc"}, {"year": "1899"}, {"year": "9999"}, {"month": "13"},
                                    {"month": "0"}, {"columns": "villages"}, {"level": "district"},
                                    {"spm_field": "transport"}, {"region": "7"}, {"region": "\u0667\u0661"},
                                    {"format": "pdf"}, {"lang": "fr"}])
async def test_bad_query_parameters_are_a_422_problem(reporting: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await reporting.get(MATRIX, params={"region": "71", **params}, headers=tokens.admin())
    assert response.status_code == 422, (params, response.text)
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    [name] = params
    assert [e["field"] for e in response.json()["errors"]] == [f"query.{name}"]


async def test_inputs_with_malformed_region_codes_are_dead_lettered(reporting_settings: ReportingSettings,
                                                                   sulut: Sulut) -> None:
    agency = sulut.agencies["kesehatan-7101"]
    bad = programme(agency_id=agency, year=sulut.year, service_type="kesehatan.kab.balita", regions=["7101", "%"],
                    budget={"csr": 1})
    stream = Stream(default_time=spm_scenario.at(sulut.last))
    stream.add(pg.PROGRAMME_REGISTERED, bad, subject=str(bad.programme_id))
    stream.add(pg.TARGET_FIGURE_SET, figure(agency_id=agency, region="71__", year=sulut.year,
                                            service_type="kesehatan.kab.balita", target=5, version=1),
               subject=str(agency))
    await publish(reporting_settings.kafka_bootstrap_servers, stream.events)
    ids = {event.id for _, event in stream.events}
    parked = await read_topic(reporting_settings.kafka_bootstrap_servers, dead_letter_topic("reporting"),
                              until=lambda received: ids <= {r.event.id for r in received if r.event}, timeout=60)
    assert all(r.headers["dlq_error"] for r in parked if r.event is not None and r.event.id in ids)
    conn = await asyncpg.connect(reporting_settings.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM spm_programmes WHERE id = $1", bad.programme_id) == 0
        assert await conn.fetchval("SELECT count(*) FROM spm_target_figures WHERE region_code = '71__'") == 0
    finally:
        await conn.close()
