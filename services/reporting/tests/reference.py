"""The reference the indicator statements are tested against: each indicator group as its own plain query.

These are the repository's queries as they were before they were folded into one statement per table of
indicators (ages from age() per member, one query per group): slow at national scale, but each reads as the
definition in DOMAIN.md §8. Needs and referrals did not change and come from the repository itself.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.indicators import repository
from services.reporting.indicators.catalogue import ALL, VACCINES, slug
from services.reporting.indicators.repository import Scope, Values

#: The indicators that are percentiles of durations (hours), read from the duration buckets.
PERCENTILES = {k for k, i in ALL.items() if i.kind == "hours"}


_HOUSEHOLDS = """
hh AS (
    SELECT h.id, h.village_code FROM households h
    WHERE h.village_code LIKE :like AND h.status = 'active' AND h.first_seen_at < CAST(:end_ts AS timestamptz))"""

_MEMBERS = """
mm AS (
    SELECT m.id, m.household_id, hh.village_code, m.pregnant, m.disability,
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
       coalesce(c.aged_7_18, 0) AS aged_7_18, coalesce(c.aged_4_6, 0) AS aged_4_6,
       coalesce(c.aged_7_15, 0) AS aged_7_15, coalesce(c.aged_16_18, 0) AS aged_16_18,
       coalesce(c.aged_15_59, 0) AS aged_15_59
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
           count(*) FILTER (WHERE months BETWEEN 48 AND 83) AS aged_4_6,
           count(*) FILTER (WHERE months BETWEEN 84 AND 191) AS aged_7_15,
           count(*) FILTER (WHERE months BETWEEN 192 AND 227) AS aged_16_18,
           count(*) FILTER (WHERE months BETWEEN 180 AND 719) AS aged_15_59
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

def _reading(key: str) -> str:
    """A member's number in the kesehatan profile (NULL if it is not a number)."""
    value = f"k.data -> 'members' -> (mm.id::text) -> '{key}'"
    return f"(CASE WHEN jsonb_typeof({value}) = 'number' THEN ({value})::text::numeric END)"


# Member-level profile items (immunisation, enrolment, the adults' readings (from 18 years: 216 months), the
# flags) joined to the members' ages; the disability from the member.
_MEMBER_PROFILES = f"""
WITH {_HOUSEHOLDS}, {_MEMBERS}, {_PROFILES}
SELECT left(mm.village_code, :n) AS region,
       count(*) FILTER (WHERE mm.months < 24
                        AND k.data -> 'members' -> (mm.id::text) ->> 'immunization_status' = 'complete-for-age')
           AS immunization_complete,
       count(*) FILTER (WHERE mm.months BETWEEN 84 AND 227
                        AND e.data -> 'members' -> (mm.id::text) ->> 'enrolled' = 'false') AS out_of_school,
       count(*) FILTER (WHERE mm.months BETWEEN 48 AND 83
                        AND e.data -> 'members' -> (mm.id::text) ->> 'enrolled' = 'true') AS paud_enrolled,
       count(*) FILTER (WHERE mm.months BETWEEN 84 AND 227 AND mm.disability <> 'none') AS special_needs_7_18,
       count(*) FILTER (WHERE mm.months >= 216 AND (coalesce({_reading('systolic_bp')} >= 140, false)
                                                    OR coalesce({_reading('diastolic_bp')} >= 90, false)))
           AS hypertension,
       count(*) FILTER (WHERE mm.months >= 216 AND {_reading('blood_sugar_mg_dl')} >= 200) AS diabetes,
       count(*) FILTER (WHERE k.data -> 'members' -> (mm.id::text) ->> 'long_cough' = 'true') AS long_cough,
       count(*) FILTER (WHERE k.data -> 'members' -> (mm.id::text) ->> 'severe_mental_illness' = 'true')
           AS severe_mental_illness
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
       count(*) FILTER (WHERE spm_field = 'perumahan-rakyat' AND h ->> 'relocation_affected' = 'true')
           AS relocation_affected,
       count(*) FILTER (WHERE spm_field = 'trantibumlinmas' AND h ->> 'fire_hazard' = 'true') AS fire_hazard,
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

# SKDN's K and N, coverage by vaccine, visits per group, opening days: each the plain way.
_SKDN = f"""
WITH {_HOUSEHOLDS}, {_MEMBERS},
last_visit AS (
    SELECT DISTINCT ON (v.member_id) v.member_id, v.kms_book_held FROM visits v
    WHERE v.kms_book_held IS NOT NULL AND v.visited_on < CAST(:end_date AS date)
    ORDER BY v.member_id, v.visited_on DESC, v.id)
SELECT left(mm.village_code, :n) AS region,
       count(*) FILTER (WHERE mm.months < 60 AND lv.kms_book_held) AS kms_book_held,
       {", ".join(f"count(*) FILTER (WHERE mm.months < 24 AND EXISTS (SELECT 1 FROM doses d WHERE d.member_id = mm.id "
                  f"AND d.vaccine = '{code}' AND NOT d.voided AND d.given_on < CAST(:end_date AS date))) "
                  f"AS vaccinated_{slug(code)}" for code, _ in VACCINES)}
FROM mm LEFT JOIN last_visit lv ON lv.member_id = mm.id
GROUP BY 1"""

_WEIGHT_ROSE = f"""
WITH {_HOUSEHOLDS},
latest AS (
    SELECT DISTINCT ON (x.member_id) x.member_id, hh.village_code, x.kms_signal
    FROM measurements x JOIN hh ON hh.id = x.household_id
    WHERE x.measured_on >= CAST(:start_date AS date) AND x.measured_on < CAST(:end_date AS date)
      AND x.age_days < 1827 AND NOT EXISTS (SELECT 1 FROM member_merges g WHERE g.merged_id = x.member_id)
    ORDER BY x.member_id, x.measured_on DESC, x.id)
SELECT left(village_code, :n) AS region, count(*) FILTER (WHERE kms_signal = 'N') AS weight_rose
FROM latest GROUP BY 1"""

_VISITS = f"""
WITH {_HOUSEHOLDS}
SELECT left(hh.village_code, :n) AS region, count(v.id) AS visits,
       {", ".join(f"count(v.id) FILTER (WHERE v.life_cycle_group = '{g}') AS visits_{slug(g)}"
                  for g in ("infant", "toddler", "school-age", "adult", "elderly"))},
       count(v.id) FILTER (WHERE v.pregnant) AS visits_pregnant
FROM hh JOIN visits v ON v.household_id = hh.id
     AND v.visited_on BETWEEN CAST(:start_date AS date) AND CAST(:end_date AS date) - 1
GROUP BY 1"""

_SESSIONS = """
SELECT left(village_code, :n) AS region, count(*) AS sessions FROM sessions
WHERE village_code LIKE :like AND session_date BETWEEN CAST(:start_date AS date) AND CAST(:end_date AS date) - 1
GROUP BY 1"""

#: Each query's columns under their indicator keys.
_KEYS: dict[str, tuple[str, dict[str, str]]] = {
    "coverage": (_COVERAGE, {
        "households": "coverage.households", "members": "coverage.members", "infant": "coverage.infant",
        "toddler": "coverage.toddler", "school_age": "coverage.school_age", "adult": "coverage.adult",
        "elderly": "coverage.elderly", "pregnant": "coverage.pregnant",
        "under_five": "kesehatan.children_under_five", "under_two": "kesehatan.children_under_two",
        "aged_7_18": "pendidikan.aged_7_18", "aged_4_6": "pendidikan.aged_4_6",
        "aged_7_15": "pendidikan.aged_7_15", "aged_16_18": "pendidikan.aged_16_18",
        "aged_15_59": "coverage.aged_15_59"}),
    "growth": (_GROWTH, {k: f"kesehatan.{k}" for k in (
        "children_measured", "measured_height", "stunted", "measured_weight_height", "wasted", "measured_weight",
        "underweight")}),
    "member_profiles": (_MEMBER_PROFILES, {
        "immunization_complete": "kesehatan.immunization_complete", "out_of_school": "pendidikan.out_of_school",
        "paud_enrolled": "pendidikan.paud_enrolled", "special_needs_7_18": "pendidikan.special_needs_7_18",
        **{k: f"kesehatan.{k}" for k in ("hypertension", "diabetes", "long_cough", "severe_mental_illness")}}),
    "household_profiles": (_HOUSEHOLD_PROFILES, {
        "pu_profiled": "pekerjaan-umum.households_profiled", "safe_water": "pekerjaan-umum.safe_water",
        "safe_sanitation": "pekerjaan-umum.safe_sanitation", "open_defecation": "pekerjaan-umum.open_defecation",
        "pr_profiled": "perumahan-rakyat.households_profiled", "rtlh": "perumahan-rakyat.rtlh",
        "disaster_damaged": "perumahan-rakyat.disaster_damaged",
        "tr_profiled": "trantibumlinmas.households_profiled", "at_risk": "trantibumlinmas.at_risk",
        "informed": "trantibumlinmas.informed", "displaced": "trantibumlinmas.displaced",
        "relocation_affected": "perumahan-rakyat.relocation_affected", "fire_hazard": "trantibumlinmas.fire_hazard",
        "decile_1_4": "sosial.decile_1_4", "decile_1_4_with_aid": "sosial.decile_1_4_with_aid"}),
    "neglect": (_NEGLECT, {k: f"sosial.{k}" for k in (
        "neglected_child", "neglected_elderly", "neglected_disabled", "homeless", "beggar")}),
    "skdn": (_SKDN, {"kms_book_held": "kesehatan.kms_book_held",
                     **{f"vaccinated_{slug(c)}": f"kesehatan.vaccinated_{slug(c)}" for c, _ in VACCINES}}),
    "weight_rose": (_WEIGHT_ROSE, {"weight_rose": "kesehatan.weight_rose"}),
    "visits": (_VISITS, {"visits": "services.visits", **{f"visits_{g}": f"services.{g}" for g in (
        "infant", "toddler", "school_age", "adult", "elderly", "pregnant")}}),
    "sessions": (_SESSIONS, {"sessions": "services.sessions"}),
    "needs": (repository._NEEDS, repository._NEEDS_KEYS),
    "referrals": (repository._REFERRALS, repository._REFERRAL_KEYS),
}


async def reference_values(session: AsyncSession, scope: Scope) -> dict[str, Values]:
    """Every indicator's count (or percentile) per region group, one query per group."""
    # Planned for these values, as the repository's statements are (a cached generic plan can take minutes).
    await session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
    out: dict[str, Values] = defaultdict(dict)
    for sql, keys in _KEYS.values():
        for row in (await session.execute(sa.text(sql), scope.params())).mappings():
            out[row["region"]].update((key, repository._number(row[column])) for column, key in keys.items())
    return dict(out)
