"""The SPM matrix as the annual SPM application report (laporan penerapan SPM) a regional government submits:
an Excel workbook with Indonesian headers.

- `Laporan SPM`: the region asked for, per field (I. Pendidikan ... VI. Sosial) its service types with the target
  (jumlah sasaran), residents served (jumlah yang terlayani), achievement (capaian %), budget (anggaran) and its
  realisation, and a totals row per field (jumlah bidang): counts and rupiah summed (a withheld part withholds the
  total: it would give the part back), the field's achievement the mean of its service types' (the index of
  Permendagri 59/2021), per served the realised budget over the served;
- `Sumber Anggaran`: the region's budget and its realisation per source;
- `Matriks`: every column (child regions or agencies) as the CSV has it.

Withheld counts are `x`; text cells are never formulas (the exports' rules, exports/render.py).
"""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from services.reporting.exports.render import WITHHELD
from services.reporting.indicators.schemas import ReportTable
from services.reporting.spm.service import SOURCE_NAMES, SOURCES
from shared.events.topics import SpmField
from shared.spreadsheet import neutralised

FIELD_NAMES = {SpmField.PENDIDIKAN: "Pendidikan", SpmField.KESEHATAN: "Kesehatan",
               SpmField.PEKERJAAN_UMUM: "Pekerjaan Umum", SpmField.PERUMAHAN_RAKYAT: "Perumahan Rakyat",
               SpmField.TRANTIBUMLINMAS: "Ketenteraman, Ketertiban Umum dan Pelindungan Masyarakat",
               SpmField.SOSIAL: "Sosial"}
ROMAN = ["I", "II", "III", "IV", "V", "VI"]
MONTHS = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
          "November", "Desember"]

#: The report sheet's columns: (header, row key).
REPORT_COLUMNS = [("No", None), ("Jenis Pelayanan Dasar", "service_type_name"), ("Satuan", "target_unit"),
                  ("Sasaran dari Data Posyandu", "target_computed"), ("Sasaran Penetapan OPD", "target_agency"),
                  ("Jumlah Sasaran", "target_effective"), ("Jumlah yang Membutuhkan Layanan", "in_need"),
                  ("Jumlah yang Terlayani", "served"), ("Capaian (%)", "achievement_percent"),
                  ("Jumlah Program", "programmes"), ("Anggaran (Rp)", "budget_planned"),
                  ("Realisasi Anggaran (Rp)", "budget_realised"),
                  ("Realisasi Anggaran per Penerima Layanan (Rp)", "budget_per_served")]
#: Summed in a field's totals row.
SUMMED = ["target_computed", "target_agency", "target_effective", "in_need", "served", "programmes",
          "budget_planned", "budget_realised"]

_BOLD = Font(bold=True)
_HEAD_FILL = PatternFill("solid", fgColor="D9E1F2")
_FIELD_FILL = PatternFill("solid", fgColor="F2F2F2")
_THIN = Side(style="thin", color="999999")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_PERCENT = 1 + [key for _, key in REPORT_COLUMNS].index("achievement_percent")


def field_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A field's totals row over its service types' rows (see the module's docstring)."""
    out: dict[str, Any] = {}
    for key in SUMMED:
        parts = [r.get(key) for r in rows]
        withheld = any(key in (r.get("suppressed") or ()) for r in rows)
        known = [int(p) for p in parts if p is not None]
        out[key] = WITHHELD if withheld else (sum(known) if known else None)
    shown = [r["achievement_percent"] for r in rows if r.get("achievement_percent") is not None]
    out["achievement_percent"] = round(sum(shown) / len(shown), 2) if shown else None
    served, spent = out["served"], out["budget_realised"]
    out["budget_per_served"] = WITHHELD if served == WITHHELD else (round(spent / served) if served else None)
    return out


def _period_text(table: ReportTable) -> str:
    start, end = date.fromisoformat(table.period["start"]), date.fromisoformat(table.period["end"])
    last = date(end.year - 1, 12, 1) if end.month == 1 else date(end.year, end.month - 1, 1)
    if (start.month, last.month) == (1, 12):
        return f"Tahun {start.year}"
    return f"Januari s.d. {MONTHS[last.month - 1]} {start.year}"


def _text(value: Any) -> Any:
    """Text from events as plain text: not a formula, without the control characters the format cannot hold."""
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", neutralised(value)) if isinstance(value, str) else value


def _put(sheet: Worksheet, row: int, values: list[Any], *, bold: bool = False, fill: PatternFill | None = None,
         percent: int | None = None) -> None:
    """One row of boxed cells; numbers with thousands separators (column `percent` with two decimals)."""
    for col, value in enumerate(values, start=1):
        cell = sheet.cell(row=row, column=col, value=_text(value))
        if isinstance(value, str):
            cell.data_type = "s"  # a string, never a formula
        cell.border = _BOX
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if bold:
            cell.font = _BOLD
        if fill is not None:
            cell.fill = fill
        if isinstance(value, int | float) and col > 2:
            cell.number_format = "0.00" if col == percent else "#,##0"


def _shown(row: dict[str, Any], key: str | None, threshold: int | None) -> Any:
    if key is None:
        return None
    if threshold and key in (row.get("suppressed") or ()):
        return WITHHELD
    return row.get(key)


def _title(sheet: Worksheet, table: ReportTable, heading: str, width: int) -> int:
    lines = [heading, f"Pemerintah Daerah: {table.region_name or table.region} ({table.region or 'nasional'})",
             f"Periode: {_period_text(table)}"]
    if table.suppression_threshold:
        lines.append(f"x: jumlah di bawah {table.suppression_threshold} (atau yang dapat dihitung darinya) "
                     "tidak ditampilkan")
    for number, line in enumerate(lines, start=1):
        cell = sheet.cell(row=number, column=1, value=_text(line))
        cell.data_type = "s"
        cell.font = Font(bold=number == 1, size=13 if number == 1 else 11)
        sheet.merge_cells(start_row=number, start_column=1, end_row=number, end_column=width)
    return len(lines) + 2


def _report_sheet(sheet: Worksheet, table: ReportTable, own: list[dict[str, Any]]) -> None:
    row = header_row = _title(sheet, table, "LAPORAN PENERAPAN STANDAR PELAYANAN MINIMAL (SPM)", len(REPORT_COLUMNS))
    _put(sheet, row, [h for h, _ in REPORT_COLUMNS], bold=True, fill=_HEAD_FILL)
    for index, field in enumerate(SpmField):
        rows = [r for r in own if r["spm_field"] == field.value]
        if not rows:
            continue
        row += 1
        _put(sheet, row, [ROMAN[index], f"Bidang {FIELD_NAMES[field]}", *[None] * (len(REPORT_COLUMNS) - 2)],
             bold=True, fill=_FIELD_FILL)
        for number, r in enumerate(rows, start=1):
            row += 1
            _put(sheet, row, [number, *(_shown(r, key, table.suppression_threshold) for _, key in REPORT_COLUMNS[1:])],
                 percent=_PERCENT)
        totals = field_totals(rows)
        row += 1
        _put(sheet, row, [None, f"Jumlah Bidang {FIELD_NAMES[field]}", None,
                          *(totals.get(key or "") for _, key in REPORT_COLUMNS[3:])], bold=True, percent=_PERCENT)
    for col, width in enumerate([5, 60, 13, *[16] * (len(REPORT_COLUMNS) - 3)], start=1):
        sheet.column_dimensions[get_column_letter(col)].width = width
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=3)


def _budget_sheet(sheet: Worksheet, table: ReportTable, own: list[dict[str, Any]]) -> None:
    header = ["No", "Jenis Pelayanan Dasar",
              *(f"{kind} {SOURCE_NAMES[s][1]} (Rp)" for s in SOURCES for kind in ("Anggaran", "Realisasi"))]
    keys = [f"{kind}_{s.replace('-', '_')}" for s in SOURCES for kind in ("planned", "realised")]
    row = _title(sheet, table, "ANGGARAN DAN REALISASI PER SUMBER DANA", len(header))
    _put(sheet, row, header, bold=True, fill=_HEAD_FILL)
    for number, r in enumerate(own, start=1):
        row += 1
        _put(sheet, row, [number, r["service_type_name"], *(r.get(k) for k in keys)])
    for col, width in enumerate([5, 60, *[16] * len(keys)], start=1):
        sheet.column_dimensions[get_column_letter(col)].width = width


def _matrix_sheet(sheet: Worksheet, table: ReportTable) -> None:
    for col, c in enumerate(table.columns, start=1):
        cell = sheet.cell(row=1, column=col, value=_text(c.label))
        cell.data_type = "s"
        cell.font, cell.fill = _BOLD, _HEAD_FILL
    for number, r in enumerate(table.rows, start=2):
        for col, c in enumerate(table.columns, start=1):
            value = _shown(r, c.key, table.suppression_threshold)
            cell = sheet.cell(row=number, column=col, value=_text(value))
            if isinstance(value, str):
                cell.data_type = "s"
    sheet.freeze_panes = "A2"


def workbook(table: ReportTable) -> bytes:
    """The report of the region asked for (its own rows: region_code = the region, no agency) and the matrix."""
    own = [r for r in table.rows if r.get("region_code") == table.region and not r.get("agency_id")]
    book = Workbook()
    report = book.active
    assert report is not None
    report.title = "Laporan SPM"
    _report_sheet(report, table, own)
    _budget_sheet(book.create_sheet("Sumber Anggaran"), table, own)
    _matrix_sheet(book.create_sheet("Matriks"), table)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def filename(table: ReportTable) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", f"laporan spm {table.region or 'nasional'} {table.period['label']}".lower())
    return f"{slug.strip('-')}.xlsx"
