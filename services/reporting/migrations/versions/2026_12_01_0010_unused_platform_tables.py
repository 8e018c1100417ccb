"""Reporting keeps only the platform tables it uses (inbox, audit log, dead letters): it publishes nothing and takes
no creates, so its outbox, outbox offsets and idempotency keys go (they were always empty; the migration refuses to
run if one holds a row). The downgrade makes them again as they were.

Revision ID: 9ee22d641792
Revises: 98d3902e6b38
Create Date: 2026-12-01 22:00:00
"""

from collections.abc import Sequence

from shared.platform_migrations import (
    add_outbox_offsets,
    add_retention_indexes,
    create_platform_tables,
    drop_unused_platform_tables,
)

revision: str = '9ee22d641792'
down_revision: str | None = '98d3902e6b38'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    drop_unused_platform_tables("outbox_offsets", "outbox", "idempotency_keys")


def downgrade() -> None:
    create_platform_tables("idempotency_keys", "outbox")
    add_outbox_offsets()
    add_retention_indexes("idempotency_keys")
