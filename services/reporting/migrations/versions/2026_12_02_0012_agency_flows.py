"""The agencies' referral flows in a table of their own, and room on the summary tables' pages (issue 13).

The per-agency referral counts (`a|<agency>|<field>|...`, the matrix's and the SPM report's) outnumbered a
region's own flows seven to one (40,000 of 46,000 national rows of a year at 1M members), and a region's read
scanned them all to drop them. They move to `summary_agency_flows`, the same shape, read only by the matrix.
Fillfactor 90 leaves room on each page, so an update of a count stays on its page (a HOT update) and a rebuilt
table, written in key order, keeps each read's rows together.

Revision ID: 5c1e0a7d2b94
Revises: be95f9bb853b
Create Date: 2026-12-02 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5c1e0a7d2b94'
down_revision: str | None = 'be95f9bb853b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("summary_stocks", "summary_flows", "summary_answers", "summary_agency_flows")


def upgrade() -> None:
    op.create_table(
        "summary_agency_flows",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("span", sa.String(1), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("region", sa.String(10, collation="C"), nullable=False),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("level", "span", "month", "region", "key", name="pk_summary_agency_flows"))
    op.execute("INSERT INTO summary_agency_flows SELECT level, span, month, region, key, n FROM summary_flows "
               "WHERE key LIKE 'a|%' ORDER BY level, span, month, region, key")
    op.execute("DELETE FROM summary_flows WHERE key LIKE 'a|%'")
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 90)")


def downgrade() -> None:
    for table in _TABLES[:3]:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    op.execute("INSERT INTO summary_flows SELECT level, span, month, region, key, n FROM summary_agency_flows")
    op.drop_table("summary_agency_flows")
