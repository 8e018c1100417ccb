"""Set-based import of one chunk of households: checked together with a few `= ANY` / `unnest` queries, written
with COPY, with exactly the outcome of registering them one by one through `register()` (households/registration.py).

What `register()` does for one household, and where each step is here:
  1. role check at the posyandu (`may_register_at`), then the KK number's form -> `_alone` (no database);
  2. the posyandu is active, the village is an active village, the village is in the posyandu's district, no NIK
     twice in the household -> `_register`, from the posyandu and regions loaded once per chunk;
  3. no live household holds the KK number (the 409 names the holder to a caller who may read it);
  4. each member in order: pregnancy fields, then the NIK's form and agreement with the member (region mismatch
     flag) -> `check_new_member`, the registration's own check;
  5. no live member holds one of the NIKs -> from the holders loaded once per chunk; of several taken NIKs the
     lowest is reported (the order of the one-by-one query's unique index);
  6. the household, its KK history row, its members; duplicate flags against live members of the same village with
     the same name and birth date (and earlier members of the household) where a NIK is missing on either side;
  7. outbox: `household.registered`, one `member.added` per member, then a `need.detected` per detected need
     (`needs_of_new_household`, the rules as `refresh_needs` runs them).
Steps 3, 5 and 6 also see the households accepted earlier in the same chunk (`_Known.accept`); earlier chunks are
committed, so the queries see them. No audit row: `register()` writes one only when asked (POST /households audits
its response; the import returns no household). A household taken concurrently between the checks and
the COPY makes the COPY fail on a unique index: the caller then re-imports that chunk household by household.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.household.access import may_register_at, readable_among
from services.household.duplicates.service import likely_same
from services.household.households.checks import (
    check_distinct_niks,
    check_kk,
    check_posyandu,
    check_served_by,
    check_village,
    kk_taken,
    nik_taken,
)
from services.household.households.facts import household_data, member_data
from services.household.households.registration import (
    NewHousehold,
    NewMember,
    duplicates_within,
    new_household,
    new_members,
)
from services.household.households.schemas import HouseholdCreate
from services.household.imports.outcomes import Imported, Outcome, Refused, payload_of, problem_errors
from services.household.imports.parsing import Group, Item, Rejected
from services.household.needs.service import needs_of_new_household
from services.household.tables import KnownPosyandu, KnownRegion, Need
from shared.auth import Principal
from shared.db import driver_connection
from shared.errors import Forbidden, Problem
from shared.events import household as ev
from shared.events.envelope import CloudEvent
from shared.outbox import publish_many


class _Holder(NamedTuple):
    household_id: uuid.UUID
    member_id: uuid.UUID | None = None


class _Candidate(NamedTuple):
    group: Group
    payload: HouseholdCreate


def _alone(principal: Principal, group: Group) -> _Candidate | Refused:
    """What needs no database: the parser's errors, the schema, the role at the posyandu, the KK number's form."""
    errors = [error for row in group.rows for error in row.errors]
    if errors or group.blocked_by is not None:
        return Refused(group, errors)
    payload = payload_of(group)
    if isinstance(payload, list):
        return Refused(group, payload)
    try:
        if not may_register_at(principal, payload.posyandu_id):
            raise Forbidden("You may register households only at your own posyandu.")
        check_kk(payload.kk_number)
    except Problem as exc:
        return Refused(group, problem_errors(group, exc))
    return _Candidate(group, payload)


@dataclass
class _Known:
    """What the chunk's checks read, loaded once; `accept` adds each accepted household, as a flush would."""

    posyandu: dict[uuid.UUID, KnownPosyandu]
    regions: dict[str, KnownRegion]
    kk: dict[str, _Holder]
    niks: dict[str, _Holder]
    #: Live members by (lower(name) as PostgreSQL lowers it, birth date): (id, nik, village) each.
    same_person: dict[tuple[str, date], list[tuple[uuid.UUID, str | None, str]]]
    #: lower(name) as PostgreSQL computes it, for the chunk's names that are not ASCII.
    sql_lower: dict[str, str]
    #: The holders' households the importer may read (the 409 names those only), by the shared rule.
    readable: set[uuid.UUID]

    @classmethod
    async def load(cls, session: AsyncSession, conn: asyncpg.Connection, principal: Principal,
                   candidates: Sequence[_Candidate]) -> _Known:
        payloads = [c.payload for c in candidates]
        members = [m for p in payloads for m in p.members]
        posyandu = {r["id"]: KnownPosyandu(**dict(r)) for r in await conn.fetch(
            "SELECT id, village_code, name, status, version FROM known_posyandu WHERE id = ANY($1::uuid[])",
            list({p.posyandu_id for p in payloads}))}
        regions = {r["code"]: KnownRegion(**dict(r)) for r in await conn.fetch(
            "SELECT code, name, level, retired FROM known_regions WHERE code = ANY($1::text[])",
            list({p.village_code for p in payloads}))}
        kk = {r["kk_number"]: _Holder(r["id"]) for r in await conn.fetch(
            "SELECT kk_number, id FROM households WHERE kk_number = ANY($1::text[]) "
            "AND status = 'active'", list({p.kk_number for p in payloads}))}
        niks = {r["nik"]: _Holder(r["household_id"], r["id"]) for r in await conn.fetch(
            "SELECT nik, id, household_id FROM members WHERE nik = ANY($1::text[]) AND status = 'active'",
            list({m.nik for m in members if m.nik}))}
        keys = sorted({(m.name.lower(), m.birth_date) for m in members})
        same_person: dict[tuple[str, date], list[tuple[uuid.UUID, str | None, str]]] = {}
        # By name and birth date first (ix_members_name_birth), as flag_likely_duplicates queries them.
        for r in await conn.fetch(
                "WITH same_person AS MATERIALIZED (SELECT m.id, m.nik, m.household_id, lower(m.name) AS name, "
                "m.birth_date FROM unnest($1::text[], $2::date[]) AS k(name, birth_date) JOIN members m "
                "ON lower(m.name) = k.name AND m.birth_date = k.birth_date WHERE m.status = 'active') "
                "SELECT s.id, s.nik, s.name, s.birth_date, h.village_code FROM same_person s "
                "JOIN households h ON h.id = s.household_id",
                [k[0] for k in keys], [k[1] for k in keys]):
            same_person.setdefault((r["name"], r["birth_date"]), []).append((r["id"], r["nik"], r["village_code"]))
        odd = sorted({m.name for m in members if not m.name.isascii()})
        sql_lower = {r[0]: r[1] for r in await conn.fetch(
            "SELECT n, lower(n) FROM unnest($1::text[]) AS n", odd)} if odd else {}
        readable = await readable_among(session, principal, {h.household_id for h in [*kk.values(), *niks.values()]})
        return cls(posyandu, regions, kk, niks, same_person, sql_lower, readable)

    def accept(self, household: NewHousehold, members: list[NewMember]) -> None:
        self.kk[household.kk_number] = _Holder(household.id)
        # Registered at a posyandu the importer may register at, so one it reads.
        self.readable.add(household.id)
        for m in members:
            if m.nik:
                self.niks[m.nik] = _Holder(household.id, m.id)
            name = self.sql_lower.get(m.name) or m.name.lower()
            self.same_person.setdefault((name, m.birth_date), []).append((m.id, m.nik, household.village_code))


@dataclass
class _Writes:
    """The chunk's rows, in the order registration would have written them."""

    recorded_by: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    households: list[tuple[Any, ...]] = field(default_factory=list)
    kk_history: list[tuple[Any, ...]] = field(default_factory=list)
    members: list[tuple[Any, ...]] = field(default_factory=list)
    flags: list[tuple[Any, ...]] = field(default_factory=list)
    needs: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[CloudEvent] = field(default_factory=list)

    def add(self, h: NewHousehold, members: list[NewMember], flags: list[tuple[uuid.UUID, uuid.UUID]],
            needs: list[tuple[Need, CloudEvent]]) -> None:
        self.households.append((h.id, h.kk_number, h.village_code, h.posyandu_id, h.address, h.rt, h.rw,
                                h.latitude, h.longitude, h.status, h.needs_reassignment, h.version, h.created_by,
                                h.created_at, h.created_at))
        self.kk_history.append((h.id, h.kk_number, self.now, self.recorded_by))
        self.members += [(m.id, h.id, m.nik, m.name, m.sex, m.birth_date, m.relationship, m.pregnant,
                          m.expected_delivery_date, m.disability, m.status, m.nik_region_mismatch, m.version,
                          h.created_at, h.created_at) for m in members]
        self.flags += [(uuid.uuid4(), member_id, candidate_id, "open", self.now) for member_id, candidate_id in flags]
        self.needs += [(n.id, h.id, n.member_id, n.spm_field, n.category, n.urgency,
                        orjson.dumps(n.evidence).decode(), n.status, n.detected_at) for n, _ in needs]
        subject, region = str(h.id), h.village_code
        self.events.append(ev.HOUSEHOLD_REGISTERED.new(household_data(h), subject=subject, regioncode=region))
        self.events += [ev.MEMBER_ADDED.new(member_data(m), subject=subject, regioncode=region) for m in members]
        self.events += [event for _, event in needs]

    async def copy(self, session: AsyncSession, conn: asyncpg.Connection) -> None:
        if not self.households:
            return
        await conn.copy_records_to_table("households", records=self.households, columns=[
            "id", "kk_number", "village_code", "posyandu_id", "address", "rt", "rw", "latitude", "longitude",
            "status", "needs_reassignment", "version", "created_by", "created_at", "updated_at"])
        await conn.copy_records_to_table("kk_number_history", records=self.kk_history, columns=[
            "household_id", "kk_number", "valid_from", "recorded_by"])
        await conn.copy_records_to_table("members", records=self.members, columns=[
            "id", "household_id", "nik", "name", "sex", "birth_date", "relationship", "pregnant",
            "expected_delivery_date", "disability", "status", "nik_region_mismatch", "version", "created_at",
            "updated_at"])
        if self.flags:
            await conn.copy_records_to_table("duplicate_flags", records=self.flags, columns=[
                "id", "member_id", "candidate_id", "status", "created_at"])
        if self.needs:
            await conn.copy_records_to_table("needs", records=self.needs, columns=[
                "id", "household_id", "member_id", "spm_field", "category", "urgency", "evidence", "status",
                "detected_at"])
        await publish_many(session, self.events)  # by COPY too, in this order


def _register(principal: Principal, candidate: _Candidate, known: _Known, writes: _Writes,
              today: date) -> Outcome:
    """Steps 2-7 of `register()` for one household, against what the chunk knows."""
    group, payload = candidate
    try:
        posyandu = check_posyandu(known.posyandu.get(payload.posyandu_id), payload.posyandu_id)
        check_village(known.regions.get(payload.village_code), payload.village_code)
        check_served_by(posyandu, payload.village_code)
        check_distinct_niks(payload)
        if (holder := known.kk.get(payload.kk_number)) is not None:
            raise kk_taken(holder.household_id, may_read=holder.household_id in known.readable)
        household = new_household(principal, payload, writes.now)
        members = new_members(household, payload)
        taken = sorted((m.nik, f"members.{i}.nik") for i, m in enumerate(payload.members)
                       if m.nik and m.nik in known.niks)
        if taken:
            nik, nik_field = taken[0]
            holder = known.niks[nik]
            assert holder.member_id is not None
            raise nik_taken(nik_field, holder.member_id, holder.household_id,
                            may_read=holder.household_id in known.readable)
    except Problem as exc:
        return Refused(group, problem_errors(group, exc))
    flags = [(member.id, other) for member in members
             for other, nik, village in known.same_person.get((member.name.lower(), member.birth_date), ())
             if village == household.village_code and likely_same(member.nik, nik)]
    flags += duplicates_within(members)
    known.accept(household, members)
    writes.add(household, members, flags, needs_of_new_household(household, members, today=today))
    return Imported(group)


async def import_chunk(session: AsyncSession, principal: Principal, items: Sequence[Item],
                       today: date) -> list[Outcome]:
    """Checks and writes a chunk of the file in the session's transaction; the outcome of each item, in order.

    Raises asyncpg's UniqueViolationError when a concurrent registration took a KK number or NIK after the checks
    (the caller rolls the chunk back and imports it household by household)."""
    first = [item if isinstance(item, Rejected) else _alone(principal, item) for item in items]
    candidates = [c for c in first if isinstance(c, _Candidate)]
    if not candidates:
        return [c for c in first if not isinstance(c, _Candidate)]
    conn = await driver_connection(session)
    known = await _Known.load(session, conn, principal, candidates)
    writes = _Writes(principal.sub)
    outcomes = [_register(principal, c, known, writes, today) if isinstance(c, _Candidate) else c for c in first]
    await writes.copy(session, conn)
    return outcomes
