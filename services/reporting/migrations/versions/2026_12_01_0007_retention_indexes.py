"""Indexes for the retention clean-up's age predicates: inbox by event type and time, idempotency keys and the
audit log by time (shared/platform_migrations.py, the same revision in every service).

Revision ID: 60a68046b880
Revises: 8502cff190ce
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

from shared.platform_migrations import add_retention_indexes, drop_retention_indexes

revision: str = '60a68046b880'
down_revision: str | None = '8502cff190ce'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_retention_indexes()


def downgrade() -> None:
    drop_retention_indexes()
