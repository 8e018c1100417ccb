"""The versioned upsert of the projections: insert a row, or update it only if the incoming version is newer.

Every event that carries an aggregate's whole state carries its version, and a consumer may see an older event
late, or one twice (at-least-once delivery): the newer version wins, whatever the order, so any order converges.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

Row = Mapping[str, Any]


def _statement(table: sa.Table, columns: Collection[str], *, key: Sequence[str], version: str,
               insert_only: Collection[str], earliest: Collection[str],
               update: Mapping[str, Any] | None) -> Any:
    statement = insert(table)
    newer = table.c[version] < statement.excluded[version]
    written = [name for name in columns if name not in key and name not in insert_only and name not in earliest]
    if not earliest:
        assignments: dict[str, Any] = {name: statement.excluded[name] for name in written}
        condition: Any = newer
    else:
        # Columns that keep the earliest value seen (the time a projection first saw the row) change whichever
        # version comes: the versioned columns only with a newer one.
        assignments = {name: sa.case((newer, statement.excluded[name]), else_=table.c[name]) for name in written}
        assignments |= {name: sa.func.least(table.c[name], statement.excluded[name]) for name in earliest}
        condition = sa.or_(newer, *(table.c[name] > statement.excluded[name] for name in earliest))
    assignments |= dict(update or {})
    return statement.on_conflict_do_update(index_elements=list(key), set_=assignments, where=condition)


async def upsert_newer(session: AsyncSession, table: sa.Table, row: Row, *, key: Sequence[str] = ("id",),
                       version: str = "version", insert_only: Collection[str] = (),
                       update: Mapping[str, Any] | None = None) -> bool:
    """Insert the row, or update the row of its key if the incoming `version` (a column of `row`) is newer; whether
    it was written (False: an older or repeated version, nothing changed). `insert_only` columns are written by the
    insert only (when it was first seen, say); `update` gives some columns another expression for the update."""
    statement = _statement(table, row, key=key, version=version, insert_only=insert_only, earliest=(), update=update)
    result = await session.execute(statement.values(**row).returning(*(table.c[name] for name in key)))
    return result.first() is not None


async def upsert_newer_many(session: AsyncSession, table: sa.Table, rows: Sequence[Row], *,
                            key: Sequence[str] = ("id",), version: str = "version",
                            insert_only: Collection[str] = (), earliest: Collection[str] = ()
                            ) -> dict[tuple[Any, ...], Row]:
    """`upsert_newer` for a batch in one statement. Several rows of one key: the newest version's values (the later
    row on a tie), as the rows applied one by one would leave it (one statement may not touch a row twice).
    `earliest` columns keep the smallest value seen, whichever version brought it. Returns the rows written (the
    newest of their key), by key."""
    if not rows:
        return {}
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        ident = tuple(row[name] for name in key)
        kept = merged.get(ident)
        if kept is None:
            merged[ident] = dict(row)
            continue
        newest = dict(row if row[version] >= kept[version] else kept)
        newest |= {name: min(kept[name], row[name]) for name in earliest}
        merged[ident] = newest
    statement = _statement(table, rows[0], key=key, version=version, insert_only=insert_only, earliest=earliest,
                           update=None)
    result = await session.execute(statement.returning(*(table.c[name] for name in key)), list(merged.values()))
    return {tuple(written): merged[tuple(written)] for written in result.all()}
