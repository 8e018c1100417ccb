"""Import of the official region list (Kepmendagri format: dotted `kode`, `nama`), idempotent.

The whole list is validated first and imported in one transaction, or not at all. New regions are
registered, renamed ones updated, and with `full=True` regions missing from the list are retired
(kept, never deleted: households and posyandu may still reference them). Each change is an event.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.regions.schemas import ImportReport
from shared.clock import Clock
from shared.errors import ValidationFailed, nul_error
from shared.events.catalogue import EventType
from shared.events.envelope import CloudEvent
from shared.events.registry import REGION_REGISTERED, REGION_RENAMED, REGION_RETIRED, RegionData, RegionLevel
from shared.outbox import publish_many
from shared.region_codes import kind_of, level_of, parent_of, undot
from shared.text import NUL

MAX_ERRORS_REPORTED = 100
#: Events built, or enqueued, between two turns of the event loop.
BATCH = 100
MAX_NAME = 200


def parse_csv(text: str) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Rows (code, name) and row errors; the header must name `kode` and `nama`."""
    try:
        return _parse_csv(text)
    except csv.Error as exc:  # a field over the csv module's limit, a stray quote or carriage return...
        raise ValidationFailed(f"The CSV cannot be read: {exc}; nothing was imported.",
                               errors=[{"field": "body", "message": str(exc)}]) from exc


def _parse_csv(text: str) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    if "kode" not in header or "nama" not in header:
        raise ValidationFailed("The CSV needs a header row with the columns kode and nama.",
                               errors=[{"field": "header", "message": "expected columns kode,nama"}])
    code_at, name_at = header.index("kode"), header.index("nama")
    rows: list[tuple[str, str]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line_no, fields in enumerate(reader, start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        if nul_in := [name for name, at in (("kode", code_at), ("nama", name_at))
                      if at < len(fields) and NUL in fields[at]]:
            errors += [nul_error(f"line {line_no}, column {name}") for name in nul_in]  # PostgreSQL can't store it
            continue
        try:
            code = undot(fields[code_at])
            name = " ".join(fields[name_at].split())
            if not name or len(name) > MAX_NAME:
                raise ValueError(f"name must be 1-{MAX_NAME} characters")
            if code in seen:
                raise ValueError(f"code {code} appears twice")
        except (ValueError, IndexError) as exc:
            errors.append({"field": f"line {line_no}", "message": str(exc)})
            continue
        seen.add(code)
        rows.append((code, name))
    return rows, errors


def _check_parents(rows: Iterable[tuple[str, str]], known: set[str]) -> list[dict[str, Any]]:
    codes = {code for code, _ in rows} | known
    return [{"field": code, "message": f"its parent {parent} is neither in the list nor registered"}
            for code, _ in rows if (parent := parent_of(code)) is not None and parent not in codes]


async def import_csv(session: AsyncSession, text: str, *, list_version: str, full: bool,
                     clock: Clock) -> ImportReport:
    """Check the whole list, then import it (ValidationFailed naming the invalid rows, and nothing written)."""
    rows, errors = await asyncio.to_thread(parse_csv, text)  # a second of CPU for the national list
    if errors:
        raise ValidationFailed(f"{len(errors)} rows are invalid; nothing was imported.",
                               errors=errors[:MAX_ERRORS_REPORTED])
    return await import_regions(session, rows, list_version=list_version, full=full, clock=clock)


async def import_regions(session: AsyncSession, rows: list[tuple[str, str]], *, list_version: str,
                         clock: Clock, full: bool = False) -> ImportReport:
    """Upsert the rows, stamped by the service's clock; events for what changed. Raises ValidationFailed (nothing
    written) on bad rows."""
    now = clock()
    if not rows:
        raise ValidationFailed("The list holds no regions.")
    conn = await session.connection()
    known: set[str] = set()
    retired_before: set[str] = set()
    for code, retired_at in (await conn.execute(sa.text("SELECT code, retired_at FROM regions"))).all():
        known.add(code)
        if retired_at is not None:
            retired_before.add(code)
    if errors := _check_parents(rows, known):
        raise ValidationFailed(f"{len(errors)} regions have no parent.", errors=errors[:MAX_ERRORS_REPORTED])

    await conn.execute(sa.text(
        "CREATE TEMPORARY TABLE region_import (code text PRIMARY KEY, name text, level text, parent_code text,"
        " kind text) ON COMMIT DROP"))
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    # Through the driver itself, in the session's transaction: COPY, and rows decoded as they arrive (SQLAlchemy's
    # result rows for the whole list would hold the event loop for a second).
    await raw.copy_records_to_table("region_import", columns=["code", "name", "level", "parent_code", "kind"],
                                    records=await asyncio.to_thread(_import_records, rows))
    changed = await raw.fetch(
        """
        INSERT INTO regions AS r (code, name, level, parent_code, kind, list_version, retired_at, updated_at)
        SELECT i.code, i.name, i.level, i.parent_code, i.kind, $1, NULL, $2 FROM region_import i
        ON CONFLICT (code) DO UPDATE
            SET name = EXCLUDED.name, list_version = EXCLUDED.list_version, retired_at = NULL, updated_at = $2
            WHERE r.name IS DISTINCT FROM EXCLUDED.name OR r.retired_at IS NOT NULL
        RETURNING r.code, r.name, r.level, r.parent_code, r.kind, (xmax = 0) AS inserted
        """, list_version, now)

    retired_rows: list[Any] = []
    if full:
        retired_rows = await raw.fetch(
            """
            UPDATE regions SET retired_at = $1, updated_at = $1
            WHERE retired_at IS NULL AND code NOT IN (SELECT code FROM region_import)
            RETURNING code, name, level, parent_code, kind
            """, now)

    # The national list is 91,599 events, seconds of CPU: built and enqueued in batches, yielding the event loop in
    # between, so that the service goes on answering other requests meanwhile.
    events: list[CloudEvent] = []
    registered = renamed = 0
    for i, row in enumerate(changed, start=1):
        event_type: EventType[RegionData]
        if row["inserted"] or row["code"] in retired_before:
            event_type, registered = REGION_REGISTERED, registered + 1
        else:
            event_type, renamed = REGION_RENAMED, renamed + 1
        events.append(_event(event_type, row, list_version))
        if i % BATCH == 0:
            await asyncio.sleep(0)
    events.extend(_event(REGION_RETIRED, row, list_version) for row in retired_rows)
    for start in range(0, len(events), BATCH):
        await publish_many(session, events[start:start + BATCH])
    return ImportReport(list_version=list_version, received=len(rows), registered=registered, renamed=renamed,
                        retired=len(retired_rows), unchanged=len(rows) - len(changed),
                        finished_at=clock())


def _import_records(rows: list[tuple[str, str]]) -> list[tuple[str, str, str, str | None, str | None]]:
    return [(code, name, level_of(code).value, parent_of(code), kind_of(code)) for code, name in rows]


def _event(event_type: EventType[RegionData], row: Any, list_version: str) -> CloudEvent:
    code = row["code"]
    data = RegionData(code=code, name=row["name"], level=RegionLevel(row["level"]), parent_code=row["parent_code"],
                      kind=row["kind"], list_version=list_version)
    return event_type.new(data, subject=code, regioncode=code if len(code) == 10 else None)
