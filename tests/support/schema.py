"""A database's schema and rows as comparable values, read from the catalogue (the migration tests compare them).

`describe` covers what pg_dump --schema-only would show of a table: its columns in order (type, collation,
nullability, default, identity), its constraints and its indexes by their definitions, plus the extensions.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import asyncpg

_COLUMNS = """
SELECT c.relname AS table_name, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS default_value, a.attidentity AS identity,
       a.attgenerated AS generated, coll.collname AS collation
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation coll ON coll.oid = a.attcollation AND a.attcollation <> 0
     AND coll.collname <> 'default'
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""

_CONSTRAINTS = """
SELECT c.relname AS table_name, con.conname AS name, pg_get_constraintdef(con.oid) AS definition
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
WHERE con.contype <> 'n'
ORDER BY 1, 2
"""

_INDEXES = "SELECT tablename AS table_name, indexname AS name, indexdef AS definition FROM pg_indexes " \
           "WHERE schemaname = 'public' ORDER BY 1, 2"


async def describe(conn: asyncpg.Connection, tables: Collection[str] | None = None) -> dict[str, Any]:
    """The schema of the public tables (only these when named): {table: {columns, constraints, indexes}}, and the
    extensions under "extensions" (when no tables are named)."""
    described: dict[str, Any] = {}

    def table(name: str) -> dict[str, Any]:
        return described.setdefault(name, {"columns": [], "constraints": {}, "indexes": {}})

    for row in await conn.fetch(_COLUMNS):
        if tables is None or row["table_name"] in tables:
            table(row["table_name"])["columns"].append(
                {k: row[k] for k in ("name", "type", "not_null", "default_value", "identity", "generated",
                                     "collation")})
    for row in await conn.fetch(_CONSTRAINTS):
        if tables is None or row["table_name"] in tables:
            table(row["table_name"])["constraints"][row["name"]] = row["definition"]
    for row in await conn.fetch(_INDEXES):
        if tables is None or row["table_name"] in tables:
            table(row["table_name"])["indexes"][row["name"]] = row["definition"]
    if tables is None:
        described["extensions"] = sorted(r[0] for r in await conn.fetch("SELECT extname FROM pg_extension"))
    return described


async def table_names(conn: asyncpg.Connection) -> set[str]:
    return {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


async def all_rows(conn: asyncpg.Connection) -> dict[str, list[str]]:
    """Every row of every public table but alembic_version, as JSON text, sorted: {table: rows}."""
    rows: dict[str, list[str]] = {}
    for name in sorted(await table_names(conn) - {"alembic_version"}):
        rows[name] = sorted(r[0] for r in await conn.fetch(f'SELECT row_to_json(t)::text FROM "{name}" AS t'))
    return rows
