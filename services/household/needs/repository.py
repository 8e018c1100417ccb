"""The SQL of the need refresh: a household as the rules read it, in one statement, and its need and outbox writes,
in another."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.household.beneficiaries.repository import programme_aid
from services.household.immunization.status import GivenDose
from services.household.measurements.repository import growth_of
from services.household.needs.rules import GrowthSnapshot, ProgrammeAid
from services.household.profiles.repository import typed_profiles
from services.household.tables import Need
from shared.events.topics import SpmField

# Each part is a JSON array of arrays, in the order and with the filters of the part's own reader: the active
# members (no order, as `select(Member)`), the measurements (`growth_snapshots`), the current profiles
# (`current_profiles`), the active members' live doses (`live_doses`), the programme aid (`programme_aid_of`) and
# the open needs, locked as `refresh_needs` always locked them. JSON keeps jsonb's key order and, from PostgreSQL 12
# on, every double's exact value.
_READ = """
SELECT
  (SELECT json_agg(json_build_array(m.id, m.household_id, m.nik, m.sex, m.birth_date, m.relationship, m.pregnant,
                                    m.expected_delivery_date, m.disability, m.status, m.version))
   FROM members m WHERE m.household_id = $1 AND m.status = 'active'),
  (SELECT json_agg(json_build_array(g.member_id, g.measured_on, g.waz, g.haz, g.whz, g.muac_cm, g.kms_signal)
                   ORDER BY g.member_id, g.measured_on, g.recorded_at)
   FROM measurements g WHERE g.household_id = $1),
  (SELECT json_agg(json_build_array(p.spm_field, p.data, p.version) ORDER BY p.spm_field)
   FROM (SELECT DISTINCT ON (spm_field) spm_field, data, version FROM profile_versions WHERE household_id = $1
         ORDER BY spm_field, version DESC) p),
  (SELECT json_agg(json_build_array(d.member_id, d.vaccine, d.dose_number, d.given_on)
                   ORDER BY d.given_on, d.vaccine, d.dose_number)
   FROM immunization_doses d
   WHERE d.status = 'active'
     AND d.member_id IN (SELECT id FROM members WHERE household_id = $1 AND status = 'active')),
  (SELECT json_agg(json_build_array(a.programme_id, a.spm_field, a.service_type, a.period_start, a.period_end)
                   ORDER BY a.programme_id)
   FROM (SELECT b.programme_id, p.spm_field, p.service_type, min(b.period_start) AS period_start,
                max(b.period_end) AS period_end
         FROM beneficiaries b JOIN programmes p ON p.id = b.programme_id
         WHERE b.household_id = $1 AND b.status = 'confirmed' AND p.status <> 'cancelled'
         GROUP BY b.programme_id, p.spm_field, p.service_type) a),
  (SELECT json_agg(json_build_array(n.id, n.member_id, n.spm_field, n.category, n.urgency, n.evidence, n.status,
                                    n.detected_at, n.resolved_at, n.resolution))
   FROM (SELECT * FROM needs WHERE household_id = $1 AND status = 'open' FOR UPDATE) n)
"""

# $1 the household; $2-$8 the needs detected; $9 when resolved, $10 the needs resolved; $11-$13 the needs changed;
# $14-$18 the outbox rows, in publishing order. `Also` puts a write path's own rows before these (from $19 on).
_WRITE = """
detected AS (
  INSERT INTO needs (id, household_id, member_id, spm_field, category, urgency, evidence, status, detected_at)
  SELECT u.id, $1, u.member_id, u.spm_field, u.category, u.urgency, u.evidence::jsonb, 'open', u.detected_at
  FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])
          AS u(id, member_id, spm_field, category, urgency, evidence, detected_at)),
resolved AS (
  UPDATE needs SET status = 'resolved', resolved_at = $9 WHERE id = ANY($10::uuid[])),
changed AS (
  UPDATE needs n SET urgency = u.urgency, evidence = u.evidence::jsonb
  FROM unnest($11::uuid[], $12::text[], $13::text[]) AS u(id, urgency, evidence) WHERE n.id = u.id)
INSERT INTO outbox (event_id, event_type, topic, key, payload)
SELECT u.event_id, u.event_type, u.topic, u.key, u.payload
FROM unnest($14::uuid[], $15::text[], $16::text[], $17::text[], $18::bytea[]) WITH ORDINALITY
        AS u(event_id, event_type, topic, key, payload, n)
ORDER BY u.n
"""


@dataclass(slots=True)
class MemberRow:
    """An active member as the rules and the need events read it (`MemberFacts`)."""

    id: uuid.UUID
    household_id: uuid.UUID
    nik: str | None
    sex: str
    birth_date: date
    relationship: str
    pregnant: bool
    expected_delivery_date: date | None
    disability: str
    status: str
    version: int


@dataclass(frozen=True, slots=True)
class HouseholdRead:
    """What `read_household` read, decoded as each part's own reader returns it."""

    members: list[MemberRow]
    growth: dict[uuid.UUID, GrowthSnapshot]
    profiles: dict[SpmField, BaseModel]
    #: The active members' live doses, oldest first, by member (a member without one is absent).
    doses: dict[uuid.UUID, list[GivenDose]]
    programme_aid: list[ProgrammeAid]
    #: The open needs (locked until the transaction ends), as rows not in the session.
    open_needs: list[Need]
    #: The current version of each profile recorded (while the household's row is locked, the next is one more).
    profile_versions: dict[SpmField, int]


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value is not None else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value is not None else None


def _datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _parts(value: str | list[Any] | None) -> list[list[Any]]:
    if value is None:
        return []
    return orjson.loads(value) if isinstance(value, str) else value


async def read_household(session: AsyncSession, household_id: uuid.UUID) -> HouseholdRead:
    """A household's active members, growth inputs, current profiles, live doses, programme aid and open needs
    (locked), in one statement."""
    conn = await session.connection()
    members, measurements, profiles, doses, aid, needs = (
        _parts(part) for part in (await conn.exec_driver_sql(_READ, (household_id,))).one())
    given: dict[uuid.UUID, list[GivenDose]] = {}
    for member_id, vaccine, dose_number, given_on in doses:
        given.setdefault(uuid.UUID(member_id), []).append(
            GivenDose(vaccine=vaccine, dose=dose_number, given_on=date.fromisoformat(given_on)))
    return HouseholdRead(
        members=[MemberRow(uuid.UUID(i), uuid.UUID(h), nik, sex, date.fromisoformat(birth), relationship, pregnant,
                           _date(due), disability, status, version)
                 for i, h, nik, sex, birth, relationship, pregnant, due, disability, status, version in members],
        growth=growth_of((uuid.UUID(m), date.fromisoformat(on), waz, haz, whz, muac, signal)
                         for m, on, waz, haz, whz, muac, signal in measurements),
        profiles=typed_profiles((field, data) for field, data, _ in profiles),
        doses=given,
        programme_aid=programme_aid((uuid.UUID(p), field, service, date.fromisoformat(start),
                                     date.fromisoformat(end)) for p, field, service, start, end in aid),
        open_needs=[Need(id=uuid.UUID(i), household_id=household_id, member_id=_uuid(member), spm_field=field,
                         category=category, urgency=urgency, evidence=evidence, status=status,
                         detected_at=datetime.fromisoformat(detected), resolved_at=_datetime(resolved),
                         resolution=resolution)
                    for i, member, field, category, urgency, evidence, status, detected, resolved, resolution
                    in needs],
        profile_versions={SpmField(field): version for field, _, version in profiles})


@dataclass(frozen=True, slots=True)
class Also:
    """A write path's own rows, written by the need refresh's statement before the needs (one round trip for the
    whole use case): `ctes`, `name AS (INSERT ...)` clauses whose parameters start at $19 ($1 is the household)."""

    ctes: str
    args: tuple[object, ...]


async def write_needs(session: AsyncSession, household_id: uuid.UUID, *, detected: Sequence[Need],
                      resolved: Sequence[Need], resolved_at: datetime, changed: Sequence[Need],
                      outbox: Sequence[tuple[Any, ...]], also: Also | None = None) -> None:
    """Writes `also`'s rows, inserts the needs detected, resolves and updates the others, and writes the outbox rows
    (`outbox_rows`), in this order, in one statement; nothing when there is nothing to write."""
    if not (detected or resolved or changed or outbox or also):
        return
    columns = [list(column) for column in zip(*outbox, strict=True)] if outbox else [[] for _ in range(5)]
    conn = await session.connection()
    await conn.exec_driver_sql("WITH " + (f"{also.ctes},\n" if also else "") + _WRITE, (
        household_id, [n.id for n in detected], [n.member_id for n in detected], [n.spm_field for n in detected],
        [n.category for n in detected], [n.urgency for n in detected],
        [json.dumps(n.evidence) for n in detected], [n.detected_at for n in detected],
        resolved_at, [n.id for n in resolved],
        [n.id for n in changed], [n.urgency for n in changed], [json.dumps(n.evidence) for n in changed],
        *columns, *(also.args if also else ())))
