"""The acting agency on history entries and notes: an escalated referral is acted on by two agencies (the regency
agency and the province agency of the field), and both sides must see which one did what.

Revision ID: 3e9b5c71d2f4
Revises: 3e8a51c7d2f6
Create Date: 2026-12-01 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '3e9b5c71d2f4'
down_revision: str | None = '3e8a51c7d2f6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('referral_transitions', sa.Column('actor_agency_id', sa.Uuid(), nullable=True))
    op.add_column('referral_notes', sa.Column('author_agency_id', sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column('referral_notes', 'author_agency_id')
    op.drop_column('referral_transitions', 'actor_agency_id')
