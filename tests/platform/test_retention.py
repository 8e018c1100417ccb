"""Retention (shared/retention.py): each platform table loses exactly its expired rows, unsent outbox rows never go,
the audit archive holds what was deleted, runs do not collide, and the clean-up under a concurrent write stream
makes no writer wait on a lock longer than LOCK_WAIT_BOUND_MS."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import yaml
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY

from conftest import ROOT, Stack, service_settings
from services.registry.app import create_app as create_registry_app
from services.registry.settings import RegistrySettings
from shared.events.topics import DEAD_LETTER_RETENTION_DAYS, HOUSEHOLD_TOPIC, REFERRAL_TOPICS, REGISTRY_TOPIC, SpmField
from shared.retention import _lock_key, run_retention
from tests.support.waiting import eventually

#: The longest a writer may wait for a lock while the clean-up runs (its `lock_timeout`: a longer wait fails the
#: write). A writer can wait for one batch's transaction (default 1,000 rows, about 10 ms measured here); deleting
#: the 200,000 expired keys of the load test in one statement would hold them about 0.5 s unloaded, more under load.
LOCK_WAIT_BOUND_MS = 250

HOUSEHOLD_TYPE = "posyandu.member.added.v1"          # on the household topic: 30 days (+ dead letters: 30)
REFERRAL_TYPE = "posyandu.referral.created.v1"       # on the referral topics: 365 days
REGISTRY_TYPE = "posyandu.posyandu.registered.v1"    # on the registry topic, kept forever


@pytest.fixture
async def settings(stack: Stack) -> RegistrySettings:
    """A migrated database of the test's own (the clean-up's lock and the tables are per database)."""
    dsn = await stack.migrated_database("registry", f"retention_{uuid.uuid4().hex[:8]}")
    return RegistrySettings(**service_settings(stack, dsn))


@pytest.fixture
async def db(settings: RegistrySettings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def add_outbox(db: asyncpg.Connection, topic: str, sent_days_ago: float | None, *, count: int = 1,
                     created_days_ago: float = 4000) -> list[int]:
    """Outbox rows of a topic, sent that many days ago (None: not sent yet), written long ago."""
    return [r["id"] for r in await db.fetch(
        "INSERT INTO outbox (event_id, event_type, topic, key, payload, created_at, published_at) "
        "SELECT gen_random_uuid(), 'posyandu.probe.published.v1', $1, 'k', '\\x00', "
        "now() - make_interval(days => $2), now() - make_interval(secs => $3 * 86400) "
        "FROM generate_series(1, $4) RETURNING id", topic, created_days_ago, sent_days_ago, count)]


async def add_inbox(db: asyncpg.Connection, event_type: str, days_ago: float, *, count: int = 1,
                    group: str = "registry") -> list[uuid.UUID]:
    return [r["event_id"] for r in await db.fetch(
        "INSERT INTO inbox (consumer_group, event_id, event_type, processed_at) "
        "SELECT $1, gen_random_uuid(), $2, now() - make_interval(secs => $3 * 86400) "
        "FROM generate_series(1, $4) RETURNING event_id", group, event_type, days_ago, count)]


async def add_keys(db: asyncpg.Connection, days_ago: float, *, count: int = 1, prefix: str = "k") -> list[str]:
    return [r["key"] for r in await db.fetch(
        "INSERT INTO idempotency_keys (principal, scope, key, request_hash, status_code, response, created_at) "
        "SELECT 'kader-1', 'households', $1 || '-' || n, 'h', 201, '{\"id\": 1}', "
        "now() - make_interval(secs => $2 * 86400) FROM generate_series(1, $3) AS n RETURNING key",
        f"{prefix}-{uuid.uuid4().hex[:6]}", days_ago, count)]


async def add_audit(db: asyncpg.Connection, days_ago: float, *, count: int = 1) -> list[int]:
    return [r["id"] for r in await db.fetch(
        "INSERT INTO audit_log (at, actor, actor_role, action, resource_type, resource_id, subject_ref, purpose, "
        "request_id, fields) SELECT now() - make_interval(secs => $1 * 86400) - make_interval(secs => n), "
        "'kader-' || n, 'kader', 'read', 'household', 'h-' || n, 'household:h-' || n, 'posyandu day', "
        "'req-' || n, '[\"nik\", \"name\"]' FROM generate_series(1, $2) AS n RETURNING id", days_ago, count)]


async def remaining(db: asyncpg.Connection, table: str, column: str, ids: list[Any]) -> list[bool]:
    left = {r[0] for r in await db.fetch(f"SELECT {column} FROM {table} WHERE {column} = ANY($1)", ids)}
    return [i in left for i in ids]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_each_table_loses_its_rows_older_than_the_period_and_keeps_younger_ones(
        settings: RegistrySettings, db: asyncpg.Connection) -> None:
    sosial = REFERRAL_TOPICS[SpmField.SOSIAL]
    # (rows, kept?) per table; days are as old as each row is.
    outbox = [(await add_outbox(db, HOUSEHOLD_TOPIC, 29), True), (await add_outbox(db, HOUSEHOLD_TOPIC, 31), False),
              (await add_outbox(db, sosial, 364), True), (await add_outbox(db, sosial, 366), False),
              (await add_outbox(db, REGISTRY_TOPIC, 4000), True), (await add_outbox(db, "test.unknown.v1", 4000), True),
              (await add_outbox(db, HOUSEHOLD_TOPIC, None), True)]
    inbox = [(await add_inbox(db, HOUSEHOLD_TYPE, 29), True), (await add_inbox(db, HOUSEHOLD_TYPE, 31), False),
             (await add_inbox(db, REFERRAL_TYPE, 364), True), (await add_inbox(db, REFERRAL_TYPE, 366), False),
             (await add_inbox(db, REGISTRY_TYPE, 4000), True), (await add_inbox(db, "test.unknown.v1", 4000), True)]
    keys = [(await add_keys(db, 29), True), (await add_keys(db, 31), False)]
    audit = [(await add_audit(db, 1825), True), (await add_audit(db, 1827), False)]
    deleted_before = metric("retention_deleted_rows_total", service="registry", table="inbox")

    report = await run_retention(settings, "registry")

    assert report.deleted == {"outbox": 2, "inbox": 2, "idempotency_keys": 1, "audit_log": 1}
    for table, column, rows in (("outbox", "id", outbox), ("inbox", "event_id", inbox),
                                ("idempotency_keys", "key", keys), ("audit_log", "id", audit)):
        assert [await remaining(db, table, column, ids) == [True] for ids, _ in rows] == [k for _, k in rows], table
    assert metric("retention_deleted_rows_total", service="registry", table="inbox") == deleted_before + 2
    assert metric("retention_last_run_timestamp_seconds", service="registry") > time.time() - 60


async def test_unsent_outbox_rows_never_go(settings: RegistrySettings, db: asyncpg.Connection) -> None:
    """However old, and whatever the retention: an event not yet on the broker is not the clean-up's to drop."""
    unsent = await add_outbox(db, HOUSEHOLD_TOPIC, None, count=50, created_days_ago=10_000)
    sent = await add_outbox(db, HOUSEHOLD_TOPIC, 1, count=5)
    report = await run_retention(settings.model_copy(update={"outbox_retention_days": 0.0001}), "registry")
    assert report.deleted["outbox"] == 5
    assert await remaining(db, "outbox", "id", unsent) == [True] * 50
    assert await remaining(db, "outbox", "id", sent) == [False] * 5


async def test_the_clock_decides_what_is_expired(settings: RegistrySettings, db: asyncpg.Connection) -> None:
    keys = await add_keys(db, 0)
    assert (await run_retention(settings, "registry")).deleted["idempotency_keys"] == 0
    later = datetime.now(UTC) + timedelta(days=31)
    assert (await run_retention(settings, "registry", now=later)).deleted["idempotency_keys"] == 1
    assert await remaining(db, "idempotency_keys", "key", keys) == [False]


async def test_a_dry_run_counts_what_a_run_then_deletes_and_deletes_nothing(
        settings: RegistrySettings, db: asyncpg.Connection, tmp_path: Path) -> None:
    await add_outbox(db, HOUSEHOLD_TOPIC, 40, count=7)
    await add_inbox(db, HOUSEHOLD_TYPE, 40, count=5)
    await add_keys(db, 40, count=3)
    await add_audit(db, 2000, count=4)
    archiving = settings.model_copy(update={"audit_archive_dir": str(tmp_path)})
    dry = await run_retention(archiving, "registry", dry_run=True)
    assert dry.deleted == {"outbox": 7, "inbox": 5, "idempotency_keys": 3, "audit_log": 4}
    assert not list(tmp_path.iterdir()), "a dry run writes no archive"
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 4
    assert (await run_retention(archiving, "registry")).deleted == dry.deleted


async def test_the_archive_holds_exactly_the_deleted_audit_rows_per_month(
        settings: RegistrySettings, db: asyncpg.Connection, tmp_path: Path) -> None:
    old = await add_audit(db, 2000, count=30) + await add_audit(db, 2040, count=25)
    young = await add_audit(db, 10, count=3)
    expected = {r["id"]: dict(r) for r in await db.fetch("SELECT * FROM audit_log WHERE id = ANY($1)", old)}
    archiving = settings.model_copy(update={"audit_archive_dir": str(tmp_path), "retention_batch_size": 7})

    report = await run_retention(archiving, "registry")

    assert report.deleted["audit_log"] == 55
    assert await remaining(db, "audit_log", "id", old + young) == [False] * 55 + [True] * 3
    archived: dict[int, dict[str, Any]] = {}
    for path in sorted(tmp_path.iterdir()):
        with gzip.open(path, "rt") as file:  # one gzip member per batch: read as one file
            for line in file:
                row = json.loads(line)
                month = path.name.removeprefix("registry-audit-").removesuffix(".jsonl.gz")
                assert row["at"][:7] == month, "a row is in the file of its month"
                assert row["id"] not in archived, "each row archived once"
                archived[row["id"]] = row
    assert sorted(str(p) for p in tmp_path.iterdir()) == sorted(report.archived_files)
    assert len(report.archived_files) >= 2  # the two batches of rows are 40 days apart
    assert set(archived) == set(expected)
    for row_id, row in expected.items():
        got = archived[row_id]
        assert datetime.fromisoformat(got.pop("at")) == row.pop("at")
        assert got.pop("fields") == json.loads(row.pop("fields"))
        assert got == row


async def test_an_archive_that_cannot_be_written_deletes_nothing(
        settings: RegistrySettings, db: asyncpg.Connection, tmp_path: Path) -> None:
    old = await add_audit(db, 2000, count=5)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    with pytest.raises(OSError):
        await run_retention(settings.model_copy(update={"audit_archive_dir": str(blocked)}), "registry")
    assert await remaining(db, "audit_log", "id", old) == [True] * 5


async def test_two_concurrent_runs_delete_each_row_once_without_errors(
        settings: RegistrySettings, db: asyncpg.Connection, tmp_path: Path) -> None:
    await add_outbox(db, HOUSEHOLD_TOPIC, 40, count=3000)
    await add_inbox(db, HOUSEHOLD_TYPE, 40, count=2000)
    await add_keys(db, 40, count=2000)
    old_audit = await add_audit(db, 2000, count=2000)
    small = settings.model_copy(update={"retention_batch_size": 100, "retention_batch_pause_seconds": 0,
                                        "audit_archive_dir": str(tmp_path)})
    # Without the replicas' lock: SKIP LOCKED alone keeps them off each other's rows.
    first, second = await asyncio.gather(run_retention(small, "registry", take_lock=False),
                                         run_retention(small, "registry", take_lock=False))
    assert {t: first.deleted[t] + second.deleted[t] for t in first.deleted} == {
        "outbox": 3000, "inbox": 2000, "idempotency_keys": 2000, "audit_log": 2000}
    for table in ("outbox", "inbox", "idempotency_keys", "audit_log"):
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    ids = []
    for path in tmp_path.iterdir():
        with gzip.open(path, "rt") as file:
            ids += [json.loads(line)["id"] for line in file]
    assert sorted(ids) == sorted(old_audit), "each deleted row archived exactly once"


async def test_one_replica_runs_at_a_time(settings: RegistrySettings, db: asyncpg.Connection) -> None:
    keys = await add_keys(db, 40)
    assert await db.fetchval("SELECT pg_try_advisory_lock($1)", _lock_key("registry"))  # another replica's run
    report = await run_retention(settings, "registry")
    assert report.skipped and report.deleted["idempotency_keys"] == 0
    assert await remaining(db, "idempotency_keys", "key", keys) == [True]
    await db.execute("SELECT pg_advisory_unlock($1)", _lock_key("registry"))
    assert (await run_retention(settings, "registry")).deleted["idempotency_keys"] == 1


async def test_a_table_locked_by_a_migration_is_left_for_the_next_run_and_the_others_cleaned(
        settings: RegistrySettings, db: asyncpg.Connection) -> None:
    await add_audit(db, 2000, count=3)
    keys = await add_keys(db, 40, count=3)
    migration = await asyncpg.connect(settings.database_url)
    try:
        async with migration.transaction():
            await migration.execute("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            report = await run_retention(settings.model_copy(update={"retention_lock_timeout_ms": 200}), "registry")
            waited = time.monotonic() - started
        assert report.interrupted == ["audit_log"]
        assert report.deleted["idempotency_keys"] == 3 and report.deleted["audit_log"] == 0
        assert waited < 30, "the run gave up on the lock instead of queueing behind the migration"
    finally:
        await migration.close()
    assert await remaining(db, "idempotency_keys", "key", keys) == [False] * 3
    assert (await run_retention(settings, "registry")).deleted["audit_log"] == 3


class Writers:
    """Write streams on their own connections, each with `lock_timeout` at the bound: a write that waits on a lock
    longer fails (LockNotAvailableError) and is counted as an error."""

    def __init__(self, dsn: str, expired_keys: list[str]) -> None:
        self.dsn = dsn
        self.expired_keys = expired_keys
        self.done = asyncio.Event()
        #: Set once every stream has written a few times.
        self.writing = asyncio.Event()
        self.writes: dict[str, int] = {}
        self.errors: list[str] = []

    async def _loop(self, name: str, write: Any) -> None:
        conn = await asyncpg.connect(self.dsn, server_settings={"lock_timeout": f"{LOCK_WAIT_BOUND_MS}ms"})
        self.writes[name] = 0
        try:
            n = 0
            while not self.done.is_set():
                try:
                    await write(conn, n)
                    self.writes[name] += 1
                    if len(self.writes) == 4 and min(self.writes.values()) >= 10:
                        self.writing.set()
                except Exception as exc:
                    self.errors.append(f"{name}: {exc!r}")
                n += 1
                await asyncio.sleep(0)
        finally:
            await conn.close()

    @staticmethod
    async def outbox(conn: asyncpg.Connection, n: int) -> None:
        # The request's insert, then the relay's publish and its attempts counter on unsent rows.
        async with conn.transaction():
            row = await conn.fetchval(
                "INSERT INTO outbox (event_id, event_type, topic, key, payload) VALUES ($1, 'probe', $2, 'k', "
                "'\\x00') RETURNING id", uuid.uuid4(), HOUSEHOLD_TOPIC)
            await conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE published_at IS NULL AND id = $1", row)
        await conn.execute("UPDATE outbox SET published_at = now() WHERE id = $1", row)

    @staticmethod
    async def inbox(conn: asyncpg.Connection, n: int) -> None:
        await conn.execute("INSERT INTO inbox (consumer_group, event_id, event_type) VALUES ('registry', $1, $2) "
                           "ON CONFLICT DO NOTHING", uuid.uuid4(), HOUSEHOLD_TYPE)

    @staticmethod
    async def audit(conn: asyncpg.Connection, n: int) -> None:
        await conn.execute("INSERT INTO audit_log (actor, actor_role, action, resource_type, resource_id, purpose) "
                           "VALUES ('kader-1', 'kader', 'read', 'household', $1, 'posyandu day')", str(n))

    async def reused_key(self, conn: asyncpg.Connection, n: int) -> None:
        # A client retrying with a key the clean-up is deleting right now: the claim waits on that row's lock.
        key = self.expired_keys[(n * 7919) % len(self.expired_keys)]
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO idempotency_keys (principal, scope, key, request_hash) VALUES ('kader-1', "
                "'households', $1, 'h') ON CONFLICT DO NOTHING", key)

    async def run(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._loop(name, write)) for name, write in (
            ("outbox", self.outbox), ("inbox", self.inbox), ("audit", self.audit), ("reused_key", self.reused_key))]


async def longest_lock_wait_ms(conn: asyncpg.Connection, pids: set[int], done: asyncio.Event) -> float:
    """Samples pg_locks while the clean-up runs: the longest any of `pids` was seen waiting for a lock."""
    longest = 0.0
    while not done.is_set():
        waited = await conn.fetchval(
            "SELECT max(extract(epoch FROM clock_timestamp() - waitstart) * 1000) FROM pg_locks "
            "WHERE NOT granted AND pid = ANY($1::int[])", list(pids))
        longest = max(longest, float(waited or 0))
        await asyncio.sleep(0.01)
    return longest


async def test_clean_up_under_load_makes_no_writer_fail_or_wait_past_the_bound(
        settings: RegistrySettings, db: asyncpg.Connection, tmp_path: Path) -> None:
    """60,000 expired outbox rows, 200,000 keys, 20,000 each of inbox and audit rows, deleted while four write streams:
    new outbox rows published, inbox claims, audit inserts, and retries with expired keys (which the clean-up holds
    for the length of one batch). Every write runs with lock_timeout at LOCK_WAIT_BOUND_MS, so a longer lock wait
    would fail it."""
    await add_outbox(db, HOUSEHOLD_TOPIC, 40, count=60_000)
    await add_inbox(db, HOUSEHOLD_TYPE, 40, count=20_000)
    expired_keys = await add_keys(db, 40, count=200_000)
    await add_audit(db, 2000, count=20_000)
    await db.execute("ANALYZE")
    writers = Writers(settings.database_url, expired_keys)
    tasks = await writers.run()
    await asyncio.wait_for(writers.writing.wait(), 60)
    pids = {r["pid"] for r in await db.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")}
    sampling = asyncio.Event()
    sampler = asyncio.create_task(longest_lock_wait_ms(db, pids, sampling))
    before = dict(writers.writes)
    try:
        report = await run_retention(settings.model_copy(update={"audit_archive_dir": str(tmp_path)}), "registry")
    finally:
        writers.done.set()
        sampling.set()
        await asyncio.gather(*tasks)
    longest = await sampler

    assert report.deleted == {"outbox": 60_000, "inbox": 20_000, "idempotency_keys": 200_000, "audit_log": 20_000}
    assert writers.errors == []
    assert longest < LOCK_WAIT_BOUND_MS
    assert all(writers.writes[name] > before[name] for name in before), "every stream wrote during the clean-up"
    # What the writers wrote stays (it is young), including a reused key written again after its row went.
    assert await db.fetchval("SELECT count(*) FROM outbox") == writers.writes["outbox"]
    assert await db.fetchval("SELECT count(*) FROM audit_log") == writers.writes["audit"]


async def test_the_writers_fail_on_a_lock_held_past_the_bound(
        settings: RegistrySettings, db: asyncpg.Connection) -> None:
    """The control of the test above: a transaction that holds the expired keys longer than the bound (as one big
    DELETE would) makes the key stream fail, and the sampler sees the wait."""
    expired_keys = await add_keys(db, 40, count=100)
    writers = Writers(settings.database_url, expired_keys)
    tasks = await writers.run()
    await asyncio.wait_for(writers.writing.wait(), 60)
    pids = {r["pid"] for r in await db.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")}
    sampling = asyncio.Event()
    sampler = asyncio.create_task(longest_lock_wait_ms(db, pids, sampling))
    holder = await asyncpg.connect(settings.database_url)
    try:
        async with holder.transaction():
            await holder.execute("DELETE FROM idempotency_keys WHERE key = ANY($1)", expired_keys)
            await asyncio.sleep(3 * LOCK_WAIT_BOUND_MS / 1000)
    finally:
        await holder.close()
        writers.done.set()
        sampling.set()
        await asyncio.gather(*tasks)
    assert any(e.startswith("reused_key: LockNotAvailableError") for e in writers.errors), writers.errors
    assert await sampler >= LOCK_WAIT_BOUND_MS * 0.5


async def test_every_service_cleans_on_its_schedule(settings: RegistrySettings, db: asyncpg.Connection) -> None:
    keys = await add_keys(db, 40)
    app = create_registry_app(settings.model_copy(update={"retention_interval_seconds": 0.3}))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        await eventually(lambda: remaining(db, "idempotency_keys", "key", keys), "the scheduled clean-up",
                         timeout=60, interval=0.2, until=lambda left: left == [False])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://r") as client:
            exported = (await client.get("/metrics")).text
    assert 'retention_deleted_rows_total{service="registry",table="idempotency_keys"}' in exported
    assert 'retention_last_run_timestamp_seconds{service="registry"}' in exported


async def test_the_cli_runs_a_clean_up_and_a_dry_run(settings: RegistrySettings, db: asyncpg.Connection) -> None:
    await add_keys(db, 40, count=2)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": settings.database_url, "ENVIRONMENT": "test",
           "LOG_LEVEL": "WARNING"}

    async def cli(*args: str) -> dict[str, Any]:
        command = [sys.executable, "-m", "services.registry", "retention", "run", *args]
        done = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True,
                                       timeout=120, check=True)
        result: dict[str, Any] = orjson.loads(done.stdout)
        return result

    dry = await cli("--dry-run")
    assert dry["dry_run"] and dry["deleted"]["idempotency_keys"] == 2
    assert (await cli())["deleted"]["idempotency_keys"] == 2
    assert (await cli())["deleted"]["idempotency_keys"] == 0


def test_inbox_rows_outlive_the_dead_letter_topics() -> None:
    """A dead letter is replayed through the inbox: its rows must be kept at least as long as the DLQ topics keep
    records (deploy/k8s/base/kafka/topics.yaml)."""
    documents = yaml.safe_load_all((ROOT / "deploy/k8s/base/kafka/topics.yaml").read_text())
    dead_letters = {int(d["spec"]["config"]["retention.ms"]) for d in documents
                    if d and d["metadata"]["name"].startswith("posyandu.dlq.")}
    assert dead_letters == {DEAD_LETTER_RETENTION_DAYS * 86_400_000}
