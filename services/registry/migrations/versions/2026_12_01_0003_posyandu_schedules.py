"""Posyandu opening days: a monthly rule per posyandu and its dated exceptions (extra, moved, cancelled days).

Revision ID: 6b69eda189e0
Revises: 3c1d7e5a9b20
Create Date: 2026-12-01 12:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '6b69eda189e0'
down_revision: str | None = '3c1d7e5a9b20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'posyandu_schedules',
        sa.Column('posyandu_id', sa.Uuid(), nullable=False),
        sa.Column('rule_ordinal', sa.String(length=10), nullable=True),
        sa.Column('rule_weekday', sa.String(length=10), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_by', sa.String(length=200), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['posyandu_id'], ['posyandu.id'], name=op.f('fk_posyandu_schedules_posyandu_id_posyandu')),
        sa.PrimaryKeyConstraint('posyandu_id', name=op.f('pk_posyandu_schedules')),
    )
    op.create_table(
        'schedule_exceptions',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('posyandu_id', sa.Uuid(), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('on_date', sa.Date(), nullable=False),
        sa.Column('to_date', sa.Date(), nullable=True),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['posyandu_id'], ['posyandu_schedules.posyandu_id'],
                                name=op.f('fk_schedule_exceptions_posyandu_id_posyandu_schedules')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_exceptions')),
        sa.UniqueConstraint('posyandu_id', 'on_date', name=op.f('uq_schedule_exceptions_posyandu_id_on_date')),
    )
    op.create_index(op.f('ix_schedule_exceptions_posyandu_id'), 'schedule_exceptions', ['posyandu_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_schedule_exceptions_posyandu_id'), table_name='schedule_exceptions')
    op.drop_table('schedule_exceptions')
    op.drop_table('posyandu_schedules')
