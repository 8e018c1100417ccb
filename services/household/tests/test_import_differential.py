"""The set-based import against the reference: the same file imported as a job (chunks checked with set queries and
written with COPY) and registered household by household through `register()` + `refresh_needs()`, into two fresh
databases seeded alike, gives the same tables, the same report and the same events (ids normalised)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conftest import Stack
from services.household.imports import service as import_service
from services.household.imports.jobs import ImportFile, run_job
from services.household.imports.outcomes import ReportBuilder
from services.household.imports.parsing import NOT_ADJACENT, iter_items
from services.household.imports.service import import_one
from services.household.settings import HouseholdSettings
from services.household.tests.factories import kk_number, nik
from shared.auth import Principal, Role
from shared.db import create_engine, create_sessionmaker
from shared.events import household as ev

DISTRICT, OTHER_DISTRICT = "120101", "120102"
VILLAGE, VILLAGE_2, RETIRED = "1201011001", "1201011002", "1201011003"
FAR_VILLAGE = "1201021001"
OURS, INACTIVE, FAR, FOREIGN, NOT_OURS = (uuid.UUID(int=n) for n in (0x1201_01, 0x1201_02, 0x1201_03, 0x1201_04,
                                                                      0x1201_05))
KADER = Principal(sub="kader-diff", role=Role.KADER, posyandu_ids=frozenset({OURS, INACTIVE, FAR}))
TODAY = date.today()
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _born(years: int, months: int = 0) -> date:
    return TODAY - timedelta(days=int(years * 365.25 + months * 30.5) + 10)


class File:
    """An NDJSON file built row by row; each row's line number is its index + 1."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, kk: str, name: str, sex: str, born: date, relationship: str, *, posyandu: uuid.UUID = OURS,
            village: str = VILLAGE, with_nik: bool = True, override: dict[str, Any] | None = None,
            **extra: Any) -> None:
        row: dict[str, Any] = {"kk_number": kk, "village_code": village, "posyandu_id": str(posyandu),
                               "address": "Jl. Sisingamangaraja No. 7", "rt": "002", "rw": "004", "name": name,
                               "sex": sex, "birth_date": born.isoformat(), "relationship": relationship}
        if with_nik:
            row["nik"] = nik(born, sex, DISTRICT)
        row.update(extra)
        row.update(override or {})
        self.lines.append(json.dumps({k: v for k, v in row.items() if v is not None}))

    def family(self, kk: str | None = None, **extra: Any) -> str:
        """A couple; `extra` overrides fields of both rows."""
        kk = kk or kk_number(district=DISTRICT)
        self.add(kk, "Togar Siregar", "male", _born(40), "head", override=extra)
        self.add(kk, "Rina Siregar", "female", _born(36), "spouse", override=extra)
        return kk

    def raw(self, line: str) -> None:
        self.lines.append(line)

    def bytes(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


def seed_file() -> tuple[bytes, dict[str, str]]:
    """What both databases hold before the import: households at our posyandu and at a foreign one."""
    f, known = File(), {}
    known["kk_ours"] = f.family()
    known["nik_ours"] = json.loads(f.lines[-2])["nik"]
    f.add(known["kk_ours"], "Butet Siregar", "female", _born(8), "child", with_nik=False)
    known["kk_foreign"] = kk_number(district=DISTRICT)
    f.add(known["kk_foreign"], "Poltak Nainggolan", "male", _born(50), "head", posyandu=FOREIGN)
    known["nik_foreign"] = json.loads(f.lines[-1])["nik"]
    f.add(known["kk_foreign"], "Sondang Nainggolan", "female", _born(3), "child", posyandu=FOREIGN, with_nik=False)
    return f.bytes(), known


def import_file(known: dict[str, str]) -> bytes:
    """Every kind of bad row, duplicates inside the file and against the database, the same KK twice, members
    without NIK, and households whose needs the rules detect."""
    f = File()
    good = f.family()
    f.add(good, "Ucok Siregar", "male", _born(0, 5), "child", with_nik=False)           # an infant
    f.raw('{"kk_number": "12010')                                                      # unreadable
    f.raw(json.dumps({"name": "no kk", "sex": "male"}))                                # no KK number
    f.family(colour="blue")                                                            # unknown field
    f.family(sex="unknown")                                                            # schema error
    kk = f.family()
    f.add(kk, "Tigor Siregar", "male", _born(12), "child", address="Jl. Lain")         # differs from row 1
    same_nik = nik(_born(20), "male", DISTRICT)
    kk = kk_number(district=DISTRICT)
    f.add(kk, "Aan", "male", _born(20), "head", nik=same_nik)
    f.add(kk, "Ain", "male", _born(20), "child", nik=same_nik)                         # same NIK twice in a KK
    repeated = f.family()
    f.family()
    f.add(repeated, "Horas Siregar", "male", _born(30), "head")                       # KK not adjacent
    f.family(kk=f"{DISTRICT}3102190001")                                               # impossible KK date
    f.family(posyandu_id=str(NOT_OURS))                                                        # not the kader's
    f.family(posyandu_id=str(INACTIVE))                                                        # inactive posyandu
    f.family(village_code="1201019999")                                                     # unknown village
    f.family(village_code=RETIRED)                                                          # retired village
    f.family(village_code=DISTRICT + "0")                                                   # not a village code
    f.family(village_code=FAR_VILLAGE)                                                      # outside the district
    f.family(posyandu_id=str(FAR))                                                             # village outside FAR's
    f.family(kk=known["kk_ours"])                                                      # KK taken: named
    f.family(kk=known["kk_foreign"])                                                   # KK taken: not named
    kk = kk_number(district=DISTRICT)
    f.add(kk, "Maruli", "male", _born(40), "head", nik=known["nik_ours"])              # NIK taken: named
    kk = kk_number(district=DISTRICT)
    f.add(kk, "Maruli", "male", _born(50), "head", nik=known["nik_foreign"])           # NIK taken: not named
    f.family()                                                                         # NIK taken in the file
    first_nik = json.loads(f.lines[-2])["nik"]
    kk = kk_number(district=DISTRICT)
    f.add(kk, "Togar Siregar", "male", _born(40), "head", nik=first_nik)
    f.family(pregnant=True)                                                            # a pregnant man
    kk = kk_number(district=DISTRICT)
    f.add(kk, "Lamria", "female", _born(30), "head", expected_delivery_date=(TODAY + timedelta(days=90)).isoformat())
    kk = kk_number(district=DISTRICT)
    f.add(kk, "Lamria", "female", _born(30), "head", nik=nik(_born(31), "female", DISTRICT))  # NIK's birth date
    kk = kk_number(district=DISTRICT)
    f.add(kk, "Lamria", "female", _born(30), "head", latitude=45.0)                    # out of range
    kk = kk_number(district=DISTRICT)                                                   # NIK of another district
    f.add(kk, "Pardede", "male", _born(33), "head", nik=nik(_born(33), "male", "317101"))
    f.add(kk, "Sitompul", "female", _born(16), "spouse", pregnant=True,                 # a pregnant teenager
          expected_delivery_date=(TODAY + timedelta(days=60)).isoformat())
    f.add(kk, "Ompung", "female", _born(70), "parent", disability="physical")
    kk = kk_number(district=DISTRICT)                                                   # blocked by a bad line
    f.add(kk, "Marbun", "male", _born(28), "head")
    f.raw("{not json")
    f.add(kk, "Marbun Boru", "female", _born(27), "spouse")
    kk = kk_number(district=DISTRICT)                                                   # over 30 members
    for i in range(31):
        f.add(kk, f"Anak {i}", "male", _born(10, i), "child", with_nik=False)
    # Likely duplicates (no NIK on one side): against the database, against an earlier household, inside one.
    kk = kk_number(district=DISTRICT)
    f.add(kk, "Butet Siregar", "female", _born(8), "child", with_nik=False)
    f.add(kk, "Butet Siregar", "female", _born(8), "child", with_nik=False)
    f.add(kk, "Togar Siregar", "male", _born(40), "head", with_nik=False)
    kk = kk_number(district=DISTRICT)
    f.add(kk, "Sondang Nainggolan", "female", _born(3), "child")                        # other village: no flag
    f.add(kk, "Butet Siregar", "female", _born(8), "child", village=VILLAGE_2, with_nik=False)
    kk = kk_number(district=DISTRICT)
    f.add(kk, "Butet Siregar", "female", _born(8), "head", village=VILLAGE_2)
    f.add(kk, "Ucok Siregar", "male", _born(0, 5), "child", village=VILLAGE_2, with_nik=False)
    kk = kk_number(district=DISTRICT)
    f.add(kk, "ÇAĞLAR İnal", "male", _born(25), "head", with_nik=False)
    kk = kk_number(district=DISTRICT)
    f.add(kk, "çağlar i̇nal", "male", _born(25), "head", with_nik=False)
    kk = kk_number(district=DISTRICT)                                                   # needs in a later chunk
    f.add(kk, "Tiur", "female", _born(17), "head", pregnant=True,
          expected_delivery_date=(TODAY + timedelta(days=30)).isoformat())
    for _ in range(12):                                                                 # a few more chunks
        f.family()
    return f.bytes()


@pytest.fixture
async def two_databases(stack: Stack, household_settings: HouseholdSettings) -> AsyncIterator[
        tuple[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession], str, str]]:
    # Two databases of their own, not rolled-back sessions: the test compares every row of the two databases.
    dsns = [await stack.migrated_database("household", f"import_diff_{name}") for name in ("set", "one")]
    engines = [create_engine(household_settings.model_copy(update={"database_url": dsn})) for dsn in dsns]
    try:
        for dsn in dsns:
            conn = await asyncpg.connect(dsn)
            try:
                await conn.executemany("INSERT INTO known_regions (code, name, level, retired) VALUES ($1, $2, $3, $4)",
                                       [(DISTRICT, "Kec", "district", False), (OTHER_DISTRICT, "Kec 2", "district",
                                                                                  False),
                                        (VILLAGE, "Desa 1", "village", False), (VILLAGE_2, "Desa 2", "village", False),
                                        (RETIRED, "Desa 3", "village", True), (FAR_VILLAGE, "Desa 4", "village",
                                                                               False)])
                await conn.executemany("INSERT INTO known_posyandu (id, village_code, name, status, version) "
                                       "VALUES ($1, $2, $3, $4, 1)",
                                       [(OURS, VILLAGE, "Ours", "active"), (INACTIVE, VILLAGE, "Closed", "inactive"),
                                        (FAR, FAR_VILLAGE, "Far", "active"), (FOREIGN, VILLAGE, "Foreign", "active"),
                                        (NOT_OURS, VILLAGE, "Not ours", "active")])
            finally:
                await conn.close()
        yield create_sessionmaker(engines[0]), create_sessionmaker(engines[1]), dsns[0], dsns[1]
    finally:
        for engine in engines:
            await engine.dispose()


async def _one_by_one(sessionmaker: async_sessionmaker[AsyncSession], principal: Principal,
                      body: bytes) -> dict[str, Any]:
    builder = ReportBuilder()
    async with sessionmaker() as session, session.begin():
        for item in iter_items([body], "ndjson"):
            builder.add(await import_one(session, principal, item))
    return builder.report.model_dump(include={"rows", "households_imported", "members_imported",
                                              "households_rejected", "rows_rejected", "error_count", "errors"})


async def _labels(conn: asyncpg.Connection) -> dict[str, str]:
    """Each id of the database by what it is (ids differ between the two databases; natural keys do not)."""
    labels: dict[str, str] = {}
    for r in await conn.fetch("SELECT id, kk_number FROM households"):
        labels[str(r["id"])] = f"H:{r['kk_number']}"
    for r in await conn.fetch("SELECT m.id, h.kk_number, m.name, m.birth_date, m.nik FROM members m "
                              "JOIN households h ON h.id = m.household_id"):
        labels[str(r["id"])] = f"M:{r['kk_number']}:{r['name']}:{r['birth_date']}:{r['nik']}"
    for r in await conn.fetch("SELECT id, household_id, member_id, category FROM needs"):
        labels[str(r["id"])] = (f"N:{labels[str(r['household_id'])]}:{labels.get(str(r['member_id']))}:"
                                f"{r['category']}")
    # Two members alike in every field (a likely duplicate inside one household) share a label: interchangeable.
    return labels


def _normal(value: Any, labels: dict[str, str]) -> Any:
    if isinstance(value, str):
        return UUID.sub(lambda m: labels.get(m[0], m[0] if uuid.UUID(m[0]).version != 4 else "?"), value)
    if isinstance(value, uuid.UUID):
        return _normal(str(value), labels)
    if isinstance(value, dict):
        return {k: _normal(v, labels) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v, labels) for v in value]
    return value


async def _state(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        labels = await _labels(conn)

        async def rows(query: str) -> list[Any]:
            return sorted(_normal([dict(r) for r in await conn.fetch(query)], labels), key=repr)

        events = []
        for r in await conn.fetch("SELECT event_type, topic, key, payload FROM outbox ORDER BY id"):
            body = orjson.loads(r["payload"])
            assert UUID.fullmatch(body.pop("id")) and body.pop("time")
            events.append(_normal({"event_type": r["event_type"], "topic": r["topic"], "key": r["key"], **body},
                                  labels))
        return {
            "households": await rows("SELECT id, kk_number, village_code, posyandu_id, address, rt, rw, latitude, "
                                     "longitude, status, needs_reassignment, version, created_by FROM households"),
            "kk_history": await rows("SELECT household_id, kk_number, valid_to, recorded_by FROM kk_number_history"),
            "members": await rows("SELECT id, household_id, nik, name, sex, birth_date, relationship, pregnant, "
                                  "expected_delivery_date, disability, status, nik_region_mismatch, merged_into, "
                                  "version FROM members"),
            "needs": await rows("SELECT id, household_id, member_id, spm_field, category, urgency, evidence::text, "
                                "status, resolved_at, resolution FROM needs"),
            "flags": await rows("SELECT member_id, candidate_id, status FROM duplicate_flags"),
            "audit": await rows("SELECT actor, action, resource_type, resource_id FROM audit_log"),
            "events": events,
            "labels": labels,
        }
    finally:
        await conn.close()


async def test_the_set_based_import_gives_exactly_the_one_by_one_outcome(
        two_databases: tuple[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession], str, str],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_db, one_db, set_dsn, one_dsn = two_databases
    seed, known = seed_file()
    admin = Principal(sub="seed", role=Role.ADMIN)
    for sessionmaker in (set_db, one_db):
        seeded = await _one_by_one(sessionmaker, admin, seed)
        assert seeded["households_imported"] == 2, seeded
    body = import_file(known)
    path = tmp_path / "households.ndjson"
    path.write_bytes(body)
    # Small chunks: duplicates and taken NIKs across chunks, and inside one.
    monkeypatch.setattr(import_service, "CHUNK_HOUSEHOLDS", 7)
    set_report = (await run_job(set_db, KADER, await ImportFile.of(path), "ndjson")).model_dump(
        include={"rows", "households_imported", "members_imported", "households_rejected", "rows_rejected",
                 "error_count", "errors"})
    one_report = await _one_by_one(one_db, KADER, body)

    set_state, one_state = await _state(set_dsn), await _state(one_dsn)
    assert _normal(set_report, set_state["labels"]) == _normal(one_report, one_state["labels"])
    for table in ("households", "kk_history", "members", "needs", "flags", "audit", "events"):
        assert set_state[table] == one_state[table], table
    # The file means something: most kinds of refusal, some of every write.
    assert set_report["households_imported"] >= 15 and set_report["households_rejected"] >= 25, set_report
    messages = {(e["field"], e["message"]) for e in set_report["errors"]}
    for expected in [("kk_number", "already registered"), ("nik", "already registered"),
                     ("kk_number", "KK number has an impossible date 31-02-19"),
                     ("posyandu_id", "You may register households only at your own posyandu."),
                     ("kk_number", NOT_ADJACENT), ("pregnant", "Only a female member can be recorded as pregnant."),
                     ("village_code", f"{RETIRED} is not an active village known to the registry."),
                     ("posyandu_id", f"{INACTIVE} is not an active posyandu known to the registry.")]:
        assert expected in messages, expected
    assert any(f == "kk_number" and m.startswith("already registered to household H:") for f, m in
               _normal(list(messages), set_state["labels"]))
    assert any(f == "nik" and m.startswith("already registered to member M:") for f, m in
               _normal(list(messages), set_state["labels"]))
    assert any(m.startswith("Not imported: row") for _, m in messages)
    assert len(set_state["flags"]) >= 4 and len(set_state["needs"]) >= 2
    assert any(m["nik_region_mismatch"] for m in set_state["members"])
    assert {e["type"] for e in set_state["events"]} == {ev.HOUSEHOLD_REGISTERED.name, ev.MEMBER_ADDED.name,
                                                        ev.NEED_DETECTED.name}
