"""Every statement is planned with its values: a cached generic plan cannot use a partial index and keeps the
costs of the day it was made, which turned the NIK and KK checks into sequential scans that grew with the data."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from conftest import Stack, service_settings
from services.registry.settings import RegistrySettings
from shared.db import create_engine

LOOKUP = sa.text("SELECT id FROM plan_probe WHERE nik = :nik AND status = :status")


@pytest.mark.parametrize("plan_cache_mode", ["engine default", "auto"])
async def test_a_partial_index_serves_a_prepared_lookup_after_the_table_grew(stack: Stack,
                                                                             plan_cache_mode: str) -> None:
    dsn = await stack.create_database(f"plans_{uuid.uuid4().hex[:8]}")
    engine = create_engine(RegistrySettings(**service_settings(stack, dsn)))
    try:
        async with engine.begin() as conn:
            if plan_cache_mode == "auto":  # PostgreSQL's default, to show what the engine's setting prevents
                await conn.execute(sa.text("SET LOCAL plan_cache_mode = auto"))
            await conn.execute(sa.text("CREATE TABLE plan_probe (id serial PRIMARY KEY, nik text, status text)"))
            await conn.execute(sa.text("CREATE UNIQUE INDEX ON plan_probe (nik) WHERE status = 'active'"))
            # Planned while the table is small (a sequential scan is right then), past the five runs after which
            # PostgreSQL may keep a generic plan for good.
            await conn.execute(sa.text("INSERT INTO plan_probe (nik, status) VALUES ('a', 'active'), ('b', 'moved')"))
            await conn.execute(sa.text("ANALYZE plan_probe"))
            for _ in range(6):
                await conn.execute(LOOKUP, {"nik": "1", "status": "active"})
            await conn.execute(sa.text("INSERT INTO plan_probe (nik, status) SELECT g::text, 'active' "
                                       "FROM generate_series(1, 100000) g"))
            before = await conn.scalar(sa.text(
                "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'plan_probe'"))
            for n in range(10):
                await conn.execute(LOOKUP, {"nik": str(n * 997), "status": "active"})
            after = await conn.scalar(sa.text(
                "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'plan_probe'"))
    finally:
        await engine.dispose()
    if plan_cache_mode == "auto":
        assert after - before == 10  # the stale generic plan scans the whole table every time
    else:
        assert after == before  # planned with the values: the partial index, every time
