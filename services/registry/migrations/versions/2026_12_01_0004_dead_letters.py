"""Dead letters: each record the consumer runner parks in posyandu.dlq.<group>, with what an operator decided about
it (replayed, discarded with a reason), for the admin API and CLI (shared/dead_letters.py). The registry consumes
nothing, so its table stays empty; it has it because every service has every platform table (one metadata, and
the consumer runner works in any service).

Revision ID: dc7de8a5f09a
Revises: 6b69eda189e0
Create Date: 2026-12-01 12:30:00.000000
"""

from collections.abc import Sequence

from shared.platform_migrations import add_dead_letters, drop_dead_letters

revision: str = 'dc7de8a5f09a'
down_revision: str | None = '6b69eda189e0'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_dead_letters()


def downgrade() -> None:
    drop_dead_letters()
