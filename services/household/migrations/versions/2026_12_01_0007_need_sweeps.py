"""The daily need sweep: a row per completed sweep (where the next one starts), and the birth-date index it selects
members by.

Revision ID: ed810539111d
Revises: f3de4e31faa5
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'ed810539111d'
down_revision: str | None = 'f3de4e31faa5'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'need_sweeps',
        sa.Column('swept_on', sa.Date(), nullable=False),
        sa.Column('since', sa.Date(), nullable=False),
        sa.Column('households', sa.Integer(), nullable=False),
        sa.Column('detected', sa.Integer(), nullable=False),
        sa.Column('resolved', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('swept_on', name=op.f('pk_need_sweeps')),
    )
    op.create_index('ix_members_birth_date', 'members', ['birth_date'], unique=False,
                    postgresql_where=sa.text("status = 'active'"))


def downgrade() -> None:
    op.drop_index('ix_members_birth_date', table_name='members', postgresql_where=sa.text("status = 'active'"))
    op.drop_table('need_sweeps')
