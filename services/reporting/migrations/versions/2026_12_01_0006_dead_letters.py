"""Dead letters: each record the consumer runner parks in posyandu.dlq.<group>, with what an operator decided about
it (replayed, discarded with a reason), for the admin API and CLI (shared/dead_letters.py).

Revision ID: 8502cff190ce
Revises: 0cb21dc528e7
Create Date: 2026-12-01 12:30:00.000000
"""

from collections.abc import Sequence

from shared.platform_migrations import add_dead_letters, drop_dead_letters

revision: str = '8502cff190ce'
down_revision: str | None = '0cb21dc528e7'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_dead_letters()


def downgrade() -> None:
    drop_dead_letters()
