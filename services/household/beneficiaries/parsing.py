"""Reading a beneficiary list (CSV or XLSX) into checked rows, with every problem named by row and column.

A list is all or nothing: :func:`parse_list` returns the rows only when every row is valid, otherwise raises
:class:`~shared.errors.ValidationFailed` listing each problem (``row`` is the spreadsheet's row number, the header
being row 1), so nothing of a malformed list is stored.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from openpyxl import load_workbook

from services.household.identifiers import IdentifierError, check_nik_against_member, parse_kk, parse_nik
from shared.errors import ValidationFailed

COLUMNS = ("nik", "kk_number", "name", "birth_date", "period", "note")
REQUIRED = ("name", "birth_date")
MAX_NAME, MAX_NOTE = 200, 500
#: The most problems one answer lists (a wholly wrong file would otherwise answer with one per cell).
MAX_ERRORS = 200
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_DAY_FIRST = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_EARLIEST_BIRTH = date(1900, 1, 1)


@dataclass(frozen=True, slots=True)
class ListRow:
    row_number: int
    nik: str | None
    kk_number: str | None
    name: str
    birth_date: date
    #: The days of the programme this row receives in: the month given, or the programme's whole period.
    period_start: date
    period_end: date
    note: str | None


def _refuse(detail: str, errors: list[dict[str, Any]]) -> ValidationFailed:
    return ValidationFailed(detail, errors=errors[:MAX_ERRORS])


def _csv_records(content: bytes) -> Iterator[list[Any]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _refuse("The file is neither an XLSX workbook nor a UTF-8 CSV file.",
                      [{"row": None, "field": "file", "message": "not UTF-8 text nor an XLSX workbook"}]) from None
    first_line = text.split("\n", 1)[0]
    # Spreadsheet programmes set to Indonesian write `;` between the columns.
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _xlsx_records(content: bytes) -> Iterator[list[Any]]:
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
    # openpyxl raises many kinds of errors for a damaged workbook; each is the file's fault, never ours.
    except Exception:
        raise _refuse("The XLSX workbook cannot be read.",
                      [{"row": None, "field": "file", "message": "a damaged or unsupported XLSX workbook"}]) from None
    try:
        for row in rows:
            yield list(row)
    except Exception:
        raise _refuse("The XLSX workbook cannot be read.",
                      [{"row": None, "field": "file", "message": "a damaged XLSX worksheet"}]) from None
    finally:
        workbook.close()


def _records(content: bytes) -> Iterator[list[Any]]:
    """The file's rows as lists of cells: an XLSX workbook (a zip archive, its first sheet) or a CSV text."""
    return _xlsx_records(content) if zipfile.is_zipfile(io.BytesIO(content)) else _csv_records(content)


def _header(cells: list[Any]) -> list[str]:
    names = [str(c).strip().lower() if c is not None else "" for c in cells]
    while names and names[-1] == "":
        names.pop()
    expected = f"unknown column; expected {', '.join(COLUMNS)}"
    errors = [{"row": 1, "field": name or f"column {i + 1}", "message": expected}
              for i, name in enumerate(names) if name not in COLUMNS]
    errors += [{"row": 1, "field": name, "message": "the column appears twice"}
               for name in sorted({n for n in names if names.count(n) > 1 and n in COLUMNS})]
    errors += [{"row": 1, "field": name, "message": "required column missing"} for name in REQUIRED
               if name not in names]
    if "nik" not in names and "kk_number" not in names:
        errors.append({"row": 1, "field": "nik", "message": "a list needs a `nik` or a `kk_number` column"})
    if errors:
        raise _refuse("The list's header is not usable.", errors)
    return names


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    text = value.isoformat() if isinstance(value, date) else str(value)
    return text.strip() or None


def _birth_date(value: Any, today: date) -> date:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        parsed = value
    else:
        text = str(value).strip()
        day_first = _DAY_FIRST.match(text)
        try:
            parsed = (date(int(day_first[3]), int(day_first[2]), int(day_first[1])) if day_first
                      else date.fromisoformat(text))
        except ValueError:
            raise ValueError("not a date: write YYYY-MM-DD (or DD-MM-YYYY)") from None
    if not _EARLIEST_BIRTH <= parsed <= today:
        raise ValueError(f"must lie between {_EARLIEST_BIRTH.isoformat()} and today")
    return parsed


def _identifier(value: Any, what: str) -> str:
    if isinstance(value, int | float):
        # Excel keeps numbers as doubles: a 16-digit number loses its last digit, so it is no identifier any more.
        raise ValueError(f"the {what} is a number cell; format the column as text (a spreadsheet rounds 16-digit "
                         "numbers)")
    return str(value).strip()


def _period(value: str | None, programme_start: date, programme_end: date) -> tuple[date, date]:
    if value is None:
        return programme_start, programme_end
    month = _MONTH.match(value)
    if month is None or not 1900 <= int(month[1]) <= 9998:
        raise ValueError("write the month as YYYY-MM (years 1900 to 9998)")
    first = date(int(month[1]), int(month[2]), 1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    if last < programme_start or first > programme_end:
        raise ValueError(f"{value} lies outside the programme's period {programme_start.isoformat()} to "
                         f"{programme_end.isoformat()}")
    return max(first, programme_start), min(last, programme_end)


def _row(number: int, cells: dict[str, Any], *, today: date, programme_start: date, programme_end: date,
         errors: list[dict[str, Any]]) -> ListRow | None:
    found: list[dict[str, Any]] = []

    def problem(field: str, message: str) -> None:
        found.append({"row": number, "field": field, "message": message})

    name = _text(cells.get("name"))
    if name is None:
        problem("name", "required")
    elif len(name) > MAX_NAME:
        problem("name", f"at most {MAX_NAME} characters")
    birth: date | None = None
    if cells.get("birth_date") in (None, ""):
        problem("birth_date", "required")
    else:
        try:
            birth = _birth_date(cells["birth_date"], today)
        except ValueError as exc:
            problem("birth_date", str(exc))
    identifiers: dict[str, str | None] = {"nik": None, "kk_number": None}
    for field, what in (("nik", "NIK"), ("kk_number", "KK number")):
        if cells.get(field) in (None, ""):
            continue
        try:
            value = _identifier(cells[field], what)
            if field == "nik":
                nik_info = parse_nik(value, today=today)
                for disagreement in check_nik_against_member(nik_info, birth_date=birth, sex=None):
                    problem("nik", disagreement)
            else:
                parse_kk(value, today=today)
            identifiers[field] = value
        except (IdentifierError, ValueError) as exc:
            problem(field, str(exc))
    if identifiers["nik"] is None and identifiers["kk_number"] is None and not any(
            p["field"] in ("nik", "kk_number") for p in found):
        problem("nik", "each row needs a NIK or a KK number")
    note = _text(cells.get("note"))
    if note is not None and len(note) > MAX_NOTE:
        problem("note", f"at most {MAX_NOTE} characters")
    period = (programme_start, programme_end)
    try:
        period = _period(_text(cells.get("period")), programme_start, programme_end)
    except ValueError as exc:
        problem("period", str(exc))
    errors += found
    if found or name is None or birth is None:
        return None
    return ListRow(row_number=number, nik=identifiers["nik"], kk_number=identifiers["kk_number"], name=name,
                   birth_date=birth, period_start=period[0], period_end=period[1], note=note)


def parse_list(content: bytes, *, today: date, programme_start: date, programme_end: date,
               max_rows: int) -> list[ListRow]:
    """Every row of the list, checked; raises ValidationFailed (422) naming every problem when one row is wrong."""
    records = _records(content)
    header = next(records, None)
    if header is None:
        raise _refuse("The list is empty.", [{"row": None, "field": "file", "message": "no header row"}])
    names = _header(header)
    rows: list[ListRow] = []
    errors: list[dict[str, Any]] = []
    seen_nik: dict[str, int] = {}
    count = 0
    for number, cells in enumerate(records, start=2):
        if all(c is None or str(c).strip() == "" for c in cells):
            continue  # blank lines and trailing empty spreadsheet rows
        count += 1
        if count > max_rows:
            raise _refuse(f"The list has more than {max_rows} rows; split it.",
                          [{"row": number, "field": "file", "message": f"more than {max_rows} rows"}])
        extra = [c for c in cells[len(names):] if c is not None and str(c).strip()]
        if extra:
            errors.append({"row": number, "field": "file", "message": "more cells than the header has columns"})
            continue
        row = _row(number, dict(zip(names, cells, strict=False)), today=today, programme_start=programme_start,
                   programme_end=programme_end, errors=errors)
        if row is not None and row.nik is not None:
            if row.nik in seen_nik:
                errors.append({"row": number, "field": "nik", "message": f"the NIK repeats row {seen_nik[row.nik]}"})
                continue
            seen_nik[row.nik] = number
        if row is not None:
            rows.append(row)
    if errors:
        raise _refuse(f"{len({e['row'] for e in errors})} rows of the list are not valid; nothing was stored.",
                      errors)
    if not rows:
        raise _refuse("The list has no rows.", [{"row": None, "field": "file", "message": "no data rows"}])
    return rows
