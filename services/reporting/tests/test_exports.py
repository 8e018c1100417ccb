"""CSV and Excel exports open with the csv module and openpyxl and hold the numbers (withheld as `x`)."""

from __future__ import annotations

import csv
import io

import httpx
from openpyxl import load_workbook

from services.reporting.exports.render import XLSX
from services.reporting.tests.conftest import Published
from services.reporting.tests.scenario import TAMILOUW
from tests.support import tokens


async def test_the_indicator_table_as_csv_in_indonesian(reporting: httpx.AsyncClient, maluku: Published) -> None:
    response = await reporting.get("/api/v1/indicators", headers=tokens.pembina("81"), params={
        "region": TAMILOUW, "period": maluku.period, "format": "csv", "lang": "id"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    [row] = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert row["Kode wilayah"] == TAMILOUW and row["Wilayah"] == "Tamilouw"
    assert row["Rumah tangga terdaftar"] == "6" and row["Bayi (0-11 bulan)"] == "x"
    assert row["Prevalensi stunting"] == "x" and row["Cakupan penimbangan (D/S)"] == "0.8333"


async def test_the_accept_header_chooses_csv(reporting: httpx.AsyncClient, maluku: Published) -> None:
    response = await reporting.get("/api/v1/indicators", params={"region": TAMILOUW, "period": maluku.period},
                                   headers={**tokens.admin(), "Accept": "text/csv"})
    [row] = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert (row["Households registered"], row["Infants (0-11 months)"]) == ("6", "1")  # admin: not suppressed


async def test_the_matrix_as_excel(reporting: httpx.AsyncClient, maluku: Published) -> None:
    def health_row(response: httpx.Response) -> dict[str, object]:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == XLSX
        sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
        assert sheet is not None
        header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        records = [dict(zip(header, r, strict=False)) for r in rows]  # (trailing empty cells are not read)
        return next(r for r in records if r["Agency id"] == str(maluku.world.agencies["kesehatan-8101"]))

    keys = ("Referrals created", "Completed", "Children under five registered (S)")
    for request in ({"params": {"region": "8101", "period": maluku.period, "format": "xlsx"}, "headers": {}},
                    {"params": {"region": "8101", "period": maluku.period}, "headers": {"Accept": XLSX}}):
        health = health_row(await reporting.get("/api/v1/matrix", params=request["params"],
                                                headers={**tokens.pembina("81"), **request["headers"]}))
        # Completed (2) is small; the agency's 5 referrals would follow from the province agency's none, and
        # Maluku Tengah's 6 children under five from Kota Ambon's none (Maluku's 6 minus them): withheld too.
        assert tuple(health[k] for k in keys) == ("x", "x", "x")
    health = health_row(await reporting.get("/api/v1/matrix", params={"region": "8101", "period": maluku.period,
                                                                      "format": "xlsx"}, headers=tokens.admin()))
    assert tuple(health[k] for k in keys) == (5, 2, 6)  # numbers, as numbers
