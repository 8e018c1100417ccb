"""Life events: a row per death, move, departure or closing with its date; why a need was resolved.

Revision ID: 4e77cdd37968
Revises: e1eee71b5f03
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '4e77cdd37968'
down_revision: str | None = 'e1eee71b5f03'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'life_events',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('household_id', sa.Uuid(), nullable=False),
        sa.Column('member_id', sa.Uuid(), nullable=True),
        sa.Column('occurred_on', sa.Date(), nullable=False),
        sa.Column('reason', sa.String(length=20), nullable=True),
        sa.Column('to_household_id', sa.Uuid(), nullable=True),
        sa.Column('destination_region_code', sa.String(length=10), nullable=True),
        sa.Column('cause_category', sa.String(length=30), nullable=True),
        sa.Column('recorded_by', sa.String(length=200), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['household_id'], ['households.id'], name=op.f('fk_life_events_household_id_households')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_life_events_member_id_members')),
        sa.ForeignKeyConstraint(['to_household_id'], ['households.id'],
                                name=op.f('fk_life_events_to_household_id_households')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_life_events')))
    op.create_index(op.f('ix_life_events_household_id'), 'life_events', ['household_id'], unique=False)
    op.create_index(op.f('ix_life_events_member_id'), 'life_events', ['member_id'], unique=False)
    op.add_column('needs', sa.Column('resolution', sa.String(length=20), nullable=True))


def downgrade() -> None:
    op.drop_column('needs', 'resolution')
    op.drop_index(op.f('ix_life_events_member_id'), table_name='life_events')
    op.drop_index(op.f('ix_life_events_household_id'), table_name='life_events')
    op.drop_table('life_events')
