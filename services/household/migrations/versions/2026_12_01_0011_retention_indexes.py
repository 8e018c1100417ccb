"""Indexes for the retention clean-up's age predicates: inbox by event type and time, idempotency keys and the
audit log by time (shared/platform_migrations.py, the same revision in every service).

Revision ID: 1e5598845ecc
Revises: 70eb97708dfa
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

from shared.platform_migrations import add_retention_indexes, drop_retention_indexes

revision: str = '1e5598845ecc'
down_revision: str | None = '70eb97708dfa'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_retention_indexes()


def downgrade() -> None:
    drop_retention_indexes()
