"""Per-field profiles: each update is a new version; the highest is current, all are readable. Recording one, and
reading profiles and needs, as use cases."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from services.household.access import Readable, writable_household
from services.household.dates import check_past
from services.household.immunization import repository as immunization
from services.household.needs.service import open_needs, refresh_needs, snapshot_of
from services.household.profiles import decisions
from services.household.profiles.recording import recorded
from services.household.profiles.repository import current_profile_data as current_profile_data
from services.household.profiles.repository import current_profiles as current_profiles
from services.household.profiles.repository import versions as versions
from services.household.tables import Household, Member, Need, ProfileVersion, metadata
from shared.audit import record_read
from shared.auth import Principal
from shared.errors import NotFound, ValidationFailed
from shared.events import household as ev
from shared.events.envelope import CloudEvent
from shared.events.topics import SpmField
from shared.outbox import publish_many


def _checked_request(profile: BaseModel, observed_on: date) -> dict[Any, Any]:
    """The checks that need no database; the profile's member sections, by member id."""
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
    return member_ids


def _check_members(member_ids: dict[Any, Any], births: Mapping[uuid.UUID, date], observed_on: date) -> None:
    """The member sections name active members of the household (`births`), observed after their birth."""
    if strangers := [str(m) for m in member_ids if m not in births]:
        raise ValidationFailed("The profile names members who are not in this household.",
                               errors=[{"field": f"members.{m}", "message": "not a member of the household"}
                                       for m in strangers])
    if unborn := [str(m) for m in member_ids if observed_on < births[m]]:
        raise ValidationFailed("The profile is observed before the birth of members it describes.",
                               errors=[{"field": f"members.{m}", "message": "observed before the member's birth"}
                                       for m in unborn])


async def record(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID, field: SpmField,
                 profile: BaseModel, observed_on: date, today: date | None = None) -> tuple[Household, ProfileVersion]:
    """Records a new version of one field's profile; member sections must name the household's members.

    The kesehatan profile's `immunization_status` is computed from the recorded doses, never typed: a typed one is
    refused, and the version stored carries the computed statuses (so it does not drop them)."""
    member_ids = _checked_request(profile, observed_on)
    household = await writable_household(session, principal, household_id)
    data = profile.model_dump(mode="json", exclude_none=True)
    if member_ids or field is SpmField.KESEHATAN:
        members = list((await session.execute(select(Member).where(
            Member.household_id == household.id, Member.status == "active"))).scalars().all())
        _check_members(member_ids, {m.id: m.birth_date for m in members}, observed_on)
        if field is SpmField.KESEHATAN:
            data = immunization.with_statuses(data, await immunization.computed_statuses(
                session, household, members, today=today or date.today()))
    version = await store_version(session=session, household=household, field=field, data=data,
                                  observed_on=observed_on, recorded_by=principal.sub)
    return household, version


async def store_version(*, session: AsyncSession, household: Household, field: SpmField, data: dict[str, Any],
                        observed_on: date, recorded_by: str) -> ProfileVersion:
    """Stores and announces the next version of a field's profile (checked by the caller, who holds the household's
    row lock). The profile PUT writes its version in the need refresh's statement instead (`recording.py`)."""
    table = metadata.tables[ProfileVersion.__tablename__]
    latest = (sa.select(sa.func.coalesce(sa.func.max(table.c.version), 0) + 1)
              .where(table.c.household_id == household.id, table.c.spm_field == field.value).scalar_subquery())
    version = ProfileVersion(household_id=household.id, spm_field=field.value, version=0, data=data,
                             observed_on=observed_on, recorded_by=recorded_by)
    # The next version number and the row in one statement.
    version.version = (await session.execute(sa.insert(table).values(
        household_id=version.household_id, spm_field=version.spm_field, version=latest, data=version.data,
        observed_on=version.observed_on, recorded_by=version.recorded_by, recorded_at=version.recorded_at)
        .returning(table.c.version))).scalar_one()
    await publish_many(session, [_updated(household, field, version)])
    return version


def _updated(household: Household, field: SpmField, version: ProfileVersion) -> CloudEvent:
    """The version's `profile.updated` event."""
    return ev.PROFILE_UPDATED.new(ev.ProfileUpdatedData(
        household_id=household.id, spm_field=field, version=version.version, observed_on=version.observed_on,
        profile=version.data, decided=decisions.decided(field, version.data)), subject=str(household.id),
        regioncode=household.village_code)


class ProfileVersionPublic(BaseModel):
    household_id: uuid.UUID
    spm_field: SpmField
    version: int
    observed_on: date | None
    recorded_by: str
    recorded_at: datetime
    profile: dict[str, Any]


def _public(v: ProfileVersion) -> ProfileVersionPublic:
    return ProfileVersionPublic(household_id=v.household_id, spm_field=SpmField(v.spm_field), version=v.version,
                                observed_on=v.observed_on, recorded_by=v.recorded_by, recorded_at=v.recorded_at,
                                profile=v.data)


async def record_profile(*, session: AsyncSession, principal: Principal, household_id: uuid.UUID, field: SpmField,
                         profile: BaseModel, observed_on: date, today: date) -> ProfileVersionPublic:
    """PUT .../profiles/{field}: the new version with its event, the household's needs, the audit row."""
    member_ids = _checked_request(profile, observed_on)
    household = await writable_household(session, principal, household_id)
    # One read of the household serves the checks, the kesehatan statuses and the need refresh: the new version is
    # put in its place below, and its event is written with the needs' events (profile.updated first).
    observed = await snapshot_of(session, household, today=today)
    _check_members(member_ids, {m.id: m.birth_date for m in observed.members.values()}, observed_on)
    data = profile.model_dump(mode="json", exclude_none=True)
    if field is SpmField.KESEHATAN:
        data = immunization.with_statuses(data, observed.statuses())
    version = ProfileVersion(household_id=household.id, spm_field=field.value, data=data, observed_on=observed_on,
                             version=observed.profile_versions.get(field, 0) + 1, recorded_by=principal.sub)
    # The version, its audit row, the needs and the events in one statement (JSON data reads back as it went in).
    await refresh_needs(session, household, today=today, observed=observed.with_profile(field, data),
                        announced=[_updated(household, field, version)], also=recorded(version, principal))
    return _public(version)


async def _audited_read(session: AsyncSession, principal: Principal, readable: Readable, resource_type: str) -> None:
    household_id = str(readable.household.id)
    await record_read(session, principal, resource_type=resource_type, resource_id=household_id,
                      subject_ref=household_id, purpose=readable.basis.purpose)


async def current_version(*, session: AsyncSession, principal: Principal, readable: Readable,
                          field: SpmField) -> ProfileVersionPublic:
    """GET .../profiles/{field}: the current version, the read audited."""
    latest = await versions(session, readable.household.id, field, latest_only=True)
    if not latest:
        raise NotFound(f"Household {readable.household.id} has no {field.value} profile yet.")
    await _audited_read(session, principal, readable, f"profile.{field.value}")
    return _public(latest[0])


async def version_history(*, session: AsyncSession, principal: Principal, readable: Readable,
                          field: SpmField) -> list[ProfileVersionPublic]:
    """GET .../profiles/{field}/history: every version, newest first, the read audited."""
    await _audited_read(session, principal, readable, f"profile.{field.value}.history")
    return [_public(v) for v in await versions(session, readable.household.id, field)]


async def needs_of(*, session: AsyncSession, principal: Principal, readable: Readable) -> list[Need]:
    """GET .../needs: the household's open needs, the read audited."""
    await _audited_read(session, principal, readable, "needs")
    return await open_needs(session, readable.household.id)
