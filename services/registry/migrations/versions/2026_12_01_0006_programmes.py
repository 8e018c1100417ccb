"""Agencies get a kind (`opd` or `partner`); programmes with their monthly realisation and history, and the
agencies' own SPM target figures (issue 15).

Revision ID: 8684c9ad180c
Revises: 138de23d3e08
Create Date: 2026-12-01 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '8684c9ad180c'
down_revision: str | None = '138de23d3e08'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('agencies', sa.Column('kind', sa.String(length=10), nullable=False, server_default='opd'))
    op.create_table(
        'programmes',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('agency_id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('spm_field', sa.String(length=20), nullable=False),
        sa.Column('service_type', sa.String(length=80), nullable=False),
        sa.Column('region_codes', postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('period_end', sa.Date(), nullable=False),
        sa.Column('budget', postgresql.JSONB(), nullable=False),
        sa.Column('outputs', postgresql.JSONB(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_programmes_agency_id_agencies')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_programmes')),
    )
    op.create_index(op.f('ix_programmes_agency_id'), 'programmes', ['agency_id'], unique=False)
    op.create_index(op.f('ix_programmes_spm_field'), 'programmes', ['spm_field'], unique=False)
    op.create_table(
        'programme_realisations',
        sa.Column('programme_id', sa.Uuid(), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('outputs', postgresql.JSONB(), nullable=False),
        sa.Column('spent', postgresql.JSONB(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('reported_by', sa.String(length=200), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'],
                                name=op.f('fk_programme_realisations_programme_id_programmes')),
        sa.PrimaryKeyConstraint('programme_id', 'month', name=op.f('pk_programme_realisations')),
    )
    op.create_table(
        'programme_history',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('programme_id', sa.Uuid(), nullable=False),
        sa.Column('action', sa.String(length=10), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('state', postgresql.JSONB(), nullable=False),
        sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'],
                                name=op.f('fk_programme_history_programme_id_programmes')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_programme_history')),
    )
    op.create_index(op.f('ix_programme_history_programme_id'), 'programme_history', ['programme_id'], unique=False)
    op.create_table(
        'spm_target_figures',
        sa.Column('agency_id', sa.Uuid(), nullable=False),
        sa.Column('region_code', sa.String(length=10), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('service_type', sa.String(length=80), nullable=False),
        sa.Column('target', sa.BigInteger(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_by', sa.String(length=200), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_spm_target_figures_agency_id_agencies')),
        sa.ForeignKeyConstraint(['region_code'], ['regions.code'],
                                name=op.f('fk_spm_target_figures_region_code_regions')),
        sa.PrimaryKeyConstraint('agency_id', 'region_code', 'year', 'service_type', name=op.f('pk_spm_target_figures')),
    )


def downgrade() -> None:
    op.drop_table('spm_target_figures')
    op.drop_index(op.f('ix_programme_history_programme_id'), table_name='programme_history')
    op.drop_table('programme_history')
    op.drop_table('programme_realisations')
    op.drop_index(op.f('ix_programmes_spm_field'), table_name='programmes')
    op.drop_index(op.f('ix_programmes_agency_id'), table_name='programmes')
    op.drop_table('programmes')
    op.drop_column('agencies', 'kind')
