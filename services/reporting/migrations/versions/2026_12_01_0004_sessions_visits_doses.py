"""SKDN and life-cycle coverage: projections of sessions, visits and vaccine doses.

Revision ID: 0cb21dc528e7
Revises: e91f2a6b7c58
Create Date: 2026-12-01 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0cb21dc528e7'
down_revision: str | None = 'e91f2a6b7c58'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sessions',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('posyandu_id', sa.Uuid(), nullable=False),
        sa.Column('village_code', sa.String(length=10), nullable=False),
        sa.Column('session_date', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sessions')),
    )
    op.create_index('ix_sessions_village_code', 'sessions', ['village_code', 'session_date'],
                    postgresql_ops={'village_code': 'varchar_pattern_ops'})
    op.create_table(
        'visits',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('household_id', sa.Uuid(), nullable=False),
        sa.Column('member_id', sa.Uuid(), nullable=False),
        sa.Column('session_id', sa.Uuid(), nullable=False),
        sa.Column('visited_on', sa.Date(), nullable=False),
        sa.Column('life_cycle_group', sa.String(length=12), nullable=False),
        sa.Column('pregnant', sa.Boolean(), nullable=False),
        sa.Column('kms_book_held', sa.Boolean(), nullable=True),
        sa.Column('weighed', sa.Boolean(), nullable=False),
        sa.Column('kms_signal', sa.String(length=5), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_visits')),
    )
    op.create_index('ix_visits_household_visited_on', 'visits', ['household_id', 'visited_on'])
    op.create_index(op.f('ix_visits_member_id'), 'visits', ['member_id'])
    op.create_table(
        'doses',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('household_id', sa.Uuid(), nullable=False),
        sa.Column('member_id', sa.Uuid(), nullable=False),
        sa.Column('vaccine', sa.String(length=30), nullable=False),
        sa.Column('dose_number', sa.Integer(), nullable=False),
        sa.Column('given_on', sa.Date(), nullable=False),
        sa.Column('voided', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_doses')),
    )
    op.create_index('ix_doses_household_vaccine', 'doses', ['household_id', 'vaccine'])


def downgrade() -> None:
    op.drop_table('doses')
    op.drop_table('visits')
    op.drop_table('sessions')
