"""SLA administration and routing by category: overrides gain a region prefix, a unit and a version; escalation
delays per urgency; the national holiday calendar in versions (loaded from services/referral/sla/holidays.csv);
routing rules by field, category and region.

Revision ID: 7c41d9e2a5b3
Revises: b57e0c9d4a13
Create Date: 2026-12-01 09:30:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from services.referral.sla.calendar import shipped_holidays

revision: str = '7c41d9e2a5b3'
down_revision: str | None = 'b57e0c9d4a13'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('sla_overrides', sa.Column('region_prefix', sqlmodel.sql.sqltypes.AutoString(length=10),
                                             nullable=True))
    op.add_column('sla_overrides', sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False,
                                             server_default='hours'))
    op.add_column('sla_overrides', sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
    op.add_column('sla_overrides', sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False,
                                             server_default=sa.func.now()))
    for column in ('unit', 'version', 'updated_at'):
        op.alter_column('sla_overrides', column, server_default=None)
    op.drop_index('uq_sla_overrides_scope', table_name='sla_overrides')
    op.create_index('uq_sla_overrides_scope', 'sla_overrides', [
        sa.literal_column("coalesce(agency_id, '00000000-0000-0000-0000-000000000000'::uuid)"),
        sa.literal_column("coalesce(category, '')"), sa.literal_column("coalesce(region_prefix, '')"), 'urgency'],
        unique=True)
    op.create_table('sla_escalation_delays',
    sa.Column('urgency', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('delay', sa.Interval(), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('urgency', name=op.f('pk_sla_escalation_delays'))
    )
    calendars = op.create_table('holiday_calendars',
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('year', 'version', name=op.f('pk_holiday_calendars'))
    )
    holidays = op.create_table('holidays',
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.ForeignKeyConstraint(['year', 'version'], ['holiday_calendars.year', 'holiday_calendars.version'],
                            name=op.f('fk_holidays_year_holiday_calendars')),
    sa.PrimaryKeyConstraint('year', 'version', 'date', name=op.f('pk_holidays'))
    )
    op.create_table('routing_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('spm_field', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
    sa.Column('region_prefix', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('agency_level', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('agency_id', sa.Uuid(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(agency_level IS NULL) <> (agency_id IS NULL)', name=op.f('ck_routing_rules_one_target')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routing_rules'))
    )
    op.create_index('uq_routing_rules_scope', 'routing_rules', [
        'spm_field', sa.literal_column("coalesce(category, '')"), sa.literal_column("coalesce(region_prefix, '')")],
        unique=True)
    # The shipped calendar versions: reference data, loaded once here (later versions come through the admin API).
    rows = shipped_holidays()
    versions = {(r.year, r.version): r.source for r in rows}
    loaded_at = datetime.now(UTC)
    op.bulk_insert(calendars, [{"year": y, "version": v, "source": s, "created_by": "migration",
                                "created_at": loaded_at} for (y, v), s in sorted(versions.items())])
    op.bulk_insert(holidays, [{"year": r.year, "version": r.version, "date": r.date, "kind": r.kind,
                               "name": r.name} for r in rows])


def downgrade() -> None:
    op.drop_index('uq_routing_rules_scope', table_name='routing_rules')
    op.drop_table('routing_rules')
    op.drop_table('holidays')
    op.drop_table('holiday_calendars')
    op.drop_table('sla_escalation_delays')
    op.drop_index('uq_sla_overrides_scope', table_name='sla_overrides')
    op.execute("DELETE FROM sla_overrides WHERE region_prefix IS NOT NULL")
    op.create_index('uq_sla_overrides_scope', 'sla_overrides', [
        sa.literal_column("coalesce(agency_id, '00000000-0000-0000-0000-000000000000'::uuid)"),
        sa.literal_column("coalesce(category, '')"), 'urgency'], unique=True)
    for column in ('updated_at', 'version', 'unit', 'region_prefix'):
        op.drop_column('sla_overrides', column)
