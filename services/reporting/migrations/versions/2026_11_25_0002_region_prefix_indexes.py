"""Region-prefix indexes under any collation: the village-code indexes of households, needs and referrals with
varchar_pattern_ops, which serves `village_code LIKE '31%'` whatever the database's collation (the default
operator class serves it under the C collation alone, so elsewhere every report scanned these tables whole).

Revision ID: a2aa380ef122
Revises: be1cb2cec0fd
Create Date: 2026-11-25 16:05:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = 'a2aa380ef122'
down_revision: str | None = 'be1cb2cec0fd'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Each table's village-code index and the column after the village code in it.
_INDEXES = (("households", "status"), ("needs", "spm_field"), ("referrals", "spm_field"))


def upgrade() -> None:
    for table, second in _INDEXES:
        op.drop_index(f'ix_{table}_village_code', table_name=table)
        op.create_index(f'ix_{table}_village_code', table, ['village_code', second], unique=False,
                        postgresql_ops={'village_code': 'varchar_pattern_ops'})


def downgrade() -> None:
    for table, second in _INDEXES:
        op.drop_index(f'ix_{table}_village_code', table_name=table)
        op.create_index(f'ix_{table}_village_code', table, ['village_code', second], unique=False)
