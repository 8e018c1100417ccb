"""The duration buckets of the percentiles: every duration within the stated error of the value its bucket stands
for; and reporting migration 0013, which takes a database with 1% buckets (a count row and a milliseconds row each)
to 2% buckets of one row, each old bucket moved to the new bucket of its mean, every other row as it was, and back;
and migration 0014, which moves those bucket rows into one histogram row each (summary_histograms), and back."""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import date

import asyncpg
from alembic import command

from conftest import ROOT, Stack
from services.reporting.summaries.contributions import bucket_of, bucket_value
from shared.migrate import alembic_config, upgrade

BEFORE = "5c1e0a7d2b94"  # 0012, the last revision with 1% buckets and their sums
MIDPOINTS = "9e4b2f61c8d3"  # 0013, 2% buckets, one flow row each
HISTOGRAM_ROWS = "3d7c5a9e1f20"  # 0014, a histogram in one row
MONTH = date(2026, 3, 1)


def test_every_duration_is_within_one_percent_of_its_buckets_value() -> None:
    # Log-spaced from 36 seconds to 10,000 hours, both signs, and each bucket's edges; under 36 seconds: 0.
    hours = [sign * 0.01 * 1.0007 ** i for i in range(23_000) for sign in (1, -1)]
    hours += [0.01 * 1.02 ** k * (1 + e) for k in range(600) for e in (-1e-9, 1e-9)]
    for h in hours:
        error = abs(bucket_value(bucket_of(h)) - h)
        assert error < 0.01 * abs(h) if abs(h) >= 0.01 else error < 0.01, h
    assert [bucket_value(bucket_of(h)) for h in (0.0, 0.009, -0.009)] == [0.0, 0.0, 0.0]
    assert math.isclose(bucket_value(bucket_of(25.0)), 25.0, rel_tol=0.01)


async def test_old_buckets_move_to_the_bucket_of_their_mean(stack: Stack) -> None:
    dsn = await stack.create_database(f"buckets_{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(upgrade, ROOT / "services" / "reporting", dsn, BEFORE)
    # Two old 1% buckets whose means fall in one new 2% bucket, one in another, a bucket under 36 seconds, a
    # negative one, and rows that are no buckets (a status, a category named like a bucket's kind).
    hours = {"ref|sosial|rh|300": (2, 2 * 0.01 * 1.01 ** 299.5), "ref|sosial|rh|301": (3, 3 * 0.01 * 1.01 ** 300.2),
             "ref|sosial|ch|500": (4, 4 * 0.01 * 1.01 ** 499.5), "ref|sosial|rh|0": (5, 5 * 0.004),
             "ref|sosial|ch|-10": (1, -0.01 * 1.01 ** 9.5)}
    others = {"ref|sosial|created": 15, "ref|sosial|status|completed": 4, "ref|sosial|served|rh": 2}
    rows = [(key, n) for key, (n, _) in hours.items()]
    rows += [(key.replace("h|", "h.ms|"), round(total * 3_600_000)) for key, (_, total) in hours.items()]
    rows += list(others.items())
    agency = f"a|{uuid.uuid4()}|sosial|"
    conn = await asyncpg.connect(dsn)
    try:
        for table, prefix in (("summary_flows", ""), ("summary_agency_flows", agency)):
            await conn.executemany(f"INSERT INTO {table} (level, span, month, region, key, n) "
                                   "VALUES (2, 'M', $1, '81', $2, $3)",
                                   [(MONTH, prefix + key.removeprefix("ref|sosial|") if prefix else key, n)
                                    for key, n in rows])
        await asyncio.to_thread(upgrade, ROOT / "services" / "reporting", dsn, MIDPOINTS)
        expected: dict[str, int] = dict(others)
        for key, (n, total) in hours.items():
            name = key.rsplit("|", 1)[0]
            new = f"{name}|{bucket_of(total / n)}"
            expected[new] = expected.get(new, 0) + n
        assert len({k for k in expected if k.startswith("ref|sosial|rh|")}) == 2  # 300 and 301 now share one
        for table, prefix in (("summary_flows", ""), ("summary_agency_flows", agency)):
            found = {r["key"]: r["n"] for r in await conn.fetch(f"SELECT key, n FROM {table}")}
            assert found == {(prefix + k.removeprefix("ref|sosial|") if prefix else k): n
                             for k, n in expected.items()}, table
        # Back to 1% buckets with their sums, each new bucket's durations taken at its midpoint.
        await asyncio.to_thread(command.downgrade, alembic_config(ROOT / "services" / "reporting", dsn), BEFORE)
        back: dict[str, int] = dict(others)
        for key, n in expected.items():
            if key not in others:
                name, _, k = key.rpartition("|")
                hours_each = bucket_value(int(k))
                old = 0 if abs(hours_each) < 0.01 else int(math.copysign(
                    1 + math.floor(math.log(abs(hours_each) / 0.01) / math.log(1.01)), hours_each))
                for suffix, value in (("", n), (".ms", round(n * hours_each * 3_600_000))):
                    back[f"{name}{suffix}|{old}"] = back.get(f"{name}{suffix}|{old}", 0) + value
        back = {k: n for k, n in back.items() if n}
        for table, prefix in (("summary_flows", ""), ("summary_agency_flows", agency)):
            found = {r["key"]: r["n"] for r in await conn.fetch(f"SELECT key, n FROM {table}")}
            assert found == {(prefix + k.removeprefix("ref|sosial|") if prefix else k): n
                             for k, n in back.items()}, table
    finally:
        await conn.close()


async def test_bucket_rows_move_into_one_histogram_row_and_back(stack: Stack) -> None:
    dsn = await stack.create_database(f"histograms_{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(upgrade, ROOT / "services" / "reporting", dsn, MIDPOINTS)
    agency = f"a|{uuid.uuid4()}|sosial"
    # Buckets of two histograms (one with a negative and a zero bucket) in two regions and periods, and rows that
    # are no buckets (a category named like a bucket's kind, a status).
    buckets = [("ref|sosial|rh", "81", "M", {-3: 1, 0: 2, 17: 5, 300: 1}), ("ref|sosial|ch", "81", "M", {40: 3}),
               ("ref|sosial|rh", "8171", "Y", {12: 4, 13: 1})]
    others = [("81", "M", "ref|sosial|created", 12), ("81", "M", "ref|sosial|served|rh", 2),
              ("8171", "Y", "ref|sosial|status|completed", 4)]
    rows = {table: [(region, span, (prefix + key.removeprefix("ref|sosial") if prefix else key) + f"|{k}", n)
                    for key, region, span, histogram in buckets for k, n in histogram.items()]
            + [(region, span, prefix + key.removeprefix("ref|sosial") if prefix else key, n)
               for region, span, key, n in others]
            for table, prefix in (("summary_flows", ""), ("summary_agency_flows", agency))}
    conn = await asyncpg.connect(dsn)
    try:
        for table, values in rows.items():
            await conn.executemany(f"INSERT INTO {table} (level, span, month, region, key, n) "
                                   "VALUES (length($1), $2, $3, $1, $4, $5)",
                                   [(region, span, MONTH, key, n) for region, span, key, n in values])
        await asyncio.to_thread(upgrade, ROOT / "services" / "reporting", dsn, HISTOGRAM_ROWS)
        for table, prefix in (("summary_flows", ""), ("summary_agency_flows", agency)):
            kept = {(r["region"], r["span"], r["key"], r["n"]) for r in await conn.fetch(
                f"SELECT region, span, key, n FROM {table}")}
            assert kept == {(region, span, prefix + key.removeprefix("ref|sosial") if prefix else key, n)
                            for region, span, key, n in others}, table
        found = {(r["region"], r["span"], r["key"]): (r["buckets"], r["counts"]) for r in await conn.fetch(
            "SELECT region, span, key, buckets, counts FROM summary_histograms")}
        assert found == {(region, span, prefix + key.removeprefix("ref|sosial") if prefix else key):
                         (sorted(histogram), [histogram[k] for k in sorted(histogram)])
                         for key, region, span, histogram in buckets for prefix in ("", agency)}
        # Back to one row per bucket, each in the flow table it came from.
        await asyncio.to_thread(command.downgrade, alembic_config(ROOT / "services" / "reporting", dsn), MIDPOINTS)
        for table, values in rows.items():
            back = {(r["region"], r["span"], r["key"], r["n"]) for r in await conn.fetch(
                f"SELECT region, span, key, n FROM {table}")}
            assert back == set(values), table
    finally:
        await conn.close()
