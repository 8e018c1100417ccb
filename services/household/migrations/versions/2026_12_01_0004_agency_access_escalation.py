"""Agency access follows escalation: the province agency a referral escalated to reads the household too; the
referral's version orders the rows, so a late, older event cannot undo a newer one.

Revision ID: 5a2c8e4f9b17
Revises: 8d4a1f6c2e71
Create Date: 2026-12-01 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5a2c8e4f9b17'
down_revision: str | None = '8d4a1f6c2e71'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('agency_access', sa.Column('escalated_to_agency_id', sa.Uuid(), nullable=True))
    op.add_column('agency_access', sa.Column('version', sa.Integer(), nullable=False, server_default='0'))
    op.create_index(op.f('ix_agency_access_escalated_to_agency_id'), 'agency_access', ['escalated_to_agency_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_agency_access_escalated_to_agency_id'), table_name='agency_access')
    op.drop_column('agency_access', 'version')
    op.drop_column('agency_access', 'escalated_to_agency_id')
