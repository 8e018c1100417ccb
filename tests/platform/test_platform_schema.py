"""The platform tables come from one place: every service's database at head has exactly the platform tables it
declares, each as shared/tables.py models it (columns, types, nullability, defaults, constraints, indexes), so a
change made to the model or to shared/platform_migrations.py alone fails here. Reporting, which neither publishes
nor takes creates, has no outbox and no idempotency keys, and its clean-up and CLI run on the tables it has."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import os
import subprocess
import sys
import uuid
from typing import Any

import asyncpg
import orjson
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import create_async_engine

from conftest import ROOT, Stack, service_settings
from services.reporting.app import spec as reporting_spec
from services.reporting.settings import ReportingSettings
from services.reporting.tables import PLATFORM_TABLES as REPORTING_TABLES
from shared.db import sqlalchemy_url
from shared.retention import run_retention
from shared.service import ServiceSpec, Subscription, create_service_app
from shared.tables import PLATFORM_TABLES, platform_metadata_of
from tests.support.schema import describe, table_names
from tests.support.waiting import eventually

SERVICES = ("registry", "household", "referral", "reporting")


def declared_platform_tables(service: str) -> tuple[str, ...]:
    """The platform tables a service's migrations env includes: its tables.py's PLATFORM_TABLES, or all of them."""
    tables: tuple[str, ...] = getattr(importlib.import_module(f"services.{service}.tables"), "PLATFORM_TABLES",
                                      PLATFORM_TABLES)
    return tables


async def modelled_schema(stack: Stack, tables: tuple[str, ...]) -> dict[str, Any]:
    """These platform tables as shared/tables.py makes them (create_all in a scratch database)."""
    dsn = await stack.create_database(f"model_{uuid.uuid4().hex[:8]}")
    engine = create_async_engine(sqlalchemy_url(dsn))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(platform_metadata_of(tables).create_all)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(dsn)
    try:
        return await describe(conn)
    finally:
        await conn.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_at_head_has_its_platform_tables_as_the_model_makes_them(stack: Stack,
                                                                                     service: str) -> None:
    tables = declared_platform_tables(service)
    dsn = await stack.migrated_database(service, f"drift_{service}_{uuid.uuid4().hex[:8]}")
    conn = await asyncpg.connect(dsn)
    try:
        assert (await table_names(conn)) & set(PLATFORM_TABLES) == set(tables)
        migrated = await describe(conn, tables)
    finally:
        await conn.close()
    modelled = await modelled_schema(stack, tables)
    for table in tables:
        assert migrated[table] == modelled[table], f"{service}: {table} at head differs from shared/tables.py"


def test_reporting_has_only_the_platform_tables_it_uses() -> None:
    assert set(REPORTING_TABLES) == {"inbox", "audit_log", "dead_letters"}
    assert reporting_spec().platform_tables == REPORTING_TABLES


def test_a_spec_without_the_platform_tables_its_relay_or_consumers_need_is_refused() -> None:
    with pytest.raises(ValueError, match="outbox"):
        ServiceSpec(name="x", title="x", description="x", routers=[], platform_tables=("inbox", "audit_log"))
    with pytest.raises(ValueError, match="dead_letters"):
        ServiceSpec(name="x", title="x", description="x", routers=[], publishes=False,
                    subscriptions=[Subscription("x", ["t"], {})], platform_tables=("inbox", "audit_log"))


@pytest.fixture
async def reporting_settings(stack: Stack) -> ReportingSettings:
    """A reporting database of the test's own, at head."""
    dsn = await stack.migrated_database("reporting", f"reporting_platform_{uuid.uuid4().hex[:8]}")
    return ReportingSettings(**service_settings(stack, dsn))


async def add_expired(dsn: str) -> None:
    """An inbox row and an audit row ten years old (past every retention period but a forever topic's)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("INSERT INTO inbox (consumer_group, event_id, event_type, processed_at) "
                           "VALUES ('reporting', gen_random_uuid(), 'posyandu.member.added.v1', "
                           "now() - interval '3650 days')")
        await conn.execute("INSERT INTO audit_log (at, actor, actor_role, action, resource_type, resource_id, "
                           "purpose) VALUES (now() - interval '3650 days', 'admin-1', 'admin', 'inspect', "
                           "'dead_letter', '1', 'operations')")
    finally:
        await conn.close()


async def expired_left(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT (SELECT count(*) FROM inbox) + (SELECT count(*) FROM audit_log)"))
    finally:
        await conn.close()


async def test_reporting_cleans_its_own_platform_tables(reporting_settings: ReportingSettings) -> None:
    await add_expired(reporting_settings.database_url)
    report = await run_retention(reporting_settings, "reporting", REPORTING_TABLES)
    assert report.deleted == {"inbox": 1, "audit_log": 1}
    assert report.interrupted == []
    # All the platform tables would be one the reporting database no longer has.
    with pytest.raises(asyncpg.UndefinedTableError):
        await run_retention(reporting_settings, "reporting")


async def test_the_reporting_app_runs_its_scheduled_clean_up(reporting_settings: ReportingSettings) -> None:
    await add_expired(reporting_settings.database_url)
    spec = reporting_spec()
    # A consumer group of the test's own: the session broker's reporting offsets stay where they are.
    group = f"reporting-platform-{uuid.uuid4().hex[:8]}"
    app = create_service_app(
        dataclasses.replace(spec, subscriptions=[dataclasses.replace(s, group_id=group) for s in spec.subscriptions]),
        reporting_settings.model_copy(update={"retention_interval_seconds": 0.3}))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        await eventually(lambda: expired_left(reporting_settings.database_url), "the scheduled clean-up",
                         timeout=120, interval=0.2, until=lambda left: left == 0)


async def test_the_reporting_cli_cleans_its_own_platform_tables(reporting_settings: ReportingSettings) -> None:
    await add_expired(reporting_settings.database_url)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": reporting_settings.database_url,
           "ENVIRONMENT": "test", "LOG_LEVEL": "WARNING"}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "services.reporting", "retention", "run"],
                                   env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["deleted"] == {"inbox": 1, "audit_log": 1}
