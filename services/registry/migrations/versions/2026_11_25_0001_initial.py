"""Initial schema: regions, posyandu, cadres, agencies, and the platform tables.

Revision ID: abcf4d58b483
Revises:
Create Date: 2026-11-25 11:43:23.971984
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.platform_migrations import create_platform_tables, drop_platform_tables

revision: str = 'abcf4d58b483'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # pg_trgm backs the region name search (a trusted extension: the database owner may create it).
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table('regions',
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('level', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('parent_code', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('list_version', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_regions'))
    )
    op.create_index('ix_regions_name_trgm', 'regions', [sa.literal_column('lower(name) gin_trgm_ops')], unique=False, postgresql_using='gin')
    op.create_index(op.f('ix_regions_parent_code'), 'regions', ['parent_code'], unique=False)
    op.create_table('agencies',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('level', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('jurisdiction_code', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
    sa.Column('spm_fields', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['jurisdiction_code'], ['regions.code'], name=op.f('fk_agencies_jurisdiction_code_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agencies'))
    )
    op.create_index('ix_agencies_routing', 'agencies', ['jurisdiction_code', 'status'], unique=False)
    op.create_table('posyandu',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('village_code', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('service_days', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['village_code'], ['regions.code'], name=op.f('fk_posyandu_village_code_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posyandu')),
    sa.UniqueConstraint('code', name=op.f('uq_posyandu_code'))
    )
    op.create_index(op.f('ix_posyandu_status'), 'posyandu', ['status'], unique=False)
    op.create_index(op.f('ix_posyandu_village_code'), 'posyandu', ['village_code'], unique=False)
    op.create_table('cadres',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('posyandu_id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
    sa.Column('duties', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('since', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['posyandu_id'], ['posyandu.id'], name=op.f('fk_cadres_posyandu_id_posyandu')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cadres'))
    )
    op.create_index(op.f('ix_cadres_posyandu_id'), 'cadres', ['posyandu_id'], unique=False)
    # The platform tables, in their first shape (shared/platform_migrations.py).
    create_platform_tables()
    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    drop_platform_tables()
    op.drop_index(op.f('ix_cadres_posyandu_id'), table_name='cadres')
    op.drop_table('cadres')
    op.drop_index(op.f('ix_posyandu_village_code'), table_name='posyandu')
    op.drop_index(op.f('ix_posyandu_status'), table_name='posyandu')
    op.drop_table('posyandu')
    op.drop_index('ix_agencies_routing', table_name='agencies')
    op.drop_table('agencies')
    op.drop_index(op.f('ix_regions_parent_code'), table_name='regions')
    op.drop_index('ix_regions_name_trgm', table_name='regions', postgresql_using='gin')
    op.drop_table('regions')
    # ### end Alembic commands ###
