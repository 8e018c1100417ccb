"""Existing databases upgrade without loss: per service, a database at the head of issue 17's start (PREVIOUS_HEADS),
with rows in its platform tables and in service tables, upgraded to head keeps every row, ends with the schema of a
database migrated straight to head, and downgrades back to that revision with its schema and rows as they were.
A platform table a revision drops must be empty (reporting's outbox and idempotency keys); with a row in it the
upgrade is refused and changes nothing."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from alembic import command

from conftest import ROOT, Stack
from shared.migrate import alembic_config, upgrade
from shared.tables import PLATFORM_TABLES
from tests.support.schema import all_rows, describe, table_names

#: Each service's head before the platform tables came from one place (reporting's revision 0010 follows it).
PREVIOUS_HEADS = {"registry": "8684c9ad180c", "household": "37ee585dc141", "referral": "886f280d7bb9",
                  "reporting": "98d3902e6b38"}

#: A row per platform table, written where the table exists.
PLATFORM_ROWS = {
    "outbox": "INSERT INTO outbox (event_id, event_type, topic, key, payload, published_at) VALUES "
              "(gen_random_uuid(), 'posyandu.probe.published.v1', 'posyandu.registry.v1', 'k', '\\x00', now()), "
              "(gen_random_uuid(), 'posyandu.probe.published.v1', 'posyandu.registry.v1', 'k', '\\x01', NULL)",
    "outbox_offsets": "INSERT INTO outbox_offsets VALUES ('posyandu.registry.v1', 0, 1)",
    "inbox": "INSERT INTO inbox (consumer_group, event_id, event_type) "
             "VALUES ('probe', gen_random_uuid(), 'posyandu.region.registered.v1')",
    "idempotency_keys": "INSERT INTO idempotency_keys (principal, scope, key, request_hash, status_code, response, "
                        "headers) VALUES ('kader-1', 'households', 'key-1', 'h', 201, '{\"id\": 1}', '{}')",
    "audit_log": "INSERT INTO audit_log (actor, actor_role, action, resource_type, resource_id, subject_ref, purpose, "
                 "request_id, fields) VALUES ('kader-1', 'kader', 'read', 'household', 'h-1', 'household:h-1', "
                 "'posyandu day', 'req-1', '[\"nik\"]')",
    "dead_letters": "INSERT INTO dead_letters (consumer_group, topic, kafka_partition, kafka_offset, key, payload, "
                    "error) VALUES ('probe', 'posyandu.registry.v1', 0, 7, 'k', '\\x00', 'ValueError: probe')",
}

#: Rows of a service table or two per service.
SERVICE_ROWS = {
    "registry": ["INSERT INTO regions (code, name, level, list_version) VALUES ('9901', 'Uji', 'regency', 'probe')",
                 "INSERT INTO agencies (id, name, level, jurisdiction_code, spm_fields, status, version, created_at, "
                 "updated_at) VALUES (gen_random_uuid(), 'Dinas Uji', 'regency', '9901', '{kesehatan}', 'active', 1, "
                 "now(), now())"],
    "household": ["INSERT INTO known_regions VALUES ('9901012001', 'Uji', 'village', false)",
                  "INSERT INTO households (id, kk_number, village_code, posyandu_id, status, needs_reassignment, "
                  "version, created_by, created_at, updated_at) VALUES (gen_random_uuid(), '9901010101010001', "
                  "'9901012001', gen_random_uuid(), 'active', false, 1, 'kader-1', now(), now())"],
    "referral": ["INSERT INTO known_agencies VALUES (gen_random_uuid(), 'Dinas Uji', 'regency', '9901', "
                 "'{kesehatan}', 'active', 1, now())"],
    "reporting": ["INSERT INTO regions VALUES ('9901', 'Uji', 'regency', '99', false, now())",
                  "INSERT INTO households VALUES (gen_random_uuid(), '9901012001', gen_random_uuid(), 'active', 1, "
                  "now())"],
}

#: Platform tables that no revision after PREVIOUS_HEADS drops, per service: rows go only there.
KEPT = {"reporting": ("inbox", "audit_log", "dead_letters")}


async def migrate(dsn: str, service: str, revision: str) -> None:
    await asyncio.to_thread(upgrade, ROOT / "services" / service, dsn, revision)


async def downgrade(dsn: str, service: str, revision: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(ROOT / "services" / service, dsn), revision)


async def database_at(stack: Stack, service: str, revision: str) -> str:
    dsn = await stack.create_database(f"upgrade_{service}_{uuid.uuid4().hex[:8]}")
    await migrate(dsn, service, revision)
    return dsn


async def head_schema(stack: Stack, service: str) -> dict[str, object]:
    conn = await asyncpg.connect(await stack.migrated_database(service, f"head_{service}_{uuid.uuid4().hex[:8]}"))
    try:
        return await describe(conn)
    finally:
        await conn.close()


@pytest.mark.parametrize("service", sorted(PREVIOUS_HEADS))
async def test_a_database_with_data_upgrades_to_head_without_loss_and_downgrades_back(stack: Stack,
                                                                                      service: str) -> None:
    dsn = await database_at(stack, service, PREVIOUS_HEADS[service])
    conn = await asyncpg.connect(dsn)
    try:
        present = await table_names(conn)
        for table in KEPT.get(service, PLATFORM_TABLES):
            assert table in present, f"{service} has no {table} at {PREVIOUS_HEADS[service]}"
            await conn.execute(PLATFORM_ROWS[table])
        for statement in SERVICE_ROWS[service]:
            await conn.execute(statement)
        schema_before, rows_before = await describe(conn), await all_rows(conn)
    finally:
        await conn.close()
    assert sum(map(len, rows_before.values())) >= len(KEPT.get(service, PLATFORM_TABLES)) + len(SERVICE_ROWS[service])

    await migrate(dsn, service, "head")
    conn = await asyncpg.connect(dsn)
    try:
        upgraded, rows_after = await describe(conn), await all_rows(conn)
    finally:
        await conn.close()
    assert upgraded == await head_schema(stack, service)
    kept = rows_before.keys() & rows_after.keys()  # a table a later revision adds holds what that revision puts in it
    assert {table: rows_after[table] for table in kept} == {table: rows_before[table] for table in kept}
    dropped = rows_before.keys() - rows_after.keys()
    assert all(rows_before[table] == [] for table in dropped), dropped

    await downgrade(dsn, service, PREVIOUS_HEADS[service])
    conn = await asyncpg.connect(dsn)
    try:
        assert await describe(conn) == schema_before
        assert await all_rows(conn) == rows_before
    finally:
        await conn.close()


@pytest.mark.parametrize("table", ["outbox", "outbox_offsets", "idempotency_keys"])
async def test_reporting_refuses_to_drop_a_platform_table_that_holds_a_row(stack: Stack, table: str) -> None:
    dsn = await database_at(stack, "reporting", PREVIOUS_HEADS["reporting"])
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(PLATFORM_ROWS[table])
        rows_before = await all_rows(conn)
        with pytest.raises(RuntimeError, match=f"refusing to drop the platform tables \\['{table}'\\]"):
            await migrate(dsn, "reporting", "head")
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == PREVIOUS_HEADS["reporting"]
        assert await all_rows(conn) == rows_before
    finally:
        await conn.close()
