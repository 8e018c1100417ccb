"""Per-field profiles: each update is a new version; the highest is current, all are readable."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.access import writable_household
from services.household.dates import check_past
from services.household.immunization import repository as immunization
from services.household.profiles import decisions
from services.household.profiles.schemas import PROFILE_MODELS
from services.household.tables import Household, Member, ProfileVersion
from shared.auth import Principal
from shared.errors import ValidationFailed
from shared.events import household as ev
from shared.events.topics import SpmField
from shared.outbox import publish


async def record(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID, field: SpmField,
                 profile: BaseModel, observed_on: date, today: date | None = None) -> tuple[Household, ProfileVersion]:
    """Records a new version of one field's profile; member sections must name the household's members.

    The kesehatan profile's `immunization_status` is computed from the recorded doses, never typed: a typed one is
    refused, and the version stored carries the computed statuses (so it does not drop them)."""
    try:
        check_past(observed_on)
    except ValueError as exc:
        raise ValidationFailed(f"observed_on {exc}.", errors=[{"field": "observed_on", "message": str(exc)}]) from None
    member_ids: dict[Any, Any] = getattr(profile, "members", {}) or {}
    if typed := [str(m) for m, section in member_ids.items() if getattr(section, "immunization_status", None)]:
        raise ValidationFailed(
            "immunization_status is computed from the recorded doses and the national schedule; record the doses "
            "(POST .../members/{member_id}/immunizations) instead of typing it.",
            errors=[{"field": f"members.{m}.immunization_status", "message": "read-only: computed from the doses"}
                    for m in typed])
    household = await writable_household(session, principal, household_id)
    if member_ids:
        rows = await session.execute(sa.select(col(Member.id), col(Member.birth_date)).where(
            col(Member.household_id) == household.id, col(Member.status) == "active"))
        births: dict[uuid.UUID, date] = {row.id: row.birth_date for row in rows}
        if strangers := [str(m) for m in member_ids if m not in births]:
            raise ValidationFailed("The profile names members who are not in this household.",
                                   errors=[{"field": f"members.{m}", "message": "not a member of the household"}
                                           for m in strangers])
        if unborn := [str(m) for m in member_ids if observed_on < births[m]]:
            raise ValidationFailed("The profile is observed before the birth of members it describes.",
                                   errors=[{"field": f"members.{m}", "message": "observed before the member's birth"}
                                           for m in unborn])
    data = profile.model_dump(mode="json", exclude_none=True)
    if field is SpmField.KESEHATAN:
        members = list((await session.execute(select(Member).where(
            Member.household_id == household.id, Member.status == "active"))).scalars().all())
        data = immunization.with_statuses(data, await immunization.computed_statuses(
            session, household, members, today=today or date.today()))
    version = await store_version(session=session, household=household, field=field, data=data,
                                  observed_on=observed_on, recorded_by=principal.sub)
    return household, version


async def store_version(*, session: AsyncSession, household: Household, field: SpmField, data: dict[str, Any],
                        observed_on: date, recorded_by: str) -> ProfileVersion:
    """Stores and announces the next version of a field's profile (checked by the caller)."""
    latest = await session.scalar(sa.select(sa.func.max(ProfileVersion.version)).where(
        col(ProfileVersion.household_id) == household.id, col(ProfileVersion.spm_field) == field.value))
    version = ProfileVersion(household_id=household.id, spm_field=field.value, version=(latest or 0) + 1,
                             data=data, observed_on=observed_on, recorded_by=recorded_by)
    session.add(version)
    await session.flush()
    await publish(session, ev.PROFILE_UPDATED, ev.ProfileUpdatedData(
        household_id=household.id, spm_field=field, version=version.version, observed_on=observed_on,
        profile=version.data, decided=decisions.decided(field, version.data)), subject=str(household.id),
        regioncode=household.village_code)
    return version


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
        select(ProfileVersion).distinct(col(ProfileVersion.spm_field))
        .where(ProfileVersion.household_id == household_id)
        .order_by(col(ProfileVersion.spm_field), col(ProfileVersion.version).desc()))
    return {SpmField(v.spm_field): PROFILE_MODELS[SpmField(v.spm_field)].model_validate(v.data)
            for v in rows.scalars().all()}
