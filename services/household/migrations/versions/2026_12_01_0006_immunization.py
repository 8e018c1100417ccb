"""Immunisation: the national schedule's versions (seeded from services/household/immunization/schedule.csv),
the doses given per child, and the FHIR resources already imported (source system + value).

Revision ID: f3de4e31faa5
Revises: 3b0c05a8790b
Create Date: 2026-12-01 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'f3de4e31faa5'
down_revision: str | None = '3b0c05a8790b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('immunization_schedule_versions',
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('rows', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_immunization_schedule_versions')),
    sa.UniqueConstraint('valid_from', name=op.f('uq_immunization_schedule_versions_valid_from'))
    )
    op.create_table('immunization_doses',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('member_id', sa.Uuid(), nullable=False),
    sa.Column('household_id', sa.Uuid(), nullable=False),
    sa.Column('vaccine', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('dose_number', sa.Integer(), nullable=False),
    sa.Column('given_on', sa.Date(), nullable=False),
    sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('lot_number', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('void_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('voided_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['households.id'],
                            name=op.f('fk_immunization_doses_household_id_households')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_immunization_doses_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_immunization_doses'))
    )
    op.create_index('ix_immunization_doses_household', 'immunization_doses', ['household_id'], unique=False)
    op.create_index('uq_immunization_doses_live', 'immunization_doses', ['member_id', 'vaccine', 'dose_number'],
                    unique=True, postgresql_where=sa.text("status = 'active'"))
    op.create_table('fhir_imported_resources',
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('resource_type', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('member_id', sa.Uuid(), nullable=False),
    sa.Column('target_id', sa.Uuid(), nullable=False),
    sa.Column('imported_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_fhir_imported_resources_member_id_members')),
    sa.PrimaryKeyConstraint('system', 'value', name=op.f('pk_fhir_imported_resources'))
    )
    op.create_index(op.f('ix_fhir_imported_resources_member_id'), 'fhir_imported_resources', ['member_id'],
                    unique=False)
    # The national versions of the checked-in file; a later migration may call this again after the file gained
    # a version (versions already present are left as they are).
    from services.household.immunization.schedule import seed_national_versions
    seed_national_versions(op.get_bind())


def downgrade() -> None:
    op.drop_index(op.f('ix_fhir_imported_resources_member_id'), table_name='fhir_imported_resources')
    op.drop_table('fhir_imported_resources')
    op.drop_index('uq_immunization_doses_live', table_name='immunization_doses', postgresql_where=sa.text("status = 'active'"))
    op.drop_index('ix_immunization_doses_household', table_name='immunization_doses')
    op.drop_table('immunization_doses')
    op.drop_table('immunization_schedule_versions')
