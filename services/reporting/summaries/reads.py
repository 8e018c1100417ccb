"""The reports' reads of the summaries: the rows of the requested regions and period, summed, nothing else.

A read takes the same `Scope` as the request-time queries (indicators/repository.py) and returns the same
values: stocks are the rows of the regions at the group's level with `month` before the period's end (ages
taken on the period's `as_of` from the birth dates kept with them), flows the rows of the period's span and
first month. Each is one range of the summary tables' primary keys. On a held day (summaries/answers.py) the
stocks are read from the answer rows instead, already summed per band: a few hundred rows for any scope.
"""

from __future__ import annotations

import dataclasses
import uuid
from bisect import bisect_right
from collections import defaultdict
from datetime import date, timedelta
from itertools import accumulate
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.indicators.catalogue import ADULT_FROM_MONTHS, VACCINES, slug
from services.reporting.indicators.periods import Period
from services.reporting.indicators.repository import Scope, Values
from services.reporting.summaries.contributions import ACCEPTED_STATUSES, AGENCY_KEY, CLOSED_STATUSES, bucket_value
from shared.db import driver_connection

#: Age bands in whole months on the reference day (both ends inclusive; no upper end for None).
BANDS: dict[str, tuple[int, int | None]] = {
    "all": (0, None), "infant": (0, 11), "toddler": (12, 59), "school_age": (60, 227), "adult": (228, 719),
    "elderly": (720, None), "under_five": (0, 59), "under_two": (0, 23), "aged_7_18": (84, 227),
    "aged_4_6": (48, 83), "aged_7_15": (84, 191), "aged_16_18": (192, 227), "aged_15_59": (180, 719),
    "aged_18_plus": (ADULT_FROM_MONTHS, None)}


def band_sql(low: int, high: int | None) -> str:
    """Born by the reference day, at least `low` and at most `high` whole months before it (PostgreSQL's month
    arithmetic, as the request-time queries had it)."""
    bounds = ["born <= CAST(:as_of AS date)"]
    if low:
        bounds.append(f"born <= CAST(:as_of AS date) - interval '{low} months'")
    if high is not None:
        bounds.append(f"born > CAST(:as_of AS date) - interval '{high + 1} months'")
    return " AND ".join(bounds)


_STOCKS = sa.text(f"""
SELECT region, key, {", ".join(f"sum(n) FILTER (WHERE {band_sql(*b)}) AS {name}" for name, b in BANDS.items())}
FROM summary_stocks
WHERE level = :level AND region >= :low AND region < :high
  AND month >= CAST(:since AS date) AND month < CAST(:end AS date)
GROUP BY region, key""")

_ANSWERS = sa.text("""
SELECT NULL AS region, NULL AS key, NULL AS band, NULL AS n FROM summary_answer_days WHERE as_of = CAST(:as_of AS date)
UNION ALL
SELECT region, key, band, n FROM summary_answers
WHERE level = :level AND as_of = CAST(:as_of AS date) AND region >= :low AND region < :high""")

_PERIOD_RANGE = "level = $1 AND span = $2 AND month = $3 AND region >= $4 AND region < $5"


def _flows_sql(table: str, keys: str = "", histograms: str | None = None) -> str:
    """A period's count rows of a range of regions, then (with `histograms`, a condition on their keys) its
    duration histograms, one row each (summary_histograms)."""
    counts = (f"SELECT region, key, n, NULL::int[] AS buckets, NULL::bigint[] AS counts FROM {table} "
              f"WHERE {_PERIOD_RANGE} AND n <> 0{keys}")
    if histograms is None:
        return counts
    return (f"{counts} UNION ALL SELECT region, key, 0, buckets, counts FROM summary_histograms "
            f"WHERE {_PERIOD_RANGE} AND {histograms}")


#: A period's flows: the regions' own with their histograms, only those counted per household (the matrix's
#: field indicators: no `|` in the key, so not the needs' and referrals' per-category counts), and the agencies'
#: with theirs. Run on the driver's connection (asyncpg), whose rows and arrays cost a fraction of SQLAlchemy's.
_FLOWS = _flows_sql("summary_flows", histograms=f"key NOT LIKE '{AGENCY_KEY}%'")
_HOUSEHOLD_FLOWS = _flows_sql("summary_flows", " AND strpos(key, '|') = 0")
_AGENCY_FLOWS = _flows_sql("summary_agency_flows", histograms=f"key LIKE '{AGENCY_KEY}%'")

_MONTHS = sa.text("""
SELECT region, month, key, n FROM summary_flows
WHERE level = :level AND span = 'M' AND month >= CAST(:first AS date) AND month < CAST(:end AS date)
  AND region >= :low AND region < :high AND key LIKE 'ref|%|status|%' AND n <> 0""")

#: Aged stocks: which band of which key is which indicator.
AGED = {("members", b): f"coverage.{b}" for b in ("infant", "toddler", "school_age", "adult", "elderly")} | {
    ("members", "all"): "coverage.members", ("pregnant", "all"): "coverage.pregnant",
    ("members", "under_five"): "kesehatan.children_under_five",
    ("members", "under_two"): "kesehatan.children_under_two",
    ("members", "aged_7_18"): "pendidikan.aged_7_18", ("members", "aged_4_6"): "pendidikan.aged_4_6",
    ("members", "aged_7_15"): "pendidikan.aged_7_15", ("members", "aged_16_18"): "pendidikan.aged_16_18",
    ("members", "aged_15_59"): "coverage.aged_15_59",
    ("kms", "under_five"): "kesehatan.kms_book_held", ("imm", "under_two"): "kesehatan.immunization_complete",
    ("oos", "aged_7_18"): "pendidikan.out_of_school", ("paud", "aged_4_6"): "pendidikan.paud_enrolled",
    ("disabled", "aged_7_18"): "pendidikan.special_needs_7_18",
    ("bp", "aged_18_plus"): "kesehatan.hypertension", ("sugar", "aged_18_plus"): "kesehatan.diabetes",
    ("cough", "all"): "kesehatan.long_cough", ("smi", "all"): "kesehatan.severe_mental_illness",
    **{(f"vacc.{slug(code)}", "under_two"): f"kesehatan.vaccinated_{slug(code)}" for code, _ in VACCINES}}
_AGED_KEYS = {key for key, _ in AGED}


def span_of(period: Period) -> str:
    return "Q" if "Q" in period.label else "M" if "-" in period.label else "Y"


def _range(scope: Scope) -> dict[str, Any]:
    return {"level": scope.group_length, "low": scope.prefix, "high": scope.prefix + ":"}


async def _answers(session: AsyncSession, scope: Scope) -> dict[str, dict[str, int]] | None:
    """Per region: the held answers of the period's day, or None if that day is not held. One statement (the
    marker row of the held day, then the range of the answer rows), so a roll never comes in between."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    held = False
    for region, key, band, n in (await session.execute(_ANSWERS, {**_range(scope),
                                                                  "as_of": scope.period.as_of()})):
        if region is None:
            held = True
            continue
        indicator = AGED.get((key, band)) if key in _AGED_KEYS else key if band == "all" else None
        if indicator is not None:
            out[region][indicator] = int(n)
    return out if held else None


def _month_after(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


async def _stocks(session: AsyncSession, scope: Scope) -> dict[str, dict[str, int]]:
    """Per region: every stock at the period's end, under its indicator key (needs under their own keys): the
    answer rows of a held day, else the histogram (exact for any day).

    The answers count the stock rows up to their day's month, the period the rows before its end: when the period
    goes on after that month (a running quarter or year, today being held), the rows dated after it are added
    from the histogram. Those are rare (a stock dated after today) and one skip-scan range per region of the
    level finds them: the primary key is (level, region, month, ...)."""
    answered = await _answers(session, scope)
    if answered is None:
        return await _histogram(session, scope)
    if (later := _month_after(scope.period.as_of())) < scope.period.end:
        for region, values in (await _histogram(session, scope, since=later)).items():
            for indicator, n in values.items():
                answered[region][indicator] = answered[region].get(indicator, 0) + n
        answered = {region: kept for region, values in answered.items()
                    if (kept := {k: n for k, n in values.items() if n})}
    return answered


async def _histogram(session: AsyncSession, scope: Scope, since: date = date.min) -> dict[str, dict[str, int]]:
    """_stocks from the stock rows (those dated from `since` on): the bands summed from the birth dates on the
    period's day."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    params = {**_range(scope), "since": since, "end": scope.period.end, "as_of": scope.period.as_of()}
    for row in (await session.execute(_STOCKS, params)).mappings():
        values = out[row["region"]]
        if row["key"] in _AGED_KEYS:
            for band in BANDS:
                if (indicator := AGED.get((row["key"], band))) is not None and row[band]:
                    values[indicator] = int(row[band])
        elif row["all"]:
            values[row["key"]] = int(row["all"])
    return out


#: A histogram of durations: bucket -> count (contributions.bucket_of).
Histogram = dict[int, int]


@dataclasses.dataclass
class Flows:
    """A period's flows per region: the counts by key, and the duration histograms by key (`<name>|rh`)."""

    counts: dict[str, dict[str, int]] = dataclasses.field(default_factory=lambda: defaultdict(dict))
    histograms: dict[str, dict[str, Histogram]] = dataclasses.field(default_factory=lambda: defaultdict(dict))


async def _flows(session: AsyncSession, scope: Scope, statement: str = _FLOWS) -> Flows:
    """The period's flows (of the statement's table and keys), in the session's transaction."""
    out = Flows()
    driver = await driver_connection(session)
    for region, key, n, buckets, counts in await driver.fetch(statement, scope.group_length, span_of(scope.period),
                                                              scope.period.start, scope.prefix, scope.prefix + ":"):
        if buckets is None:
            out.counts[region][key] = n
        else:
            out.histograms[region][key] = dict(zip(buckets, counts, strict=True))
    return out


def _add(into: Histogram, histogram: Histogram) -> None:
    for bucket, n in histogram.items():
        into[bucket] = into.get(bucket, 0) + n


#: The percentiles of durations the indicators show.
_FRACTIONS = (("median", 0.5), ("p90", 0.9))


def _percentiles(histogram: Histogram) -> dict[str, float]:
    """percentile_cont over the durations, each taken as its bucket's midpoint: linear interpolation between the
    two nearest ranks, in hours; for each of _FRACTIONS (none of an empty histogram)."""
    buckets = sorted(b for b, n in histogram.items() if n)
    if not buckets:
        return {}
    ranks = list(accumulate(histogram[b] for b in buckets))  # the rank after each bucket's last duration
    out = {}
    for label, fraction in _FRACTIONS:
        position = fraction * (ranks[-1] - 1)
        below = int(position)
        low = bucket_value(buckets[bisect_right(ranks, below)])
        high = bucket_value(buckets[bisect_right(ranks, min(below + 1, ranks[-1] - 1))])
        out[label] = round(low + (high - low) * (position - below), 2)
    return out


def _referral_values(counts: dict[str, int], histograms: dict[str, Histogram]) -> Values:
    """The referral indicators from one group's counts (`created`, `status|s`, ...) and duration histograms (`rh`
    for the response, `ch` for the completion)."""
    status = {key.removeprefix("status|"): n for key, n in counts.items() if key.startswith("status|")}
    values: Values = {
        "referrals.created": counts.get("created", 0),
        "referrals.accepted": sum(status.get(s, 0) for s in ACCEPTED_STATUSES),
        **{f"referrals.{s}": status.get(s, 0) for s in ("rejected", "completed", "failed", "cancelled")},
        "referrals.open": sum(n for s, n in status.items() if s not in CLOSED_STATUSES),
        "referrals.overdue": counts.get("overdue", 0), "referrals.unrouted": counts.get("unrouted", 0),
        "referrals.responded": counts.get("responded", 0), "referrals.completed_within_sla": counts.get("sla", 0)}
    for name, kind in (("response", "rh"), ("completion", "ch")):
        for label, value in _percentiles(histograms.get(kind, {})).items():
            values[f"referrals.{name}_hours_{label}"] = value
    return values


def _in_fields(key: str, prefix: str, fields: tuple[str, ...]) -> str | None:
    """The rest of a `prefix|field|rest` key whose field is in scope."""
    parts = key.split("|", 2)
    if len(parts) == 3 and parts[0] == prefix and parts[1] in fields:
        return parts[2]
    return None


def _nonzero(values: Values) -> Values:
    return {k: v for k, v in values.items() if v}


def _household_values(stocks: dict[str, int], flows: dict[str, int]) -> Values:
    return {**{k: v for k, v in stocks.items() if "|" not in k}, **{k: v for k, v in flows.items() if "|" not in k}}


async def raw_values(*, session: AsyncSession, scope: Scope) -> dict[str, Values]:
    """Every indicator's count (and percentile) per region group, as repository.raw_values; a region without
    any count is absent."""
    stocks, flows = await _stocks(session, scope), await _flows(session, scope)
    out: dict[str, Values] = {}
    for region in set(stocks) | set(flows.counts):
        region_stocks, region_flows = stocks.get(region, {}), flows.counts.get(region, {})
        values = _household_values(region_stocks, region_flows)
        # One pass over the keys `need|<field>|...|<count>` (stocks and flows) and `ref|<field>|...` (flows).
        needs: dict[str, int] = defaultdict(int)
        referrals: dict[str, int] = defaultdict(int)
        for source in (region_stocks, region_flows):
            for key, n in source.items():
                head, sep, rest = key.partition("|")
                if not sep or (head != "need" and (head != "ref" or source is region_stocks)):
                    continue
                field, sep, rest = rest.partition("|")
                if not sep or field not in scope.fields:
                    continue
                if head == "need":
                    needs[rest.rsplit("|", 1)[1]] += n
                else:
                    referrals[rest] += n
        values.update({f"needs.{k}": v for k, v in needs.items()})
        if referrals.get("created"):
            histograms: dict[str, Histogram] = {"rh": {}, "ch": {}}
            for key, histogram in flows.histograms.get(region, {}).items():
                _, field, kind = key.split("|")  # ref|<field>|rh
                if field in scope.fields:
                    _add(histograms[kind], histogram)
            values.update(_referral_values(referrals, histograms))
        if values := _nonzero(values):
            out[region] = values
    return out


async def stock_values(*, session: AsyncSession, scope: Scope) -> dict[str, Values]:
    """The household-based counts per region group (the matrix's field indicators)."""
    stocks, flows = await _stocks(session, scope), (await _flows(session, scope, _HOUSEHOLD_FLOWS)).counts
    out = {region: _nonzero(_household_values(stocks.get(region, {}), flows.get(region, {})))
           for region in set(stocks) | set(flows)}
    return {region: values for region, values in out.items() if values}


async def need_values(*, session: AsyncSession, scope: Scope) -> dict[str, Values]:
    out = await raw_values(session=session, scope=scope)
    return {region: needs for region, values in out.items()
            if (needs := {k: v for k, v in values.items() if k.startswith("needs.")})}


async def needs_by_category(*, session: AsyncSession, scope: Scope) -> list[dict[str, Any]]:
    """Needs detected, resolved and open per region group, field and category (those with any of them)."""
    stocks, flows = await _stocks(session, scope), (await _flows(session, scope)).counts
    cells: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: {"detected": 0, "resolved": 0, "open": 0})
    for region in set(stocks) | set(flows):
        for source in (stocks.get(region, {}), flows.get(region, {})):
            for key, n in source.items():
                if (rest := _in_fields(key, "need", scope.fields)) is not None:
                    category, count = rest.rsplit("|", 1)
                    cells[(region, key.split("|")[1], category)][count] += n
    return [{"region": region, "spm_field": f, "category": category, **counts}
            for (region, f, category), counts in sorted(cells.items()) if any(counts.values())]


async def referral_values_by_agency(*, session: AsyncSession,
                                    scope: Scope) -> dict[tuple[uuid.UUID, str], Values]:
    """Referral indicators per (agency, field) in the scope's region: the matrix's referral columns."""
    flows = await _flows(session, Scope(scope.prefix, len(scope.prefix), scope.period, scope.fields), _AGENCY_FLOWS)
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for key, n in flows.counts.get(scope.prefix, {}).items():
        parts = key.split("|", 3)  # a|<agency>|<field>|<count>
        if len(parts) == 4 and parts[2] in scope.fields:
            counts[(parts[1], parts[2])][parts[3]] = n
    histograms: dict[tuple[str, str], dict[str, Histogram]] = defaultdict(dict)
    for key, histogram in flows.histograms.get(scope.prefix, {}).items():
        _, agency, field, kind = key.split("|")  # a|<agency>|<field>|rh
        histograms[(agency, field)][kind] = histogram
    return {(uuid.UUID(agency), field): _referral_values(c, histograms.get((agency, field), {}))
            for (agency, field), c in counts.items() if c.get("created")}


async def referral_timeline(*, session: AsyncSession, scope: Scope, months: list[str]) -> list[dict[str, Any]]:
    """Referrals created per region group, month, field and current status over the given months."""
    first = date.fromisoformat(months[0] + "-01")
    params = {**_range(scope), "first": first, "end": scope.period.end}
    out: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for row in (await session.execute(_MONTHS, params)).mappings():
        _, spm_field, _, status = row["key"].split("|", 3)  # a status may hold a |
        if spm_field in scope.fields:
            out[(row["region"], f"{row['month']:%Y-%m}", spm_field, status)] += int(row["n"])
    return [{"region": r, "month": m, "spm_field": f, "status": s, "referrals": n}
            for (r, m, f, s), n in sorted(out.items()) if n]


