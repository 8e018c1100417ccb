"""Reading measurements: a child's history and the growth input of the need rules."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.growth import two_consecutive_t
from services.household.needs.rules import GrowthSnapshot
from services.household.tables import Measurement


async def history(session: AsyncSession, member_id: uuid.UUID) -> list[Measurement]:
    """A member's measurements, oldest first."""
    return list((await session.execute(select(Measurement).where(Measurement.member_id == member_id).order_by(
        col(Measurement.measured_on), col(Measurement.recorded_at)))).scalars().all())


#: A measurement as the growth input reads it: member id, measured on, waz, haz, whz, muac_cm, kms_signal.
GrowthRow = tuple[uuid.UUID, date, float | None, float | None, float | None, float | None, str | None]


async def growth_snapshots(session: AsyncSession, household_id: uuid.UUID) -> dict[uuid.UUID, GrowthSnapshot]:
    """Per child, the latest measurement's z-scores and whether the last two weighings were T (2T)."""
    rows = await session.execute(sa.select(
        col(Measurement.member_id), col(Measurement.measured_on), col(Measurement.waz), col(Measurement.haz),
        col(Measurement.whz), col(Measurement.muac_cm), col(Measurement.kms_signal))
        .where(col(Measurement.household_id) == household_id)
        .order_by(col(Measurement.member_id), col(Measurement.measured_on), col(Measurement.recorded_at)))
    return growth_of(rows.tuples())


def growth_of(rows: Iterable[GrowthRow]) -> dict[uuid.UUID, GrowthSnapshot]:
    """The growth inputs from a household's measurements, by member and oldest first within each."""
    by_member: dict[uuid.UUID, list[GrowthRow]] = {}
    for row in rows:
        by_member.setdefault(row[0], []).append(row)
    snapshots = {}
    for member_id, measurements in by_member.items():
        _, measured_on, waz, haz, whz, muac_cm, _ = measurements[-1]
        signals = [m[6] for m in measurements if m[6] is not None]
        snapshots[member_id] = GrowthSnapshot(measured_on=measured_on, waz=waz, haz=haz, whz=whz, muac_cm=muac_cm,
                                              two_t=two_consecutive_t(signals))
    return snapshots
