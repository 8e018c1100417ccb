"""Import jobs: committed chunk by chunk, resumed after a SIGKILL or a failed chunk without importing anything twice,
their progress at GET /api/v1/imports/{id}, and an import racing a live registration for the same NIK."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from conftest import Stack, service_settings
from services.household.app import spec as household_spec
from services.household.beneficiaries.projection import ProgrammeEvents
from services.household.consumers.registry import RegistryEvents
from services.household.settings import HouseholdSettings
from services.household.tests.factories import NDJSON, known_posyandu, post_import
from shared.service import Subscription, create_service_app
from tests.support import tokens
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[3]
REGIONS = """kode,nama
12,Sumatera Utara
12.01,Kabupaten Tapanuli Tengah
12.01.01,Barus
12.01.01.1001,Kampung Mudik
12.01.01.1002,Padang Masiang
12.01.01.1003,Kinali
12.02,Kabupaten Tapanuli Utara
12.02.01,Tarutung
12.02.01.1001,Hutatoruan
"""
VILLAGE, VILLAGE_B, VILLAGE_C, OTHER_REGION = "1201011001", "1201011002", "1201011003", "1202011001"
TODAY = date.today()


@dataclass
class Sites:
    posyandu: str
    posyandu_b: str
    posyandu_c: str
    other_region: str


@pytest.fixture(scope="module")
async def household_settings(stack: Stack) -> HouseholdSettings:
    """This module's own household database. Its jobs import some 10,000 households; on the session's topic every
    later consumer (referral, reporting, a test's private reporting reading the whole history) would work through
    them first."""
    dsn = await stack.migrated_database("household", "household_import_jobs")
    return HouseholdSettings(**service_settings(stack, dsn), need_sweep_enabled=False)


@pytest.fixture(scope="module")
async def household(household_settings: HouseholdSettings, registry: httpx.AsyncClient) -> AsyncIterator[
        httpx.AsyncClient]:
    """A household service of this module's own: no relay (the tests read the outbox), and a consumer group of its
    own over the registry topic only (it learns the regions and posyandu, nothing else)."""
    base = household_spec(household_settings)
    spec = dataclasses.replace(base, publishes=False, background=[], subscriptions=[
        Subscription.of("household-import-jobs", RegistryEvents(), ProgrammeEvents())])
    app = create_service_app(spec, household_settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                     base_url="http://household") as client:
            yield client


@pytest.fixture(scope="module")
async def sites(registry: httpx.AsyncClient, household: httpx.AsyncClient,
                household_settings: HouseholdSettings) -> Sites:
    imported = await registry.post("/api/v1/regions/import", content=REGIONS.encode(),
                                   headers={**tokens.admin(), "Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text
    db = await asyncpg.connect(household_settings.database_url)
    try:

        async def villages_known() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM known_regions WHERE code = ANY($1::text[])",
                                          [VILLAGE, VILLAGE_B, VILLAGE_C, OTHER_REGION]) == 4)

        await eventually(villages_known, "the household service to learn the villages", timeout=90, interval=0.2)
        return Sites(*[await known_posyandu(registry, db, v) for v in (VILLAGE, VILLAGE_B, VILLAGE_C, OTHER_REGION)])
    finally:
        await db.close()


def bulk_file(posyandu: str, village: str, households: int, *, serial_base: int) -> tuple[bytes, list[str]]:
    """Households of two members (every tenth with a pregnant teenager, whose need the rules detect), with KK
    numbers and NIKs of their own (birth and issue dates spread, serials from `serial_base`)."""
    district, lines, kks = village[:6], [], []
    for i in range(households):
        serial = serial_base + i % 1000
        issued = date(2010, 1, 1) + timedelta(days=i // 1000)
        kk = f"{district}{issued:%d%m%y}{serial:04d}"
        kks.append(kk)
        head_born = date(1950, 1, 1) + timedelta(days=i)
        members: list[tuple[str, str, date, str, dict[str, Any]]] = [("Parulian", "male", head_born, "head", {})]
        if i % 10:
            members.append(("Marintan", "female", head_born + timedelta(days=400), "spouse", {}))
        else:
            members.append(("Nauli", "female", TODAY - timedelta(days=16 * 365 + i // 10 % 700), "child",
                            {"pregnant": True, "expected_delivery_date": (TODAY + timedelta(days=60)).isoformat()}))
        for name, sex, born, relationship, extra in members:
            day = born.day + (40 if sex == "female" else 0)
            lines.append(json.dumps({
                "kk_number": kk, "village_code": village, "posyandu_id": posyandu, "address": "Jl. Barus No. 1",
                "nik": f"{district}{day:02d}{born:%m%y}{serial:04d}", "name": name, "sex": sex,
                "birth_date": born.isoformat(), "relationship": relationship, **extra}))
    return ("\n".join(lines) + "\n").encode(), kks


def cli(settings: HouseholdSettings, path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": settings.database_url, "ENVIRONMENT": "test",
           "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "services.household", "import-households", str(path), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def report_of(out: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(out[out.index("{"):])
    return report


async def assert_imported_once(db: asyncpg.Connection, kks: list[str], members_each: int = 2) -> None:
    """Every household of the file once, its members, and each event of it once in the outbox, in order."""
    households = await db.fetch("SELECT id, kk_number FROM households WHERE kk_number = ANY($1::text[])", kks)
    assert sorted(h["kk_number"] for h in households) == sorted(kks)
    ids = [h["id"] for h in households]
    assert await db.fetchval("SELECT count(*) FROM members WHERE household_id = ANY($1::uuid[])",
                             ids) == members_each * len(kks)
    assert await db.fetchval("SELECT count(*) FROM kk_number_history WHERE household_id = ANY($1::uuid[])",
                             ids) == len(kks)
    needs = await db.fetchval("SELECT count(*) FROM needs WHERE household_id = ANY($1::uuid[])", ids)
    assert needs == len([i for i in range(len(kks)) if i % 10 == 0])
    events = await db.fetch("SELECT key, event_type FROM outbox WHERE key = ANY($1::text[]) ORDER BY id",
                            [str(i) for i in ids])
    assert len(events) == len(kks) * (1 + members_each) + needs
    by_household: dict[str, list[str]] = {}
    for e in events:
        by_household.setdefault(e["key"], []).append(e["event_type"].split(".")[-2])
    assert all(types[:3] == ["registered", "added", "added"] for types in by_household.values())
    assert sum(types.count("need-detected") for types in by_household.values()) == needs


async def test_a_killed_import_resumes_where_it_stopped_and_imports_nothing_twice(
        sites: Sites, household: httpx.AsyncClient, household_settings: HouseholdSettings, tmp_path: Path) -> None:
    body, kks = bulk_file(sites.posyandu, VILLAGE, 6000, serial_base=1000)
    path = tmp_path / "kampung-mudik.ndjson"
    path.write_bytes(body)
    db = await asyncpg.connect(household_settings.database_url)
    try:
        process = cli(household_settings, path, "--as-admin")

        async def some_chunks() -> Any:
            return await db.fetchrow("SELECT id, chunks_committed, status FROM import_jobs WHERE file_name = $1 "
                                     "AND chunks_committed >= 2", path.name)

        job = await eventually(some_chunks, "two chunks committed", timeout=300)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
        stopped = await db.fetchrow("SELECT * FROM import_jobs WHERE id = $1", job["id"])
        assert stopped["status"] == "running" and 0 < stopped["rows_done"] < len(body.splitlines())
        assert await db.fetchval("SELECT count(*) FROM households WHERE kk_number = ANY($1::text[])",
                                 kks) == stopped["households_imported"]
        # Its progress, as the job's readers see it.
        progress = await household.get(f"/api/v1/imports/{job['id']}", headers=tokens.admin())
        assert progress.status_code == 200, progress.text
        seen = progress.json()
        assert (seen["status"], seen["rows_done"], seen["rows_total"]) == ("running", stopped["rows_done"], 12000)
        assert seen["rows_per_second"] > 0 and seen["chunks_committed"] == stopped["chunks_committed"]

        code, out, err = finished(cli(household_settings, path, "--as-admin"))
        assert code == 0, err
        report = report_of(out)
        assert report["job_id"] == str(job["id"]) and report["status"] == "completed"
        assert report["households_imported"] == 6000 and report["rows"] == 12000 and report["error_count"] == 0
        assert report["rows_skipped"] == stopped["rows_done"]
        assert f"already processed by job {job['id']}" in out
        await assert_imported_once(db, kks)

        # The same file once more: nothing imported, every row said to be skipped.
        code, out, err = finished(cli(household_settings, path, "--as-admin"))
        assert code == 0, err
        again = report_of(out)
        assert again["rows_skipped"] == 12000 and again["households_imported"] == 6000
        await assert_imported_once(db, kks)
        done = await household.get(f"/api/v1/imports/{job['id']}", headers=tokens.admin())
        assert done.json()["status"] == "completed" and done.json()["finished_at"]
        # An admin's job (no posyandu scope) is no kader's, not even the kader of the posyandu it imported at.
        kaders = await household.get(f"/api/v1/imports/{job['id']}", headers=tokens.kader([sites.posyandu]))
        assert kaders.status_code == 404
    finally:
        await db.close()


async def test_a_failed_chunk_fails_the_job_and_a_rerun_resumes_it(
        sites: Sites, household: httpx.AsyncClient, household_settings: HouseholdSettings, tmp_path: Path) -> None:
    body, kks = bulk_file(sites.posyandu_b, VILLAGE_B, 2500, serial_base=3000)
    path = tmp_path / "padang-masiang.ndjson"
    path.write_bytes(body)
    db = await asyncpg.connect(household_settings.database_url)
    # The fourth chunk fails in the database (a trigger refusing one of its households): not a row error.
    await db.execute(f"""
        CREATE FUNCTION refuse_import_test() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.kk_number = '{kks[1700]}' THEN RAISE EXCEPTION 'disk full (test)'; END IF; RETURN NEW; END $$;
        CREATE TRIGGER refuse_import_test BEFORE INSERT ON households FOR EACH ROW
            EXECUTE FUNCTION refuse_import_test();""")
    try:
        code, out, err = finished(cli(household_settings, path, "--as-kader", sites.posyandu_b))
        assert code != 0 and "disk full (test)" in out + err
        job = await db.fetchrow("SELECT * FROM import_jobs WHERE file_name = $1", path.name)
        assert job["status"] == "failed" and "disk full (test)" in job["failure"]
        assert job["chunks_committed"] == 3 and job["households_imported"] == 1500
        kader = tokens.kader([sites.posyandu_b])
        failed = (await household.get(f"/api/v1/imports/{job['id']}", headers=kader)).json()
        assert (failed["status"], failed["households_imported"]) == ("failed", 1500)
        await db.execute("DROP TRIGGER refuse_import_test ON households; DROP FUNCTION refuse_import_test()")

        code, out, err = finished(cli(household_settings, path, "--as-kader", sites.posyandu_b))
        assert code == 0, err
        report = report_of(out)
        assert (report["job_id"], report["households_imported"], report["rows_skipped"]) == (str(job["id"]), 2500,
                                                                                              3000)
        await assert_imported_once(db, kks)
    finally:
        await db.execute("DROP TRIGGER IF EXISTS refuse_import_test ON households; "
                         "DROP FUNCTION IF EXISTS refuse_import_test()")
        await db.close()


async def test_job_progress_is_read_by_its_importers_only(
        sites: Sites, household: httpx.AsyncClient, household_settings: HouseholdSettings) -> None:
    body, kks = bulk_file(sites.posyandu_c, VILLAGE_C, 3, serial_base=5000)
    kader = tokens.kader([sites.posyandu_c])
    response = await post_import(household, body, NDJSON, kader)
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    progress = await household.get(f"/api/v1/imports/{job_id}", headers=kader)
    assert progress.status_code == 200, progress.text
    seen = progress.json()
    assert (seen["status"], seen["rows_done"], seen["households_imported"], seen["error_count"]) == (
        "completed", 6, 3, 0)
    assert seen["file_name"] == "upload.ndjson" and len(seen["sha256"]) == 64
    assert (await household.get(f"/api/v1/imports/{job_id}", headers=tokens.admin())).status_code == 200
    # A kader of more posyandu, the job's among them, reads it too: the job's posyandu are all theirs.
    both = tokens.kader([sites.posyandu, sites.posyandu_c])
    assert (await household.get(f"/api/v1/imports/{job_id}", headers=both)).status_code == 200
    for outsider in (tokens.kader([sites.other_region]), tokens.kader([sites.posyandu])):
        refused = await household.get(f"/api/v1/imports/{job_id}", headers=outsider)
        assert refused.status_code == 404 and refused.headers["content-type"] == "application/problem+json"
    for no_role in (tokens.pembina("1201"), tokens.opd(uuid.uuid4(), ["kesehatan"])):
        assert (await household.get(f"/api/v1/imports/{job_id}", headers=no_role)).status_code == 403
    unknown = await household.get(f"/api/v1/imports/{uuid.uuid4()}", headers=tokens.admin())
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert (await household.get("/api/v1/imports/not-an-id", headers=tokens.admin())).status_code == 422
    # The same body again: the same job, nothing imported twice.
    again = await post_import(household, body, NDJSON, kader)
    assert again.status_code == 200 and again.json()["job_id"] == job_id
    assert again.json()["rows_skipped"] == 6 and len(again.json()["skipped"]) == 6
    assert again.json()["skipped"][0]["message"].startswith(f"Skipped: already processed by import job {job_id}")
    db = await asyncpg.connect(household_settings.database_url)
    try:
        assert await db.fetchval("SELECT count(*) FROM households WHERE kk_number = ANY($1::text[])", kks) == 3
    finally:
        await db.close()


async def test_a_nik_taken_while_the_chunk_is_written_is_a_row_error(
        sites: Sites, household: httpx.AsyncClient, household_settings: HouseholdSettings) -> None:
    # A registration that passed its checks and is about to commit holds the NIK in the unique index; the import's
    # checks cannot see it, its COPY waits, then fails on the index: the chunk is imported household by household.
    body, kks = bulk_file(sites.posyandu_c, VILLAGE_C, 40, serial_base=6000)
    contested = json.loads(body.splitlines()[20])  # the head of household 10
    other = await asyncpg.connect(household_settings.database_url)
    db = await asyncpg.connect(household_settings.database_url)
    try:
        registration = other.transaction()
        await registration.start()
        holder = uuid.uuid4()
        await other.execute("INSERT INTO households (id, kk_number, village_code, posyandu_id, status, "
                            "needs_reassignment, version, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, "
                            "'active', false, 1, 'race', now(), now())", holder, f"{VILLAGE_C[:6]}0101119999",
                            VILLAGE_C, uuid.UUID(sites.posyandu_c))
        await other.execute("INSERT INTO members (id, household_id, nik, name, sex, birth_date, relationship, "
                            "pregnant, disability, status, nik_region_mismatch, version, created_at, updated_at) "
                            "VALUES ($1, $2, $3, 'Parulian', 'male', $4, 'head', false, 'none', 'active', false, 1, "
                            "now(), now())", uuid.uuid4(), holder, contested["nik"],
                            date.fromisoformat(contested["birth_date"]))
        importing = asyncio.create_task(post_import(household, body, NDJSON, tokens.kader([sites.posyandu_c])))

        async def copy_waits() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                          "AND query LIKE 'COPY%members%'"))

        await eventually(copy_waits, "the import's COPY waiting on the registration", timeout=120)
        await registration.commit()
        response = await importing
    finally:
        await other.close()
    try:
        assert response.status_code == 200, response.text
        report = response.json()
        assert (report["households_imported"], report["households_rejected"]) == (39, 1), report
        errors = {(e["row"], e["field"]) for e in report["errors"]}
        assert (21, "nik") in errors and (22, None) in errors
        assert await db.fetchval("SELECT count(*) FROM members WHERE nik = $1 AND status = 'active'",
                                 contested["nik"]) == 1
        assert await db.fetchval("SELECT count(*) FROM households WHERE kk_number = ANY($1::text[])", kks) == 39
    finally:
        await db.close()


async def test_a_live_registration_and_an_import_of_the_same_nik_one_wins(
        sites: Sites, household: httpx.AsyncClient, household_settings: HouseholdSettings) -> None:
    body, _ = bulk_file(sites.posyandu_c, VILLAGE_C, 1500, serial_base=7000)
    rows = [json.loads(line) for line in body.splitlines()]
    kader = tokens.kader([sites.posyandu_c])
    # Registrations of the heads of households spread over the file, as the import runs.
    contested = [rows[i] for i in range(0, len(rows), 150)]

    async def register(i: int, row: dict[str, Any]) -> httpx.Response:
        await asyncio.sleep(0.05 * i)
        return await household.post("/api/v1/households", headers=kader, json={
            "kk_number": f"{VILLAGE_C[:6]}020219{9000 + i:04d}", "village_code": VILLAGE_C,
            "posyandu_id": sites.posyandu_c,
            "members": [{k: row[k] for k in ("nik", "name", "sex", "birth_date", "relationship")}]})

    importing = asyncio.create_task(post_import(household, body, NDJSON, kader))
    registered = await asyncio.gather(*(register(i, row) for i, row in enumerate(contested)))
    report = (await importing).json()
    refused_rows = {e["row"] for e in report["errors"] if e["field"] == "nik"}
    db = await asyncpg.connect(household_settings.database_url)
    try:
        for row, response in zip(contested, registered, strict=True):
            assert response.status_code in (201, 409), response.text
            line = rows.index(row) + 1
            assert await db.fetchval("SELECT count(*) FROM members WHERE nik = $1 AND status = 'active'",
                                     row["nik"]) == 1
            # Exactly one wins: the API's 201 and the import's row error go together.
            assert (response.status_code == 201) == (line in refused_rows), (row["nik"], response.text)
        assert report["households_imported"] + report["households_rejected"] == 1500
    finally:
        await db.close()
