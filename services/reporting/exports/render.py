"""A report table as JSON, CSV or Excel (.xlsx), chosen by `?format=` or the Accept header.

Withheld cells are written as `x` in CSV and Excel, and as null in JSON: the small ones and those withheld so
that no small one can be derived alike (telling them apart would narrow both), and never a number.

Text comes from other systems' events (region, village and agency names, need categories, referral statuses), so
no text cell may reach a spreadsheet program as a formula (OWASP CSV injection): a text that begins like one gets
a leading `'` (shared/spreadsheet.py, the household's due list uses it too), and Excel cells are written as
strings, never formulas. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Literal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from starlette.responses import Response

from services.reporting.indicators.schemas import ReportTable
from shared.responses import json_response
from shared.spreadsheet import neutralised

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ExportFormat = Literal["json", "csv", "xlsx"]
WITHHELD = "x"


def negotiate(requested: ExportFormat | None, accept: str | None) -> ExportFormat:
    """`?format=` wins; otherwise the Accept header picks CSV or Excel; JSON by default."""
    if requested:
        return requested
    accept = (accept or "").lower()
    if XLSX in accept:
        return "xlsx"
    if CSV in accept:
        return "csv"
    return "json"


def _cells(table: ReportTable) -> list[list[Any]]:
    marker = WITHHELD if table.suppression_threshold else None
    out = []
    for row in table.rows:
        hidden = set(row.get("suppressed") or ())
        out.append([marker if c.key in hidden else row.get(c.key) for c in table.columns])
    return out


def _excel_cell(sheet: Any, value: Any) -> Any:
    """A string cell (never a formula) without the control characters the format cannot hold; numbers as they are."""
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
    cell.data_type = "s"
    return cell


def _filename(table: ReportTable, extension: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", f"{table.title} {table.region or 'national'} {table.period['label']}".lower())
    return f"{slug.strip('-')}.{extension}"


def render(table: ReportTable, output: ExportFormat) -> Response:
    if output == "json":
        return json_response(table)
    header = [c.label for c in table.columns]
    rows = [[neutralised(v) for v in row] for row in [header, *_cells(table)]]
    if output == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerows(["" if v is None else v for v in row] for row in rows)
        body = buffer.getvalue().encode("utf-8-sig")  # the BOM lets spreadsheet programs read UTF-8 names
        media_type = f"{CSV}; charset=utf-8"
    else:
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(table.title[:31])
        for row in rows:
            sheet.append([_excel_cell(sheet, v) for v in row])
        buffer_bytes = io.BytesIO()
        workbook.save(buffer_bytes)
        body, media_type = buffer_bytes.getvalue(), XLSX
    disposition = f'attachment; filename="{_filename(table, output)}"'
    return Response(body, media_type=media_type, headers={"Content-Disposition": disposition})
