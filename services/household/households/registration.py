"""Registering one household with its members: the whole write in two statements.

The checks that need no database run first; one lookup reads the posyandu and the village; then one statement
writes the household, its KK history row, its members, their duplicate flags, the needs the rules find, the outbox
rows of every event and (for POST /households) the audit row. The unique indexes decide a taken KK number or NIK
(`ON CONFLICT DO NOTHING`, so a concurrent registration of the same number waits for the other's commit and is then
refused, never a 500); only then is the holder looked up, for the 409. The rows are plain objects, not ORM
instances (building and flushing those cost most of a registration's CPU), shared with the bulk import, which
writes the same rows set-based for a whole chunk (imports/bulk.py; the differential test holds the two equal).

The order of the checks, which decides which error a request with several problems gets, is the import's too:
the role at the posyandu, the KK number's form, the posyandu, the village, the village in the posyandu's district,
no NIK twice in the household, the KK number not taken, each member in order (pregnancy fields, the NIK's form and
agreement with the member), no NIK taken (the lowest of several).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.household.access import may_read, may_register_at
from services.household.duplicates.service import likely_same
from services.household.households.checks import (
    check_distinct_niks,
    check_kk,
    check_new_member,
    check_posyandu,
    check_served_by,
    check_village,
    kk_conflict,
    kk_holder,
    kk_taken,
    nik_conflict,
)
from services.household.households.facts import household_data, member_data
from services.household.households.schemas import HouseholdCreate
from services.household.needs.service import needs_of_new_household
from services.household.tables import KnownPosyandu, KnownRegion, Need
from shared.auth import Principal
from shared.errors import Forbidden, Problem
from shared.events import household as ev
from shared.events.envelope import CloudEvent
from shared.observability import request_id_var
from shared.outbox import outbox_rows


@dataclass(slots=True)
class NewHousehold:
    """A new household's row (a plain object: an ORM instance costs far more)."""

    kk_number: str
    village_code: str
    posyandu_id: uuid.UUID
    address: str | None
    rt: str | None
    rw: str | None
    latitude: float | None
    longitude: float | None
    created_by: str
    created_at: datetime
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    status: str = "active"
    needs_reassignment: bool = False
    version: int = 1

    @property
    def updated_at(self) -> datetime:
        return self.created_at


@dataclass(slots=True)
class NewMember:
    """A new member's row."""

    household_id: uuid.UUID
    nik: str | None
    name: str
    sex: str
    birth_date: date
    relationship: str
    pregnant: bool
    expected_delivery_date: date | None
    disability: str
    nik_region_mismatch: bool
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    status: str = "active"
    version: int = 1


def new_household(principal: Principal, payload: HouseholdCreate, now: datetime) -> NewHousehold:
    return NewHousehold(payload.kk_number, payload.village_code, payload.posyandu_id, payload.address, payload.rt,
                        payload.rw, payload.latitude, payload.longitude, principal.sub, now)


def new_members(household: NewHousehold, payload: HouseholdCreate) -> list[NewMember]:
    """The members' rows, each checked on its own in order (`check_new_member`); 422 on the first problem."""
    return [NewMember(household.id, m.nik, m.name, str(m.sex), m.birth_date, str(m.relationship), m.pregnant,
                      m.expected_delivery_date, str(m.disability),
                      check_new_member(household.village_code, f"members.{i}", m))
            for i, m in enumerate(payload.members)]


def duplicates_within(members: list[NewMember], lower: dict[str, str] | None = None) -> list[tuple[uuid.UUID,
                                                                                                   uuid.UUID]]:
    """Flags (member, earlier member) between members of one new household with the same name and birth date where
    a NIK is missing on either side; `lower`: lower-cased names as PostgreSQL lowers them, where they differ."""
    def key(m: NewMember) -> tuple[str, date]:
        return ((lower or {}).get(m.name) or m.name.lower(), m.birth_date)
    return [(m.id, earlier.id) for i, m in enumerate(members) for earlier in members[:i]
            if key(earlier) == key(m) and likely_same(m.nik, earlier.nik)]


LOOKUP = ("SELECT p.id, p.village_code, p.name, p.status, p.version, r.code, r.name, r.level, r.retired "
           "FROM (VALUES (1)) AS one LEFT JOIN known_posyandu p ON p.id = $1 "
           "LEFT JOIN known_regions r ON r.code = $2")

# $1-$11 the household; $12-$21 the members; $22 their lower-cased names; $23, $24 flags between the new members;
# $25-$31 the needs; $32-$36 the outbox rows (in publishing order). The dependent rows are written only when the
# household and all its members were (`written`): else the statement leaves the refused rows alone and the caller
# raises the 409, which rolls the rest back.
_WRITE = """
WITH h AS (
  INSERT INTO households (id, kk_number, village_code, posyandu_id, address, rt, rw, latitude, longitude, status,
                          needs_reassignment, version, created_by, created_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', false, 1, $10, $11, $11)
  ON CONFLICT (kk_number) WHERE status = 'active' DO NOTHING
  RETURNING id),
k AS (
  INSERT INTO kk_number_history (household_id, kk_number, valid_from, recorded_by) SELECT id, $2, $11, $10 FROM h),
m AS (
  INSERT INTO members (id, household_id, nik, name, sex, birth_date, relationship, pregnant, expected_delivery_date,
                       disability, status, nik_region_mismatch, version, created_at, updated_at)
  SELECT u.id, h.id, u.nik, u.name, u.sex, u.birth_date, u.relationship, u.pregnant, u.due, u.disability, 'active',
         u.mismatch, 1, $11, $11
  FROM h, unnest($12::uuid[], $13::text[], $14::text[], $15::text[], $16::date[], $17::text[], $18::bool[],
                 $19::date[], $20::text[], $21::bool[])
          AS u(id, nik, name, sex, birth_date, relationship, pregnant, due, disability, mismatch)
  ON CONFLICT (nik) WHERE nik IS NOT NULL AND status = 'active' DO NOTHING
  RETURNING id),
written AS (SELECT WHERE EXISTS (SELECT FROM h) AND (SELECT count(*) FROM m) = cardinality($12::uuid[])),
f AS (
  INSERT INTO duplicate_flags (id, member_id, candidate_id, status, created_at)
  SELECT gen_random_uuid(), u.id, o.id, 'open', $11
  FROM written, unnest($12::uuid[], $22::text[], $16::date[], $13::text[]) AS u(id, name, birth_date, nik)
  JOIN members o ON lower(o.name) = u.name AND o.birth_date = u.birth_date AND o.status = 'active'
  JOIN households oh ON oh.id = o.household_id AND oh.village_code = $3
  WHERE u.nik IS NULL OR o.nik IS NULL
  UNION ALL
  SELECT gen_random_uuid(), p.member_id, p.candidate_id, 'open', $11
  FROM written, unnest($23::uuid[], $24::uuid[]) AS p(member_id, candidate_id)),
n AS (
  INSERT INTO needs (id, household_id, member_id, spm_field, category, urgency, evidence, status, detected_at)
  SELECT u.id, $1, u.member_id, u.spm_field, u.category, u.urgency, u.evidence::jsonb, 'open', u.detected_at
  FROM written, unnest($25::uuid[], $26::uuid[], $27::text[], $28::text[], $29::text[], $30::text[],
                       $31::timestamptz[]) AS u(id, member_id, spm_field, category, urgency, evidence, detected_at)),
o AS (
  INSERT INTO outbox (event_id, event_type, topic, key, payload)
  SELECT u.event_id, u.event_type, u.topic, u.key, u.payload
  FROM written, unnest($32::uuid[], $33::text[], $34::text[], $35::text[], $36::bytea[]) WITH ORDINALITY
          AS u(event_id, event_type, topic, key, payload, n)
  ORDER BY u.n)
"""
_AUDIT = """,
a AS (
  INSERT INTO audit_log (actor, actor_role, action, resource_type, resource_id, subject_ref, purpose, request_id,
                         fields)
  SELECT $37, $38, 'register', 'household', $1::text, $1::text, 'registration by the kader', $39, $40::jsonb
  FROM written)
"""
_RESULT = "SELECT (SELECT count(*) FROM h), (SELECT count(*) FROM m)"
_WRITE_ONLY, _WRITE_AUDITED = _WRITE + _RESULT, _WRITE + _AUDIT + _RESULT


def events_of(household: NewHousehold, members: list[NewMember],
              needs: list[tuple[Need, CloudEvent]]) -> list[CloudEvent]:
    """A registration's events in publishing order: the household, each member, each need detected."""
    subject, region = str(household.id), household.village_code
    return [ev.HOUSEHOLD_REGISTERED.new(household_data(household), subject=subject, regioncode=region),
            *(ev.MEMBER_ADDED.new(member_data(m), subject=subject, regioncode=region) for m in members),
            *(event for _, event in needs)]


def write_statement(*, audited: bool) -> str:
    return _WRITE_AUDITED if audited else _WRITE_ONLY


def write_arguments(h: NewHousehold, members: list[NewMember], needs: list[tuple[Need, CloudEvent]],
                    outbox: list[tuple[Any, ...]], audit: tuple[str, str, str | None, list[str]] | None
                    ) -> tuple[object, ...]:
    """The parameters of `write_statement` (see `_WRITE`); `audit`: actor, role, request id and fields shown."""
    flags = duplicates_within(members)
    args: tuple[object, ...] = (
        h.id, h.kk_number, h.village_code, h.posyandu_id, h.address, h.rt, h.rw, h.latitude, h.longitude,
        h.created_by, h.created_at,
        [m.id for m in members], [m.nik for m in members], [m.name for m in members], [m.sex for m in members],
        [m.birth_date for m in members], [m.relationship for m in members], [m.pregnant for m in members],
        [m.expected_delivery_date for m in members], [m.disability for m in members],
        [m.nik_region_mismatch for m in members], [m.name.lower() for m in members],
        [f[0] for f in flags], [f[1] for f in flags],
        [n.id for n, _ in needs], [n.member_id for n, _ in needs], [n.spm_field for n, _ in needs],
        [n.category for n, _ in needs], [n.urgency for n, _ in needs],
        [orjson.dumps(n.evidence).decode() for n, _ in needs], [n.detected_at for n, _ in needs],
        *(list(column) for column in zip(*outbox, strict=True)))
    if audit is not None:
        actor, role, request_id, fields = audit
        args += (actor, role, request_id, orjson.dumps(fields).decode())
    return args


@dataclass(frozen=True, slots=True)
class Audit:
    """The audit row of a registration whose response shows the identifiers: `fields` it shows."""

    fields: list[str]


async def register(*, session: AsyncSession, principal: Principal, payload: HouseholdCreate, today: date,
                   audit: Audit | None = None) -> tuple[NewHousehold, list[NewMember]]:
    """Registers a household (KK) with its members at a posyandu the caller serves: its rows, duplicate flags,
    needs and events, and `audit`'s row, in the session's transaction; the household and members written."""
    if not may_register_at(principal, payload.posyandu_id):
        raise Forbidden("You may register households only at your own posyandu.")
    check_kk(payload.kk_number)
    conn = await session.connection()  # its first statement BEGINs the driver's transaction
    row: tuple[Any, ...] = tuple((await conn.exec_driver_sql(LOOKUP, (payload.posyandu_id, payload.village_code)))
                                 .one())
    posyandu = check_posyandu(KnownPosyandu(id=row[0], village_code=row[1], name=row[2], status=row[3],
                                            version=row[4]) if row[0] is not None else None, payload.posyandu_id)
    check_village(KnownRegion(code=row[5], name=row[6], level=row[7], retired=row[8]) if row[5] is not None
                  else None, payload.village_code)
    check_served_by(posyandu, payload.village_code)
    check_distinct_niks(payload)
    household = new_household(principal, payload, datetime.now(UTC))
    try:
        members = new_members(household, payload)
    except Problem:
        # A taken KK number is the 409 before any member's 422 (the import orders its checks so).
        if (holder := await kk_holder(session, household.kk_number)) is not None:
            raise kk_taken(holder, may_read=await may_read(session, principal, holder)) from None
        raise
    needs = needs_of_new_household(household, members, today=today)
    outbox = outbox_rows(session, events_of(household, members, needs))
    audit_row = None if audit is None else (principal.sub, principal.role.value, request_id_var.get(), audit.fields)
    households, written = tuple((await conn.exec_driver_sql(
        write_statement(audited=audit is not None), write_arguments(household, members, needs, outbox, audit_row))
    ).one())
    if not households:
        raise await kk_conflict(session, principal, household.kk_number)
    if written < len(members):
        raise await nik_conflict(session, principal, {f"members.{i}.nik": m.nik for i, m in enumerate(members)
                                                       if m.nik is not None}, None)
    return household, members
