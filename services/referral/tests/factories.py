"""Factories for referral tests: the shared ones (agencies, posyandu and households the referral service has heard
of, referrals: tests/support/factories.py), each test module's regency, and the events written for a referral.

Each test module uses its own regency (and field) so that the agencies other tests register never route its
referrals.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.factories import (  # noqa: F401  (the referral tests take every factory from here)
    create_referral,
    known_agency,
    known_household,
    known_posyandu,
)

CENGKARENG_BARAT = "3173011001"  # Kota Administrasi Jakarta Barat
TEBET_TIMUR = "3174011001"  # Kota Administrasi Jakarta Selatan
PISANGAN_BARU = "3175011001"  # Kota Administrasi Jakarta Timur
RAWA_MAKMUR = "6472011001"  # Kota Samarinda, Kalimantan Timur


async def outbox_types(referral_db: asyncpg.Connection | AsyncSession, referral_id: str) -> list[str]:
    """The event types written for a referral, in order: committed ones, or those a rolled-back session sees."""
    if isinstance(referral_db, AsyncSession):
        found = await referral_db.scalars(sa.text("SELECT event_type FROM outbox WHERE key = :key ORDER BY id"),
                                          {"key": referral_id})
        return list(found)
    rows = await referral_db.fetch("SELECT event_type FROM outbox WHERE key = $1 ORDER BY id", referral_id)
    return [r["event_type"] for r in rows]


@contextmanager
def statements_of(target: Any, wanted: Any) -> Iterator[list[str]]:
    """The statements `target` (an Engine, or the class for all) executes while `wanted()` holds."""
    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if wanted():
            seen.append(statement)

    sa.event.listen(target, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(target, "before_cursor_execute", count)
