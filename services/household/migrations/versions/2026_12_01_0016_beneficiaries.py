"""Programme beneficiary lists: the programmes and agencies the registry announced, uploads and their matched rows.

Revision ID: 37ee585dc141
Revises: 8911030bed84
Create Date: 2026-12-01 15:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '37ee585dc141'
down_revision: str | None = '8911030bed84'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('known_agencies',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('jurisdiction_code', sa.String(length=10), nullable=False),
    sa.Column('spm_fields', postgresql.ARRAY(sa.String(length=20)), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_known_agencies'))
    )
    op.create_table('programmes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('agency_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('spm_field', sa.String(length=20), nullable=False),
    sa.Column('service_type', sa.String(length=60), nullable=False),
    sa.Column('region_codes', postgresql.ARRAY(sa.String(length=10)), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programmes'))
    )
    op.create_index(op.f('ix_programmes_agency_id'), 'programmes', ['agency_id'], unique=False)
    op.create_table('beneficiary_uploads',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('programme_id', sa.Uuid(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=True),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('exact_nik', sa.Integer(), nullable=False),
    sa.Column('exact_kk', sa.Integer(), nullable=False),
    sa.Column('likely', sa.Integer(), nullable=False),
    sa.Column('unmatched', sa.Integer(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=200), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_beneficiary_uploads_programme_id_programmes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_beneficiary_uploads'))
    )
    op.create_index(op.f('ix_beneficiary_uploads_programme_id'), 'beneficiary_uploads', ['programme_id'], unique=False)
    op.create_table('beneficiaries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('programme_id', sa.Uuid(), nullable=False),
    sa.Column('upload_id', sa.Uuid(), nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('nik', sa.String(length=16), nullable=True),
    sa.Column('kk_number', sa.String(length=16), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('match', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('household_id', sa.Uuid(), nullable=True),
    sa.Column('member_id', sa.Uuid(), nullable=True),
    sa.Column('reviewed_by', sa.String(length=200), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['household_id'], ['households.id'], name=op.f('fk_beneficiaries_household_id_households')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_beneficiaries_member_id_members')),
    sa.ForeignKeyConstraint(['programme_id'], ['programmes.id'], name=op.f('fk_beneficiaries_programme_id_programmes')),
    sa.ForeignKeyConstraint(['upload_id'], ['beneficiary_uploads.id'], name=op.f('fk_beneficiaries_upload_id_beneficiary_uploads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_beneficiaries'))
    )
    op.create_index('ix_beneficiaries_household', 'beneficiaries', ['household_id'], unique=False, postgresql_where=sa.text('household_id IS NOT NULL'))
    op.create_index('ix_beneficiaries_programme_row', 'beneficiaries', ['programme_id', 'row_number'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_beneficiaries_programme_row', table_name='beneficiaries')
    op.drop_index('ix_beneficiaries_household', table_name='beneficiaries', postgresql_where=sa.text('household_id IS NOT NULL'))
    op.drop_table('beneficiaries')
    op.drop_index(op.f('ix_beneficiary_uploads_programme_id'), table_name='beneficiary_uploads')
    op.drop_table('beneficiary_uploads')
    op.drop_index(op.f('ix_programmes_agency_id'), table_name='programmes')
    op.drop_table('programmes')
    op.drop_table('known_agencies')
