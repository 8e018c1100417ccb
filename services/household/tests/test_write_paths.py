"""Every household write path is one use case (issue 12, item 3): each leaves its audit row, its needs and its
events (outbox rows) however it is called; a taken KK number or NIK is refused by the unique index, so two racing
registrations give one 201 and one 409; and GET /households costs the same statements for 50 households as for 5.

Kabupaten Pesisir Selatan (1301) and Kabupaten Solok (1302) are this module's own regions, imported here.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from services.household.tests.factories import known_posyandu, nik
from tests.support import tokens

REGIONS = (b"kode,nama\n13,Sumatera Barat\n13.01,Kabupaten Pesisir Selatan\n13.01.01,Pancung Soal\n"
           b"13.01.01.2001,Inderapura\n13.01.01.2002,Muaro Sakai Inderapura\n13.02,Kabupaten Solok\n"
           b"13.02.03,Pantai Cermin\n13.02.03.2001,Lolo\n")
INDERAPURA, MUARO_SAKAI, LOLO = "1301012001", "1301012002", "1302032001"
TODAY = date.today()
_serial = itertools.count(1)

REGISTERED, ADDED, UPDATED = ("posyandu.household.registered.v1", "posyandu.member.added.v1",
                              "posyandu.member.updated.v1")
DETECTED, RESOLVED = "posyandu.household.need-detected.v1", "posyandu.household.need-resolved.v1"
PREGNANCY, SANITATION = "kesehatan.high-risk-pregnancy", "pekerjaan-umum.sanitation"


@pytest.fixture(scope="module")
async def regions(registry: httpx.AsyncClient, household_settings: Any) -> None:
    imported = await registry.post("/api/v1/regions/import", content=REGIONS,
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    conn = await asyncpg.connect(household_settings.database_url)
    try:
        deadline = time.monotonic() + 90
        while await conn.fetchval("SELECT count(*) FROM known_regions WHERE code = ANY($1)",
                                  [INDERAPURA, MUARO_SAKAI, LOLO]) != 3:
            assert time.monotonic() < deadline, "the household service never learnt the 1301/1302 villages"
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


def _kk(village: str) -> str:
    return f"{village[:6]}140519{next(_serial) % 10000 or 1:04d}"


def _person(name: str, years: int, sex: str = "male", relationship: str = "head") -> dict[str, Any]:
    return {"name": f"{name} {uuid.uuid4().hex[:6]}", "sex": sex,
            "birth_date": date(TODAY.year - years, 3, 14).isoformat(), "relationship": relationship}


def _pregnant_teen() -> dict[str, Any]:
    """A pregnant 17-year-old: the rules detect kesehatan.high-risk-pregnancy for her."""
    return {**_person("Rani", 17, "female", "child"), "pregnant": True,
            "expected_delivery_date": (TODAY + timedelta(days=100)).isoformat()}


def _body(posyandu: str, village: str = INDERAPURA, members: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"kk_number": _kk(village), "village_code": village, "posyandu_id": posyandu,
            "members": members if members is not None else [_person("Budi", 40)]}


@dataclass
class Site:
    posyandu: str
    kader: dict[str, str]


@pytest.fixture
async def site(regions: None, registry: httpx.AsyncClient, household_db: asyncpg.Connection) -> Site:
    posyandu = await known_posyandu(registry, household_db, INDERAPURA)
    return Site(posyandu, tokens.kader([posyandu]))


async def _register(household: httpx.AsyncClient, site: Site, members: list[dict[str, Any]] | None = None,
                    village: str = INDERAPURA) -> dict[str, Any]:
    response = await household.post("/api/v1/households", json=_body(site.posyandu, village, members),
                                    headers=site.kader)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@dataclass
class Trail:
    """What the writes after a mark left about one household: audit actions, outbox event types, open needs."""

    audit: list[str]
    events: list[str]
    open_needs: list[str]


class Marks:
    def __init__(self, db: asyncpg.Connection) -> None:
        self.db = db

    async def set(self) -> Marks:
        self.audit = await self.db.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
        self.outbox = await self.db.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
        return self

    async def trail(self, household_id: str) -> Trail:
        audit = await self.db.fetch("SELECT action FROM audit_log WHERE id > $1 AND subject_ref = $2 ORDER BY id",
                                    self.audit, household_id)
        events = await self.db.fetch("SELECT event_type FROM outbox WHERE id > $1 AND key = $2 ORDER BY id",
                                     self.outbox, household_id)
        needs = await self.db.fetch("SELECT category FROM needs WHERE household_id = $1 AND status = 'open' "
                                    "ORDER BY category", uuid.UUID(household_id))
        return Trail([r["action"] for r in audit], [r["event_type"] for r in events], [r["category"] for r in needs])


async def _marks(household_db: asyncpg.Connection) -> Marks:
    return await Marks(household_db).set()


async def _forget_needs(household_db: asyncpg.Connection, household_id: str) -> None:
    """Drops the household's needs behind the service's back, as if the rules had changed since they were detected:
    only a write that refreshes the needs detects them again."""
    await household_db.execute("DELETE FROM needs WHERE household_id = $1", uuid.UUID(household_id))


# --- one test per write path -----------------------------------------------------------------------------------


async def test_registration_leaves_its_audit_row_needs_and_events(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    marks = await _marks(household_db)
    created = await _register(household, site, [_person("Budi", 40), _pregnant_teen()])
    trail = await marks.trail(created["id"])
    assert trail.audit == ["register"]
    assert trail.open_needs == [PREGNANCY]
    assert trail.events == [REGISTERED, ADDED, ADDED, DETECTED]


async def test_a_household_update_leaves_its_audit_row_needs_and_events(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    created = await _register(household, site, [_person("Budi", 40), _pregnant_teen()])
    await _forget_needs(household_db, created["id"])
    marks = await _marks(household_db)
    response = await household.patch(f"/api/v1/households/{created['id']}", json={"rt": "004"},
                                     headers={**site.kader, "If-Match": '"1"'})
    assert response.status_code == 200, response.text
    trail = await marks.trail(created["id"])
    assert trail.audit == ["update"]
    assert trail.open_needs == [PREGNANCY]
    assert trail.events == ["posyandu.household.updated.v1", DETECTED]


async def test_a_household_move_leaves_its_audit_row_needs_and_events(
        site: Site, registry: httpx.AsyncClient, household: httpx.AsyncClient,
        household_db: asyncpg.Connection) -> None:
    created = await _register(household, site, [_person("Budi", 40), _pregnant_teen()])
    other = await known_posyandu(registry, household_db, MUARO_SAKAI)
    await _forget_needs(household_db, created["id"])
    marks = await _marks(household_db)
    response = await household.post(f"/api/v1/households/{created['id']}/move", json={"posyandu_id": other},
                                    headers=site.kader)
    assert response.status_code == 200, response.text
    trail = await marks.trail(created["id"])
    assert trail.audit == ["move"]
    assert trail.open_needs == [PREGNANCY]
    assert trail.events == ["posyandu.household.moved.v1", DETECTED]


async def test_adding_a_member_leaves_its_audit_row_needs_and_events(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    created = await _register(household, site)
    marks = await _marks(household_db)
    response = await household.post(f"/api/v1/households/{created['id']}/members", json=_pregnant_teen(),
                                    headers=site.kader)
    assert response.status_code == 201, response.text
    trail = await marks.trail(created["id"])
    assert trail.audit == ["add-member"]
    assert trail.open_needs == [PREGNANCY]
    assert trail.events == [ADDED, DETECTED]


async def test_updating_a_member_leaves_its_audit_row_needs_and_events(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    created = await _register(household, site, [_person("Budi", 40), _person("Rani", 17, "female", "child")])
    rani = next(m for m in created["members"] if m["name"].startswith("Rani"))
    marks = await _marks(household_db)
    response = await household.patch(
        f"/api/v1/households/{created['id']}/members/{rani['id']}",
        json={"pregnant": True, "expected_delivery_date": (TODAY + timedelta(days=100)).isoformat()},
        headers={**site.kader, "If-Match": '"1"'})
    assert response.status_code == 200, response.text
    trail = await marks.trail(created["id"])
    assert trail.audit == ["update-member"]
    assert trail.open_needs == [PREGNANCY]
    assert trail.events == [UPDATED, DETECTED]


async def test_a_profile_leaves_its_audit_row_needs_and_events(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    created = await _register(household, site)
    marks = await _marks(household_db)
    response = await household.put(f"/api/v1/households/{created['id']}/profiles/pekerjaan-umum",
                                   json={"household": {"toilet": "none"}}, headers=site.kader)
    assert response.status_code == 201, response.text
    trail = await marks.trail(created["id"])
    assert trail.audit == ["record-profile"]
    assert trail.open_needs == [SANITATION]
    assert trail.events == ["posyandu.profile.updated.v1", DETECTED]
    # The version and its audit row are written inside the need refresh's statement: the same rows as the ORM and
    # shared/audit.py wrote before.
    body = response.json()
    row = await household_db.fetchrow("SELECT * FROM audit_log WHERE id > $1 AND subject_ref = $2",
                                      marks.audit, created["id"])
    assert dict(row) | {"id": None, "at": None} == {
        "id": None, "at": None, "actor": body["recorded_by"], "actor_role": "kader", "action": "record-profile",
        "resource_type": "profile.pekerjaan-umum", "resource_id": created["id"], "subject_ref": created["id"],
        "purpose": "pekerjaan-umum profile recorded", "request_id": response.headers["X-Request-ID"],
        "fields": '["household"]'}
    stored = await household_db.fetchrow("SELECT * FROM profile_versions WHERE household_id = $1",
                                         uuid.UUID(created["id"]))
    assert (stored["version"], stored["data"], stored["recorded_by"], stored["observed_on"].isoformat()) == (
        1, '{"household": {"toilet": "none"}}', body["recorded_by"], body["observed_on"])
    assert stored["recorded_at"].isoformat() == datetime.fromisoformat(body["recorded_at"]).isoformat()


async def test_a_measurement_leaves_its_audit_row_needs_and_events(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    toddler = {**_person("Bima", 0, "male", "child"),
               "birth_date": (TODAY - timedelta(days=round(30 * 30.4375))).isoformat()}
    created = await _register(household, site, [_person("Dewi", 33, "female"), toddler])
    bima = next(m for m in created["members"] if m["name"].startswith("Bima"))
    marks = await _marks(household_db)
    response = await household.post(
        f"/api/v1/households/{created['id']}/members/{bima['id']}/measurements", headers=site.kader,
        json={"measured_on": TODAY.isoformat(), "weight_kg": 8.2, "length_height_cm": 82.0, "measured_lying": False})
    assert response.status_code == 201, response.text
    trail = await marks.trail(created["id"])
    assert trail.audit == ["record-measurement"]
    assert {"kesehatan.stunting", "kesehatan.severe-malnutrition"} <= set(trail.open_needs)
    assert trail.events[0] == "posyandu.measurement.recorded.v1"
    assert trail.events.count(DETECTED) == len(trail.open_needs) and len(trail.events) == 1 + len(trail.open_needs)


async def test_a_death_leaves_its_audit_row_needs_and_events(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    created = await _register(household, site, [_person("Budi", 40), _pregnant_teen()])
    teen = next(m for m in created["members"] if m["name"].startswith("Rani"))
    marks = await _marks(household_db)
    response = await household.post(f"/api/v1/households/{created['id']}/members/{teen['id']}/death",
                                    json={"date_of_death": TODAY.isoformat(), "cause_category": "maternal"},
                                    headers=site.kader)
    assert response.status_code == 200, response.text
    trail = await marks.trail(created["id"])
    assert trail.audit == ["record-death"]
    assert trail.open_needs == []
    assert trail.events == ["posyandu.member.died.v1", RESOLVED]


async def test_a_move_out_leaves_its_audit_row_needs_and_events(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    created = await _register(household, site, [_person("Budi", 40), _pregnant_teen()])
    teen = next(m for m in created["members"] if m["name"].startswith("Rani"))
    marks = await _marks(household_db)
    response = await household.post(f"/api/v1/households/{created['id']}/members/{teen['id']}/move-out",
                                    json={"moved_out_on": TODAY.isoformat()}, headers=site.kader)
    assert response.status_code == 200, response.text
    trail = await marks.trail(created["id"])
    assert trail.audit == ["record-move-out"]
    assert trail.open_needs == []
    assert trail.events == ["posyandu.member.moved-out.v1", RESOLVED]


async def test_a_member_move_leaves_its_audit_rows_needs_and_events(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    source = await _register(household, site, [_person("Budi", 40), _pregnant_teen()])
    target = await _register(household, site, [_person("Joko", 45)])
    teen = next(m for m in source["members"] if m["name"].startswith("Rani"))
    marks = await _marks(household_db)
    response = await household.post(f"/api/v1/households/{source['id']}/members/{teen['id']}/move",
                                    json={"to_household_id": target["id"], "moved_on": TODAY.isoformat(),
                                          "reason": "marriage"}, headers=site.kader)
    assert response.status_code == 200, response.text
    left, joined = await marks.trail(source["id"]), await marks.trail(target["id"])
    assert left.audit == joined.audit == ["record-move-marriage"]
    assert (left.open_needs, joined.open_needs) == ([], [PREGNANCY])  # her need went with her
    assert left.events == ["posyandu.member.moved.v1"]  # keyed by the household she left


async def test_a_split_leaves_its_audit_rows_needs_and_events(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    source = await _register(household, site, [_person("Budi", 40), _pregnant_teen()])
    teen = next(m for m in source["members"] if m["name"].startswith("Rani"))
    marks = await _marks(household_db)
    response = await household.post(f"/api/v1/households/{source['id']}/split", headers=site.kader,
                                    json={"member_ids": [teen["id"]], "kk_number": _kk(INDERAPURA),
                                          "moved_on": TODAY.isoformat(), "reason": "marriage"})
    assert response.status_code == 201, response.text
    created = response.json()
    left, new = await marks.trail(source["id"]), await marks.trail(created["id"])
    assert left.audit == ["record-move-marriage"] and new.audit == ["record-move-marriage"]
    assert (left.open_needs, new.open_needs) == ([], [PREGNANCY])
    assert new.events == [REGISTERED]
    assert left.events == ["posyandu.member.moved.v1"]


async def test_a_merge_leaves_its_audit_rows_needs_and_events(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    source = await _register(household, site, [_pregnant_teen()])
    target = await _register(household, site, [_person("Joko", 45)])
    marks = await _marks(household_db)
    response = await household.post(f"/api/v1/households/{source['id']}/merge", headers=site.kader,
                                    json={"into_household_id": target["id"], "merged_on": TODAY.isoformat()})
    assert response.status_code == 200, response.text
    merged, into = await marks.trail(source["id"]), await marks.trail(target["id"])
    assert merged.audit == ["record-move-merge", "close-merged"] and into.audit == ["record-move-merge"]
    assert (merged.open_needs, into.open_needs) == ([], [PREGNANCY])
    assert merged.events == ["posyandu.member.moved.v1", "posyandu.household.closed.v1"]


async def test_a_closing_leaves_its_audit_row_needs_and_events(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    created = await _register(household, site)
    url = f"/api/v1/households/{created['id']}"
    assert (await household.put(f"{url}/profiles/pekerjaan-umum", json={"household": {"toilet": "none"}},
                                headers=site.kader)).status_code == 201
    died = await household.post(f"{url}/members/{created['members'][0]['id']}/death", headers=site.kader,
                                json={"date_of_death": TODAY.isoformat(), "cause_category": "other"})
    assert died.status_code == 200, died.text
    marks = await _marks(household_db)
    response = await household.post(f"{url}/close", json={"closed_on": TODAY.isoformat()}, headers=site.kader)
    assert response.status_code == 200, response.text
    trail = await marks.trail(created["id"])
    assert trail.audit == ["close-members-gone"]
    assert trail.open_needs == []  # the household's sanitation need closes with it
    assert trail.events == ["posyandu.household.closed.v1", RESOLVED]


# --- conflicts from the unique indexes ---------------------------------------------------------------------------


async def test_two_racing_registrations_of_one_kk_give_one_201_and_one_409(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    body = _body(site.posyandu)
    responses = await asyncio.gather(*(household.post("/api/v1/households", json=body, headers=site.kader)
                                       for _ in range(2)))
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    won, lost = sorted(responses, key=lambda r: r.status_code)
    assert lost.headers["content-type"] == "application/problem+json"
    # The kader may read the winner: the 409 names it, as it would without the race.
    assert lost.json()["existing_household_id"] == won.json()["id"]
    assert lost.json()["errors"][0]["field"] == "kk_number"
    assert await household_db.fetchval("SELECT count(*) FROM households WHERE kk_number = $1",
                                       body["kk_number"]) == 1


async def test_two_racing_registrations_of_one_nik_give_one_201_and_one_409(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    person = {**_person("Sari", 30, "female"), "nik": nik(date(TODAY.year - 30, 3, 14), "female", "130101")}
    bodies = [_body(site.posyandu, members=[person]) for _ in range(2)]
    responses = await asyncio.gather(*(household.post("/api/v1/households", json=b, headers=site.kader)
                                       for b in bodies))
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    won, lost = sorted(responses, key=lambda r: r.status_code)
    assert lost.json()["errors"][0]["field"] == "members.0.nik"
    assert lost.json()["existing_member_id"] == won.json()["members"][0]["id"]
    assert await household_db.fetchval("SELECT count(*) FROM members WHERE nik = $1", person["nik"]) == 1
    assert await household_db.fetchval("SELECT count(*) FROM households WHERE kk_number = ANY($1)",
                                       [b["kk_number"] for b in bodies]) == 1


async def test_a_taken_kk_costs_no_pre_check_query(
        site: Site, household: httpx.AsyncClient) -> None:
    """The unique index refuses the KK number: no SELECT of households by KK runs before the INSERT."""
    holder = await _register(household, site)
    statements = _Statements()
    with statements:
        again = await household.post("/api/v1/households", json={**_body(site.posyandu),
                                     "kk_number": holder["kk_number"]}, headers=site.kader)
    assert again.status_code == 409 and again.json()["existing_household_id"] == holder["id"]
    first_insert = next(i for i, s in enumerate(statements.seen) if "INSERT INTO households" in s)
    assert not any("kk_number" in s and s.startswith("SELECT") for s in statements.seen[:first_insert])


# --- statement counts ----------------------------------------------------------------------------------------------


class _Statements:
    """The statements this task (the request, run in it by the test transport) sends while active."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.task = asyncio.current_task()

    def _count(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        if asyncio.current_task() is self.task:
            self.seen.append(statement)

    def __enter__(self) -> _Statements:
        sa.event.listen(sa.Engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(sa.Engine, "before_cursor_execute", self._count)


async def test_listing_50_households_costs_the_same_statements_as_listing_5(
        regions: None, registry: httpx.AsyncClient, household: httpx.AsyncClient,
        household_db: asyncpg.Connection) -> None:
    """No access query, members query or audit insert per household: the page's members come in one query and its
    audit rows in one multi-row insert."""
    posyandu = await known_posyandu(registry, household_db, LOLO)
    kader = tokens.kader([posyandu])
    for _ in range(5):
        await asyncio.gather(*(household.post("/api/v1/households", headers=kader, json=_body(
            posyandu, LOLO, [_person("Ani", 30, "female"), _person("Ucok", 8, "male", "child")])) for _ in range(10)))
    assert await household_db.fetchval("SELECT count(*) FROM households WHERE posyandu_id = $1",
                                       uuid.UUID(posyandu)) == 50

    async def statements_for(limit: int) -> list[str]:
        mark = await household_db.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
        with _Statements() as statements:
            response = await household.get("/api/v1/households", params={"posyandu": posyandu, "limit": limit},
                                           headers=kader)
        assert response.status_code == 200, response.text
        page = response.json()["items"]
        assert len(page) == limit and all(len(h["members"]) == 2 for h in page)
        audited = await household_db.fetch("SELECT subject_ref FROM audit_log WHERE id > $1 AND action = 'read' "
                                           "AND resource_type = 'household' AND purpose LIKE 'search:%'", mark)
        assert sorted(r["subject_ref"] for r in audited) == sorted(h["id"] for h in page)  # a row each
        return statements.seen

    five, fifty = await statements_for(5), await statements_for(50)
    assert five and len(fifty) == len(five), fifty


async def test_a_profile_put_costs_three_statements_with_its_needs_and_events(
        site: Site, household: httpx.AsyncClient, household_db: asyncpg.Connection) -> None:
    """The profile PUT checks access, reads the household once (members, growth, profiles and their versions, doses,
    aid and open needs), and writes the version, its audit row, the needs and every event in one statement: three
    statements, whatever the household holds (was about fourteen, then five)."""
    toddler = {**_person("Bima", 0, "male", "child"),
               "birth_date": (TODAY - timedelta(days=round(30 * 30.4375))).isoformat()}
    created = await _register(household, site, [_person("Dewi", 33, "female"), toddler])
    url = f"/api/v1/households/{created['id']}"
    bima = next(m for m in created["members"] if m["name"].startswith("Bima"))
    dewi = next(m for m in created["members"] if m["name"].startswith("Dewi"))
    measured = await household.post(
        f"{url}/members/{bima['id']}/measurements", headers=site.kader,
        json={"measured_on": TODAY.isoformat(), "weight_kg": 8.2, "length_height_cm": 82.0, "measured_lying": False})
    assert measured.status_code == 201, measured.text
    needs_before = await household_db.fetchval("SELECT count(*) FROM needs WHERE household_id = $1 "
                                               "AND status = 'open'", uuid.UUID(created["id"]))
    assert needs_before > 0
    marks = await _marks(household_db)
    with _Statements() as statements:
        response = await household.put(f"{url}/profiles/pekerjaan-umum", json={"household": {"toilet": "none"}},
                                       headers=site.kader)
    assert response.status_code == 201, response.text
    assert len(statements.seen) <= 3, statements.seen
    trail = await marks.trail(created["id"])
    assert trail.audit == ["record-profile"]
    assert trail.events == ["posyandu.profile.updated.v1", DETECTED]
    assert len(trail.open_needs) == needs_before + 1 and SANITATION in trail.open_needs
    # A kesehatan profile naming members: checked against, and its statuses computed from, the same read.
    with _Statements() as statements:
        response = await household.put(f"{url}/profiles/kesehatan", headers=site.kader,
                                       json={"members": {dewi["id"]: {"antenatal_visits": 2}}})
    assert response.status_code == 201, response.text
    assert len(statements.seen) <= 3, statements.seen
