"""Retention as policy: the one clean-up of the platform tables every service runs (shared/tables.py).

What goes, and why it is safe:
- sent outbox rows past their topic's retention (OUTBOX_RETENTION_DAYS for every topic when set): the relay gives
  a broker that lost its data back only what the topic would still hold. Unsent rows never go.
- inbox rows older than the longest a record of their event type can still arrive: its topic's retention (the
  longer of Kafka's, `RETENTION_DAYS`, and OUTBOX_RETENTION_DAYS, since the relay may send it again) and the
  dead-letter topics' (a dead letter is replayed through the inbox). A row is written when the event is applied,
  never before it was published, so a redelivery older than that cannot happen. Types on a topic kept forever
  (registry) and types unknown to the catalogue stay.
- idempotency keys older than IDEMPOTENCY_KEY_RETENTION_DAYS: a retry after that is a new create.
- audit rows older than AUDIT_RETENTION_DAYS, first appended to a gzip JSON Lines file per month when
  AUDIT_ARCHIVE_DIR is set (written and fsynced before the delete commits: a crash can leave a row archived twice,
  never lost).

Every delete takes at most RETENTION_BATCH_SIZE rows in its own short transaction, locks them with SKIP LOCKED
(so it never waits for a row a request holds, and two runs never take the same row) and runs under
RETENTION_LOCK_TIMEOUT_MS (so it never queues behind a migration's table lock, which would stall every writer
queued behind it). A writer waits on the clean-up at most one batch's transaction, and only when it touches a
row being deleted (an expired idempotency key reused). One replica runs it at a time (an advisory lock, as the
outbox relay's leader); the CLI `python -m services.<name> retention run [--dry-run]` takes the same lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gzip
import logging
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from shared.db import asyncpg_url, utc_now
from shared.events.catalogue import load_all
from shared.events.topics import DEAD_LETTER_RETENTION_DAYS, RETENTION_DAYS, SpmField
from shared.observability import RETENTION_DELETED, RETENTION_LAST_RUN
from shared.settings import ServiceSettings
from shared.tables import PLATFORM_TABLES

log = logging.getLogger(__name__)

#: The scheduled clean-up's first run after a start (then every RETENTION_INTERVAL_SECONDS): soon enough that a
#: service restarted more often than the interval still cleans, late enough not to add to a start's load.
FIRST_RUN_DELAY_SECONDS = 60.0

#: The tables the clean-up knows; a service's run cleans those of them its database has (its platform tables).
TABLES = ("outbox", "inbox", "idempotency_keys", "audit_log")


def _lock_key(service: str) -> int:
    return zlib.crc32(f"retention:{service}".encode())


def topic_retention_days(topic: str, settings: ServiceSettings) -> float | None:
    """How many days a topic's records may still be (re)delivered: the longer of what Kafka keeps and what the
    outbox keeps to send again; None: forever (or a topic unknown to the catalogue)."""
    if topic not in RETENTION_DAYS or RETENTION_DAYS[topic] is None:
        return None
    return max(float(RETENTION_DAYS[topic] or 0), settings.outbox_retention_days or 0.0)


def inbox_retention_days(settings: ServiceSettings) -> dict[str, float]:
    """Per event type of the catalogue, the days its inbox rows are kept; types that may arrive forever are absent."""
    days: dict[str, float] = {}
    for name, event_type in load_all().items():
        topics = {event_type.topic_for(f) for f in SpmField} if event_type.carries_spmfield else {event_type.topic}
        kept = [topic_retention_days(str(topic), settings) for topic in topics]
        if None not in kept:
            days[name] = max([*(k for k in kept if k is not None), float(DEAD_LETTER_RETENTION_DAYS)])
    return days


@dataclass
class RetentionReport:
    """What one run deleted (or, dry, would delete), per table it cleans; `skipped` when another run held the lock."""

    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    archived_files: list[str] = field(default_factory=list)
    #: Tables left for the next run because a lock was not granted within RETENTION_LOCK_TIMEOUT_MS.
    interrupted: list[str] = field(default_factory=list)
    dry_run: bool = False
    skipped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "archived_files": self.archived_files, "interrupted": self.interrupted,
                "dry_run": self.dry_run, "skipped": self.skipped}


async def retention_connection(settings: ServiceSettings) -> asyncpg.Connection:
    """The clean-up's own connection: the pool's timeouts, and a lock timeout on every statement."""
    return await asyncpg.connect(asyncpg_url(settings.database_url),
                                 timeout=settings.database_connect_timeout_seconds,
                                 command_timeout=settings.database_command_timeout_seconds,
                                 server_settings={"lock_timeout": f"{settings.retention_lock_timeout_ms}ms"})


async def run_retention(settings: ServiceSettings, service: str, platform_tables: tuple[str, ...] = PLATFORM_TABLES,
                        *, dry_run: bool = False, now: datetime | None = None,
                        take_lock: bool = True) -> RetentionReport:
    """One clean-up of the service's platform tables (those of TABLES it has); skipped if another replica's run
    holds the lock.

    `now` is the clock (tests move it); `take_lock=False` runs without the lock (two such runs are still safe)."""
    tables = tuple(t for t in TABLES if t in platform_tables)
    conn = await retention_connection(settings)
    try:
        if take_lock and not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _lock_key(service)):
            log.info("retention run skipped: another replica runs it", extra={"service": service})
            return RetentionReport(deleted=dict.fromkeys(tables, 0), dry_run=dry_run, skipped=True)
        report = await Cleanup(conn, settings, service, now or utc_now(), dry_run, tables).run()
        if not dry_run:
            RETENTION_LAST_RUN.labels(service).set(time.time())
        return report
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 5)


async def delete_expired_outbox(conn: asyncpg.Connection, settings: ServiceSettings, service: str,
                                now: datetime | None = None) -> int:
    """Only the outbox part of a run (the relay calls it before it sends a topic's kept rows again)."""
    cleanup = Cleanup(conn, settings, service, now or utc_now(), dry_run=False)
    await cleanup.outbox()
    return cleanup.report.deleted["outbox"]


class Cleanup:
    """One run: each table's expired rows, batch by batch."""

    def __init__(self, conn: asyncpg.Connection, settings: ServiceSettings, service: str, now: datetime,
                 dry_run: bool, tables: tuple[str, ...] = TABLES) -> None:
        self.conn = conn
        self.settings = settings
        self.service = service
        self.now = now
        self.batch = settings.retention_batch_size
        self.tables = tables
        self.report = RetentionReport(deleted=dict.fromkeys(tables, 0), dry_run=dry_run)

    def _before(self, days: float) -> datetime:
        return self.now - timedelta(days=days)

    async def run(self) -> RetentionReport:
        cleaners = {"outbox": self.outbox, "inbox": self.inbox, "idempotency_keys": self.idempotency_keys,
                    "audit_log": self.audit_log}
        for table in self.tables:
            clean = cleaners[table]
            try:
                await clean()
            except asyncpg.LockNotAvailableError:
                # Someone holds a lock on the table (a migration): leave it to the next run rather than queue.
                log.warning("retention: lock not granted in time, table left for the next run",
                            extra={"service": self.service, "table": table})
                self.report.interrupted.append(table)
        if not self.report.dry_run:
            log.info("retention run done", extra={"service": self.service, **self.report.as_dict()})
        return self.report

    async def _delete(self, table: str, where: str, *args: Any) -> None:
        """Delete the rows matching `where` (parameters $1, $2, ...), at most a batch per transaction."""
        if self.report.dry_run:
            self.report.deleted[table] += await self.conn.fetchval(f"SELECT count(*) FROM {table} WHERE {where}",
                                                                   *args)
            return
        statement = (f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {where} "
                     f"LIMIT ${len(args) + 1} FOR UPDATE SKIP LOCKED))")
        while True:
            done = int((await self.conn.execute(statement, *args, self.batch)).split()[-1])
            self._count(table, done)
            if done < self.batch:
                return
            await self._pause()

    def _count(self, table: str, done: int) -> None:
        self.report.deleted[table] += done
        RETENTION_DELETED.labels(self.service, table).inc(done)

    async def _pause(self) -> None:
        # Between batches: replication, autovacuum and the requests get the disk and the WAL writer back.
        await asyncio.sleep(self.settings.retention_batch_pause_seconds)

    async def outbox(self) -> None:
        # The topics that have sent rows, by a skip scan of the partial index (ix_outbox_sent): a topic not in the
        # catalogue is kept unless OUTBOX_RETENTION_DAYS says otherwise.
        topics = await self.conn.fetch(
            "WITH RECURSIVE t AS (SELECT min(topic) AS topic FROM outbox WHERE published_at IS NOT NULL "
            "UNION ALL SELECT (SELECT min(topic) FROM outbox WHERE published_at IS NOT NULL AND topic > t.topic) "
            "FROM t WHERE t.topic IS NOT NULL) SELECT topic FROM t WHERE topic IS NOT NULL")
        for row in topics:
            days = self.settings.outbox_retention_days or RETENTION_DAYS.get(row["topic"])
            if days is not None:
                await self._delete("outbox", "topic = $1 AND published_at IS NOT NULL AND published_at < $2",
                                   row["topic"], self._before(days))

    async def inbox(self) -> None:
        for event_type, days in sorted(inbox_retention_days(self.settings).items()):
            await self._delete("inbox", "event_type = $1 AND processed_at < $2", event_type, self._before(days))

    async def idempotency_keys(self) -> None:
        await self._delete("idempotency_keys", "created_at < $1",
                           self._before(self.settings.idempotency_key_retention_days))

    async def audit_log(self) -> None:
        before = self._before(self.settings.audit_retention_days)
        if self.settings.audit_archive_dir is None or self.report.dry_run:
            await self._delete("audit_log", "at < $1", before)
            return
        archive = AuditArchive(Path(self.settings.audit_archive_dir), self.service)
        while True:
            async with self.conn.transaction():
                rows = await self.conn.fetch(
                    "DELETE FROM audit_log WHERE ctid = ANY(ARRAY(SELECT ctid FROM audit_log WHERE at < $2 "
                    "ORDER BY at LIMIT $1 FOR UPDATE SKIP LOCKED)) RETURNING *", self.batch, before)
                # On disk before the delete commits: a failed write rolls the delete back.
                for written in await asyncio.to_thread(archive.append, [archived_row(r) for r in rows]):
                    if written not in self.report.archived_files:
                        self.report.archived_files.append(written)
            self._count("audit_log", len(rows))
            if len(rows) < self.batch:
                return
            await self._pause()


def archived_row(row: asyncpg.Record) -> dict[str, Any]:
    """An audit row as the archive keeps it: every column, `fields` as its JSON value (asyncpg reads it as text)."""
    archived = dict(row)
    if isinstance(archived["fields"], str):
        archived["fields"] = orjson.loads(archived["fields"])
    return archived


class AuditArchive:
    """Audit rows as gzip JSON Lines, one file per service and month of `at` (`<service>-audit-2021-05.jsonl.gz`).

    Each batch appends one gzip member (a concatenation of members is one valid gzip file) under an exclusive
    lock, fsynced, so two runs never interleave their writes."""

    def __init__(self, directory: Path, service: str) -> None:
        self.directory = directory
        self.service = service

    def path(self, at: datetime) -> Path:
        return self.directory / f"{self.service}-audit-{at:%Y-%m}.jsonl.gz"

    def append(self, rows: list[dict[str, Any]]) -> list[str]:
        """Append the rows to their months' files; the files written."""
        by_file: dict[Path, list[dict[str, Any]]] = {}
        for row in sorted(rows, key=lambda r: r["id"]):
            by_file.setdefault(self.path(row["at"]), []).append(row)
        self.directory.mkdir(parents=True, exist_ok=True)
        for path, of_month in by_file.items():
            lines = b"".join(orjson.dumps(row, option=orjson.OPT_UTC_Z) + b"\n" for row in of_month)
            member = gzip.compress(lines, mtime=0)
            with path.open("ab") as file:
                fcntl.flock(file, fcntl.LOCK_EX)
                file.write(member)
                file.flush()
                os.fsync(file.fileno())
        return [str(path) for path in by_file]


async def retention_loop(settings: ServiceSettings, service: str, platform_tables: tuple[str, ...] = PLATFORM_TABLES,
                         sleep: Callable[[float], Any] = asyncio.sleep) -> None:
    """The scheduled clean-up of a service's replica: every interval, a run if no other replica's is under way."""
    await sleep(min(FIRST_RUN_DELAY_SECONDS, settings.retention_interval_seconds))
    while True:
        try:
            await run_retention(settings, service, platform_tables)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The database is down or restarting: the next interval tries again.
            log.warning("retention run failed", extra={"service": service, "error": repr(exc)})
        await sleep(settings.retention_interval_seconds)
