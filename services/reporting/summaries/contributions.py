"""What one household, child, need, referral or session adds to the summaries: the one definition of every count.

A contribution is a function of the projection rows alone. The consumer computes it for the aggregates an event
touches before and after applying the event and adds the difference, so a redelivered or stale event (which
leaves the rows as they were) adds nothing, and any order of events ends at the same sums. The rebuild adds the
contributions of every aggregate. The rules are DOMAIN.md §8's, as the request-time queries had them
(indicators/repository.py, kept as the reference the tests compare against).

Stocks are intervals of months: counted from the month they begin (a household's first month, a profile
version's month) until the month they end, kept as +n there and -n at the end. Flows are counted in the periods
(month, quarter, year) they fall in. Counts are kept at the village; `levels` spreads them over its regions.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from services.reporting.indicators.catalogue import (
    HYPERTENSION_DIASTOLIC,
    HYPERTENSION_SYSTOLIC,
    RAISED_BLOOD_SUGAR_MG_DL,
    slug,
)

#: The `born` of a stock that counts no members by age.
UNAGED = date(1, 1, 1)
#: The lengths of the region codes a count is kept under: the nation (''), province, regency, district, village.
LEVELS = (0, 2, 4, 6, 10)
SPANS = {"M": 1, "Q": 3, "Y": 12}

CLOSED_STATUSES = ("completed", "failed", "cancelled", "rejected")
ACCEPTED_STATUSES = ("accepted", "in-progress", "completed", "failed")

# Percentiles of response and completion hours come from log-spaced buckets that keep their count: a duration of h
# hours (|h| >= 0.01) falls in bucket k = 1 + floor(log(|h| / 0.01) / log(1.02)), |h| < 0.01 (36 seconds) in bucket
# 0, and stands for its bucket's geometric midpoint (`bucket_value`; 0 for bucket 0). Every value is then off by
# less than sqrt(1.02) - 1 < 1% (or 36 seconds in bucket 0), so a percentile, interpolated between two of them, is
# too. A bucket keeps no sum of its values: for the same stated error, a quarter of the counts of 1% buckets that
# each keep their sum and stand for their mean. A bucket's flow key is `<histogram>|<k>`; the summaries keep each
# histogram in one row (summary_histograms, Contribution.levels).
_BUCKET_FLOOR, _BUCKET_RATIO = 0.01, 1.02


def bucket_of(hours: float) -> int:
    if abs(hours) < _BUCKET_FLOOR:
        return 0
    k = 1 + math.floor(math.log(abs(hours) / _BUCKET_FLOOR) / math.log(_BUCKET_RATIO))
    return k if hours > 0 else -k


def bucket_value(bucket: int) -> float:
    """The hours a bucket stands for: its geometric midpoint."""
    if not bucket:
        return 0.0
    value = _BUCKET_FLOOR * _BUCKET_RATIO ** (abs(bucket) - 0.5)
    return value if bucket > 0 else -value


_BUCKET_KEY = re.compile(r"(.+\|[rc]h)\|(-?[0-9]+)")


def bucket_key(key: str) -> tuple[str, int] | None:
    """A duration bucket's flow key (`<histogram>|<k>`, `_timed`) as its histogram and bucket; None for any
    other key."""
    if (found := _BUCKET_KEY.fullmatch(key)) is None:
        return None
    return found[1], int(found[2])


def within_stated_error(got: float, want: float) -> bool:
    """Whether a percentile read from the buckets (`got`) is within their stated error of the exact one (`want`): 1%,
    or 0.01 hours in bucket 0, plus the rounding to hundredths. The tests and the bench's check hold reads to it."""
    return abs(got - want) <= 0.01 * abs(want) + 0.011


def month_of(when: date | datetime) -> date:
    if isinstance(when, datetime):
        when = when.astimezone(UTC).date()
    return when.replace(day=1)


#: The prefix of the flows counted per agency (`a|<agency>|<field>|...`): kept in summary_agency_flows.
AGENCY_KEY = "a|"


def add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_start(span: str, month: date) -> date:
    if span == "M":
        return month
    if span == "Q":
        return date(month.year, (month.month - 1) // 3 * 3 + 1, 1)
    return date(month.year, 1, 1)


@dataclass
class Contribution:
    #: (village, month, key, born) -> change of the stock from that month on
    stocks: Counter[tuple[str, date, str, date]] = field(default_factory=Counter)
    #: (village, span, first month of the period, key) -> count in that period
    flows: Counter[tuple[str, str, date, str]] = field(default_factory=Counter)

    def stock(self, village: str, key: str, start: date, end: date | None = None, *, born: date = UNAGED,
              n: int = 1) -> None:
        """Counted from month `start` until month `end` (exclusive; never ended without one)."""
        if end is not None and end <= start:
            return
        self.stocks[(village, start, key, born)] += n
        if end is not None:
            self.stocks[(village, end, key, born)] -= n

    def flow(self, village: str, key: str, month: date, *, counted_from: date | None = None, n: int = 1) -> None:
        """Counted in the month, quarter and year of `month`; with `counted_from`, only in the periods that end
        after it (a household's flows count once it was registered by the period's end)."""
        for span, length in SPANS.items():
            start = period_start(span, month)
            if counted_from is None or counted_from < add_months(start, length):
                self.flows[(village, span, start, key)] += n

    def __sub__(self, other: Contribution) -> Contribution:
        out = Contribution(Counter(self.stocks), Counter(self.flows))
        out.stocks.subtract(other.stocks)
        out.flows.subtract(other.flows)
        out.stocks = Counter({k: v for k, v in out.stocks.items() if v})
        out.flows = Counter({k: v for k, v in out.flows.items() if v})
        return out

    def __iadd__(self, other: Contribution) -> Contribution:
        self.stocks.update(other.stocks)
        self.flows.update(other.flows)
        return self

    def levels(self) -> Levels:
        """The village counts spread over every region containing the village."""
        out = Levels()
        for (village, month, key, born), n in self.stocks.items():
            for length in LEVELS:
                out.stocks[(length, village[:length], month, key, born)] += n
        for (village, span, month, key), n in self.flows.items():
            if (bucket := bucket_key(key)) is not None:
                for length in LEVELS:
                    out.histograms[(length, span, month, village[:length], bucket[0])][bucket[1]] += n
                continue
            into = out.agency_flows if key.startswith(AGENCY_KEY) else out.flows
            for length in LEVELS:
                into[(length, span, month, village[:length], key)] += n
        for counter in (out.stocks, out.flows, out.agency_flows):
            for k in [k for k, v in counter.items() if not v]:
                del counter[k]
        out.histograms = defaultdict(Counter, {k: kept for k, h in out.histograms.items()
                                               if (kept := Counter({b: n for b, n in h.items() if n}))})
        return out


@dataclass
class Levels:
    """A change at every level: stocks (level, region, month, key, born), the regions' flows and the agencies'
    flows (keys `a|...`, summary_agency_flows) by (level, span, month, region, key), and the changes of the
    duration histograms of both (summary_histograms) by the same keys, each bucket -> change."""

    stocks: Counter[tuple[int, str, date, str, date]] = field(default_factory=Counter)
    flows: Counter[tuple[int, str, date, str, str]] = field(default_factory=Counter)
    agency_flows: Counter[tuple[int, str, date, str, str]] = field(default_factory=Counter)
    histograms: defaultdict[tuple[int, str, date, str, str], Counter[int]] = field(
        default_factory=lambda: defaultdict(Counter))


# A profile is open JSON: these read it as PostgreSQL's `->>` and `->` did in the request-time queries, so a
# value of another type than the household service writes counts as not recorded.
def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Decimal(str(value))


def _listed(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0


def json_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


_SAFE_WATER = ("piped", "protected-well", "protected-spring", "rainwater", "bottled")
_NEGLECT = {"neglected-child": "sosial.neglected_child", "neglected-elderly": "sosial.neglected_elderly",
            "neglected-disabled": "sosial.neglected_disabled", "homeless": "sosial.homeless",
            "beggar": "sosial.beggar"}


def unfit_house(h: dict[str, Any]) -> bool:
    """RTLH as the request-time query had it (the floor area per occupant, the floor, the condition and the
    materials); a `decided.rtlh` flag the household service publishes with the profile takes precedence."""
    area, occupants = _number(h.get("floor_area_m2")), _number(h.get("occupants"))
    small = area is not None and occupants is not None and occupants != 0 and area / occupants < Decimal("7.2")
    return (small or _text(h.get("floor")) == "earth" or _text(h.get("roof_condition")) == "damaged"
            or _text(h.get("wall_condition")) == "damaged"
            or (_text(h.get("wall")) == "bamboo-or-other" and _text(h.get("roof")) == "thatch-or-other"))


def _decided(decided: dict[str, Any] | None, flag: str) -> bool | None:
    """A rule's verdict as the household service published it with the profile (shared/events/household.py
    ProfileUpdatedData.decided), if it did: the household service decides RTLH, safe water and the low deciles
    with its own configuration; the fallbacks below only count versions published before the verdicts were."""
    value = json_object(decided).get(flag)
    return value if isinstance(value, bool) else None


def household_items(spm_field: str, data: dict[str, Any], decided: dict[str, Any] | None = None) -> list[str]:
    """The household-level stock keys a profile version counts in (household section of the profile)."""
    h = json_object(data.get("household"))
    if spm_field == "pekerjaan-umum":
        water = _decided(decided, "safe_water")
        keys = ["pekerjaan-umum.households_profiled"]
        if water if water is not None else _text(h.get("drinking_water_source")) in _SAFE_WATER:
            keys.append("pekerjaan-umum.safe_water")
        if _text(h.get("toilet")) in ("private-with-septic", "shared"):
            keys.append("pekerjaan-umum.safe_sanitation")
        if _text(h.get("toilet")) == "none":
            keys.append("pekerjaan-umum.open_defecation")
        return keys
    if spm_field == "perumahan-rakyat":
        rtlh = _decided(decided, "rtlh")
        keys = ["perumahan-rakyat.households_profiled"]
        if rtlh if rtlh is not None else unfit_house(h):
            keys.append("perumahan-rakyat.rtlh")
        if _text(h.get("disaster_damage")) in ("moderate", "heavy"):
            keys.append("perumahan-rakyat.disaster_damaged")
        if _text(h.get("relocation_affected")) == "true":
            keys.append("perumahan-rakyat.relocation_affected")
        return keys
    if spm_field == "trantibumlinmas":
        keys = ["trantibumlinmas.households_profiled"]
        if _listed(h.get("disaster_risk")):
            keys.append("trantibumlinmas.at_risk")
            if _text(h.get("preparedness_informed")) == "true":
                keys.append("trantibumlinmas.informed")
        if _text(h.get("displaced")) == "true":
            keys.append("trantibumlinmas.displaced")
        if _text(h.get("fire_hazard")) == "true":
            keys.append("trantibumlinmas.fire_hazard")
        return keys
    if spm_field == "sosial":
        low = _decided(decided, "low_decile")
        decile = h.get("dtsen_decile")
        if low if low is not None else (_number(decile) is not None and decile in (1, 2, 3, 4)):
            return ["sosial.decile_1_4", *(["sosial.decile_1_4_with_aid"] if _listed(h.get("aid_received")) else [])]
    return []


def member_items(spm_field: str, data: dict[str, Any], member_id: uuid.UUID) -> list[str]:
    """The aged stocks a member's entry in a kesehatan or pendidikan profile counts in (the bands they count in
    are the readers', summaries/reads.py: blood pressure and sugar from age 18, the flags at any age)."""
    entry = json_object(json_object(data.get("members")).get(str(member_id)))
    if spm_field == "kesehatan":
        items = []
        if _text(entry.get("immunization_status")) == "complete-for-age":
            items.append("imm")
        systolic, diastolic = _number(entry.get("systolic_bp")), _number(entry.get("diastolic_bp"))
        if ((systolic is not None and systolic >= HYPERTENSION_SYSTOLIC)
                or (diastolic is not None and diastolic >= HYPERTENSION_DIASTOLIC)):
            items.append("bp")
        sugar = _number(entry.get("blood_sugar_mg_dl"))
        if sugar is not None and sugar >= RAISED_BLOOD_SUGAR_MG_DL:
            items.append("sugar")
        if _text(entry.get("long_cough")) == "true":
            items.append("cough")
        if _text(entry.get("severe_mental_illness")) == "true":
            items.append("smi")
        return items
    if spm_field == "pendidikan":
        enrolled = _text(entry.get("enrolled"))
        return [item] if (item := {"false": "oos", "true": "paud"}.get(enrolled or "")) else []
    return []


def profile_segments(versions: list[dict[str, Any]]) -> list[tuple[date, date | None, dict[str, Any]]]:
    """The version of one household's field profile in force in each month: the highest version observed by the
    month's end, as (from month, until month or None, the version's row)."""
    observed: dict[date, dict[str, Any]] = {}
    for v in versions:
        month = month_of(v["observed_on"] or v["event_time"])
        if month not in observed or v["version"] > observed[month]["version"]:
            observed[month] = v
    segments: list[tuple[date, dict[str, Any]]] = []
    for month in sorted(observed):
        if not segments or observed[month]["version"] > segments[-1][1]["version"]:
            segments.append((month, observed[month]))
    return [(start, segments[i + 1][0] if i + 1 < len(segments) else None, v)
            for i, (start, v) in enumerate(segments)]


@dataclass
class HouseholdInputs:
    """The projection rows one household's contribution reads."""

    household: dict[str, Any]
    members: list[dict[str, Any]]
    profiles: dict[str, list[dict[str, Any]]]  # spm_field -> versions
    visits: list[dict[str, Any]]  # the visits recorded at this household
    book_visits: dict[uuid.UUID, list[dict[str, Any]]]  # per member: visits that saw (or not) the KMS book
    first_doses: dict[uuid.UUID, dict[str, date]]  # per member: vaccine -> first live dose
    merged: set[str]  # ids (as text) of merged duplicates among the members and profile entries


def household(inputs: HouseholdInputs) -> Contribution:
    out = Contribution()
    h = inputs.household
    if h["status"] != "active":
        return out
    village, first = h["village_code"], month_of(h["first_seen_at"])
    out.stock(village, "coverage.households", first)
    segments = {f: profile_segments(v) for f, v in inputs.profiles.items()}
    for spm_field, field_segments in segments.items():
        for start, end, version in field_segments:
            begin = max(start, first)
            for key in household_items(spm_field, version["data"], version.get("decided")):
                out.stock(village, key, begin, end)
            if spm_field == "sosial":
                for member_key, entry in json_object(version["data"].get("members")).items():
                    flags = json_object(entry).get("neglect_flags")
                    if member_key in inputs.merged or not isinstance(flags, list):
                        continue
                    for flag, key in _NEGLECT.items():
                        if flag in flags:
                            out.stock(village, key, begin, end)
    for m in inputs.members:
        if m["status"] != "active" or str(m["id"]) in inputs.merged:
            continue
        since, born = max(first, month_of(m["first_seen_at"])), m["birth_date"]
        out.stock(village, "members", since, born=born)
        if m["pregnant"]:
            out.stock(village, "pregnant", since, born=born)
        if m["disability"] != "none":
            out.stock(village, "disabled", since, born=born)
        for spm_field in ("kesehatan", "pendidikan"):
            for start, end, version in segments.get(spm_field, []):
                for item in member_items(spm_field, version["data"], m["id"]):
                    out.stock(village, item, max(start, since), end, born=born)
        for start, end in _book_held(inputs.book_visits.get(m["id"], [])):
            out.stock(village, "kms", max(start, since), end, born=born)
        for vaccine, given_on in inputs.first_doses.get(m["id"], {}).items():
            out.stock(village, f"vacc.{slug(vaccine)}", max(since, month_of(given_on)), born=born)
    for v in inputs.visits:
        month = month_of(v["visited_on"])
        out.flow(village, "services.visits", month, counted_from=first)
        out.flow(village, f"services.{slug(v['life_cycle_group'])}", month, counted_from=first)
        if v["pregnant"]:
            out.flow(village, "services.pregnant", month, counted_from=first)
    return out


def _book_held(visits: list[dict[str, Any]]) -> list[tuple[date, date | None]]:
    """The months in which the member's latest visit that says so saw the KMS/KIA book (the latest: the last
    day, and of one day the lowest id, as the request-time query ordered them)."""
    latest: dict[date, dict[str, Any]] = {}
    order = lambda v: (v["visited_on"], -v["id"].int)  # noqa: E731
    for v in visits:
        month = month_of(v["visited_on"])
        if month not in latest or order(v) > order(latest[month]):
            latest[month] = v
    spans: list[tuple[date, date | None]] = []
    current: dict[str, Any] | None = None
    held_since: date | None = None
    for month in sorted(latest):
        if current is None or order(latest[month]) > order(current):
            current = latest[month]
        if current["kms_book_held"] and held_since is None:
            held_since = month
        elif not current["kms_book_held"] and held_since is not None:
            spans.append((held_since, month))
            held_since = None
    if held_since is not None:
        spans.append((held_since, None))
    return spans


_GROWTH = {"haz_class": ("kesehatan.measured_height", ("stunted", "severely-stunted"), "kesehatan.stunted"),
           "whz_class": ("kesehatan.measured_weight_height", ("wasted", "severely-wasted"), "kesehatan.wasted"),
           "waz_class": ("kesehatan.measured_weight", ("underweight", "severely-underweight"),
                         "kesehatan.underweight")}


def child_growth(measurements: list[dict[str, Any]], households: dict[uuid.UUID, dict[str, Any]],
                 merged: bool) -> Contribution:
    """One child's growth counts: in each period, its latest measurement (under five on the day) among those
    taken in active households registered by the period's end, counted in that household's village once."""
    out = Contribution()
    if merged:
        return out
    usable = [x for x in measurements if x["age_days"] < 1827
              and households.get(x["household_id"], {}).get("status") == "active"]
    for span, length in SPANS.items():
        periods: dict[date, list[dict[str, Any]]] = {}
        for x in usable:
            periods.setdefault(period_start(span, month_of(x["measured_on"])), []).append(x)
        for start, taken in periods.items():
            end = add_months(start, length)
            candidates = [x for x in taken if month_of(households[x["household_id"]]["first_seen_at"]) < end]
            if not candidates:
                continue
            x = max(candidates, key=lambda c: (c["measured_on"], -c["id"].int))
            village = households[x["household_id"]]["village_code"]
            keys = ["kesehatan.children_measured"]
            for column, (measured, classes, key) in _GROWTH.items():
                if x[column] is not None:
                    keys.append(measured)
                if x[column] in classes:
                    keys.append(key)
            if x["kms_signal"] == "N":
                keys.append("kesehatan.weight_rose")
            for key in keys:
                out.flows[(village, span, start, key)] += 1
    return out


def need(row: dict[str, Any]) -> Contribution:
    """Detected and resolved in their months; open from the month detected until the month resolved."""
    out = Contribution()
    prefix, village = f"need|{row['spm_field']}|{row['category']}", row["village_code"]
    if row["detected_at"] is not None:
        out.flow(village, f"{prefix}|detected", month_of(row["detected_at"]))
        out.stock(village, f"{prefix}|open", month_of(row["detected_at"]),
                  month_of(row["resolved_at"]) if row["resolved_at"] is not None else None)
    if row["resolved_at"] is not None:
        out.flow(village, f"{prefix}|resolved", month_of(row["resolved_at"]))
    return out


def _milliseconds(later: datetime | None, earlier: datetime) -> int | None:
    return None if later is None else round((later - earlier).total_seconds() * 1000)


def _timed(name: str, milliseconds: int) -> list[tuple[str, int]]:
    """A duration's bucket: one more in its count (`rh|k`)."""
    return [(f"{name}|{bucket_of(milliseconds / 3_600_000)}", 1)]


def referral(row: dict[str, Any]) -> Contribution:
    """A referral counts in its month of creation, by field (and by agency for the matrix), with its current
    status and times."""
    out = Contribution()
    month, village, status = month_of(row["created_at"]), row["village_code"], row["status"]
    keys: list[tuple[str, int]] = [("created", 1), (f"status|{status}", 1)]
    if row["overdue_at"] is not None:
        keys.append(("overdue", 1))
    if row["agency_id"] is None and status not in CLOSED_STATUSES:
        keys.append(("unrouted", 1))
    if (response := _milliseconds(row["responded_at"], row["created_at"])) is not None:
        keys += [("responded", 1), *_timed("rh", response)]
    if status == "completed":
        if (completion := _milliseconds(row["closed_at"], row["created_at"])) is not None:
            keys += _timed("ch", completion)
        if row["complete_by"] is not None and row["closed_at"] is not None and row["closed_at"] <= row["complete_by"]:
            keys.append(("sla", 1))
    prefixes = [f"ref|{row['spm_field']}"]
    if row["agency_id"] is not None:
        prefixes.append(f"{AGENCY_KEY}{row['agency_id']}|{row['spm_field']}")
    for prefix in prefixes:
        for key, n in keys:
            out.flow(village, f"{prefix}|{key}", month, n=n)
        if status == "completed" and row["closed_at"] is not None:
            # The SPM matrix's residents served: a completed referral counts in the month it was closed.
            out.flow(village, f"{prefix}|served|{row['category']}", month_of(row["closed_at"]))
    return out


def session(row: dict[str, Any]) -> Contribution:
    out = Contribution()
    out.flow(row["village_code"], "services.sessions", month_of(row["session_date"]))
    return out

