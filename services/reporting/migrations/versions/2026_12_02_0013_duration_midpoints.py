"""Duration buckets of 2% that stand for their midpoint, one row each (issue 13).

The percentiles' histograms kept 1% buckets, each as two rows (`rh|k`, its count, and `rh.ms|k`, the sum of its
milliseconds, for its mean); they were nine rows in ten of a province's flows. A bucket is now 2% wide, one row
(its count), and stands for its geometric midpoint: the same stated error (under 1%), a quarter of the rows
(contributions.bucket_of). The rows kept move to the bucket of their mean, which is within the old bucket's 1%
of each of its durations; `python -m services.reporting rebuild-summaries` recounts them from the projections.

Revision ID: 9e4b2f61c8d3
Revises: 5c1e0a7d2b94
Create Date: 2026-12-02 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '9e4b2f61c8d3'
down_revision: str | None = '5c1e0a7d2b94'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("summary_flows", "summary_agency_flows")
_COLUMNS = "level, span, month, region"


def upgrade() -> None:
    for table in _TABLES:
        op.execute(rf"""
WITH old AS (DELETE FROM {table} WHERE key ~ '\|[rc]h(\.ms)?\|-?[0-9]+$' RETURNING {_COLUMNS}, key, n),
parts AS (
    SELECT {_COLUMNS}, regexp_replace(key, '(\.ms)?\|-?[0-9]+$', '') AS hist,
           (regexp_match(key, '\|(-?[0-9]+)$'))[1] AS bucket, key ~ '\.ms\|-?[0-9]+$' AS is_ms, n FROM old),
pairs AS (
    SELECT {_COLUMNS}, hist, coalesce(sum(n) FILTER (WHERE NOT is_ms), 0) AS n,
           CAST(coalesce(sum(n) FILTER (WHERE is_ms), 0) AS numeric) / 3600000 AS hours
    FROM parts GROUP BY {_COLUMNS}, hist, bucket),
moved AS (
    SELECT {_COLUMNS}, hist, n,
           CASE WHEN abs(hours / n) < 0.01 THEN 0
                ELSE sign(hours) * (1 + floor(ln(abs(hours / n) / 0.01) / ln(1.02))) END AS k
    FROM pairs WHERE n <> 0)
INSERT INTO {table} ({_COLUMNS}, key, n)
SELECT {_COLUMNS}, hist || '|' || CAST(k AS bigint), sum(n) FROM moved
GROUP BY {_COLUMNS}, hist, k HAVING sum(n) <> 0""")


def downgrade() -> None:
    # Back to 1% buckets with their sums: each bucket's durations taken at its midpoint.
    midpoint = ("CASE WHEN bucket = 0 THEN 0 ELSE sign(bucket) * 0.01 * power(1.02, abs(bucket) - 0.5) END")
    for table in _TABLES:
        op.execute(rf"""
WITH old AS (DELETE FROM {table} WHERE key ~ '\|[rc]h\|-?[0-9]+$' RETURNING {_COLUMNS}, key, n),
parts AS (SELECT {_COLUMNS}, regexp_replace(key, '\|-?[0-9]+$', '') AS hist,
                 CAST((regexp_match(key, '\|(-?[0-9]+)$'))[1] AS int) AS bucket, n FROM old),
valued AS (SELECT {_COLUMNS}, hist, n, {midpoint} AS hours FROM parts),
moved AS (SELECT {_COLUMNS}, hist, n, hours,
                 CASE WHEN abs(hours) < 0.01 THEN 0
                      ELSE sign(hours) * (1 + floor(ln(abs(hours) / 0.01) / ln(1.01))) END AS k FROM valued)
INSERT INTO {table} ({_COLUMNS}, key, n)
SELECT {_COLUMNS}, key, sum(n) FROM (
    SELECT {_COLUMNS}, hist || '|' || CAST(k AS bigint) AS key, n FROM moved
    UNION ALL
    SELECT {_COLUMNS}, hist || '.ms|' || CAST(k AS bigint), round(n * hours * 3600000) FROM moved) r
GROUP BY {_COLUMNS}, key HAVING sum(n) <> 0""")
