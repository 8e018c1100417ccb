"""Answer rows (issue 13): the stocks summed per age band on the held reference days, and the days held.

The tables start empty: on an upgrade the existing summaries give their answers at the first daily roll (the
reporting service's background job at start-up, or `python -m services.reporting roll-answers`); until then
every read falls back to the birth-date histogram, as before.

Revision ID: be95f9bb853b
Revises: 9ee22d641792
Create Date: 2026-12-01 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'be95f9bb853b'
down_revision: str | None = '9ee22d641792'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "summary_answers",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("region", sa.String(10, collation="C"), nullable=False),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("band", sa.String(20), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("level", "as_of", "region", "key", "band", name="pk_summary_answers"))
    op.create_table(
        "summary_answer_days",
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("derived_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("as_of", name="pk_summary_answer_days"))


def downgrade() -> None:
    op.drop_table("summary_answer_days")
    op.drop_table("summary_answers")
