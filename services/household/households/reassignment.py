"""Households whose village left the official region list: flagged for re-assignment, as a versioned change.

The registry retires a village (posyandu.registry.v1); its households stay where they are, flagged, until a kader
moves them to a current village (a move clears the flag). The flag is household state like any other: each flagged
household gets a new version and a `household.updated` event, so the other services' projections follow.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.households.service import household_data
from services.household.tables import Household
from shared.events import household as ev
from shared.outbox import publish_many


async def flag_village_retired(*, session: AsyncSession, village_code: str, now: datetime) -> list[Household]:
    """Flags the live households of a retired village for re-assignment (new version, `household.updated` each);
    those flagged already, and closed ones (they take no more changes), are left alone, so a repeated or
    republished retirement changes nothing. Returns the households flagged."""
    households = list((await session.execute(
        select(Household).where(col(Household.village_code) == village_code, col(Household.status) == "active",
                                col(Household.needs_reassignment).is_(False))
        .order_by(col(Household.id)).with_for_update())).scalars().all())
    for household in households:
        household.needs_reassignment = True
        household.version += 1
        household.updated_at = now
    await session.flush()
    await publish_many(session, [ev.HOUSEHOLD_UPDATED.new(household_data(h), subject=str(h.id),
                                                          regioncode=h.village_code) for h in households])
    return households
