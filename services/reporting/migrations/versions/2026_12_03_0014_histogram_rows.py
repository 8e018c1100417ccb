"""A duration histogram in one row (issue 13).

The percentiles' histograms kept one flow row per bucket (`<histogram>|<k>`): at 1M members they were 7,582 of a
province's 8,560 flow rows by regency and 7,582 of the 8,134 agency flow rows the matrix reads, and their number
grew with the data as the durations spread over more buckets. Each histogram is now one row of `summary_histograms`, the buckets in
ascending order and their counts in two arrays (the regions' and the agencies' histograms, keys `a|...`, alike);
the bucket rows move there from both flow tables and back on a downgrade.

Revision ID: 3d7c5a9e1f20
Revises: 9e4b2f61c8d3
Create Date: 2026-12-03 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = '3d7c5a9e1f20'
down_revision: str | None = '9e4b2f61c8d3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "level, span, month, region"
_BUCKET = r"^(.+\|[rc]h)\|(-?[0-9]+)$"  # contributions.bucket_key


def upgrade() -> None:
    op.create_table(
        "summary_histograms",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("span", sa.String(1), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("region", sa.String(10, collation="C"), nullable=False),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("buckets", ARRAY(sa.Integer()), nullable=False),
        sa.Column("counts", ARRAY(sa.BigInteger()), nullable=False),
        sa.PrimaryKeyConstraint("level", "span", "month", "region", "key", name="pk_summary_histograms"))
    op.execute("ALTER TABLE summary_histograms SET (fillfactor = 90)")
    for table in ("summary_flows", "summary_agency_flows"):
        op.execute(rf"""
WITH old AS (DELETE FROM {table} WHERE key ~ '{_BUCKET}' RETURNING {_COLUMNS}, key, n),
parts AS (SELECT {_COLUMNS}, m[1] AS hist, CAST(m[2] AS int) AS bucket, n
          FROM (SELECT {_COLUMNS}, regexp_match(key, '{_BUCKET}') AS m, n FROM old) AS o WHERE n <> 0)
INSERT INTO summary_histograms ({_COLUMNS}, key, buckets, counts)
SELECT {_COLUMNS}, hist, array_agg(bucket ORDER BY bucket), array_agg(n ORDER BY bucket) FROM parts
GROUP BY {_COLUMNS}, hist ORDER BY {_COLUMNS}, hist""")


def downgrade() -> None:
    for table, agency in (("summary_flows", False), ("summary_agency_flows", True)):
        op.execute(f"""
INSERT INTO {table} ({_COLUMNS}, key, n)
SELECT {_COLUMNS}, key || '|' || u.bucket, u.n FROM summary_histograms, unnest(buckets, counts) AS u (bucket, n)
WHERE {"" if agency else "NOT "}key LIKE 'a|%'""")
    op.drop_table("summary_histograms")
