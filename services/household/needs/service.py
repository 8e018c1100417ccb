"""Need detection after every change: run the rules on the household, store and announce what changed."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.household.households.facts import HouseholdFacts, MemberFacts
from services.household.identifiers import mask_nik
from services.household.immunization.repository import statuses_of, under_fives
from services.household.immunization.status import ImmunizationStatus
from services.household.needs.repository import Also, read_household, write_needs
from services.household.needs.rules import (
    DetectedNeed,
    HouseholdSnapshot,
    MemberSnapshot,
    NeedDiff,
    NeedKey,
    ProgrammeAid,
    detect,
    diff,
)
from services.household.profiles.repository import typed_profiles
from services.household.tables import Household, Member, Need
from shared.events import household as ev
from shared.events.envelope import CloudEvent
from shared.events.topics import SpmField
from shared.outbox import outbox_rows, publish_many


@dataclass(frozen=True, slots=True)
class Observed:
    """A household as the need refresh sees it: the rules' snapshot, its members by id (for the events) and its open
    needs by key (locked until the transaction ends; rows not in the session)."""

    snapshot: HouseholdSnapshot
    members: Mapping[object, MemberFacts]
    open_needs: Mapping[NeedKey, Need]
    #: The current version of each profile (none for a household registered in this transaction).
    profile_versions: Mapping[SpmField, int]

    def statuses(self) -> dict[uuid.UUID, ImmunizationStatus]:
        """The immunisation statuses computed for the under-fives, by member."""
        return {m.member_id: m.immunization for m in self.snapshot.members if m.immunization is not None}

    def with_profile(self, field: SpmField, data: dict[str, Any]) -> Observed:
        """The same household with `data` as the current profile of `field`, recorded since the read."""
        profiles: dict[Any, Any] = {**self.snapshot.profiles, **typed_profiles([(field.value, data)])}
        return replace(self, snapshot=replace(self.snapshot, profiles=profiles))


async def snapshot_of(session: AsyncSession, household: Household, registered: list[Member] | None = None, *,
                      today: date | None = None) -> Observed:
    """What the rules look at on `today` (the immunisation status is computed for that day), with the open needs,
    locked, read in one statement (and the schedule, only if an under-five has a dose). `registered`: the members
    of a household created in this transaction, which has no measurements, doses, profiles or needs yet, so nothing
    needs reading."""
    if registered is not None:
        return Observed(_snapshot(household, registered, {}, {}, {}), {m.id: m for m in registered}, {}, {})
    await session.flush()  # the read is plain SQL: the session's pending changes must be in the database first
    read = await read_household(session, household.id)
    immunization = await statuses_of(session, household, under_fives(read.members, today or date.today()),
                                     read.doses, today=today or date.today())
    return Observed(_snapshot(household, read.members, read.growth, read.profiles, immunization, read.programme_aid),
                    {m.id: m for m in read.members}, {(n.member_id, n.category): n for n in read.open_needs},
                    read.profile_versions)


def _snapshot(household: HouseholdFacts, members: Sequence[MemberFacts], growth: dict[Any, Any],
              profiles: dict[Any, Any], immunization: dict[Any, Any],
              programme_aid: Sequence[ProgrammeAid] = ()) -> HouseholdSnapshot:
    return HouseholdSnapshot(
        household_id=household.id,
        members=[MemberSnapshot(member_id=m.id, birth_date=m.birth_date, sex=m.sex, relationship=m.relationship,
                                pregnant=m.pregnant, expected_delivery_date=m.expected_delivery_date,
                                disability=m.disability, growth=growth.get(m.id),
                                immunization=immunization.get(m.id)) for m in members],
        profiles=profiles, programme_aid=programme_aid)


def needs_of_new_household(household: HouseholdFacts, members: Sequence[MemberFacts], *,
                           today: date) -> list[tuple[Need, CloudEvent]]:
    """What `refresh_needs(..., registered=members)` writes for a household just registered, without a session:
    the detected needs and their `need.detected` events, in the same order (the bulk import writes them
    set-based)."""
    current = detect(_snapshot(household, members, {}, {}, {}), today=today)
    by_id = {m.id: m for m in members}
    found = []
    for detected in diff({}, current).detected:
        need = Need(household_id=household.id, member_id=detected.member_id, spm_field=detected.spm_field.value,
                    category=detected.category, urgency=str(detected.urgency), evidence=dict(detected.evidence))
        member = by_id.get(need.member_id) if need.member_id else None
        found.append((need, ev.NEED_DETECTED.new(_event_data(need, household, member),
                                                 subject=str(household.id), regioncode=household.village_code)))
    return found


def _event_data(need: Need, household: HouseholdFacts, member: MemberFacts | None) -> ev.NeedData:
    return ev.NeedData(need_id=need.id, household_id=household.id, member_id=need.member_id,
                       member_nik_masked=mask_nik(member.nik) if member is not None and member.nik else None,
                       posyandu_id=household.posyandu_id, village_code=household.village_code,
                       spm_field=SpmField(need.spm_field), category=need.category, urgency=need.urgency,
                       evidence=need.evidence, resolution=need.resolution)


async def refresh_needs(session: AsyncSession, household: Household, *, today: date | None = None,
                        registered: list[Member] | None = None, observed: Observed | None = None,
                        announced: Sequence[CloudEvent] = (), also: Also | None = None) -> NeedDiff:
    """Detect once, resolve when cleared: an unchanged condition writes and emits nothing. Returns what changed.

    `registered`: the household was created in this transaction with these members (it has no needs yet).
    `observed`: the household as the caller read it by `snapshot_of` in this transaction (with what it wrote since,
    such as `Observed.with_profile`). `announced`: the caller's events, written to the outbox before the needs';
    `also`: the caller's rows, written by the same statement."""
    today = today or date.today()
    observed = observed or await snapshot_of(session, household, registered, today=today)
    current = detect(observed.snapshot, today=today)
    previous: dict[NeedKey, DetectedNeed] = {
        key: DetectedNeed(spm_field=SpmField(n.spm_field), category=n.category, member_id=n.member_id,
                          urgency=n.urgency, evidence=n.evidence)  # type: ignore[arg-type]
        for key, n in observed.open_needs.items()}
    changes = diff(previous, current)
    detected = [Need(household_id=household.id, member_id=found.member_id, spm_field=found.spm_field.value,
                     category=found.category, urgency=str(found.urgency), evidence=dict(found.evidence))
                for found in changes.detected]
    now = datetime.now(UTC)
    resolved = [observed.open_needs[key] for key in changes.resolved]
    for need in resolved:
        need.status, need.resolved_at = "resolved", now
    changed = []
    for found in changes.changed:
        # Same need, new urgency or evidence (e.g. underweight turning BGM): kept current, not a new need.
        need = observed.open_needs[(found.member_id, found.category)]
        need.urgency, need.evidence = str(found.urgency), dict(found.evidence)
        changed.append(need)
    events = [*announced]
    for event_type, needs in ((ev.NEED_DETECTED, detected), (ev.NEED_RESOLVED, resolved)):
        for need in needs:
            member = observed.members.get(need.member_id) if need.member_id else None
            events.append(event_type.new(_event_data(need, household, member), subject=str(household.id),
                                         regioncode=household.village_code))
    await write_needs(session, household.id, detected=detected, resolved=resolved, resolved_at=now,
                      changed=changed, outbox=outbox_rows(session, events), also=also)
    return changes


async def open_needs(session: AsyncSession, household_id: object) -> list[Need]:
    return list((await session.execute(select(Need).where(Need.household_id == household_id, Need.status == "open")
                                        .order_by(col(Need.detected_at), col(Need.category)))).scalars().all())


async def resolve_needs(session: AsyncSession, household: Household, *, resolution: str, now: datetime,
                        member_ids: list[object] | None = None) -> list[Need]:
    """Resolves the open needs of the given members (of the whole household when None) for a life event, with
    `resolution` saying why, and announces each; the rules would drop them without a reason."""
    query = select(Need).where(Need.household_id == household.id, Need.status == "open")
    if member_ids is not None:
        query = query.where(col(Need.member_id).in_(member_ids))
    resolved = list((await session.execute(query.order_by(col(Need.detected_at)).with_for_update())).scalars().all())
    for need in resolved:
        need.status, need.resolved_at, need.resolution = "resolved", now, resolution
    await session.flush()
    members: dict[object, Member] = {m.id: m for m in (await session.execute(select(Member).where(
        col(Member.id).in_([n.member_id for n in resolved if n.member_id])))).scalars().all()}
    await publish_many(session, [
        ev.NEED_RESOLVED.new(_event_data(need, household, members.get(need.member_id)),
                             subject=str(household.id), regioncode=household.village_code) for need in resolved])
    return resolved
