"""Outbox bookkeeping for a broker that lost its data: the end offset the broker acknowledged per topic partition
(outbox_offsets), and an index by topic and send time for the purge of sent rows past their topic's retention.

Revision ID: b57e0c9d4a13
Revises: 2ffe3b803c10
Create Date: 2026-12-01 09:30:00.000000
"""

from collections.abc import Sequence

from shared.platform_migrations import add_outbox_offsets, drop_outbox_offsets

revision: str = 'b57e0c9d4a13'
down_revision: str | None = '2ffe3b803c10'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_outbox_offsets()


def downgrade() -> None:
    drop_outbox_offsets()
