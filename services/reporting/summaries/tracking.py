"""The consumer's side of the summaries: each projection handler wrapped so that, in the same transaction as
the inbox row, the contributions of the aggregates its events touch are read before and after it and the
difference is added ("new contribution minus old"). A stale or redelivered event leaves the projection rows,
and with them the contributions, as they were: it adds nothing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.summaries import store
from services.reporting.summaries.store import Affected
from shared.consumer import Batched, Handler
from shared.events import household as ev
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import CloudEvent

Finder = Callable[[AsyncSession, list[CloudEvent]], Awaitable[Affected]]


def _ids(events: list[CloudEvent], name: str) -> set[uuid.UUID]:
    """An id field of the events' data, validated as the handler validates it (a bad event fails alike)."""
    return {getattr(CATALOGUE[e.type].parse(e), name) for e in events}


async def _homes_of(session: AsyncSession, member_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """The households the members belong to now (before the event moves them)."""
    if not member_ids:
        return set()
    rows = await session.execute(sa.text("SELECT household_id FROM members WHERE id = ANY(CAST(:ids AS uuid[]))"),
                                 {"ids": sorted(member_ids)})
    return set(rows.scalars())


async def _households(session: AsyncSession, events: list[CloudEvent]) -> Affected:
    """A household's village, status or registration: its own counts and the growth of the children measured
    there."""
    ids = _ids(events, "household_id")
    children = await session.execute(sa.text("SELECT DISTINCT member_id FROM measurements "
                                             "WHERE household_id = ANY(CAST(:ids AS uuid[]))"), {"ids": sorted(ids)})
    return Affected(households=ids, children=set(children.scalars()))


async def _members(session: AsyncSession, events: list[CloudEvent]) -> Affected:
    """A member's change counts in its household now and in the one it comes from; a move takes needs along."""
    members = [ev.MEMBER_UPDATED.parse(e) for e in events]  # every member event carries the member's data
    found = Affected(households={m.household_id for m in members})
    found.households |= await _homes_of(session, {m.member_id for m in members})
    for e in events:
        if e.type == ev.MEMBER_MOVED.name:
            found.needs |= set(ev.MEMBER_MOVED.parse(e).moved_need_ids or [])
    return found


async def _merges(session: AsyncSession, events: list[CloudEvent]) -> Affected:
    """A merged duplicate leaves its household's counts, its growth, and the social profiles that list it."""
    merges = [ev.MEMBER_MERGED.parse(e) for e in events]
    merged = {m.merged_id for m in merges}
    found = Affected(children=merged, households={h for m in merges for h in (m.merged_household_id,
                                                                               m.survivor_household_id)})
    found.households |= await _homes_of(session, merged)
    listing = await session.execute(sa.text(
        "SELECT DISTINCT household_id FROM profile_versions WHERE spm_field = 'sosial' "
        "AND jsonb_typeof(data -> 'members') = 'object' AND data -> 'members' ?| CAST(:keys AS text[])"),
        {"keys": [str(i) for i in merged]})
    found.households |= set(listing.scalars())
    return found


async def _profiles(session: AsyncSession, events: list[CloudEvent]) -> Affected:
    return Affected(households=_ids(events, "household_id"))


async def _measurements(session: AsyncSession, events: list[CloudEvent]) -> Affected:
    return Affected(children=_ids(events, "member_id"))


async def _member_records(session: AsyncSession, events: list[CloudEvent]) -> Affected:
    """Visits and doses: the household recorded, and the member's household now (KMS book, vaccines)."""
    found = Affected(households=_ids(events, "household_id"))
    found.households |= await _homes_of(session, _ids(events, "member_id"))
    return found


async def _needs(session: AsyncSession, events: list[CloudEvent]) -> Affected:
    return Affected(needs=_ids(events, "need_id"))


async def referral_finder(session: AsyncSession, events: list[CloudEvent]) -> Affected:
    return Affected(referrals=_ids(events, "referral_id"))


async def _sessions(session: AsyncSession, events: list[CloudEvent]) -> Affected:
    return Affected(sessions=_ids(events, "session_id"))


#: Which aggregates each household event type may change.
HOUSEHOLD_FINDERS: dict[str, Finder] = {
    **{t.name: _households for t in (ev.HOUSEHOLD_REGISTERED, ev.HOUSEHOLD_UPDATED, ev.HOUSEHOLD_MOVED,
                                     ev.HOUSEHOLD_CLOSED)},
    **{t.name: _members for t in (ev.MEMBER_ADDED, ev.MEMBER_UPDATED, ev.MEMBER_DIED, ev.MEMBER_MOVED_OUT,
                                  ev.MEMBER_MOVED)},
    ev.MEMBER_MERGED.name: _merges,
    ev.PROFILE_UPDATED.name: _profiles,
    ev.MEASUREMENT_RECORDED.name: _measurements,
    ev.NEED_DETECTED.name: _needs,
    ev.NEED_RESOLVED.name: _needs,
    ev.SESSION_OPENED.name: _sessions,
    ev.SESSION_CLOSED.name: _sessions,
    ev.VISIT_RECORDED.name: _member_records,
    ev.IMMUNIZATION_RECORDED.name: _member_records,
    ev.IMMUNIZATION_VOIDED.name: _member_records,
}


def _tracked(apply: Callable[[AsyncSession, list[CloudEvent]], Awaitable[None]],
             finder: Finder) -> Batched:
    async def tracked(session: AsyncSession, events: list[CloudEvent]) -> None:
        affected = await finder(session, events)
        before = await store.contributions(session, affected)
        await apply(session, events)
        await store.add(session, await store.contributions(session, affected) - before)

    tracked.__doc__ = apply.__doc__
    return Batched(tracked)


def tracked(handlers: Mapping[str, Handler | Batched], finders: Mapping[str, Finder]) -> dict[str, Handler | Batched]:
    """The handlers, those of the event types in `finders` keeping the summaries too (each type's events of a
    batch in one call: a per-event handler is applied to them one by one, in delivery order)."""
    out: dict[str, Handler | Batched] = dict(handlers)
    for name, finder in finders.items():
        handler = handlers[name]
        if isinstance(handler, Batched):
            out[name] = _tracked(handler.apply, finder)
        else:
            async def each(session: AsyncSession, events: list[CloudEvent], handler: Handler = handler) -> None:
                for event in events:
                    await handler(session, event)

            each.__doc__ = handler.__doc__
            out[name] = _tracked(each, finder)
    return out
