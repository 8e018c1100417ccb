"""The indicator statements equal the plain per-group queries of `reference.py` on a generated country.

Three provinces down to 54 villages (one with needs and referrals but no households), written straight into the
projections, with the edges the statements must get right: births on the very days an age band starts or ends
(month ends and a leap day included), households and members registered after the period, inactive and merged
members, profile versions observed after the period, undated or out of version order, several measurements per
child (ties included), needs and referrals around the period's bounds. Every count is non-zero somewhere, so a
wrongly computed indicator cannot pass as a zero.
"""

from __future__ import annotations

import calendar
import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from conftest import Stack
from services.reporting.access import Audience
from services.reporting.indicators import repository
from services.reporting.indicators.catalogue import ALL, FIELD_INDICATORS, REFERRALS
from services.reporting.indicators.periods import parse_period
from services.reporting.indicators.repository import Scope, Values
from services.reporting.indicators.suppression import with_rates
from services.reporting.matrix.service import matrix_table
from services.reporting.summaries import reads
from services.reporting.summaries.rebuild import rebuild_summaries
from services.reporting.tests.reference import reference_values
from shared.db import sqlalchemy_url
from shared.events.topics import SpmField

PERIODS = ["2024-02", "2025-03", "2025-Q2", "2025"]
#: The days ages are taken on in those periods, and the band limits (in months) the births cluster around.
AS_OF = [date(2024, 2, 29), date(2025, 3, 31), date(2025, 6, 30), date(2025, 12, 31)]
BAND_LIMITS = [0, 12, 24, 48, 60, 84, 216, 228, 720]
#: The first days of those periods and of the days after them: stocks and flows are cut there.
BOUNDS = sorted({d for p in PERIODS for d in (parse_period(p).start, parse_period(p).end)})
#: (region prefix, breakdown length): the nation, each level broken down, one village, a province by village.
SCOPES = [("", 0), ("", 2), ("11", 4), ("1101", 6), ("110101", 10), ("1101011001", 10), ("13", 10)]
FIELD_SETS = [tuple(f.value for f in SpmField), ("sosial", "pendidikan")]
EMPTY_VILLAGE = "1371022003"
#: The poor classes of height-for-age, weight-for-age and weight-for-height.
CLASSES = [("stunted", "severely-stunted"), ("underweight", "severely-underweight"), ("wasted", "severely-wasted")]
FIELDS = [f.value for f in SpmField]


def months_before(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


class Country:
    """Rows for the projections, drawn from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in (
            "regions", "agencies", "households", "members", "member_merges", "profile_versions", "measurements",
            "needs", "referrals", "sessions", "visits", "doses")}
        self.villages: list[str] = []
        self.agencies: list[tuple[uuid.UUID, list[str]]] = []

    def new_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rnd.getrandbits(128))

    def day(self, first: date, last: date) -> date:
        """A day in the range; one time in ten a period's first day or the day before (when in the range)."""
        bounds = [b - timedelta(days=d) for b in BOUNDS for d in (0, 1) if first <= b - timedelta(days=d) <= last]
        if bounds and self.rnd.random() < 0.1:
            return self.rnd.choice(bounds)
        return first + timedelta(days=self.rnd.randrange((last - first).days + 1))

    def moment(self, first: date, last: date) -> datetime:
        """A time in the range; one time in ten the very start of a period (when in the range)."""
        bounds = [b for b in BOUNDS if first <= b <= last]
        if bounds and self.rnd.random() < 0.1:
            return datetime.combine(self.rnd.choice(bounds), datetime.min.time(), UTC)
        day = datetime.combine(self.day(first, last), datetime.min.time(), UTC)
        return day + timedelta(seconds=self.rnd.randrange(86_400))

    def build(self) -> Country:
        self.regions_and_agencies()
        for village in self.villages:
            if village != EMPTY_VILLAGE:
                for _ in range(self.rnd.randrange(6, 13)):
                    self.household(village)
        for _ in range(500):
            self.referral(self.rnd.choice(self.villages))
        for _ in range(20):
            self.need(self.new_id(), EMPTY_VILLAGE)
        for _ in range(300):
            self.session(self.rnd.choice(self.villages))
        return self

    def regions_and_agencies(self) -> None:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        for province in ("11", "12", "13"):
            self.rows["regions"].append((province, f"Provinsi {province}", "province", None, False, now))
            self.agency(province, ["kesehatan", "sosial"])
            for regency in (province + r for r in ("01", "02", "71")):
                self.rows["regions"].append((regency, f"Kabupaten {regency}", "regency", province, False, now))
                self.agency(regency, self.rnd.sample(FIELDS, self.rnd.randrange(1, 3)))
                for district in (regency + d for d in ("01", "02")):
                    self.rows["regions"].append((district, f"Kecamatan {district}", "district", regency, False, now))
                    for village in (district + v for v in ("1001", "1002", "2003")):
                        self.rows["regions"].append((village, f"Desa {village}", "village", district, False, now))
                        self.villages.append(village)
        self.agency("1101", ["pendidikan"], status="inactive")

    def agency(self, jurisdiction: str, fields: list[str], status: str = "active") -> None:
        agency_id = self.new_id()
        level = "province" if len(jurisdiction) == 2 else "regency"
        self.rows["agencies"].append((agency_id, f"Dinas {jurisdiction} {'/'.join(fields)}", level, jurisdiction,
                                      fields, status, 1))
        if status == "active":
            self.agencies.append((agency_id, fields))

    def birth_date(self) -> date:
        if self.rnd.random() < 0.5:
            return self.day(date(1930, 1, 1), date(2025, 12, 31))
        edge = months_before(self.rnd.choice(AS_OF), self.rnd.choice(BAND_LIMITS))
        return edge + timedelta(days=self.rnd.choice((-1, 0, 0, 1)))

    def registered(self) -> datetime:
        late = self.rnd.random() < 0.25
        return self.moment(date(2024, 1, 1), date(2026, 1, 31)) if late else self.moment(date(2022, 1, 1),
                                                                                           date(2023, 12, 31))

    def household(self, village: str) -> None:
        household_id = self.new_id()
        status = "active" if self.rnd.random() < 0.93 else "inactive"
        self.rows["households"].append((household_id, village, self.new_id(), status, 1, self.registered()))
        members = []
        for _ in range(self.rnd.randrange(1, 7)):
            member_id, birth = self.new_id(), self.birth_date()
            members.append((member_id, birth))
            self.rows["members"].append((
                member_id, household_id, self.rnd.choice(("male", "female")), birth, self.rnd.random() < 0.06,
                self.rnd.choice(("none", "none", "none", "physical", "multiple")),
                "active" if self.rnd.random() < 0.95 else "inactive", 1, self.registered()))
            if self.rnd.random() < 0.04:
                self.rows["member_merges"].append((member_id, members[0][0]))
            self.measurements(household_id, member_id, birth)
            self.visits_and_doses(household_id, member_id, birth)
        for field in FIELDS:
            if self.rnd.random() < 0.6:
                self.profiles(household_id, field, [m for m, _ in members])
        for _ in range(self.rnd.randrange(3)):
            self.need(household_id, village)

    def measurements(self, household_id: uuid.UUID, member_id: uuid.UUID, birth: date) -> None:
        if birth < date(2019, 1, 1):
            return
        days: list[date] = []
        for _ in range(self.rnd.randrange(4)):
            days.append(self.rnd.choice(days) if days and self.rnd.random() < 0.2 else
                        self.day(max(birth, date(2023, 12, 1)), date(2026, 1, 31)))
        for measured_on in days:
            age = (measured_on - birth).days
            classes = [self.rnd.choice([None, "normal", *bad]) for bad in CLASSES]
            self.rows["measurements"].append((self.new_id(), household_id, member_id, measured_on,
                                              self.rnd.choice((age, age, 1826, 1827)), *classes, None,
                                              self.rnd.choice([None, "N", "T", "O", "B"])))

    def visits_and_doses(self, household_id: uuid.UUID, member_id: uuid.UUID, birth: date) -> None:
        """Visits around the periods' bounds (the book seen, not seen or not asked) and, for the young, doses
        (some voided, some given after a period)."""
        groups = ["infant", "toddler", "school-age", "adult", "elderly"]
        for _ in range(self.rnd.randrange(3)):
            self.rows["visits"].append((
                self.new_id(), household_id, member_id, self.new_id(),
                self.day(max(birth, date(2023, 12, 1)), date(2026, 1, 31)), self.rnd.choice(groups),
                self.rnd.random() < 0.1, self.rnd.choice([None, True, False]), self.rnd.random() < 0.5,
                self.rnd.choice([None, "N", "T"])))
        if birth < date(2021, 1, 1):
            return
        for vaccine in self.rnd.sample(["hb0", "bcg", "opv", "dpt-hb-hib", "ipv", "pcv", "rotavirus", "mr", "je"],
                                       self.rnd.randrange(0, 5)):
            self.rows["doses"].append((self.new_id(), household_id, member_id, vaccine, 1,
                                       self.day(birth, date(2026, 1, 31)), self.rnd.random() < 0.1))

    def session(self, village: str) -> None:
        self.rows["sessions"].append((self.new_id(), self.new_id(), village, self.day(date(2023, 12, 1),
                                                                                      date(2026, 1, 31)),
                                      self.rnd.choice(["open", "closed"]), 1))

    def profiles(self, household_id: uuid.UUID, field: str, members: list[uuid.UUID]) -> None:
        for version in range(1, self.rnd.randrange(2, 5)):
            observed = None if self.rnd.random() < 0.1 else self.day(date(2023, 6, 1), date(2026, 2, 28))
            self.rows["profile_versions"].append((
                household_id, field, version, observed, self.moment(date(2023, 6, 1), date(2026, 2, 28)),
                json.dumps(self.profile(field, [*members, self.new_id()]))))

    def profile(self, field: str, members: list[uuid.UUID]) -> dict[str, Any]:
        rnd = self.rnd
        some = [str(m) for m in members if rnd.random() < 0.7]
        # Each field's member items, and now and then another field's item that must not count.
        if field in ("kesehatan", "pendidikan"):
            # The adults' readings on both sides of the thresholds (140/90 mmHg, 200 mg/dL; a text is no reading).
            health = {"immunization_status": rnd.choice(["complete-for-age", "incomplete"]),
                      "systolic_bp": rnd.choice([None, 118, 139, 140, 171, "150"]),
                      "diastolic_bp": rnd.choice([None, 75, 89, 90, 104]),
                      "blood_sugar_mg_dl": rnd.choice([None, 95, 199, 200, 310]),
                      "long_cough": rnd.choice([None, False, True]), "severe_mental_illness": rnd.random() < 0.15}
            items: list[dict[str, Any]] = [{k: v for k, v in health.items() if rnd.random() < 0.8},
                                           {"enrolled": rnd.choice([True, False])}]
            own, other = items if field == "kesehatan" else items[::-1]
            return {"members": {m: {**own, **(other if rnd.random() < 0.2 else {})} for m in some}}
        if field == "pekerjaan-umum":
            return {"household": {"drinking_water_source": rnd.choice(["piped", "bottled", "rainwater",
                                                                       "unprotected-well", "surface-water"]),
                                  "toilet": rnd.choice(["private-with-septic", "shared", "none", "open-pit"])}}
        if field == "perumahan-rakyat":
            house = {"floor": rnd.choice(["earth", "ceramic-or-cement"]), "floor_area_m2": rnd.randrange(8, 90),
                     "occupants": rnd.randrange(0, 9), "roof_condition": rnd.choice(["good", "good", "damaged"]),
                     "wall_condition": rnd.choice(["good", "good", "damaged"]),
                     "wall": rnd.choice(["masonry", "bamboo-or-other"]),
                     "roof": rnd.choice(["tile", "thatch-or-other"]),
                     "disaster_damage": rnd.choice(["none", "light", "moderate", "heavy"]),
                     "relocation_affected": rnd.random() < 0.2}
            return {"household": {k: v for k, v in house.items() if rnd.random() < 0.85}}
        if field == "trantibumlinmas":
            return {"household": {"disaster_risk": rnd.sample(["flood", "landslide", "fire"], rnd.randrange(3)),
                                  "preparedness_informed": rnd.random() < 0.5, "displaced": rnd.random() < 0.2,
                                  "fire_hazard": rnd.random() < 0.25}}
        flags = ["neglected-child", "neglected-elderly", "neglected-disabled", "homeless", "beggar"]
        social: dict[str, Any] = {"dtsen_decile": rnd.randrange(1, 11)}
        if rnd.random() < 0.7:
            social["aid_received"] = rnd.sample(["pkh", "bpnt", "pbi-jk"], rnd.randrange(3))
        return {"household": social,
                "members": {m: {"neglect_flags": rnd.sample(flags, rnd.randrange(3))} for m in some}}

    def need(self, household_id: uuid.UUID, village: str) -> None:
        field = self.rnd.choice(FIELDS)
        detected = self.moment(date(2023, 12, 1), date(2026, 1, 31))
        resolved = detected + timedelta(days=self.rnd.randrange(1, 90)) if self.rnd.random() < 0.5 else None
        self.rows["needs"].append((self.new_id(), household_id, village, field, f"{field}.other", "normal", detected,
                                   resolved))

    def referral(self, village: str) -> None:
        field = self.rnd.choice(FIELDS)
        status = self.rnd.choice(["requested", "received", "accepted", "in-progress", "completed", "failed",
                                  "rejected", "cancelled"])
        owners = [a for a, fields in self.agencies if field in fields]
        agency = self.rnd.choice(owners) if owners and self.rnd.random() < 0.85 else None
        created = self.moment(date(2023, 12, 1), date(2026, 1, 31))
        responded = None if status == "requested" else created + timedelta(hours=self.rnd.randrange(1, 300))
        closed = (created + timedelta(hours=self.rnd.randrange(5, 1500))
                  if status in ("completed", "failed", "rejected", "cancelled") else None)
        overdue = created + timedelta(days=3) if self.rnd.random() < 0.2 else None
        complete_by = created + timedelta(days=self.rnd.choice((7, 30))) if self.rnd.random() < 0.9 else None
        self.rows["referrals"].append((
            self.new_id(), village, self.new_id(), field, f"{field}.other", "normal", status, agency, 2, created,
            created + timedelta(days=3), complete_by, responded, closed, overdue, None))


COLUMNS = {
    "regions": ["code", "name", "level", "parent_code", "retired", "event_time"],
    "agencies": ["id", "name", "level", "jurisdiction_code", "spm_fields", "status", "version"],
    "households": ["id", "village_code", "posyandu_id", "status", "version", "first_seen_at"],
    "members": ["id", "household_id", "sex", "birth_date", "pregnant", "disability", "status", "version",
                "first_seen_at"],
    "member_merges": ["merged_id", "survivor_id"],
    "profile_versions": ["household_id", "spm_field", "version", "observed_on", "event_time", "data"],
    "measurements": ["id", "household_id", "member_id", "measured_on", "age_days", "haz_class", "waz_class",
                     "whz_class", "muac_class", "kms_signal"],
    "needs": ["id", "household_id", "village_code", "spm_field", "category", "urgency", "detected_at",
              "resolved_at"],
    "referrals": ["id", "village_code", "posyandu_id", "spm_field", "category", "urgency", "status", "agency_id",
                  "version", "created_at", "respond_by", "complete_by", "responded_at", "closed_at", "overdue_at",
                  "escalated_at"],
    "sessions": ["id", "posyandu_id", "village_code", "session_date", "status", "version"],
    "visits": ["id", "household_id", "member_id", "session_id", "visited_on", "life_cycle_group", "pregnant",
               "kms_book_held", "weighed", "kms_signal"],
    "doses": ["id", "household_id", "member_id", "vaccine", "dose_number", "given_on", "voided"],
}


@pytest.fixture(scope="module")
async def sessions(stack: Stack) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    # A database of its own, loaded once for the module and only read: the national scopes count every row in it.
    dsn = await stack.migrated_database("reporting", "reporting_indicator_queries")
    country = Country(seed=20260101).build()
    conn = await asyncpg.connect(dsn)
    try:
        for table, rows in country.rows.items():
            await conn.copy_records_to_table(table, records=rows, columns=COLUMNS[table])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    engine = create_async_engine(sqlalchemy_url(dsn))
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    # The reports read the summaries: built here from the projection rows, as `rebuild-summaries` does.
    await rebuild_summaries(sessionmaker=sessionmaker)
    yield sessionmaker
    await engine.dispose()


def with_all_rates(raw: dict[str, Values]) -> dict[str, dict[str, Any]]:
    """Every indicator of every group as a table shows it (a count missing from a group is a zero)."""
    return {region: with_rates(values, ALL.values()) for region, values in raw.items()}


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize(("prefix", "length"), SCOPES)
async def test_every_indicator_equals_the_reference(sessions: async_sessionmaker[AsyncSession], period: str,
                                                    prefix: str, length: int) -> None:
    for fields in FIELD_SETS:
        scope = Scope(prefix, length or len(prefix), parse_period(period), fields)
        async with sessions() as session, session.begin():
            found = await repository.raw_values(session=session, scope=scope)
        async with sessions() as session, session.begin():
            expected = await reference_values(session, scope)
        assert sorted(found) == sorted(expected)
        assert with_all_rates(found) == with_all_rates(expected), (period, prefix, length, fields)


PERCENTILES = {k for k, i in ALL.items() if i.kind == "hours"}


def assert_close(found: dict[str, Any], expected: dict[str, Any], where: Any) -> None:
    """Equal, the percentiles within the summaries' stated error (1% of the value, plus the rounding)."""
    assert {k: v for k, v in found.items() if k not in PERCENTILES} == \
        {k: v for k, v in expected.items() if k not in PERCENTILES}, where
    for key in PERCENTILES & (set(found) | set(expected)):
        got, want = found.get(key), expected.get(key)
        assert (got is None) == (want is None), (where, key)
        assert got is None or want is None or abs(got - want) <= 0.01 * abs(want) + 0.011, (where, key, got, want)


def nonzero(raw: dict[str, Values]) -> dict[str, dict[str, Any]]:
    """The non-zero values of every group as a table shows them (a group with none is not shown)."""
    out = {region: {k: v for k, v in with_rates(values, ALL.values()).items() if v}
           for region, values in raw.items()}
    return {region: values for region, values in out.items() if values}


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize(("prefix", "length"), SCOPES)
async def test_the_summaries_rebuilt_from_the_projections_equal_the_statements(
        sessions: async_sessionmaker[AsyncSession], period: str, prefix: str, length: int) -> None:
    """Every edge of the generated country (births on a band's first and last days, late registrations, merged
    and inactive members, undated and out-of-order profile versions, measurement ties) read from the summaries
    as from the request-time statements."""
    for fields in FIELD_SETS:
        scope = Scope(prefix, length or len(prefix), parse_period(period), fields)
        async with sessions() as session, session.begin():
            found = nonzero(await reads.raw_values(session=session, scope=scope))
            expected = nonzero(await repository.raw_values(session=session, scope=scope))
        assert sorted(found) == sorted(expected), (period, prefix, length, fields)
        for region in expected:
            assert_close(found[region], expected[region], (period, prefix, length, fields, region))


async def test_the_data_gives_every_count_something_to_count(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        expected = await reference_values(session, Scope("", 0, parse_period("2025"), FIELD_SETS[0]))
    zero = [i.key for i in ALL.values() if i.kind == "count" and not expected[""].get(i.key)]
    assert zero == []


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("prefix", ["", "11", "1101", "110101"])
async def test_each_matrix_row_holds_its_area_and_its_agency(sessions: async_sessionmaker[AsyncSession],
                                                             period: str, prefix: str) -> None:
    async with sessions() as session, session.begin():
        table = await matrix_table(session=session, audience=Audience(prefix, tuple(SpmField), suppress=False),
                                   period=parse_period(period), lang="en", threshold=5)
    async with sessions() as session, session.begin():
        referrals = await repository.referral_values_by_agency(
            session=session, scope=Scope(prefix, len(prefix), parse_period(period), FIELD_SETS[0]))
    areas: dict[str, Values] = {}
    for area in {row["region_code"] for row in table.rows}:
        async with sessions() as session, session.begin():
            found = await reference_values(session, Scope(area, len(area), parse_period(period), FIELD_SETS[0]))
        areas[area] = {k: v for k, v in found.get(area, {}).items() if not k.startswith("referrals.")}
    assert {len(area) for area in areas} == ({2, 4} if len(prefix) < 4 else {len(prefix)})
    for row in table.rows:
        indicators = [*FIELD_INDICATORS[SpmField(row["spm_field"])], *REFERRALS]
        agency_referrals = referrals.get((uuid.UUID(row["agency_id"]), row["spm_field"]), {})
        expected = with_rates({**areas[row["region_code"]], **agency_referrals}, indicators)
        assert_close({k: row[k] for k in expected}, expected, (row["agency_name"], row["spm_field"]))
