"""The indicator queries: GROUP BY region-code prefix over the projection tables (all SQL of the indicators).

Every query takes the same parameters: `like` (the region prefix and `%`), `n` (how many leading digits form a
group: the prefix's own length for one row, a longer level for a breakdown), the period (`start_ts`, `end_ts`,
`start_date`, `end_date`), `as_of` (the day ages are taken on) and `fields` (the SPM fields in scope).
Stocks (households, members, profiles) are as of the period's end; flows (measurements, needs detected,
referrals created) are those within the period.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.indicators.periods import Period

Values = dict[str, float | int | None]


@dataclass(frozen=True)
class Scope:
    """Where and when: a region prefix ('' for the nation), the group length, the period and the fields."""

    prefix: str
    group_length: int
    period: Period
    fields: tuple[str, ...]

    def params(self) -> dict[str, Any]:
        return {"like": self.prefix + "%", "n": self.group_length, "start_ts": self.period.start_ts,
                "end_ts": self.period.end_ts, "start_date": self.period.start, "end_date": self.period.end,
                "as_of": self.period.as_of(), "fields": list(self.fields)}


_HOUSEHOLDS = """
hh AS (
    SELECT h.id, h.village_code FROM households h
    WHERE h.village_code LIKE :like AND h.status = 'active' AND h.first_seen_at < CAST(:end_ts AS timestamptz))"""

_MEMBERS = """
mm AS (
    SELECT m.id, m.household_id, hh.village_code, m.pregnant,
           (extract(year FROM age(CAST(:as_of AS date), m.birth_date)) * 12
            + extract(month FROM age(CAST(:as_of AS date), m.birth_date)))::int AS months
    FROM members m JOIN hh ON hh.id = m.household_id
    WHERE m.status = 'active' AND m.first_seen_at < CAST(:end_ts AS timestamptz)
      AND m.birth_date <= CAST(:as_of AS date)
      AND NOT EXISTS (SELECT 1 FROM member_merges g WHERE g.merged_id = m.id))"""

# The version of each household's field profile in force at the period's end.
_PROFILES = """
pv AS (
    SELECT DISTINCT ON (p.household_id, p.spm_field) p.household_id, p.spm_field, p.data, hh.village_code
    FROM profile_versions p JOIN hh ON hh.id = p.household_id
    WHERE coalesce(p.observed_on, (p.event_time AT TIME ZONE 'UTC')::date) < CAST(:end_date AS date)
    ORDER BY p.household_id, p.spm_field, p.version DESC)"""

_COVERAGE = f"""
WITH {_HOUSEHOLDS}, {_MEMBERS}
SELECT g.region, g.households, coalesce(c.members, 0) AS members, coalesce(c.infant, 0) AS infant,
       coalesce(c.toddler, 0) AS toddler, coalesce(c.school_age, 0) AS school_age, coalesce(c.adult, 0) AS adult,
       coalesce(c.elderly, 0) AS elderly, coalesce(c.pregnant, 0) AS pregnant,
       coalesce(c.under_five, 0) AS under_five, coalesce(c.under_two, 0) AS under_two,
       coalesce(c.aged_7_18, 0) AS aged_7_18, coalesce(c.aged_4_6, 0) AS aged_4_6
FROM (SELECT left(village_code, :n) AS region, count(*) AS households FROM hh GROUP BY 1) g
LEFT JOIN (
    SELECT left(village_code, :n) AS region, count(*) AS members,
           count(*) FILTER (WHERE months < 12) AS infant,
           count(*) FILTER (WHERE months BETWEEN 12 AND 59) AS toddler,
           count(*) FILTER (WHERE months BETWEEN 60 AND 227) AS school_age,
           count(*) FILTER (WHERE months BETWEEN 228 AND 719) AS adult,
           count(*) FILTER (WHERE months >= 720) AS elderly,
           count(*) FILTER (WHERE pregnant) AS pregnant,
           count(*) FILTER (WHERE months < 60) AS under_five,
           count(*) FILTER (WHERE months < 24) AS under_two,
           count(*) FILTER (WHERE months BETWEEN 84 AND 227) AS aged_7_18,
           count(*) FILTER (WHERE months BETWEEN 48 AND 83) AS aged_4_6
    FROM mm GROUP BY 1) c ON c.region = g.region"""

# Each child's latest measurement of the period (under five years on the day measured).
_GROWTH = f"""
WITH {_HOUSEHOLDS},
latest AS (
    SELECT DISTINCT ON (x.member_id) x.member_id, hh.village_code, x.haz_class, x.waz_class, x.whz_class
    FROM measurements x JOIN hh ON hh.id = x.household_id
    WHERE x.measured_on >= CAST(:start_date AS date) AND x.measured_on < CAST(:end_date AS date)
      AND x.age_days < 1827 AND NOT EXISTS (SELECT 1 FROM member_merges g WHERE g.merged_id = x.member_id)
    ORDER BY x.member_id, x.measured_on DESC, x.id)
SELECT left(village_code, :n) AS region, count(*) AS children_measured,
       count(*) FILTER (WHERE haz_class IS NOT NULL) AS measured_height,
       count(*) FILTER (WHERE haz_class IN ('stunted', 'severely-stunted')) AS stunted,
       count(*) FILTER (WHERE whz_class IS NOT NULL) AS measured_weight_height,
       count(*) FILTER (WHERE whz_class IN ('wasted', 'severely-wasted')) AS wasted,
       count(*) FILTER (WHERE waz_class IS NOT NULL) AS measured_weight,
       count(*) FILTER (WHERE waz_class IN ('underweight', 'severely-underweight')) AS underweight
FROM latest GROUP BY 1"""

# Member-level profile items (immunisation, enrolment) joined to the members' ages.
_MEMBER_PROFILES = f"""
WITH {_HOUSEHOLDS}, {_MEMBERS}, {_PROFILES}
SELECT left(mm.village_code, :n) AS region,
       count(*) FILTER (WHERE mm.months < 24
                        AND k.data -> 'members' -> (mm.id::text) ->> 'immunization_status' = 'complete-for-age')
           AS immunization_complete,
       count(*) FILTER (WHERE mm.months BETWEEN 84 AND 227
                        AND e.data -> 'members' -> (mm.id::text) ->> 'enrolled' = 'false') AS out_of_school,
       count(*) FILTER (WHERE mm.months BETWEEN 48 AND 83
                        AND e.data -> 'members' -> (mm.id::text) ->> 'enrolled' = 'true') AS paud_enrolled
FROM mm
LEFT JOIN pv k ON k.household_id = mm.household_id AND k.spm_field = 'kesehatan'
LEFT JOIN pv e ON e.household_id = mm.household_id AND e.spm_field = 'pendidikan'
GROUP BY 1"""

_SAFE_WATER = "('piped', 'protected-well', 'protected-spring', 'rainwater', 'bottled')"

_HOUSEHOLD_PROFILES = f"""
WITH {_HOUSEHOLDS}, {_PROFILES},
s AS (SELECT village_code, spm_field, coalesce(data -> 'household', '{{}}'::jsonb) AS h FROM pv)
SELECT left(village_code, :n) AS region,
       count(*) FILTER (WHERE spm_field = 'pekerjaan-umum') AS pu_profiled,
       count(*) FILTER (WHERE spm_field = 'pekerjaan-umum' AND h ->> 'drinking_water_source' IN {_SAFE_WATER})
           AS safe_water,
       count(*) FILTER (WHERE spm_field = 'pekerjaan-umum' AND h ->> 'toilet' IN ('private-with-septic', 'shared'))
           AS safe_sanitation,
       count(*) FILTER (WHERE spm_field = 'pekerjaan-umum' AND h ->> 'toilet' = 'none') AS open_defecation,
       count(*) FILTER (WHERE spm_field = 'perumahan-rakyat') AS pr_profiled,
       count(*) FILTER (WHERE spm_field = 'perumahan-rakyat' AND (
           coalesce((h ->> 'floor_area_m2')::numeric / nullif((h ->> 'occupants')::numeric, 0) < 7.2, false)
           OR h ->> 'floor' = 'earth' OR h ->> 'roof_condition' = 'damaged' OR h ->> 'wall_condition' = 'damaged'
           OR (h ->> 'wall' = 'bamboo-or-other' AND h ->> 'roof' = 'thatch-or-other'))) AS rtlh,
       count(*) FILTER (WHERE spm_field = 'perumahan-rakyat' AND h ->> 'disaster_damage' IN ('moderate', 'heavy'))
           AS disaster_damaged,
       count(*) FILTER (WHERE spm_field = 'trantibumlinmas') AS tr_profiled,
       count(*) FILTER (WHERE spm_field = 'trantibumlinmas'
                        AND jsonb_array_length(coalesce(h -> 'disaster_risk', '[]'::jsonb)) > 0) AS at_risk,
       count(*) FILTER (WHERE spm_field = 'trantibumlinmas'
                        AND jsonb_array_length(coalesce(h -> 'disaster_risk', '[]'::jsonb)) > 0
                        AND h ->> 'preparedness_informed' = 'true') AS informed,
       count(*) FILTER (WHERE spm_field = 'trantibumlinmas' AND h ->> 'displaced' = 'true') AS displaced,
       count(*) FILTER (WHERE spm_field = 'sosial' AND (h ->> 'dtsen_decile')::int BETWEEN 1 AND 4) AS decile_1_4,
       count(*) FILTER (WHERE spm_field = 'sosial' AND (h ->> 'dtsen_decile')::int BETWEEN 1 AND 4
                        AND jsonb_array_length(coalesce(h -> 'aid_received', '[]'::jsonb)) > 0)
           AS decile_1_4_with_aid
FROM s GROUP BY 1"""

_NEGLECT = f"""
WITH {_HOUSEHOLDS}, {_PROFILES}
SELECT left(pv.village_code, :n) AS region,
       count(*) FILTER (WHERE e.value -> 'neglect_flags' @> '["neglected-child"]') AS neglected_child,
       count(*) FILTER (WHERE e.value -> 'neglect_flags' @> '["neglected-elderly"]') AS neglected_elderly,
       count(*) FILTER (WHERE e.value -> 'neglect_flags' @> '["neglected-disabled"]') AS neglected_disabled,
       count(*) FILTER (WHERE e.value -> 'neglect_flags' @> '["homeless"]') AS homeless,
       count(*) FILTER (WHERE e.value -> 'neglect_flags' @> '["beggar"]') AS beggar
FROM pv CROSS JOIN LATERAL jsonb_each(coalesce(pv.data -> 'members', '{{}}'::jsonb)) e
WHERE pv.spm_field = 'sosial'
  AND NOT EXISTS (SELECT 1 FROM member_merges g WHERE g.merged_id::text = e.key)
GROUP BY 1"""

_NEEDS = """
SELECT left(village_code, :n) AS region,
       count(*) FILTER (WHERE detected_at >= CAST(:start_ts AS timestamptz)
                        AND detected_at < CAST(:end_ts AS timestamptz)) AS detected,
       count(*) FILTER (WHERE resolved_at >= CAST(:start_ts AS timestamptz)
                        AND resolved_at < CAST(:end_ts AS timestamptz)) AS resolved,
       count(*) FILTER (WHERE detected_at < CAST(:end_ts AS timestamptz)
                        AND (resolved_at IS NULL OR resolved_at >= CAST(:end_ts AS timestamptz))) AS open
FROM needs WHERE village_code LIKE :like AND spm_field = ANY(CAST(:fields AS text[])) GROUP BY 1"""

_REFERRAL_MEASURES = """
       count(*) AS created,
       count(*) FILTER (WHERE status IN ('accepted', 'in-progress', 'completed', 'failed')) AS accepted,
       count(*) FILTER (WHERE status = 'rejected') AS rejected,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE status NOT IN ('completed', 'failed', 'cancelled', 'rejected')) AS open,
       count(*) FILTER (WHERE overdue_at IS NOT NULL) AS overdue,
       count(*) FILTER (WHERE agency_id IS NULL
                        AND status NOT IN ('completed', 'failed', 'cancelled', 'rejected')) AS unrouted,
       count(*) FILTER (WHERE responded_at IS NOT NULL) AS responded,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM responded_at - created_at) / 3600)
           FILTER (WHERE responded_at IS NOT NULL) AS response_hours_median,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM responded_at - created_at) / 3600)
           FILTER (WHERE responded_at IS NOT NULL) AS response_hours_p90,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - created_at) / 3600)
           FILTER (WHERE status = 'completed') AS completion_hours_median,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - created_at) / 3600)
           FILTER (WHERE status = 'completed') AS completion_hours_p90,
       count(*) FILTER (WHERE status = 'completed' AND complete_by IS NOT NULL AND closed_at <= complete_by)
           AS completed_within_sla"""

_REFERRAL_WHERE = """
FROM referrals WHERE village_code LIKE :like AND spm_field = ANY(CAST(:fields AS text[]))
  AND created_at >= CAST(:start_ts AS timestamptz) AND created_at < CAST(:end_ts AS timestamptz)"""

_REFERRALS = f"SELECT left(village_code, :n) AS region, {_REFERRAL_MEASURES} {_REFERRAL_WHERE} GROUP BY 1"
_REFERRALS_BY_AGENCY = (f"SELECT agency_id, spm_field, {_REFERRAL_MEASURES} {_REFERRAL_WHERE} "
                        "AND agency_id IS NOT NULL GROUP BY 1, 2")

#: Each query's columns under their indicator keys.
_KEYS: dict[str, tuple[str, dict[str, str]]] = {
    "coverage": (_COVERAGE, {
        "households": "coverage.households", "members": "coverage.members", "infant": "coverage.infant",
        "toddler": "coverage.toddler", "school_age": "coverage.school_age", "adult": "coverage.adult",
        "elderly": "coverage.elderly", "pregnant": "coverage.pregnant",
        "under_five": "kesehatan.children_under_five", "under_two": "kesehatan.children_under_two",
        "aged_7_18": "pendidikan.aged_7_18", "aged_4_6": "pendidikan.aged_4_6"}),
    "growth": (_GROWTH, {k: f"kesehatan.{k}" for k in (
        "children_measured", "measured_height", "stunted", "measured_weight_height", "wasted", "measured_weight",
        "underweight")}),
    "member_profiles": (_MEMBER_PROFILES, {
        "immunization_complete": "kesehatan.immunization_complete", "out_of_school": "pendidikan.out_of_school",
        "paud_enrolled": "pendidikan.paud_enrolled"}),
    "household_profiles": (_HOUSEHOLD_PROFILES, {
        "pu_profiled": "pekerjaan-umum.households_profiled", "safe_water": "pekerjaan-umum.safe_water",
        "safe_sanitation": "pekerjaan-umum.safe_sanitation", "open_defecation": "pekerjaan-umum.open_defecation",
        "pr_profiled": "perumahan-rakyat.households_profiled", "rtlh": "perumahan-rakyat.rtlh",
        "disaster_damaged": "perumahan-rakyat.disaster_damaged",
        "tr_profiled": "trantibumlinmas.households_profiled", "at_risk": "trantibumlinmas.at_risk",
        "informed": "trantibumlinmas.informed", "displaced": "trantibumlinmas.displaced",
        "decile_1_4": "sosial.decile_1_4", "decile_1_4_with_aid": "sosial.decile_1_4_with_aid"}),
    "neglect": (_NEGLECT, {k: f"sosial.{k}" for k in (
        "neglected_child", "neglected_elderly", "neglected_disabled", "homeless", "beggar")}),
    "needs": (_NEEDS, {k: f"needs.{k}" for k in ("detected", "resolved", "open")}),
    "referrals": (_REFERRALS, {}),
}

_REFERRAL_COLUMNS = ("created", "accepted", "rejected", "completed", "failed", "cancelled", "open", "overdue",
                     "unrouted", "responded", "response_hours_median", "response_hours_p90",
                     "completion_hours_median", "completion_hours_p90", "completed_within_sla")


def _number(value: Any) -> float | int | None:
    if value is None or isinstance(value, int):
        return value
    return round(float(value), 2)


async def raw_values(*, session: AsyncSession, scope: Scope) -> dict[str, Values]:
    """The counts (and percentiles) of every indicator, per region group; rates are formed later."""
    params = scope.params()
    out: dict[str, Values] = defaultdict(dict)
    for name, (sql, keys) in _KEYS.items():
        if name == "referrals":
            keys = {c: f"referrals.{c}" for c in _REFERRAL_COLUMNS}
        for row in (await session.execute(sa.text(sql), params)).mappings():
            values = out[row["region"]]
            for column, key in keys.items():
                values[key] = _number(row[column])
    return dict(out)


async def referral_values_by_agency(*, session: AsyncSession,
                                    scope: Scope) -> dict[tuple[uuid.UUID, str], Values]:
    """Referral indicators per (agency, field): the matrix's referral columns."""
    out: dict[tuple[uuid.UUID, str], Values] = {}
    for row in (await session.execute(sa.text(_REFERRALS_BY_AGENCY), scope.params())).mappings():
        out[(row["agency_id"], row["spm_field"])] = {f"referrals.{c}": _number(row[c]) for c in _REFERRAL_COLUMNS}
    return out


async def region_names(*, session: AsyncSession, codes: list[str]) -> dict[str, str]:
    rows = await session.execute(sa.text("SELECT code, name FROM regions WHERE code = ANY(CAST(:codes AS text[]))"),
                                 {"codes": codes})
    return {code: name for code, name in rows.tuples()}


async def needs_by_category(*, session: AsyncSession, scope: Scope) -> list[dict[str, Any]]:
    """Needs detected, resolved and open per region group, field and category."""
    sql = _NEEDS.replace("SELECT left(village_code, :n) AS region,",
                         "SELECT left(village_code, :n) AS region, spm_field, category,").replace(
        "GROUP BY 1", "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    return [dict(r) for r in (await session.execute(sa.text(sql), scope.params())).mappings()]


async def referral_timeline(*, session: AsyncSession, scope: Scope, months: list[str]) -> list[dict[str, Any]]:
    """Referrals created per month, field and current status over the given months."""
    sql = """
    SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, spm_field, status, count(*) AS referrals
    FROM referrals WHERE village_code LIKE :like AND spm_field = ANY(CAST(:fields AS text[]))
      AND created_at >= CAST(:from_ts AS timestamptz) AND created_at < CAST(:end_ts AS timestamptz)
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    first = date.fromisoformat(months[0] + "-01")
    params = {**scope.params(), "from_ts": datetime(first.year, first.month, 1, tzinfo=scope.period.start_ts.tzinfo)}
    return [dict(r) for r in (await session.execute(sa.text(sql), params)).mappings()]


async def villages_by_open_needs(*, session: AsyncSession, scope: Scope, limit: int) -> list[dict[str, Any]]:
    """Villages ranked by needs open at the period's end (then by code), with their names."""
    sql = """
    SELECT n.village_code, r.name AS village_name, count(*) AS open_needs
    FROM needs n LEFT JOIN regions r ON r.code = n.village_code
    WHERE n.village_code LIKE :like AND n.spm_field = ANY(CAST(:fields AS text[]))
      AND n.detected_at < CAST(:end_ts AS timestamptz)
      AND (n.resolved_at IS NULL OR n.resolved_at >= CAST(:end_ts AS timestamptz))
    GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT :limit"""
    return [dict(r) for r in (await session.execute(sa.text(sql), {**scope.params(), "limit": limit})).mappings()]


async def agencies_in(*, session: AsyncSession, prefix: str, fields: list[str]) -> list[dict[str, Any]]:
    """Active agencies whose jurisdiction lies in the region or contains it, with fields in scope."""
    sql = """
    SELECT id, name, level, jurisdiction_code, spm_fields FROM agencies
    WHERE status = 'active' AND (jurisdiction_code LIKE :like OR :prefix LIKE jurisdiction_code || '%')
      AND spm_fields && CAST(:fields AS text[])
    ORDER BY level DESC, jurisdiction_code, name, id"""
    rows = await session.execute(sa.text(sql), {"like": prefix + "%", "prefix": prefix, "fields": fields})
    return [dict(r) for r in rows.mappings()]


async def agency(*, session: AsyncSession, agency_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await session.execute(sa.text("SELECT id, jurisdiction_code, spm_fields, status FROM agencies "
                                         "WHERE id = :id"), {"id": agency_id})).mappings().first()
    return dict(row) if row else None


async def villages_of_posyandu(*, session: AsyncSession, posyandu_ids: list[uuid.UUID]) -> set[str]:
    rows = await session.execute(sa.text("SELECT village_code FROM posyandu WHERE id = ANY(CAST(:ids AS uuid[]))"),
                                 {"ids": posyandu_ids})
    return set(rows.scalars())
