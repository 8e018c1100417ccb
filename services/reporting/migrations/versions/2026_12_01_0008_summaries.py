"""Summary tables kept by the consumer (issue 13): stocks from a month on, flows of a period, per region level;
the household service's verdicts on each profile version (profile_versions.decided); doses by member.

Revision ID: 1795deaf1059
Revises: 60a68046b880
Create Date: 2026-12-01 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '1795deaf1059'
down_revision: str | None = '60a68046b880'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_doses_member_id", "doses", ["member_id"])
    op.add_column("profile_versions", sa.Column("decided", postgresql.JSONB(), nullable=True))
    op.create_table(
        "summary_stocks",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(10, collation="C"), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("born", sa.Date(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("level", "region", "month", "key", "born", name="pk_summary_stocks"))
    op.create_table(
        "summary_flows",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("span", sa.String(1), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("region", sa.String(10, collation="C"), nullable=False),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("level", "span", "month", "region", "key", name="pk_summary_flows"))


def downgrade() -> None:
    op.drop_table("summary_flows")
    op.drop_table("summary_stocks")
    op.drop_column("profile_versions", "decided")
    op.drop_index("ix_doses_member_id", "doses")
