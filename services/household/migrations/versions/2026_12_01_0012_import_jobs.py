"""Import jobs: a bulk import is a job committed chunk by chunk, resumable after a crash (issue 12).

Revision ID: 8911030bed84
Revises: 1e5598845ecc
Create Date: 2026-12-01 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '8911030bed84'
down_revision: str | None = '1e5598845ecc'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'import_jobs',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('file_name', sa.String(length=255), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('posyandu_ids', postgresql.ARRAY(sa.Uuid()), nullable=True),
        sa.Column('started_by', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('failure', sa.String(length=500), nullable=True),
        sa.Column('rows_total', sa.Integer(), nullable=True),
        sa.Column('rows_done', sa.Integer(), nullable=False),
        sa.Column('households_imported', sa.Integer(), nullable=False),
        sa.Column('members_imported', sa.Integer(), nullable=False),
        sa.Column('households_rejected', sa.Integer(), nullable=False),
        sa.Column('rows_rejected', sa.Integer(), nullable=False),
        sa.Column('error_count', sa.Integer(), nullable=False),
        sa.Column('errors', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('items_done', sa.Integer(), nullable=False),
        sa.Column('last_row', sa.Integer(), nullable=False),
        sa.Column('chunks_committed', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('run_started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('run_rows_from', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs')))


def downgrade() -> None:
    op.drop_table('import_jobs')
