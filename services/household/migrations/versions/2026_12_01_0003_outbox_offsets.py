"""Outbox bookkeeping for a broker that lost its data: the end offset the broker acknowledged per topic partition
(outbox_offsets), and an index by topic and send time for the purge of sent rows past their topic's retention.

Revision ID: 8d4a1f6c2e71
Revises: 6f7e32f0f3c5
Create Date: 2026-12-01 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '8d4a1f6c2e71'
down_revision: str | None = '6f7e32f0f3c5'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbox_offsets',
    sa.Column('topic', sa.Text(), nullable=False),
    sa.Column('kafka_partition', sa.Integer(), nullable=False),
    sa.Column('end_offset', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('topic', 'kafka_partition', name=op.f('pk_outbox_offsets'))
    )
    op.create_index('ix_outbox_sent', 'outbox', ['topic', 'published_at'], unique=False,
                    postgresql_where=sa.text('published_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_outbox_sent', table_name='outbox', postgresql_where=sa.text('published_at IS NOT NULL'))
    op.drop_table('outbox_offsets')
