"""The SPM matrix's own statements: programmes, realisations and target figures (its projections), the
referrals completed per service category and the regions that form the columns. Counts of residents come from
the summaries: served here, targets and needs from the indicator values (`summaries/reads.py`; targets.py)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.indicators.periods import Period
from services.reporting.summaries.contributions import AGENCY_KEY


async def child_regions(*, session: AsyncSession, prefix: str, length: int) -> dict[str, str]:
    """The registered, not retired regions of `length` digits within the prefix, with their names."""
    rows = await session.execute(sa.text(
        "SELECT code, name FROM regions WHERE code LIKE :like AND length(code) = :n AND NOT retired ORDER BY code"),
        {"like": prefix + "%", "n": length})
    return {code: name for code, name in rows}


def _served_sql(table: str) -> sa.TextClause:
    return sa.text(f"""
SELECT region, key, sum(n) AS n FROM {table}
WHERE level = :level AND span = 'M' AND month >= CAST(:start AS date) AND month < CAST(:end AS date)
  AND region >= :low AND region < :high AND key LIKE :pattern AND n <> 0
GROUP BY 1, 2""")


#: The regions' served counts, and the agencies' (summaries/contributions.py AGENCY_KEY).
_SERVED = {False: _served_sql("summary_flows"), True: _served_sql("summary_agency_flows")}


async def _served(session: AsyncSession, *, level: int, low: str, high: str, pattern: str,
                  period: Period) -> list[tuple[str, list[str], int]]:
    """The summaries' served counts (referrals completed, by the month they were closed: `...|served|<category>`,
    summaries/contributions.py) of the period's months: (region, the key's parts, count)."""
    rows = await session.execute(_SERVED[pattern.startswith(AGENCY_KEY)], {
        "level": level, "low": low, "high": high, "pattern": pattern, "start": period.start, "end": period.end})
    return [(region, key.split("|"), int(n)) for region, key, n in rows]


async def served(*, session: AsyncSession, prefix: str, length: int, period: Period,
                 categories: list[str]) -> dict[str, dict[str, int]]:
    """Referrals completed within the period per region group and category (a referral is one resident or
    household served), read from the summaries' rows of the region groups and the period's months."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for region, parts, n in await _served(session, level=length, low=prefix, high=prefix + ":",
                                          pattern="ref|%|served|%", period=period):
        category = "|".join(parts[3:])
        if category in categories:
            out[region][category] += n
    return {region: dict(counts) for region, counts in out.items()}


async def served_by_agency(*, session: AsyncSession, prefix: str, period: Period,
                           categories: list[str]) -> dict[uuid.UUID, dict[str, int]]:
    """The same, per agency the referral was routed to (within the region: the region's own summary rows)."""
    out: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _, parts, n in await _served(session, level=len(prefix), low=prefix, high=prefix + ":",
                                     pattern=f"{AGENCY_KEY}%|%|served|%", period=period):
        category = "|".join(parts[4:])
        if category in categories:
            out[uuid.UUID(parts[1])][category] += n
    return {agency: dict(counts) for agency, counts in out.items()}


async def programmes(*, session: AsyncSession, prefix: str, period: Period,
                     service_types: list[str]) -> list[dict[str, Any]]:
    """The programmes of these service types running in the period (not cancelled) that serve a region within
    the prefix or containing it, each with what it spent in the period's months (summed by source)."""
    rows = await session.execute(sa.text("""
        SELECT p.id, p.agency_id, p.service_type, p.region_codes, p.budget,
               coalesce((SELECT jsonb_agg(line) FROM spm_realisations r, jsonb_array_elements(r.spent) line
                         WHERE r.programme_id = p.id AND r.month >= :first_month AND r.month < :end_month),
                        '[]'::jsonb) AS spent
        FROM spm_programmes p
        WHERE p.status <> 'cancelled' AND p.service_type = ANY(CAST(:types AS text[]))
          AND p.period_start < CAST(:end_date AS date) AND p.period_end >= CAST(:start_date AS date)
          AND EXISTS (SELECT 1 FROM unnest(p.region_codes) code
                      WHERE code LIKE :like OR :prefix LIKE code || '%')
        ORDER BY p.id"""), {"types": service_types, "like": prefix + "%", "prefix": prefix,
                            "start_date": period.start, "end_date": period.end,
                            "first_month": f"{period.start:%Y-%m}", "end_month": f"{period.end:%Y-%m}"})
    return [dict(r) for r in rows.mappings()]


async def target_figures(*, session: AsyncSession, prefix: str, year: int,
                         service_types: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """The agencies' figures in force per (region, service type) within the prefix: of two agencies' figures for
    one cell, the one set later (a withdrawn figure, null, gives way to the computed target)."""
    rows = await session.execute(sa.text("""
        SELECT DISTINCT ON (region_code, service_type) region_code, service_type, agency_id, target
        FROM spm_target_figures
        WHERE region_code LIKE :like AND year = :year AND service_type = ANY(CAST(:types AS text[]))
          AND target IS NOT NULL
        ORDER BY region_code, service_type, set_at DESC, agency_id"""),
        {"like": prefix + "%", "year": year, "types": service_types})
    return {(r["region_code"], r["service_type"]): dict(r) for r in rows.mappings()}


async def agency_figures(*, session: AsyncSession, year: int,
                         service_types: list[str]) -> dict[tuple[uuid.UUID, str, str], int]:
    """Every agency's own figure in force: (agency, region, service type) -> target."""
    rows = await session.execute(sa.text("""
        SELECT agency_id, region_code, service_type, target FROM spm_target_figures
        WHERE year = :year AND service_type = ANY(CAST(:types AS text[])) AND target IS NOT NULL"""),
        {"year": year, "types": service_types})
    return {(a, r, s): t for a, r, s, t in rows}
