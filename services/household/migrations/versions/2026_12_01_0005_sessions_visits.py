"""Opening days at the posyandu: the schedules the registry announced, sessions (one opening day at one posyandu)
and the visits recorded at them.

Revision ID: 3b0c05a8790b
Revises: 5a2c8e4f9b17
Create Date: 2026-12-01 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '3b0c05a8790b'
down_revision: str | None = '5a2c8e4f9b17'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'known_schedules',
        sa.Column('posyandu_id', sa.Uuid(), nullable=False),
        sa.Column('schedule', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('posyandu_id', name=op.f('pk_known_schedules')),
    )
    op.create_table(
        'sessions',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('posyandu_id', sa.Uuid(), nullable=False),
        sa.Column('village_code', sa.String(length=10), nullable=False),
        sa.Column('session_date', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('opened_by', sa.String(length=200), nullable=False),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_by', sa.String(length=200), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sessions')),
        sa.UniqueConstraint('posyandu_id', 'session_date', name=op.f('uq_sessions_posyandu_id_session_date')),
    )
    op.create_table(
        'visits',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('session_id', sa.Uuid(), nullable=False),
        sa.Column('member_id', sa.Uuid(), nullable=False),
        sa.Column('household_id', sa.Uuid(), nullable=False),
        sa.Column('posyandu_id', sa.Uuid(), nullable=False),
        sa.Column('visited_on', sa.Date(), nullable=False),
        sa.Column('life_cycle_group', sa.String(length=12), nullable=False),
        sa.Column('age_months', sa.Integer(), nullable=False),
        sa.Column('pregnant', sa.Boolean(), nullable=False),
        sa.Column('child', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('pregnancy', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('adolescent', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('adult', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column('counselling', sa.ARRAY(sa.Text()), nullable=False),
        sa.Column('measurement_id', sa.Uuid(), nullable=True),
        sa.Column('recorded_by', sa.String(length=200), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['household_id'], ['households.id'], name=op.f('fk_visits_household_id_households')),
        sa.ForeignKeyConstraint(['measurement_id'], ['measurements.id'],
                                name=op.f('fk_visits_measurement_id_measurements')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_visits_member_id_members')),
        sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_visits_session_id_sessions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_visits')),
        sa.UniqueConstraint('session_id', 'member_id', name=op.f('uq_visits_session_id_member_id')),
    )
    op.create_index(op.f('ix_visits_household_id'), 'visits', ['household_id'], unique=False)
    op.create_index('ix_visits_member_date', 'visits', ['member_id', 'visited_on'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_visits_member_date', table_name='visits')
    op.drop_index(op.f('ix_visits_household_id'), table_name='visits')
    op.drop_table('visits')
    op.drop_table('sessions')
    op.drop_table('known_schedules')
