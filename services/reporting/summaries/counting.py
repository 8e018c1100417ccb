"""Adding counts to a summary table, the one way the consumer and the roll do it.

A summary table is keyed by its `keys` and holds a count `n`. A change is added with one
`INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE SET n = n + excluded.n`, which returns the rows it
brought to zero, and one delete drops those: so the rows are the same whatever the batches were, and a row at zero
never stays behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

Key = TypeVar("Key", bound=tuple[Any, ...])

#: The PostgreSQL type of each key column of the summary tables.
_TYPES = {"level": "int", "region": "text", "month": "date", "key": "text", "born": "date", "span": "text",
          "as_of": "date", "band": "text"}


def _arrays(names: tuple[str, ...], rows: list[tuple[object, ...]]) -> dict[str, list[object]]:
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


@dataclass(frozen=True)
class SummaryTable:
    """A summary table keyed by `keys` (its primary key's columns), and its two statements: `upsert` adds a change
    and returns the keys of the rows it left empty, `drop` deletes those."""

    name: str
    keys: tuple[str, ...]
    upsert: sa.TextClause = field(init=False, repr=False)
    drop: sa.TextClause = field(init=False, repr=False)

    #: A row with nothing left to count (of the table `t`).
    empty: ClassVar[str]

    def __post_init__(self) -> None:
        columns = ", ".join(self.keys)
        arrays = ", ".join(f"CAST(:{k} AS {_TYPES[k]}[])" for k in self.keys)
        object.__setattr__(self, "upsert", sa.text(self.upsert_sql(columns, arrays)))
        object.__setattr__(self, "drop", sa.text(
            f"DELETE FROM {self.name} t USING unnest({arrays}) AS z ({columns}) WHERE {self.empty} AND "
            + " AND ".join(f"t.{k} = z.{k}" for k in self.keys)))

    def upsert_sql(self, columns: str, arrays: str) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class CountTable(SummaryTable):
    """A summary table with a count `n`."""

    empty = "t.n = 0"

    def upsert_sql(self, columns: str, arrays: str) -> str:
        return (f"WITH added AS (INSERT INTO {self.name} ({columns}, n) "
                f"SELECT * FROM unnest({arrays}, CAST(:n AS bigint[])) "
                f"ON CONFLICT ({columns}) DO UPDATE SET n = {self.name}.n + excluded.n RETURNING {columns}, n) "
                f"SELECT {columns} FROM added WHERE n = 0")


@dataclass(frozen=True)
class HistogramTable(SummaryTable):
    """A summary table with a histogram in two arrays, `buckets` (ascending) and their `counts` (none zero): a
    change (bucket -> change, per key) is merged into the rows with one upsert, which adds bucket by bucket and
    drops the buckets brought to zero, and a delete drops the histograms left empty; so, as with the counts, the
    rows are the same whatever the batches were."""

    empty = "cardinality(t.buckets) = 0"

    def upsert_sql(self, columns: str, arrays: str) -> str:
        return (f"WITH added AS (INSERT INTO {self.name} ({columns}, buckets, counts) "
                f"SELECT {columns}, array_agg(bucket ORDER BY bucket), array_agg(n ORDER BY bucket) "
                f"FROM unnest({arrays}, CAST(:bucket AS int[]), CAST(:n AS bigint[])) AS c ({columns}, bucket, n) "
                f"GROUP BY {columns} "
                f"ON CONFLICT ({columns}) DO UPDATE SET (buckets, counts) = ("
                "SELECT coalesce(array_agg(b ORDER BY b), '{}'), coalesce(array_agg(n ORDER BY b), '{}') FROM ("
                "SELECT b, CAST(sum(n) AS bigint) AS n FROM ("
                f"SELECT * FROM unnest({self.name}.buckets, {self.name}.counts) "
                "UNION ALL SELECT * FROM unnest(excluded.buckets, excluded.counts)) AS p (b, n) "
                "GROUP BY b HAVING sum(n) <> 0) AS s) "
                f"RETURNING {columns}, cardinality(buckets) AS size) "
                f"SELECT {columns} FROM added WHERE size = 0")


async def add_counts(session: AsyncSession, table: CountTable, counts: Mapping[Key, int]) -> None:
    """Adds `counts` (key values in `table.keys` order -> n) to the table; zero changes are skipped."""
    rows = [(*key, n) for key, n in counts.items() if n]
    if not rows:
        return
    if zeros := [tuple(row) for row in await session.execute(table.upsert, _arrays((*table.keys, "n"), rows))]:
        await session.execute(table.drop, _arrays(table.keys, zeros))


async def add_histograms(session: AsyncSession, table: HistogramTable,
                         changes: Mapping[Key, Mapping[int, int]]) -> None:
    """Merges `changes` (key values in `table.keys` order -> bucket -> change) into the table's histograms."""
    rows = [(*key, bucket, n) for key, histogram in changes.items() for bucket, n in histogram.items() if n]
    if not rows:
        return
    empty = [tuple(row) for row in await session.execute(table.upsert, _arrays((*table.keys, "bucket", "n"), rows))]
    if empty:
        await session.execute(table.drop, _arrays(table.keys, empty))
