"""The household's access log takes the other services' reads (posyandu.audit.v1): each such audit_log row gets an
origin row naming the reading service, the event (unique) and the reader's organisation.

Revision ID: e1eee71b5f03
Revises: ed810539111d
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'e1eee71b5f03'
down_revision: str | None = 'ed810539111d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'access_log_origins',
        sa.Column('audit_id', sa.BigInteger(), nullable=False),
        sa.Column('event_id', sa.Uuid(), nullable=False),
        sa.Column('service', sa.String(length=50), nullable=False),
        sa.Column('actor_agency_id', sa.Uuid(), nullable=True),
        sa.Column('actor_agency_name', sa.String(length=200), nullable=True),
        sa.Column('actor_posyandu_ids', postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.ForeignKeyConstraint(['audit_id'], ['audit_log.id'], name=op.f('fk_access_log_origins_audit_id_audit_log'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('audit_id', name=op.f('pk_access_log_origins')),
        sa.UniqueConstraint('event_id', name=op.f('uq_access_log_origins_event_id')),
    )


def downgrade() -> None:
    op.drop_table('access_log_origins')
