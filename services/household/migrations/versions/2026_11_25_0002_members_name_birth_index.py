"""members: index by name and birth date for the duplicate check

Revision ID: 6f7e32f0f3c5
Revises: f0e8ece5180c
Create Date: 2026-11-25 14:43:05.423078
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # noqa: F401  (autogenerate may name SQLModel's types)
from alembic import op

revision: str = '6f7e32f0f3c5'
down_revision: str | None = 'f0e8ece5180c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f('ix_members_name'), table_name='members')
    op.create_index('ix_members_name_birth', 'members', [sa.literal_column('lower(name)'), 'birth_date'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_members_name_birth', table_name='members')
    op.create_index(op.f('ix_members_name'), 'members', [sa.literal_column('lower(name::text)')], unique=False)
