"""Outbox bookkeeping for a broker that lost its data: the end offset the broker acknowledged per topic partition
(outbox_offsets), and an index by topic and send time for the purge of sent rows past their topic's retention.

Revision ID: 8d4a1f6c2e71
Revises: 6f7e32f0f3c5
Create Date: 2026-12-01 09:30:00.000000
"""

from collections.abc import Sequence

from shared.platform_migrations import add_outbox_offsets, drop_outbox_offsets

revision: str = '8d4a1f6c2e71'
down_revision: str | None = '6f7e32f0f3c5'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_outbox_offsets()


def downgrade() -> None:
    drop_outbox_offsets()
