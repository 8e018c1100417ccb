"""The indicator queries: GROUP BY region-code prefix over the projection tables (all SQL of the indicators).

Every query takes the same parameters: `like` (the region prefix and `%`), `n` (how many leading digits form a
group: the prefix's own length for one row, a longer level for a breakdown), the period (`start_ts`, `end_ts`,
`start_date`, `end_date`), `as_of` (the day ages are taken on) and `fields` (the SPM fields in scope).
Stocks (households, members, profiles) are as of the period's end; flows (measurements, needs detected,
referrals created) are those within the period.

A table of indicators takes three statements: one for everything that hangs off the households in scope
(coverage, growth, profiles, neglect), one for the needs and one for the referrals. The parts of the first are
grouped aggregates side by side, each joining the tables itself: a CTE shared by several parts would be
materialized, and joins to it are planned without statistics (with profiles loaded, such joins ran for minutes).
Every statement is planned for its own prefix and period (`_plan_for_these_values`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.indicators.catalogue import (
    ADULT_FROM_MONTHS,
    HYPERTENSION_DIASTOLIC,
    HYPERTENSION_SYSTOLIC,
    RAISED_BLOOD_SUGAR_MG_DL,
    VACCINES,
    slug,
)
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


def _aged(low: int, high: int | None = None) -> str:
    """SQL: member `m` is `low` to `high` whole months old on :as_of (both inclusive; no upper bound without `high`).

    Born on or before :as_of minus `low` months and after :as_of minus `high + 1` months: PostgreSQL's month
    arithmetic (clamped to the month's end) is the exact inverse of the whole months of age(). The bounds are
    constants of the plan, so a band costs a date comparison per member, where an age() per member and band
    made up most of the national table's time.
    """
    bounds = [f"m.birth_date <= CAST(:as_of AS date) - interval '{low} months'"] if low else []
    if high is not None:
        bounds.append(f"m.birth_date > CAST(:as_of AS date) - interval '{high + 1} months'")
    return " AND ".join(bounds)


# The households in scope with their group (NOT MATERIALIZED: inlined into each part, see above).
_HOUSEHOLDS = """
hh AS NOT MATERIALIZED (
    SELECT h.id, left(h.village_code, :n) AS region FROM households h
    WHERE h.village_code LIKE :like AND h.status = 'active' AND h.first_seen_at < CAST(:end_ts AS timestamptz))"""

# The version of each household's field profile in force at the period's end, its sections taken apart once.
# Each use filters on the field, which PostgreSQL pushes into the DISTINCT ON: only those fields' versions are
# joined and sorted.
_PROFILES = """
pv AS NOT MATERIALIZED (
    SELECT DISTINCT ON (p.household_id, p.spm_field) p.household_id, p.spm_field, hh.region,
           coalesce(p.data -> 'household', '{}'::jsonb) AS h, p.data -> 'members' AS members
    FROM profile_versions p JOIN hh ON hh.id = p.household_id
    WHERE coalesce(p.observed_on, (p.event_time AT TIME ZONE 'UTC')::date) < CAST(:end_date AS date)
    ORDER BY p.household_id, p.spm_field, p.version DESC)"""

# The members in scope: active, registered by the period's end, born by :as_of, not merged into another.
_MEMBERS = """
mm AS NOT MATERIALIZED (
    SELECT m.id, m.household_id, hh.region, m.birth_date, m.pregnant, m.disability
    FROM members m JOIN hh ON hh.id = m.household_id
    WHERE m.status = 'active' AND m.first_seen_at < CAST(:end_ts AS timestamptz)
      AND m.birth_date <= CAST(:as_of AS date)
      AND NOT EXISTS (SELECT 1 FROM member_merges g WHERE g.merged_id = m.id))"""

_MEMBER_COUNTS = f"""
member_counts AS (
    SELECT region, count(*) AS members,
           count(*) FILTER (WHERE {_aged(0, 11)}) AS infant,
           count(*) FILTER (WHERE {_aged(12, 59)}) AS toddler,
           count(*) FILTER (WHERE {_aged(60, 227)}) AS school_age,
           count(*) FILTER (WHERE {_aged(228, 719)}) AS adult,
           count(*) FILTER (WHERE {_aged(720)}) AS elderly,
           count(*) FILTER (WHERE m.pregnant) AS pregnant,
           count(*) FILTER (WHERE {_aged(0, 59)}) AS under_five,
           count(*) FILTER (WHERE {_aged(0, 23)}) AS under_two,
           count(*) FILTER (WHERE {_aged(84, 227)}) AS aged_7_18,
           count(*) FILTER (WHERE {_aged(48, 83)}) AS aged_4_6,
           count(*) FILTER (WHERE {_aged(84, 191)}) AS aged_7_15,
           count(*) FILTER (WHERE {_aged(192, 227)}) AS aged_16_18,
           count(*) FILTER (WHERE {_aged(180, 719)}) AS aged_15_59,
           count(*) FILTER (WHERE {_aged(84, 227)} AND m.disability <> 'none') AS special_needs_7_18
    FROM mm m GROUP BY 1)"""


def _member_number(key: str) -> str:
    """SQL: the member's number in profile `p` (NULL if it is not a number: no reading)."""
    return (f"CASE WHEN jsonb_typeof(p.members -> (m.id::text) -> '{key}') = 'number' "
            f"THEN (p.members -> (m.id::text) ->> '{key}')::numeric END")


# Member-level profile items (immunisation, enrolment; the adults' readings and the flags of any age): only the
# members they concern meet their household's kesehatan and pendidikan profiles (the readings' thresholds are
# the catalogue's). A member may meet both; each item counts only the profile of its own field.
_MEMBER_ITEMS = f"""
member_items AS (
    SELECT m.region,
           count(*) FILTER (WHERE p.spm_field = 'kesehatan' AND {_aged(0, 23)}
                            AND p.members -> (m.id::text) ->> 'immunization_status' = 'complete-for-age')
               AS immunization_complete,
           count(*) FILTER (WHERE p.spm_field = 'pendidikan' AND {_aged(84, 227)}
                            AND p.members -> (m.id::text) ->> 'enrolled' = 'false') AS out_of_school,
           count(*) FILTER (WHERE p.spm_field = 'pendidikan' AND {_aged(48, 83)}
                            AND p.members -> (m.id::text) ->> 'enrolled' = 'true') AS paud_enrolled,
           count(*) FILTER (WHERE p.spm_field = 'kesehatan' AND {_aged(ADULT_FROM_MONTHS)}
                            AND ({_member_number('systolic_bp')} >= {HYPERTENSION_SYSTOLIC}
                                 OR {_member_number('diastolic_bp')} >= {HYPERTENSION_DIASTOLIC})) AS hypertension,
           count(*) FILTER (WHERE p.spm_field = 'kesehatan' AND {_aged(ADULT_FROM_MONTHS)}
                            AND {_member_number('blood_sugar_mg_dl')} >= {RAISED_BLOOD_SUGAR_MG_DL}) AS diabetes,
           count(*) FILTER (WHERE p.spm_field = 'kesehatan'
                            AND p.members -> (m.id::text) ->> 'long_cough' = 'true') AS long_cough,
           count(*) FILTER (WHERE p.spm_field = 'kesehatan'
                            AND p.members -> (m.id::text) ->> 'severe_mental_illness' = 'true')
               AS severe_mental_illness
    FROM mm m JOIN pv p ON p.household_id = m.household_id AND p.spm_field IN ('kesehatan', 'pendidikan')
    GROUP BY 1)"""

_SAFE_WATER = "('piped', 'protected-well', 'protected-spring', 'rainwater', 'bottled')"


# A profile is open JSON in the events: a value of another type than the household service writes counts as not
# recorded, rather than failing the cast (and with it every report over that household).
def _json_number(key: str) -> str:
    return f"CASE WHEN jsonb_typeof(h -> '{key}') = 'number' THEN (h ->> '{key}')::numeric END"


def _listed(key: str) -> str:
    return f"(jsonb_typeof(h -> '{key}') = 'array' AND jsonb_array_length(h -> '{key}') > 0)"


_DECILE_1_4 = "h -> 'dtsen_decile' = ANY(CAST('{1,2,3,4}' AS jsonb[]))"

_PROFILE_COUNTS = f"""
profile_counts AS (
    SELECT region,
           count(*) FILTER (WHERE spm_field = 'pekerjaan-umum') AS pu_profiled,
           count(*) FILTER (WHERE spm_field = 'pekerjaan-umum' AND h ->> 'drinking_water_source' IN {_SAFE_WATER})
               AS safe_water,
           count(*) FILTER (WHERE spm_field = 'pekerjaan-umum' AND h ->> 'toilet' IN ('private-with-septic', 'shared'))
               AS safe_sanitation,
           count(*) FILTER (WHERE spm_field = 'pekerjaan-umum' AND h ->> 'toilet' = 'none') AS open_defecation,
           count(*) FILTER (WHERE spm_field = 'perumahan-rakyat') AS pr_profiled,
           count(*) FILTER (WHERE spm_field = 'perumahan-rakyat' AND (
               coalesce({_json_number('floor_area_m2')} / nullif({_json_number('occupants')}, 0) < 7.2, false)
               OR h ->> 'floor' = 'earth' OR h ->> 'roof_condition' = 'damaged' OR h ->> 'wall_condition' = 'damaged'
               OR (h ->> 'wall' = 'bamboo-or-other' AND h ->> 'roof' = 'thatch-or-other'))) AS rtlh,
           count(*) FILTER (WHERE spm_field = 'perumahan-rakyat' AND h ->> 'disaster_damage' IN ('moderate', 'heavy'))
               AS disaster_damaged,
           count(*) FILTER (WHERE spm_field = 'trantibumlinmas') AS tr_profiled,
           count(*) FILTER (WHERE spm_field = 'trantibumlinmas' AND {_listed('disaster_risk')}) AS at_risk,
           count(*) FILTER (WHERE spm_field = 'trantibumlinmas' AND {_listed('disaster_risk')}
                            AND h ->> 'preparedness_informed' = 'true') AS informed,
           count(*) FILTER (WHERE spm_field = 'trantibumlinmas' AND h ->> 'displaced' = 'true') AS displaced,
           count(*) FILTER (WHERE spm_field = 'perumahan-rakyat' AND h ->> 'relocation_affected' = 'true')
               AS relocation_affected,
           count(*) FILTER (WHERE spm_field = 'trantibumlinmas' AND h ->> 'fire_hazard' = 'true') AS fire_hazard,
           count(*) FILTER (WHERE spm_field = 'sosial' AND {_DECILE_1_4}) AS decile_1_4,
           count(*) FILTER (WHERE spm_field = 'sosial' AND {_DECILE_1_4} AND {_listed('aid_received')})
               AS decile_1_4_with_aid
    FROM pv WHERE spm_field IN ('pekerjaan-umum', 'perumahan-rakyat', 'trantibumlinmas', 'sosial')
    GROUP BY 1)"""

_NEGLECT_COUNTS = """
neglect_counts AS (
    SELECT pv.region,
           count(*) FILTER (WHERE e.value -> 'neglect_flags' @> '["neglected-child"]') AS neglected_child,
           count(*) FILTER (WHERE e.value -> 'neglect_flags' @> '["neglected-elderly"]') AS neglected_elderly,
           count(*) FILTER (WHERE e.value -> 'neglect_flags' @> '["neglected-disabled"]') AS neglected_disabled,
           count(*) FILTER (WHERE e.value -> 'neglect_flags' @> '["homeless"]') AS homeless,
           count(*) FILTER (WHERE e.value -> 'neglect_flags' @> '["beggar"]') AS beggar
    FROM pv CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(pv.members) = 'object' THEN pv.members
                                               ELSE '{}'::jsonb END) e
    WHERE pv.spm_field = 'sosial'
      AND NOT EXISTS (SELECT 1 FROM member_merges g WHERE g.merged_id::text = e.key)
    GROUP BY 1)"""

# Each child's latest measurement of the period (under five years on the day measured).
_GROWTH_COUNTS = """
latest AS (
    SELECT DISTINCT ON (x.member_id) x.member_id, hh.region, x.haz_class, x.waz_class, x.whz_class, x.kms_signal
    FROM measurements x JOIN hh ON hh.id = x.household_id
    WHERE x.measured_on >= CAST(:start_date AS date) AND x.measured_on < CAST(:end_date AS date)
      AND x.age_days < 1827 AND NOT EXISTS (SELECT 1 FROM member_merges g WHERE g.merged_id = x.member_id)
    ORDER BY x.member_id, x.measured_on DESC, x.id),
growth_counts AS (
    SELECT region, count(*) AS children_measured,
           count(*) FILTER (WHERE haz_class IS NOT NULL) AS measured_height,
           count(*) FILTER (WHERE haz_class IN ('stunted', 'severely-stunted')) AS stunted,
           count(*) FILTER (WHERE whz_class IS NOT NULL) AS measured_weight_height,
           count(*) FILTER (WHERE whz_class IN ('wasted', 'severely-wasted')) AS wasted,
           count(*) FILTER (WHERE waz_class IS NOT NULL) AS measured_weight,
           count(*) FILTER (WHERE waz_class IN ('underweight', 'severely-underweight')) AS underweight,
           count(*) FILTER (WHERE kms_signal = 'N') AS weight_rose
    FROM latest GROUP BY 1)"""

# K: the under-fives whose latest visit by the period's end that says so saw their KMS/KIA book.
_KMS_COUNTS = f"""
kms_counts AS (
    SELECT m.region, count(*) AS kms_book_held FROM mm m
    WHERE {_aged(0, 59)}
      AND (SELECT v.kms_book_held FROM visits v
           WHERE v.member_id = m.id AND v.kms_book_held IS NOT NULL AND v.visited_on < CAST(:end_date AS date)
           ORDER BY v.visited_on DESC, v.id LIMIT 1)
    GROUP BY 1)"""

# Coverage by vaccine: the under-twos given at least one live dose of each by the period's end.
_VACCINE_COUNTS = f"""
vaccine_counts AS (
    SELECT m.region, {", ".join(f"count(DISTINCT m.id) FILTER (WHERE d.vaccine = '{code}') AS vaccinated_{slug(code)}"
                                for code, _ in VACCINES)}
    FROM mm m JOIN doses d ON d.member_id = m.id AND NOT d.voided AND d.given_on < CAST(:end_date AS date)
    WHERE {_aged(0, 23)}
    GROUP BY 1)"""

# Visits of the period per life-cycle group (the group on the visit's day, as the household service recorded it).
_VISIT_COUNTS = """
visit_counts AS (
    SELECT hh.region, count(*) AS visits,
           count(*) FILTER (WHERE v.life_cycle_group = 'infant') AS visits_infant,
           count(*) FILTER (WHERE v.life_cycle_group = 'toddler') AS visits_toddler,
           count(*) FILTER (WHERE v.life_cycle_group = 'school-age') AS visits_school_age,
           count(*) FILTER (WHERE v.life_cycle_group = 'adult') AS visits_adult,
           count(*) FILTER (WHERE v.life_cycle_group = 'elderly') AS visits_elderly,
           count(*) FILTER (WHERE v.pregnant) AS visits_pregnant
    FROM visits v JOIN hh ON hh.id = v.household_id
    WHERE v.visited_on >= CAST(:start_date AS date) AND v.visited_on < CAST(:end_date AS date)
    GROUP BY 1)"""

# Every household-based indicator in one statement, each part grouped by region. Every part starts from the
# households in scope, so left joins from their counts lose no region.
_STOCKS = f"""
WITH {_HOUSEHOLDS}, {_PROFILES}, {_MEMBERS}, {_MEMBER_COUNTS}, {_MEMBER_ITEMS}, {_PROFILE_COUNTS}, {_NEGLECT_COUNTS},
     {_GROWTH_COUNTS}, {_KMS_COUNTS}, {_VACCINE_COUNTS}, {_VISIT_COUNTS}
SELECT * FROM (SELECT region, count(*) AS households FROM hh GROUP BY 1) household_counts
LEFT JOIN member_counts USING (region) LEFT JOIN member_items USING (region) LEFT JOIN profile_counts USING (region)
LEFT JOIN neglect_counts USING (region) LEFT JOIN growth_counts USING (region) LEFT JOIN kms_counts USING (region)
LEFT JOIN vaccine_counts USING (region) LEFT JOIN visit_counts USING (region)"""

# Opening days held in the period, by the posyandu's village (with or without households).
_SESSIONS = """
SELECT left(village_code, :n) AS region, count(*) AS sessions FROM sessions
WHERE village_code LIKE :like AND session_date >= CAST(:start_date AS date) AND session_date < CAST(:end_date AS date)
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

#: Each statement's columns under their indicator keys.
_STOCK_KEYS: dict[str, str] = {
    "households": "coverage.households", "members": "coverage.members", "infant": "coverage.infant",
    "toddler": "coverage.toddler", "school_age": "coverage.school_age", "adult": "coverage.adult",
    "elderly": "coverage.elderly", "pregnant": "coverage.pregnant",
    "under_five": "kesehatan.children_under_five", "under_two": "kesehatan.children_under_two",
    "aged_7_18": "pendidikan.aged_7_18", "aged_4_6": "pendidikan.aged_4_6",
    "aged_7_15": "pendidikan.aged_7_15", "aged_16_18": "pendidikan.aged_16_18", "aged_15_59": "coverage.aged_15_59",
    **{k: f"kesehatan.{k}" for k in ("children_measured", "measured_height", "stunted", "measured_weight_height",
                                     "wasted", "measured_weight", "underweight")},
    "weight_rose": "kesehatan.weight_rose", "kms_book_held": "kesehatan.kms_book_held",
    **{f"vaccinated_{slug(code)}": f"kesehatan.vaccinated_{slug(code)}" for code, _ in VACCINES},
    "visits": "services.visits",
    **{f"visits_{group}": f"services.{group}" for group in ("infant", "toddler", "school_age", "adult", "elderly",
                                                           "pregnant")},
    "immunization_complete": "kesehatan.immunization_complete", "out_of_school": "pendidikan.out_of_school",
    "paud_enrolled": "pendidikan.paud_enrolled",
    "pu_profiled": "pekerjaan-umum.households_profiled", "safe_water": "pekerjaan-umum.safe_water",
    "safe_sanitation": "pekerjaan-umum.safe_sanitation", "open_defecation": "pekerjaan-umum.open_defecation",
    "pr_profiled": "perumahan-rakyat.households_profiled", "rtlh": "perumahan-rakyat.rtlh",
    "disaster_damaged": "perumahan-rakyat.disaster_damaged",
    "tr_profiled": "trantibumlinmas.households_profiled", "at_risk": "trantibumlinmas.at_risk",
    "informed": "trantibumlinmas.informed", "displaced": "trantibumlinmas.displaced",
    "relocation_affected": "perumahan-rakyat.relocation_affected", "fire_hazard": "trantibumlinmas.fire_hazard",
    "special_needs_7_18": "pendidikan.special_needs_7_18",
    **{k: f"kesehatan.{k}" for k in ("hypertension", "diabetes", "long_cough", "severe_mental_illness")},
    "decile_1_4": "sosial.decile_1_4", "decile_1_4_with_aid": "sosial.decile_1_4_with_aid",
    **{k: f"sosial.{k}" for k in ("neglected_child", "neglected_elderly", "neglected_disabled", "homeless",
                                  "beggar")},
}
_NEEDS_KEYS = {k: f"needs.{k}" for k in ("detected", "resolved", "open")}
_SESSIONS_KEYS = {"sessions": "services.sessions"}
_REFERRAL_KEYS = {c: f"referrals.{c}" for c in (
    "created", "accepted", "rejected", "completed", "failed", "cancelled", "open", "overdue", "unrouted", "responded",
    "response_hours_median", "response_hours_p90", "completion_hours_median", "completion_hours_p90",
    "completed_within_sla")}


def _number(value: Any) -> float | int | None:
    if value is None or isinstance(value, int):
        return value
    return round(float(value), 2)


async def _grouped(session: AsyncSession, sql: str, scope: Scope, keys: dict[str, str],
                   into: dict[str, Values]) -> None:
    """Run one grouped statement and add its non-null columns, under their keys, to each region's values."""
    for row in (await session.execute(sa.text(sql), scope.params())).mappings():
        values = into[row["region"]]
        values.update((key, _number(row[column])) for column, key in keys.items() if row[column] is not None)


async def stock_values(*, session: AsyncSession, scope: Scope) -> dict[str, Values]:
    """The household-based counts (coverage, growth, profiles) per region group: all of them counts."""
    out: dict[str, Values] = defaultdict(dict)
    await _grouped(session, _STOCKS, scope, _STOCK_KEYS, out)
    return dict(out)


async def raw_values(*, session: AsyncSession, scope: Scope) -> dict[str, Values]:
    """The counts (and percentiles) of every indicator, per region group; rates are formed later.

    A count missing from a group (no such row, or a null from an outer join) means zero, a percentile none.
    """
    out: dict[str, Values] = defaultdict(dict)
    for sql, keys in ((_STOCKS, _STOCK_KEYS), (_SESSIONS, _SESSIONS_KEYS), (_NEEDS, _NEEDS_KEYS),
                      (_REFERRALS, _REFERRAL_KEYS)):
        await _grouped(session, sql, scope, keys, out)
    return dict(out)


async def need_values(*, session: AsyncSession, scope: Scope) -> dict[str, Values]:
    """Needs detected, resolved and open per region group (the ranking's statement)."""
    out: dict[str, Values] = defaultdict(dict)
    await _grouped(session, _NEEDS, scope, _NEEDS_KEYS, out)
    return dict(out)


async def referral_values_by_agency(*, session: AsyncSession,
                                    scope: Scope) -> dict[tuple[uuid.UUID, str], Values]:
    """Referral indicators per (agency, field): the matrix's referral columns."""
    out: dict[tuple[uuid.UUID, str], Values] = {}
    for row in (await session.execute(sa.text(_REFERRALS_BY_AGENCY), scope.params())).mappings():
        out[(row["agency_id"], row["spm_field"])] = {key: _number(row[c]) for c, key in _REFERRAL_KEYS.items()}
    return out


async def region_names(*, session: AsyncSession, codes: list[str]) -> dict[str, str]:
    rows = await session.execute(sa.text("SELECT code, name FROM regions WHERE code = ANY(CAST(:codes AS text[]))"),
                                 {"codes": codes})
    return {code: name for code, name in rows}


async def needs_by_category(*, session: AsyncSession, scope: Scope) -> list[dict[str, Any]]:
    """Needs detected, resolved and open per region group, field and category."""
    sql = _NEEDS.replace("SELECT left(village_code, :n) AS region,",
                         "SELECT left(village_code, :n) AS region, spm_field, category,").replace(
        "GROUP BY 1", "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    return [dict(r) for r in (await session.execute(sa.text(sql), scope.params())).mappings()]


async def referral_timeline(*, session: AsyncSession, scope: Scope, months: list[str]) -> list[dict[str, Any]]:
    """Referrals created per region group, month, field and current status over the given months."""
    sql = """
    SELECT left(village_code, :n) AS region, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, spm_field,
           status, count(*) AS referrals
    FROM referrals WHERE village_code LIKE :like AND spm_field = ANY(CAST(:fields AS text[]))
      AND created_at >= CAST(:from_ts AS timestamptz) AND created_at < CAST(:end_ts AS timestamptz)
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"""
    first = date.fromisoformat(months[0] + "-01")
    params = {**scope.params(), "from_ts": datetime(first.year, first.month, 1, tzinfo=scope.period.start_ts.tzinfo)}
    return [dict(r) for r in (await session.execute(sa.text(sql), params)).mappings()]


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
