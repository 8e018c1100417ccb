"""SPM matrix inputs: projections of the agencies' programmes, their monthly realisation and their target figures.

Revision ID: 98d3902e6b38
Revises: 1795deaf1059
Create Date: 2026-12-01 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '98d3902e6b38'
down_revision: str | None = '1795deaf1059'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'spm_programmes',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('agency_id', sa.Uuid(), nullable=False),
        sa.Column('spm_field', sa.String(length=20), nullable=False),
        sa.Column('service_type', sa.String(length=80), nullable=False),
        sa.Column('region_codes', postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('period_end', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('budget', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_spm_programmes')),
    )
    op.create_index(op.f('ix_spm_programmes_agency_id'), 'spm_programmes', ['agency_id'])
    op.create_index(op.f('ix_spm_programmes_service_type'), 'spm_programmes', ['service_type'])
    op.create_table(
        'spm_realisations',
        sa.Column('programme_id', sa.Uuid(), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('agency_id', sa.Uuid(), nullable=False),
        sa.Column('spent', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('outputs', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('programme_id', 'month', name=op.f('pk_spm_realisations')),
    )
    op.create_table(
        'spm_target_figures',
        sa.Column('agency_id', sa.Uuid(), nullable=False),
        sa.Column('region_code', sa.String(length=10), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('service_type', sa.String(length=80), nullable=False),
        sa.Column('target', sa.Integer(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('agency_id', 'region_code', 'year', 'service_type',
                                name=op.f('pk_spm_target_figures')),
    )


def downgrade() -> None:
    op.drop_table('spm_target_figures')
    op.drop_table('spm_realisations')
    op.drop_index(op.f('ix_spm_programmes_service_type'), table_name='spm_programmes')
    op.drop_index(op.f('ix_spm_programmes_agency_id'), table_name='spm_programmes')
    op.drop_table('spm_programmes')
