"""Indexes for the retention clean-up's age predicates: inbox by event type and time, idempotency keys and the
audit log by time (shared/platform_migrations.py, the same revision in every service).

Revision ID: 886f280d7bb9
Revises: 39612e0d5f88
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

from shared.platform_migrations import add_retention_indexes, drop_retention_indexes

revision: str = '886f280d7bb9'
down_revision: str | None = '39612e0d5f88'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_retention_indexes()


def downgrade() -> None:
    drop_retention_indexes()
