"""Referrals: creation (by hand or from a detected need), routing, the lifecycle and re-publishing (reads: reads.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.referral.notes.service import SYSTEM_SIDE, write_note
from services.referral.referrals.access import held_by, side_of
from services.referral.referrals.events import emit, new_event
from services.referral.referrals.history import SYSTEM, insert_created, record_transition
from services.referral.referrals.lifecycle import CLOSED, OPEN, RESPONSES, RULES, Action, Side, Status
from services.referral.referrals.schemas import ActionBody, ReferralCreate
from services.referral.routing.service import province_agency, responsible_agency, unmet_coverage
from services.referral.settings import MovePolicy
from services.referral.sla.service import route_and_start_clocks, routed_terms_in, start_clocks, start_routed_clocks
from services.referral.tables import KnownAgency, KnownHousehold, KnownMember, Referral, metadata
from shared.auth import Principal, Role
from shared.categories import CATEGORIES, Urgency
from shared.concurrency import check_if_match
from shared.errors import Conflict, Forbidden, ValidationFailed
from shared.events import household as household_events
from shared.events import referral as ev
from shared.events.topics import SpmField


class IllegalTransition(Conflict):
    title, slug = "Illegal transition", "illegal-transition"


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": field, "message": message}])


async def _route(session: AsyncSession, referral: Referral, now: datetime) -> bool:
    """Assign the responsible agency and start the clocks; False when there is none (the referral waits unrouted)."""
    return await route_and_start_clocks(session, referral, now)


_households = metadata.tables[KnownHousehold.__tablename__]
_members = metadata.tables[KnownMember.__tablename__]
#: The household (`household_id`) and, if named, its member (`member_id`, NULL for none), in one query (built once):
#: a member of another household is not found.
_HOUSEHOLD_AND_MEMBER: sa.Select[Any] = (
    sa.select(_households.c.id, _households.c.posyandu_id, _households.c.village_code, _households.c.status,
              _members.c.id.label("member_id"), _members.c.nik_masked.label("member_nik_masked"),
              _members.c.status.label("member_status"))
    .select_from(_households.outerjoin(_members, sa.and_(_members.c.id == sa.bindparam("member_id"),
                                                         _members.c.household_id == _households.c.id)))
    .where(_households.c.id == sa.bindparam("household_id")))


#: `_HOUSEHOLD_AND_MEMBER` with the responsible agency for the household's village and its SLA terms
#: (sla/service.py's `routed_terms_in`: `agency_id` and the terms, NULL when there is no agency), in one query.
_FOUND = _HOUSEHOLD_AND_MEMBER.cte("found")
_TERMS = routed_terms_in(sa.select(_FOUND.c.village_code).scalar_subquery())
_HOUSEHOLD_MEMBER_AND_TERMS: sa.Select[Any] = (
    sa.select(_FOUND, *(c for c in _TERMS.c)).select_from(_FOUND.outerjoin(_TERMS, sa.true())))


async def _household_and_member(session: AsyncSession, payload: ReferralCreate, urgency: Urgency) -> sa.Row[Any] | None:
    """The household's row (None when unknown) with its member's columns (`member_*`, NULL when not found) and, for a
    referral that is not a draft, the routed terms of its village (the router's and the SLA's, for `urgency`)."""
    parameters: dict[str, Any] = {"household_id": payload.household_id, "member_id": payload.member_id}
    if payload.draft:
        return (await session.execute(_HOUSEHOLD_AND_MEMBER, parameters)).first()
    parameters.update(spm_field=payload.spm_field.value, category=payload.category, urgency=urgency.value)
    return (await session.execute(_HOUSEHOLD_MEMBER_AND_TERMS, parameters)).first()


async def create(*, session: AsyncSession, principal: Principal, payload: ReferralCreate, now: datetime) -> Referral:
    """Creates a referral by hand for a household (or member) of the caller's posyandu."""
    category = CATEGORIES.get(payload.category)
    # (An unknown category is refused below, after the household: the urgency read with it does not matter.)
    urgency = payload.urgency or (category.default_urgency if category else Urgency.NORMAL)
    household = await _household_and_member(session, payload, urgency)
    if household is None or household.status != "active" or not (
            principal.role is Role.ADMIN or household.posyandu_id in principal.posyandu_ids):
        raise _invalid("household_id", "Not an active household of your posyandu known to this service.")
    if category is None or category.spm_field is not payload.spm_field:
        raise _invalid("category", f"{payload.category} is not a referral category of {payload.spm_field.value}.")
    if payload.member_id is not None and (household.member_id is None or household.member_status != "active"):
        raise _invalid("member_id", "Not an active member of this household.")
    referral = Referral(
        household_id=household.id, member_id=payload.member_id,
        member_nik_masked=household.member_nik_masked, posyandu_id=household.posyandu_id,
        village_code=household.village_code, spm_field=payload.spm_field.value, category=payload.category,
        urgency=urgency.value, reason=payload.reason, origin="manual",
        status=(Status.DRAFT if payload.draft else Status.REQUESTED).value, created_by=principal.sub,
        created_at=now, updated_at=now)
    if not payload.draft:
        await start_routed_clocks(session, referral, household, now)
    await insert_created(session, referral, new_event(ev.REFERRAL_CREATED, referral, action="create"),
                         actor=principal, at=now, reason=payload.reason)
    return referral


async def create_from_need(*, session: AsyncSession, need: household_events.NeedData, draft_categories: frozenset[str],
                           now: datetime) -> Referral | None:
    """One referral per detected need (None when it exists already); `draft` for the configured categories."""
    category = CATEGORIES.get(need.category)
    urgency = need.urgency if need.urgency in {u.value for u in Urgency} else (
        category.default_urgency.value if category else Urgency.NORMAL.value)
    draft = need.category in draft_categories
    referral = Referral(
        need_id=need.need_id, household_id=need.household_id, member_id=need.member_id,
        member_nik_masked=need.member_nik_masked, posyandu_id=need.posyandu_id, village_code=need.village_code,
        spm_field=need.spm_field.value, category=need.category, urgency=urgency,
        reason=f"Detected automatically: {category.label}" if category else "Detected automatically",
        evidence=need.evidence, origin="need", status=(Status.DRAFT if draft else Status.REQUESTED).value,
        created_by=SYSTEM.sub, created_at=now, updated_at=now)
    if not draft:
        await _route(session, referral, now)
    if not await insert_created(session, referral, new_event(ev.REFERRAL_CREATED, referral, action="create"),
                                actor=SYSTEM, at=now, reason=referral.reason):
        return None  # the need has its referral (another event of it came first): nothing was written
    return referral


async def need_resolved(*, session: AsyncSession, need_id: uuid.UUID, now: datetime) -> Referral | None:
    """The need no longer holds: an open referral gets a system note and an event; closing it stays a person's call."""
    referral = (await session.execute(select(Referral).where(Referral.need_id == need_id)
                                      .with_for_update())).scalars().first()
    if referral is None or referral.status in CLOSED or referral.need_resolved_at is not None:
        return None
    referral.need_resolved_at = now
    referral.version += 1
    referral.updated_at = now
    await session.flush()
    await write_note(session, referral, author=SYSTEM.sub, author_role=SYSTEM.role.value, side=SYSTEM_SIDE, now=now,
                     text="The household data no longer shows this need (resolved by a later observation). "
                          "The agency or the posyandu may close the referral.")
    await emit(session, ev.REFERRAL_NEED_RESOLVED, referral, action="need-resolved")
    return referral


async def transition(*, session: AsyncSession, principal: Principal, referral: Referral, action: Action,
                     body: ActionBody, if_match: str | None, now: datetime) -> Referral:
    """Moves a referral the caller may read through its lifecycle. Its row is locked (dependencies.LockedReferral),
    so two concurrent moves cannot both succeed."""
    rule = RULES[action]
    if side_of(principal, referral) is not rule.side:
        who = "the assigned agency" if rule.side is Side.AGENCY else "the referral's posyandu"
        raise Forbidden(f"Only {who} may {action.value} this referral.")
    check_if_match(if_match, referral.version)
    if referral.status not in rule.sources:
        raise IllegalTransition(f"A referral that is {referral.status} cannot be {action.value}ed.",
                                current_status=referral.status, action=action.value,
                                allowed_from=sorted(s.value for s in rule.sources))
    if missing := [name for name in rule.needs if getattr(body, name) is None]:
        raise ValidationFailed(f"{action.value} needs {' and '.join(missing)}.",
                               errors=[{"field": name, "message": "required for this action"} for name in missing])
    from_status, from_agency_id = referral.status, referral.agency_id
    referral.status = rule.target.value
    if action is Action.SUBMIT:
        await _route(session, referral, now)
    elif action is Action.REASSIGN:
        assert body.agency_id is not None
        await _reassign(session, referral, body.agency_id, now)
    if action in RESPONSES and referral.responded_at is None:
        referral.responded_at = now
    if rule.target in CLOSED:
        referral.closed_at = now
    if action is Action.COMPLETE:
        referral.outcome = body.outcome
    referral.version += 1
    referral.updated_at = now
    await session.flush()
    record_transition(session, referral, action.value, actor=principal, at=now, from_status=from_status,
                      from_agency_id=from_agency_id, reason=body.reason, outcome=body.outcome)
    if action is Action.REASSIGN:
        await emit(session, ev.REFERRAL_REASSIGNED, referral, action=action.value, previous_agency_id=from_agency_id)
    else:
        await emit(session, ev.REFERRAL_STATUS_CHANGED, referral, action=action.value)
    return referral


#: Why an agency may not take a referral, by the routing condition it fails.
_UNMET = {"active": "it is not active",
          "field": "it does not serve {spm_field}",
          "jurisdiction": "its jurisdiction does not hold village {village_code}"}


async def _reassign(session: AsyncSession, referral: Referral, agency_id: uuid.UUID, now: datetime) -> None:
    # Only to an agency the router could have chosen: any other would read the family's full NIKs.
    unmet = await unmet_coverage(session, agency_id, spm_field=referral.spm_field, village_code=referral.village_code)
    if unmet is None:
        raise _invalid("agency_id", f"There is no agency {agency_id} known to this service.")
    if unmet:
        why = " and ".join(_UNMET[name] for name in unmet).format(spm_field=referral.spm_field,
                                                                 village_code=referral.village_code)
        raise _invalid("agency_id", f"Agency {agency_id} may not take this referral: {why}.")
    # An escalated referral may be handed back to its own agency: that ends the escalation with fresh deadlines.
    if agency_id == referral.agency_id and referral.escalated_to_agency_id is None:
        raise _invalid("agency_id", "The referral is already assigned to this agency.")
    referral.agency_id = agency_id
    await start_clocks(session, referral, now)


async def route_waiting(*, session: AsyncSession, agency: KnownAgency, now: datetime) -> list[Referral]:
    """Routes the unrouted referrals this agency could now be responsible for (it appeared or changed)."""
    if agency.status != "active":
        return []
    waiting = (await session.execute(
        select(Referral).where(col(Referral.agency_id).is_(None), Referral.status == Status.REQUESTED.value,
                               col(Referral.spm_field).in_(agency.spm_fields),
                               col(Referral.village_code).startswith(agency.jurisdiction_code))
        .order_by(col(Referral.created_at)).with_for_update())).scalars().all()
    routed = []
    for referral in waiting:
        if await _route(session, referral, now):
            referral.version += 1
            referral.updated_at = now
            await session.flush()
            record_transition(session, referral, "route", actor=SYSTEM, at=now, from_status=referral.status)
            await emit(session, ev.REFERRAL_ROUTED, referral, action="route")
            routed.append(referral)
    return routed


#: Open states with an agency's clocks running (a draft has no agency yet).
_SUBMITTED = [s.value for s in OPEN - {Status.DRAFT}]


async def _hand_over(session: AsyncSession, referral: Referral, *, action: str, reason: str,
                     now: datetime) -> None:
    """Gives a referral to the agency that owns its route now (the router decides) or leaves it unrouted; either
    way back to `requested`, as a reassignment: the new agency answers afresh. A history entry and an event."""
    from_status, from_agency_id = referral.status, referral.agency_id
    referral.status = Status.REQUESTED.value
    if not await _route(session, referral, now):
        referral.agency_id = None
        referral.respond_by = referral.complete_by = referral.escalate_at = referral.responded_at = None
        referral.overdue_at = referral.escalated_at = referral.escalated_to_agency_id = None
    referral.version += 1
    referral.updated_at = now
    await session.flush()
    record_transition(session, referral, action, actor=SYSTEM, at=now, from_status=from_status,
                      from_agency_id=from_agency_id, reason=reason)
    event = (ev.REFERRAL_UNROUTED if referral.agency_id is None
             else ev.REFERRAL_ROUTED if from_agency_id is None else ev.REFERRAL_REASSIGNED)
    await emit(session, event, referral, action=action, previous_agency_id=from_agency_id)


def _reroute_reason(agency: KnownAgency, unmet: list[str], referral: Referral) -> str:
    if "active" in unmet:
        return "agency deactivated"
    if "field" in unmet:
        return f"agency no longer serves {referral.spm_field}"
    return f"agency's jurisdiction {agency.jurisdiction_code} no longer holds village {referral.village_code}"


async def reroute_from(*, session: AsyncSession, agency: KnownAgency, now: datetime) -> list[Referral]:
    """The agency was deactivated or lost a field or a region: each open referral it may no longer hold (by the
    router's `coverage`) goes to the agency that owns the route now, or waits unrouted for the pembina to see; one
    it was escalated to is escalated to the field's province agency now (or to none). Whatever the order or the
    number of deliveries, only what the agency fails today moves."""
    moved = []
    held = (await session.execute(
        select(Referral).where(held_by(agency.id), col(Referral.status).in_(_SUBMITTED))
        .order_by(col(Referral.created_at), col(Referral.id)).with_for_update())).scalars().all()
    for referral in held:
        unmet = await unmet_coverage(session, agency.id, spm_field=referral.spm_field,
                                     village_code=referral.village_code)
        if not unmet:
            continue
        reason = _reroute_reason(agency, unmet, referral)
        if referral.agency_id == agency.id:
            await _hand_over(session, referral, action="reroute", reason=reason, now=now)
        else:
            province = await province_agency(session, spm_field=referral.spm_field,
                                             village_code=referral.village_code)
            referral.escalated_to_agency_id = province.id if province is not None else None
            referral.version += 1
            referral.updated_at = now
            await session.flush()
            record_transition(session, referral, "re-escalate", actor=SYSTEM, at=now, from_status=referral.status,
                              from_agency_id=referral.agency_id, reason=f"the agency it was escalated to: {reason}")
            await emit(session, ev.REFERRAL_ESCALATED, referral, action="re-escalate")
        moved.append(referral)
    return moved


async def household_moved(*, session: AsyncSession, household_id: uuid.UUID, posyandu_id: uuid.UUID,
                          village_code: str, policy: MovePolicy, now: datetime) -> list[Referral]:
    """The household moved: its open referrals follow the new posyandu and village (the kader there sees them).
    Under `follow` a submitted referral whose route changed goes to the new route's agency (or waits unrouted);
    under `stay` it keeps its agency, with a history entry saying so. Only referrals not yet at the new place
    move, so a redelivered event moves nothing twice."""
    moved = []
    rows = (await session.execute(
        select(Referral).where(Referral.household_id == household_id,
                               col(Referral.status).in_([s.value for s in OPEN]),
                               sa.or_(col(Referral.posyandu_id) != posyandu_id,
                                      col(Referral.village_code) != village_code))
        .order_by(col(Referral.created_at), col(Referral.id)).with_for_update())).scalars().all()
    for referral in rows:
        where = f"household moved to posyandu {posyandu_id}, village {village_code}"
        referral.posyandu_id, referral.village_code = posyandu_id, village_code
        # An unrouted referral has no agency to keep: it looks for one at the new place under either policy.
        if referral.status != Status.DRAFT.value and (policy is MovePolicy.FOLLOW or referral.agency_id is None):
            route = await responsible_agency(session, spm_field=referral.spm_field, village_code=village_code,
                                             category=referral.category)
            if (route.id if route is not None else None) != referral.agency_id:
                await _hand_over(session, referral, action="household-move", reason=where, now=now)
                moved.append(referral)
                continue
        kept = (" (the route is unchanged)" if policy is MovePolicy.FOLLOW or referral.agency_id is None
                else "; the referral stays with its agency (REFERRAL_MOVE_POLICY=stay)")
        referral.version += 1
        referral.updated_at = now
        await session.flush()
        record_transition(session, referral, "household-move", actor=SYSTEM, at=now, from_status=referral.status,
                          from_agency_id=referral.agency_id, reason=where + kept)
        await emit(session, ev.REFERRAL_STATUS_CHANGED, referral, action="household-move")
        moved.append(referral)
    return moved


async def republish(*, session: AsyncSession, spm_field: SpmField, since: datetime | None) -> int:
    """Re-sends the current state of every open, submitted referral of a field as snapshots (late-joining agencies)."""
    query = select(Referral).where(Referral.spm_field == spm_field.value,
                                   col(Referral.status).in_([s.value for s in OPEN - {Status.DRAFT}]))
    if since is not None:
        query = query.where(col(Referral.created_at) >= since)
    count = 0
    for referral in (await session.execute(query.order_by(col(Referral.created_at), col(Referral.id)))).scalars():
        await emit(session, ev.REFERRAL_SNAPSHOT, referral, action="snapshot")
        count += 1
    return count
