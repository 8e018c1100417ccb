"""Reading profiles: a field's versions, its current data, every field's current profile."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.profiles.schemas import PROFILE_MODELS
from services.household.tables import ProfileVersion
from shared.events.topics import SpmField


async def current_profile_data(session: AsyncSession, household_id: uuid.UUID,
                               field: SpmField) -> dict[str, Any] | None:
    """The current version's data of one field, as stored (None: no version yet)."""
    latest = await versions(session, household_id, field, latest_only=True)
    return dict(latest[0].data) if latest else None


async def versions(session: AsyncSession, household_id: uuid.UUID, field: SpmField,
                   *, latest_only: bool = False) -> list[ProfileVersion]:
    query = select(ProfileVersion).where(ProfileVersion.household_id == household_id,
                                         ProfileVersion.spm_field == field.value
                                         ).order_by(col(ProfileVersion.version).desc())
    if latest_only:
        query = query.limit(1)
    return list((await session.execute(query)).scalars().all())


async def current_profiles(session: AsyncSession, household_id: uuid.UUID) -> dict[SpmField, BaseModel]:
    """The current profile of every field that has one, as typed models."""
    rows = await session.execute(
        select(col(ProfileVersion.spm_field), col(ProfileVersion.data)).distinct(col(ProfileVersion.spm_field))
        .where(ProfileVersion.household_id == household_id)
        .order_by(col(ProfileVersion.spm_field), col(ProfileVersion.version).desc()))
    return typed_profiles(rows.tuples())


def typed_profiles(rows: Iterable[tuple[str, dict[str, Any]]]) -> dict[SpmField, BaseModel]:
    """(field, data as stored) of current versions as typed models, by field."""
    return {SpmField(field): PROFILE_MODELS[SpmField(field)].model_validate(data) for field, data in rows}
