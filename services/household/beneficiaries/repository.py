"""The SQL of beneficiary lists: matching rows to members and households, a household's programme aid, the aid
reports' selections."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.household.beneficiaries.tables import Beneficiary, KnownProgramme
from services.household.needs.rules import ProgrammeAid
from services.household.tables import Household, KkNumberHistory, Member
from shared.events.topics import SpmField


async def programme_aid_of(session: AsyncSession, household_id: uuid.UUID) -> list[ProgrammeAid]:
    """The programme lists that name the household (confirmed rows), as the need rules take them."""
    rows = await session.execute(
        sa.select(col(Beneficiary.programme_id), col(KnownProgramme.spm_field), col(KnownProgramme.service_type),
                  sa.func.min(Beneficiary.period_start), sa.func.max(Beneficiary.period_end))
        .join(KnownProgramme, col(KnownProgramme.id) == col(Beneficiary.programme_id))
        .where(col(Beneficiary.household_id) == household_id, col(Beneficiary.status) == "confirmed",
               col(KnownProgramme.status) != "cancelled")
        .group_by(col(Beneficiary.programme_id), col(KnownProgramme.spm_field), col(KnownProgramme.service_type))
        .order_by(col(Beneficiary.programme_id)))
    return programme_aid(rows.tuples())


def programme_aid(rows: Iterable[tuple[uuid.UUID, str, str, date, date]]) -> list[ProgrammeAid]:
    """(programme, field, service type, first start, last end) rows as the need rules take them."""
    return [ProgrammeAid(programme_id=r[0], spm_field=SpmField(r[1]), service_type=r[2], period_start=r[3],
                         period_end=r[4]) for r in rows]


@dataclass(frozen=True, slots=True)
class Candidate:
    member_id: uuid.UUID | None
    household_id: uuid.UUID
    nik: str | None = None


async def members_by_nik(session: AsyncSession, niks: Sequence[str]) -> dict[str, Candidate]:
    if not niks:
        return {}
    rows = await session.execute(sa.select(col(Member.nik), col(Member.id), col(Member.household_id))
                                 .join(Household, col(Household.id) == col(Member.household_id))
                                 .where(col(Member.nik).in_(list(niks)), col(Member.status) == "active",
                                        col(Household.status) == "active"))
    return {r[0]: Candidate(member_id=r[1], household_id=r[2], nik=r[0]) for r in rows.all() if r[0] is not None}


async def households_by_kk(session: AsyncSession, kk_numbers: Sequence[str]) -> dict[str, Candidate]:
    """Live households by their KK number, and by an earlier number of theirs (a list may predate a new card)."""
    if not kk_numbers:
        return {}
    current = await session.execute(sa.select(col(Household.kk_number), col(Household.id)).where(
        col(Household.kk_number).in_(list(kk_numbers)), col(Household.status) == "active"))
    found = {r[0]: Candidate(member_id=None, household_id=r[1]) for r in current.all()}
    earlier = await session.execute(
        sa.select(col(KkNumberHistory.kk_number), col(KkNumberHistory.household_id))
        .join(Household, col(Household.id) == col(KkNumberHistory.household_id))
        .where(col(KkNumberHistory.kk_number).in_([k for k in kk_numbers if k not in found]),
               col(Household.status) == "active")
        .order_by(col(KkNumberHistory.valid_from).desc()))
    for kk, household_id in earlier.all():
        found.setdefault(kk, Candidate(member_id=None, household_id=household_id))
    return found


async def members_by_name_and_birth(session: AsyncSession, keys: Sequence[tuple[str, date]],
                                    region_codes: Sequence[str]) -> dict[tuple[str, date], list[Candidate]]:
    """Live members by (lower-cased name, birth date), the duplicate check's key, in the programme's regions."""
    if not keys or not region_codes:
        return {}
    rows = await session.execute(
        sa.select(sa.func.lower(Member.name), col(Member.birth_date), col(Member.id), col(Member.household_id),
                  col(Member.nik))
        .join(Household, col(Household.id) == col(Member.household_id))
        .where(sa.tuple_(sa.func.lower(Member.name), col(Member.birth_date)).in_(sorted(set(keys))),
               col(Member.status) == "active", col(Household.status) == "active",
               sa.or_(*(col(Household.village_code).startswith(code) for code in region_codes)))
        .order_by(col(Member.id)))
    found: dict[tuple[str, date], list[Candidate]] = {}
    for name, birth, member_id, household_id, nik in rows.all():
        found.setdefault((name, birth), []).append(Candidate(member_id=member_id, household_id=household_id, nik=nik))
    return found


async def listed_households(session: AsyncSession, programme_id: uuid.UUID) -> set[uuid.UUID]:
    """The households a programme's current list counts as receiving (confirmed rows)."""
    rows = await session.execute(sa.select(col(Beneficiary.household_id)).distinct().where(
        col(Beneficiary.programme_id) == programme_id, col(Beneficiary.status) == "confirmed"))
    return {r[0] for r in rows.all() if r[0] is not None}


# --- the aid reports ------------------------------------------------------------------------------------------

#: The current sosial profile of each household of the scope, and its distinct recorded aid codes.
_SOSIAL = """
sosial AS (
    SELECT DISTINCT ON (pv.household_id) pv.household_id,
           (pv.data -> 'household' ->> 'dtsen_decile')::int AS decile,
           CASE WHEN jsonb_typeof(pv.data -> 'household' -> 'aid_received') = 'array'
                THEN pv.data -> 'household' -> 'aid_received' END AS aid
    FROM profile_versions pv
    WHERE pv.spm_field = 'sosial' AND pv.household_id IN (SELECT id FROM scope)
    ORDER BY pv.household_id, pv.version DESC
)"""

_SCOPE = """
scope AS (
    SELECT h.id FROM households h
    WHERE h.status = 'active' AND h.village_code LIKE :prefix
      AND (CAST(:posyandu_ids AS uuid[]) IS NULL OR h.posyandu_id = ANY(CAST(:posyandu_ids AS uuid[])))
      AND (CAST(:after AS uuid) IS NULL OR h.id > CAST(:after AS uuid))
)"""

_OVERLAPS = sa.text(f"""
WITH {_SCOPE},
listed AS (
    SELECT b.household_id, count(DISTINCT b.programme_id) AS n
    FROM beneficiaries b JOIN programmes p ON p.id = b.programme_id
    WHERE b.status = 'confirmed' AND p.status <> 'cancelled' AND p.spm_field = :spm_field
      AND b.period_start <= :until AND b.period_end >= :since AND b.household_id IN (SELECT id FROM scope)
    GROUP BY b.household_id
), {_SOSIAL}
SELECT l.household_id
FROM listed l LEFT JOIN sosial s ON s.household_id = l.household_id AND :spm_field = 'sosial'
WHERE l.n + coalesce((SELECT count(DISTINCT code) FROM jsonb_array_elements_text(s.aid) AS a(code)), 0) >= 2
ORDER BY l.household_id
LIMIT :limit
""")

_UNSERVED = sa.text(f"""
WITH {_SCOPE}, {_SOSIAL}
SELECT sc.id, s.decile, s.aid IS NOT NULL AS aid_recorded
FROM scope sc LEFT JOIN sosial s ON s.household_id = sc.id
WHERE (s.decile <= :max_decile
       OR EXISTS (SELECT 1 FROM needs n WHERE n.household_id = sc.id AND n.status = 'open'
                                          AND n.spm_field = 'sosial'))
  AND coalesce(jsonb_array_length(s.aid), 0) = 0
  AND NOT EXISTS (SELECT 1 FROM beneficiaries b JOIN programmes p ON p.id = b.programme_id
                  WHERE b.household_id = sc.id AND b.status = 'confirmed' AND p.status <> 'cancelled'
                    AND b.period_start <= :until AND b.period_end >= :since)
ORDER BY sc.id
LIMIT :limit
""")


def _scope_params(prefix: str | None, posyandu_ids: Sequence[uuid.UUID] | None, after: uuid.UUID | None,
                  limit: int, since: date, until: date) -> dict[str, Any]:
    return {"prefix": (prefix or "") + "%", "posyandu_ids": list(posyandu_ids) if posyandu_ids is not None else None,
            "after": after, "limit": limit, "since": since, "until": until}


async def overlapping_households(session: AsyncSession, *, spm_field: str, prefix: str | None,
                                 posyandu_ids: Sequence[uuid.UUID] | None, since: date, until: date,
                                 after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
    """Households with two or more aid sources in the field in [since, until], one at least a programme list."""
    rows = await session.execute(_OVERLAPS, {**_scope_params(prefix, posyandu_ids, after, limit, since, until),
                                             "spm_field": spm_field})
    return [r[0] for r in rows.all()]


async def unserved_households(session: AsyncSession, *, max_decile: int, prefix: str | None,
                              posyandu_ids: Sequence[uuid.UUID] | None, since: date, until: date,
                              after: uuid.UUID | None, limit: int) -> list[tuple[uuid.UUID, int | None, bool]]:
    """Needy households (decile at most `max_decile`, or an open sosial need) with no aid recorded in the profile
    and on no programme list in [since, until]: (id, decile, whether the profile records aid at all)."""
    rows = await session.execute(_UNSERVED, {**_scope_params(prefix, posyandu_ids, after, limit, since, until),
                                             "max_decile": max_decile})
    return [(r[0], r[1], bool(r[2])) for r in rows.all()]


async def sosial_aid_of(session: AsyncSession, household_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """The distinct aid codes of each household's current sosial profile."""
    if not household_ids:
        return {}
    rows = await session.execute(sa.text("""
        SELECT DISTINCT ON (household_id) household_id, data -> 'household' -> 'aid_received'
        FROM profile_versions WHERE spm_field = 'sosial' AND household_id = ANY(:ids)
        ORDER BY household_id, version DESC"""), {"ids": list(household_ids)})
    return {r[0]: sorted({str(code) for code in r[1]}) if isinstance(r[1], list) else [] for r in rows.all()}


async def list_rows_of(session: AsyncSession, household_ids: Sequence[uuid.UUID], *, spm_field: str | None,
                       since: date, until: date) -> list[tuple[Beneficiary, KnownProgramme]]:
    """The confirmed and pending rows naming these households, with their programmes, in [since, until]."""
    if not household_ids:
        return []
    query = (sa.select(Beneficiary, KnownProgramme)
             .join(KnownProgramme, col(KnownProgramme.id) == col(Beneficiary.programme_id))
             .where(col(Beneficiary.household_id).in_(list(household_ids)),
                    col(Beneficiary.status).in_(["confirmed", "pending"]), col(KnownProgramme.status) != "cancelled",
                    col(Beneficiary.period_start) <= until, col(Beneficiary.period_end) >= since)
             .order_by(col(Beneficiary.household_id), col(KnownProgramme.id), col(Beneficiary.row_number)))
    if spm_field is not None:
        query = query.where(col(KnownProgramme.spm_field) == spm_field)
    return [(r[0], r[1]) for r in (await session.execute(query)).all()]


async def open_sosial_needs(session: AsyncSession, household_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    if not household_ids:
        return {}
    rows = await session.execute(sa.text("""
        SELECT household_id, array_agg(DISTINCT category ORDER BY category) FROM needs
        WHERE household_id = ANY(:ids) AND status = 'open' AND spm_field = 'sosial' GROUP BY household_id"""),
        {"ids": list(household_ids)})
    return {r[0]: list(r[1]) for r in rows.all()}
