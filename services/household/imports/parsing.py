"""Streaming parse of an import file: bytes -> rows -> one household (KK) group at a time.

Nothing here holds more than the current line and the current KK's rows (plus the set of KK numbers already
finished, to catch a KK whose rows are not adjacent), so a file of any size parses in bounded memory. Both
stages are push-based (`feed`/`push`, then `close`), so the same code serves an async request body and a file.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from shared.errors import NUL_MESSAGE, ValidationFailed
from shared.text import NUL

Format = Literal["csv", "ndjson"]

HOUSEHOLD_FIELDS = ("kk_number", "village_code", "posyandu_id", "address", "rt", "rw", "latitude", "longitude")
MEMBER_FIELDS = ("nik", "name", "sex", "birth_date", "relationship", "pregnant", "expected_delivery_date",
                 "disability")
FIELDS = frozenset(HOUSEHOLD_FIELDS + MEMBER_FIELDS)
REQUIRED_COLUMNS = ("kk_number", "village_code", "posyandu_id", "name", "sex", "birth_date", "relationship")

#: A longer line (or CSV record) is a row error, never a reason to buffer without limit.
MAX_LINE_BYTES = 64 * 1024
#: How much of a streamed body is parsed between two turns of the event loop (a few milliseconds of work).
PIECE_BYTES = 4 * 1024
#: The schema's limit of members per household; more rows of one KK are refused as they arrive.
MAX_GROUP_ROWS = 30
NOT_ADJACENT = "KK seen earlier in the file; rows of one KK must be adjacent"


@dataclass(slots=True)
class RowError:
    row: int
    kk_number: str | None
    field: str | None
    message: str


@dataclass(slots=True)
class Row:
    """One member row: its known, non-empty fields and what was wrong with it while parsing and grouping."""

    number: int
    data: dict[str, Any]
    errors: list[RowError] = field(default_factory=list)

    @property
    def kk_number(self) -> str | None:
        value = self.data.get("kk_number")
        return None if value is None else str(value)


@dataclass(slots=True)
class Rejected:
    """A row refused on its own: unreadable, without a KK number, or one too many for its KK."""

    errors: list[RowError]


@dataclass(slots=True)
class Group:
    """The adjacent rows of one KK: one household to register."""

    kk_number: str
    rows: list[Row]
    #: The first row that belongs to this KK but could not join it (unreadable between its rows, or too many).
    blocked_by: int | None = None
    repeated: bool = False


Item = Group | Rejected


def _row(number: int, raw: dict[str, Any]) -> Row | Rejected:
    data: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in raw.items():
        if key not in FIELDS:
            unknown.append(key)
        elif isinstance(value, str):
            if value.strip():
                data[key] = value.strip()
        elif value is not None:
            data[key] = value
    row = Row(number, data)
    kk = row.kk_number
    row.errors.extend(RowError(number, kk, key[:100], "Unknown field") for key in unknown)
    # PostgreSQL text cannot hold a NUL: the row is refused here rather than its household failing in the database.
    row.errors.extend(RowError(number, kk, key, NUL_MESSAGE) for key, value in data.items()
                      if isinstance(value, str) and NUL in value)
    if kk is None:
        return Rejected([RowError(number, None, "kk_number", "Field required"), *row.errors])
    return row


def _open_quote(text: str, inside: bool) -> bool:
    """Whether a CSV record is still inside a quoted field after `text` (RFC 4180: "" escapes a quote)."""
    at_field_start = not inside
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if inside:
            if c == '"':
                if i + 1 < n and text[i + 1] == '"':
                    i += 1
                else:
                    inside = False
        elif c == '"' and at_field_start:
            inside = True
        at_field_start = not inside and c == ","
        i += 1
    return inside


class RowReader:
    """Bytes in, rows out: NDJSON line by line, CSV record by record (a quoted field may span lines)."""

    def __init__(self, fmt: Format) -> None:
        self.fmt = fmt
        self._buffer = bytearray()
        self._line_no = 0
        self._skipping = False
        self._header: list[str] | None = None
        self._record: list[str] = []
        self._record_start = 0
        self._record_size = 0
        self._in_quotes = False

    def feed(self, chunk: bytes) -> Iterator[Row | Rejected]:
        self._buffer += chunk
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            line = bytes(self._buffer[start:end])
            start = end + 1
            self._line_no += 1
            if self._skipping:
                self._skipping = False
            elif len(line) > MAX_LINE_BYTES:
                yield from self._abandon_record()
                yield Rejected([RowError(self._line_no, None, None, f"Line longer than {MAX_LINE_BYTES} bytes")])
            else:
                yield from self._line(line)
        del self._buffer[:start]
        if len(self._buffer) > MAX_LINE_BYTES and not self._skipping:
            # Refuse the over-long line now and drop the rest of it as it arrives.
            self._buffer.clear()
            self._skipping = True
            yield from self._abandon_record()
            yield Rejected([RowError(self._line_no + 1, None, None, f"Line longer than {MAX_LINE_BYTES} bytes")])
        elif self._skipping:
            self._buffer.clear()

    def close(self) -> Iterator[Row | Rejected]:
        if self._buffer and not self._skipping:
            self._line_no += 1
            yield from self._line(bytes(self._buffer))
        self._buffer.clear()
        if self._record:
            yield Rejected([RowError(self._record_start, None, None,
                                     "Unterminated quoted field at the end of the file")])
            self._record = []

    def _line(self, raw: bytes) -> Iterator[Row | Rejected]:
        try:
            text = raw.decode("utf-8-sig" if self._line_no == 1 else "utf-8").removesuffix("\r")
        except UnicodeDecodeError:
            yield from self._abandon_record()
            yield Rejected([RowError(self._line_no, None, None, "The line is not UTF-8 text")])
            return
        if self.fmt == "ndjson":
            yield from self._json_line(text)
        else:
            yield from self._csv_line(text)

    def _json_line(self, text: str) -> Iterator[Row | Rejected]:
        if not text.strip():
            return
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield Rejected([RowError(self._line_no, None, None, f"Not valid JSON: {exc}")])
            return
        if not isinstance(value, dict):
            yield Rejected([RowError(self._line_no, None, None, "Each line must be a JSON object")])
            return
        yield _row(self._line_no, value)

    def _abandon_record(self) -> Iterator[Rejected]:
        if self._record:
            yield Rejected([RowError(self._record_start, None, None, "Unterminated quoted field")])
        self._record, self._record_size, self._in_quotes = [], 0, False

    def _csv_line(self, text: str) -> Iterator[Row | Rejected]:
        if not self._record:
            if not text.strip():
                return
            self._record_start = self._line_no
        self._record.append(text)
        self._record_size += len(text)
        if '"' in text or self._in_quotes:
            self._in_quotes = _open_quote(text, self._in_quotes)
        if self._in_quotes:
            if self._record_size > MAX_LINE_BYTES:
                start = self._record_start
                self._record, self._record_size, self._in_quotes = [], 0, False
                yield Rejected([RowError(start, None, None, f"Record longer than {MAX_LINE_BYTES} bytes "
                                                            "(an unterminated quoted field?)")])
            return
        unreadable: str | None = None
        try:
            fields = next(csv.reader([line + "\n" for line in self._record]), [])
        except csv.Error as exc:  # a bare carriage return in an unquoted field, say
            fields, unreadable = [], str(exc)
        self._record, self._record_size = [], 0
        if unreadable is not None:
            if self._header is None:
                raise ValidationFailed("The CSV header is not readable; nothing was imported.",
                                       errors=[{"field": "header", "message": unreadable}])
            yield Rejected([RowError(self._record_start, None, None, f"Unreadable CSV record: {unreadable}")])
            return
        if self._header is None:
            self._header = _checked_header(fields)
            return
        if all(not f.strip() for f in fields):
            return
        parsed = _row(self._record_start, dict(zip(self._header, fields, strict=False)))
        if len(fields) != len(self._header):
            error = RowError(self._record_start, None, None,
                             f"Expected {len(self._header)} columns, got {len(fields)}")
            if isinstance(parsed, Row):
                error.kk_number = parsed.kk_number
            parsed.errors.append(error)
        yield parsed


def _checked_header(fields: list[str]) -> list[str]:
    header = [f.strip().lower() for f in fields]
    problems = [{"field": name[:100], "message": "unknown column"} for name in header if name not in FIELDS]
    problems += [{"field": name, "message": "column appears twice"} for name in sorted(set(header))
                 if header.count(name) > 1]
    problems += [{"field": name, "message": "required column missing"} for name in REQUIRED_COLUMNS
                 if name not in header]
    if problems:
        raise ValidationFailed("The CSV header is not usable; nothing was imported.", errors=problems)
    return header


class Grouper:
    """Rows in, households out: a group is yielded as soon as a row of another KK (or the end) arrives."""

    def __init__(self) -> None:
        self._current: Group | None = None
        self._finished: set[str] = set()
        self._stray_row: int | None = None

    def push(self, item: Row | Rejected) -> Iterator[Item]:
        if isinstance(item, Rejected):
            # An unreadable row between two rows of one KK probably belonged to it: remember it, decide later.
            if self._current is not None and self._stray_row is None:
                self._stray_row = item.errors[0].row
            yield item
            return
        kk = item.kk_number
        assert kk is not None
        current = self._current
        if current is not None and kk == current.kk_number:
            if self._stray_row is not None:
                current.blocked_by = current.blocked_by or self._stray_row
                self._stray_row = None
            if len(current.rows) >= MAX_GROUP_ROWS:
                current.blocked_by = current.blocked_by or item.number
                yield Rejected([RowError(item.number, kk, None, f"A KK holds at most {MAX_GROUP_ROWS} members"),
                                *item.errors])
                return
            self._check_agreement(current, item)
            current.rows.append(item)
            return
        self._stray_row = None
        if current is not None:
            yield self._finish(current)
        group = Group(kk, [item], repeated=kk in self._finished)
        if group.repeated:
            item.errors.append(RowError(item.number, kk, "kk_number", NOT_ADJACENT))
        self._current = group

    def close(self) -> Iterator[Item]:
        if self._current is not None:
            yield self._finish(self._current)

    def _finish(self, group: Group) -> Group:
        self._finished.add(group.kk_number)
        self._current = None
        return group

    @staticmethod
    def _check_agreement(group: Group, row: Row) -> None:
        first = group.rows[0]
        if group.repeated:
            row.errors.append(RowError(row.number, group.kk_number, "kk_number", NOT_ADJACENT))
        for name in HOUSEHOLD_FIELDS:
            if row.data.get(name) != first.data.get(name):
                row.errors.append(RowError(row.number, group.kk_number, name,
                                           f"Differs from row {first.number} of the same KK"))
        nik = row.data.get("nik")
        if nik is not None:
            twin = next((r for r in group.rows if r.data.get("nik") == nik), None)
            if twin is not None:
                row.errors.append(RowError(row.number, group.kk_number, "nik",
                                           f"The same NIK is on row {twin.number} of this KK"))


def iter_items(chunks: Iterable[bytes], fmt: Format) -> Iterator[Item]:
    """Households and rejected rows of a file read in chunks, lazily."""
    reader, grouper = RowReader(fmt), Grouper()
    for chunk in chunks:
        for row in reader.feed(chunk):
            yield from grouper.push(row)
    for row in reader.close():
        yield from grouper.push(row)
    yield from grouper.close()


async def read_items(chunks: AsyncIterable[bytes], fmt: Format) -> AsyncIterator[Item]:
    """Households and rejected rows of a streamed body; reads on only as fast as the caller consumes.

    The body is parsed PIECE_BYTES at a time, yielding to the event loop after each piece: a received chunk may be
    the whole body (and rows refused by the parser never wait on the database), so without it an import would hold
    the loop, and every other request of the process, for as long as it parses.
    """
    reader, grouper = RowReader(fmt), Grouper()
    async for chunk in chunks:
        for start in range(0, len(chunk), PIECE_BYTES):
            for row in reader.feed(chunk[start:start + PIECE_BYTES]):
                for item in grouper.push(row):
                    yield item
            await asyncio.sleep(0)
    for row in reader.close():
        for item in grouper.push(row):
            yield item
    for item in grouper.close():
        yield item
