"""Reading measurements: a child's history and the growth input of the need rules."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.growth import two_consecutive_t
from services.household.needs.rules import GrowthSnapshot
from services.household.tables import Measurement


async def history(session: AsyncSession, member_id: uuid.UUID) -> list[Measurement]:
    """A member's measurements, oldest first."""
    return list((await session.execute(select(Measurement).where(Measurement.member_id == member_id).order_by(
        col(Measurement.measured_on), col(Measurement.recorded_at)))).scalars().all())


async def growth_snapshots(session: AsyncSession, household_id: uuid.UUID) -> dict[uuid.UUID, GrowthSnapshot]:
    """Per child, the latest measurement's z-scores and whether the last two weighings were T (2T)."""
    rows = (await session.execute(select(Measurement).where(Measurement.household_id == household_id).order_by(
        col(Measurement.member_id), col(Measurement.measured_on), col(Measurement.recorded_at)))).scalars().all()
    by_member: dict[uuid.UUID, list[Measurement]] = {}
    for row in rows:
        by_member.setdefault(row.member_id, []).append(row)
    snapshots = {}
    for member_id, measurements in by_member.items():
        latest = measurements[-1]
        signals = [m.kms_signal for m in measurements if m.kms_signal is not None]
        snapshots[member_id] = GrowthSnapshot(measured_on=latest.measured_on, waz=latest.waz, haz=latest.haz,
                                              whz=latest.whz, muac_cm=latest.muac_cm,
                                              two_t=two_consecutive_t(signals))
    return snapshots
