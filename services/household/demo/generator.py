"""Deterministic plans of demo households: members, identifiers, per-field profiles, child measurements, doses
and the visits of the posyandu's last opening days (sessions), the children weighed at them.

Pure functions (no I/O): :func:`plan_households` turns the demo posyandu, a count and a reference date into the
same list of :class:`HouseholdPlan` every time (``random.Random(2026)``); the first ``k`` plans do not depend on
how many are asked for. Every third household gets one *scenario* from :data:`SCENARIOS` (a situation that makes
the need rules of DOMAIN.md §6 fire in a given SPM field), cycling, so any run of ~40 or more households has needs
in every field; the rest draw their situation from realistic, mostly need-free distributions.
"""

from __future__ import annotations

import functools
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

from services.household.dates import age_in_months, age_in_years
from services.household.growth.kms import completed_months, default_min_gain_g
from services.household.growth.tables import LMS, Sex, Table, lms_for_age, lms_for_length
from services.household.immunization.schedule import ScheduleRow, national_versions, reached, schedule_of
from services.household.needs.config import DEFAULT_CONFIG
from services.household.needs.rules import pregnancy_month
from shared.events.topics import SpmField
from shared.opening_days import MonthlyRule, Ordinal, Weekday

SEED = 2026
#: The demo posyandu's opening day, as the registry demo schedules it: the children are weighed at the last
#: DEMO_SESSIONS of these days, and members visit then.
DEMO_OPENING_RULE = MonthlyRule(Ordinal.SECOND, Weekday.TUESDAY)
DEMO_SESSIONS = 3

#: Forced situations, one every third household, cycling; each makes needs of the field(s) in its comment.
SCENARIOS: tuple[str, ...] = (
    "water-sanitation",     # pekerjaan-umum: unprotected water, no toilet, open drain
    "rtlh",                 # perumahan-rakyat: earth floor, bamboo walls, thatch roof, crowded
    "disaster-unprepared",  # trantibumlinmas: disaster risk, not informed on preparedness
    "poor-without-aid",     # sosial: decile <= 4, no aid, no JKN
    "out-of-school",        # pendidikan: a school-age child not enrolled, a sibling at dropout risk
    "high-risk-pregnancy",  # kesehatan: a pregnant woman at risk (age, MUAC or missed antenatal visits)
    "toddler-growth",       # kesehatan: doses missed (incomplete), stunted/wasted/underweight measurements
    "elderly-alone",        # sosial (+ kesehatan): an elderly person living alone, poor, hypertensive
    "displaced",            # trantibumlinmas + perumahan-rakyat + sosial: house destroyed, family displaced
    "tb-suspect",           # kesehatan: an adult with a long cough
    "disabled-child",       # pendidikan + sosial: a disabled child out of school, neglected
    "fire-hazard",          # trantibumlinmas + perumahan-rakyat: dense wooden housing, overcrowded
    "paud",                 # pendidikan: a 4-6 year old not in PAUD
    "aid-overlap",          # sosial: aid received at a high decile
)

#: Field order of the profile PUTs (sosial last: its rules read the other fields too).
PROFILE_FIELDS: tuple[SpmField, ...] = (SpmField.PENDIDIKAN, SpmField.KESEHATAN, SpmField.PEKERJAAN_UMUM,
                                        SpmField.PERUMAHAN_RAKYAT, SpmField.TRANTIBUMLINMAS, SpmField.SOSIAL)

#: Demo posyandu codes, as the registry demo spells them: ``P<village code>-<nnn>``.
DEMO_POSYANDU_CODE = re.compile(r"^P(\d{10})-\d{3}$")

MALE_NAMES = ("Ahmad", "Budi", "Agus", "Dedi", "Eko", "Fajar", "Hendra", "Irfan", "Joko", "Rudi", "Slamet", "Wahyu",
              "Yusuf", "Rizki", "Dimas", "Bayu", "Andi", "Arif", "Hasan", "Iwan", "Teguh", "Bambang", "Hadi",
              "Ilham", "Lukman", "Muhammad", "Rahmat", "Sigit", "Taufik", "Umar", "Wawan", "Zainal", "Gilang",
              "Farhan", "Reza", "Aditya", "Yoga", "Hamzah", "Syahrul", "Daeng")
FEMALE_NAMES = ("Siti", "Sri", "Dewi", "Ani", "Rina", "Nur", "Fitri", "Wati", "Yuni", "Ratna", "Ayu", "Indah",
                "Maya", "Putri", "Dian", "Eka", "Fatimah", "Aisyah", "Nurul", "Rahma", "Wulan", "Kartini", "Intan",
                "Citra", "Nabila", "Zahra", "Salsabila", "Aulia", "Mega", "Lina", "Sari", "Hana", "Kirana", "Tuti")
MALE_SECOND = ("Pratama", "Saputra", "Hidayat", "Santoso", "Wijaya", "Setiawan", "Nugroho", "Kusuma", "Rahman",
               "Hakim", "Ramadhan", "Firmansyah", "Gunawan", "Siregar", "Nasution", "Lubis", "Hasibuan", "Sitompul",
               "Maulana", "Syahputra", "Kurniawan", "Prasetyo", "Hermawan", "Sulaiman")
FEMALE_SECOND = ("Susanti", "Rahayu", "Lestari", "Permata", "Anggraini", "Maharani", "Wulandari", "Handayani",
                 "Puspita", "Safitri", "Rahmawati", "Kusumawati", "Agustina", "Sari", "Utami", "Febriani",
                 "Amelia", "Oktaviani", "Nasution", "Siregar", "Hasanah", "Khairunnisa")
STREETS = ("Jl. Melati", "Jl. Kenanga", "Jl. Masjid", "Jl. Pasar", "Jl. Sekolah", "Jl. Mawar", "Jl. Merdeka",
           "Jl. Pahlawan", "Gg. Damai", "Gg. Sawo", "Jl. Kebon Jeruk", "Jl. Cempaka", "Gg. Haji Naim", "Jl. Rawa",
           "Jl. Flamboyan", "Jl. Teratai", "Gg. Kelapa", "Jl. Nusantara")

#: Approximate centre of each demo regency/city (lat, lon), for the households' coordinates.
REGENCY_CENTRES: dict[str, tuple[float, float]] = {
    "1472": (1.67, 101.45), "3101": (-5.61, 106.57), "3171": (-6.18, 106.83), "3172": (-6.13, 106.88),
    "3173": (-6.17, 106.75), "3174": (-6.27, 106.81), "3175": (-6.23, 106.90), "3602": (-6.56, 106.25),
    "6472": (-0.50, 117.15), "7602": (-2.68, 118.89),
}
#: The disaster risks of each demo regency/city (DOMAIN.md §3 `disaster_risk`).
REGENCY_RISKS: dict[str, tuple[str, ...]] = {
    "1472": ("fire", "flood"), "3101": ("flood", "extreme-weather", "tsunami"), "3171": ("flood", "fire"),
    "3172": ("flood", "fire"), "3173": ("flood", "fire"), "3174": ("flood", "fire"), "3175": ("flood", "fire"),
    "3602": ("landslide", "flood", "earthquake"), "6472": ("flood", "landslide"),
    "7602": ("earthquake", "landslide", "tsunami"),
}
DEFAULT_RISKS = ("flood", "extreme-weather")
#: WHO median head circumference (cm) of boys by month; girls are about 1 cm less.
HEAD_CIRCUMFERENCE_MEDIAN = ((0, 34.5), (3, 40.5), (6, 43.3), (12, 46.1), (24, 48.3), (36, 49.5), (48, 50.2),
                             (60, 50.7))
YEAR_DAYS = 365.25
MONTH_DAYS = 30.4375
HEIGHT_FROM_AGE_DAYS = 731
#: Children are weighed while under 60 completed months (the WHO standards end there).
MAX_MEASURED_MONTHS = 60


@dataclass(frozen=True)
class DemoPosyandu:
    id: str
    code: str
    village_code: str
    name: str

    @property
    def village_name(self) -> str:
        parts = self.name.split(" ", 2)
        return parts[2] if len(parts) == 3 and parts[0] == "Posyandu" else self.name

    @property
    def rural(self) -> bool:
        """A desa, or any village of a kabupaten (regency codes 01-69 after the province)."""
        return self.village_code[6] == "2" or int(self.village_code[2:4]) < 71


@dataclass
class MemberPlan:
    name: str
    sex: str
    birth_date: date
    relationship: str
    nik: str | None = None
    pregnant: bool = False
    expected_delivery_date: date | None = None
    disability: str = "none"

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "sex": self.sex, "birth_date": self.birth_date.isoformat(),
                                "relationship": self.relationship, "disability": self.disability}
        if self.nik is not None:
            body["nik"] = self.nik
        if self.pregnant:
            body["pregnant"] = True
            body["expected_delivery_date"] = self.expected_delivery_date.isoformat() \
                if self.expected_delivery_date else None
        return body


@dataclass(frozen=True)
class MeasurementPlan:
    member: int
    measured_on: date
    weight_kg: float
    length_height_cm: float
    measured_lying: bool
    muac_cm: float | None
    head_circumference_cm: float | None

    def body(self) -> dict[str, Any]:
        return {"measured_on": self.measured_on.isoformat(), "weight_kg": self.weight_kg,
                "length_height_cm": self.length_height_cm, "measured_lying": self.measured_lying,
                "muac_cm": self.muac_cm, "head_circumference_cm": self.head_circumference_cm}


@dataclass(frozen=True)
class VisitPlan:
    """One member's visit at the session of ``on``: the visit body without the member id."""

    member: int
    on: date
    services: dict[str, Any]


@dataclass(frozen=True)
class DosePlan:
    member: int
    vaccine: str
    dose: int
    given_on: date
    place: str
    lot_number: str | None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"vaccine": self.vaccine, "dose_number": self.dose,
                                "given_on": self.given_on.isoformat(), "place": self.place}
        if self.lot_number:
            body["lot_number"] = self.lot_number
        return body


@dataclass
class HouseholdPlan:
    number: int
    posyandu: DemoPosyandu
    kk_number: str
    address: str
    rt: str
    rw: str
    latitude: float | None
    longitude: float | None
    members: list[MemberPlan]
    scenario: str | None = None
    #: Per field: the household section (None where the field has none).
    household_sections: dict[SpmField, dict[str, Any]] = field(default_factory=dict)
    #: Per field: member index -> member section.
    member_sections: dict[SpmField, dict[int, dict[str, Any]]] = field(default_factory=dict)
    measurements: list[MeasurementPlan] = field(default_factory=list)
    visits: list[VisitPlan] = field(default_factory=list)
    #: Vaccine doses of the under-fives, in the order to record them (by date).
    doses: list[DosePlan] = field(default_factory=list)

    @property
    def idempotency_key(self) -> str:
        return f"demo-household-{self.number}"

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kk_number": self.kk_number, "village_code": self.posyandu.village_code,
                                "posyandu_id": self.posyandu.id, "address": self.address, "rt": self.rt,
                                "rw": self.rw, "members": [m.body() for m in self.members]}
        if self.latitude is not None and self.longitude is not None:
            body["latitude"], body["longitude"] = self.latitude, self.longitude
        return body

    def profile_body(self, spm_field: SpmField, member_ids: Sequence[str]) -> dict[str, Any]:
        """The PUT body of one field, with the members' ids as the API assigned them (in plan order)."""
        body: dict[str, Any] = {}
        if spm_field in self.household_sections:
            body["household"] = self.household_sections[spm_field]
        if spm_field in self.member_sections:
            body["members"] = {member_ids[i]: section for i, section in self.member_sections[spm_field].items()}
        return body


# --- helpers ------------------------------------------------------------------------------------------------------


def _weighted(rng: random.Random, options: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _months_before(day: date, months: int) -> date:
    """The same day of the month ``months`` calendar months earlier (the month's last day where it is shorter)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    for last in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def session_dates(reference: date, count: int = DEMO_SESSIONS) -> list[date]:
    """The demo posyandu's last ``count`` opening days on or before the reference date, oldest first."""
    return list(DEMO_OPENING_RULE.days(_months_before(reference, count + 1), reference))[-count:]


def lms_value(lms: LMS, z: float, *, restricted_tail: bool = False) -> float:
    """The measurement at ``z`` on an LMS curve (the inverse of WHO's z-score, restricted tail included)."""
    def at(n: float) -> float:
        return lms.m * (1 + lms.l * lms.s * n) ** (1 / lms.l) if lms.l != 0 else lms.m * math.exp(lms.s * n)

    if restricted_tail and z < -3:
        return at(-3) + (z + 3) * (at(-2) - at(-3))
    if restricted_tail and z > 3:
        return at(3) + (z - 3) * (at(3) - at(2))
    return at(z)


class _Household:
    """Builds one household plan; all randomness comes from the shared generator, in a fixed order."""

    def __init__(self, rng: random.Random, number: int, posyandu: DemoPosyandu, reference: date,
                 other_districts: Sequence[str], scenario: str | None) -> None:
        self.rng, self.number, self.posyandu, self.ref = rng, number, posyandu, reference
        self.other_districts = other_districts
        self.scenario = scenario
        self.members: list[MemberPlan] = []
        self.names: set[str] = set()
        #: Member index -> how the child's doses go: `complete-for-age`, `incomplete` (some missed), `unknown`
        #: (no history entered).
        self.immunization: dict[int, str] = {}

    # -- members -----------------------------------------------------------------------------------------------

    def birth(self, min_years: float, max_years: float) -> date:
        """A birth date making the person between min_years and max_years (inclusive, whole years) old."""
        low = max(1, int(min_years * YEAR_DAYS))
        high = max(low, int((max_years + 1) * YEAR_DAYS) - 2)
        return self.ref - timedelta(days=self.rng.randint(low, high))

    def birth_months(self, min_months: int, max_months: int) -> date:
        low = max(1, int(min_months * MONTH_DAYS) + 1)
        high = max(low, int((max_months + 1) * MONTH_DAYS) - 2)
        return self.ref - timedelta(days=self.rng.randint(low, high))

    def name(self, sex: str) -> str:
        first, second = (MALE_NAMES, MALE_SECOND) if sex == "male" else (FEMALE_NAMES, FEMALE_SECOND)
        while True:
            candidate = f"{self.rng.choice(first)} {self.rng.choice(second)}"
            if candidate not in self.names:
                self.names.add(candidate)
                return candidate

    def add(self, sex: str, birth: date, relationship: str, **extra: Any) -> MemberPlan:
        member = MemberPlan(name=self.name(sex), sex=sex, birth_date=birth, relationship=relationship, **extra)
        self.members.append(member)
        return member

    def child(self, mother_birth: date | None, min_years: float, max_years: float,
              relationship: str = "child") -> MemberPlan:
        if mother_birth is not None:  # the mother was at least 18 at the birth
            max_years = min(max_years, max(min_years, age_in_years(mother_birth, self.ref) - 18))
        sex = self.rng.choice(("male", "female"))
        return self.add(sex, self.birth(min_years, max_years), relationship)

    def toddler(self, min_months: int = 0, max_months: int = 59) -> MemberPlan:
        sex = self.rng.choice(("male", "female"))
        return self.add(sex, self.birth_months(min_months, max_months), "child")

    def compose(self) -> None:
        """Head, spouse, children, sometimes parents or grandchildren, by family type (or as the scenario needs)."""
        rng, s = self.rng, self.scenario
        kind = {"elderly-alone": "elderly-alone", "toddler-growth": "young", "paud": "young",
                "high-risk-pregnancy": "young", "out-of-school": "school", "disabled-child": "school"}.get(s or "")
        if kind is None:
            kind = _weighted(rng, [("young", 28), ("school", 30), ("extended", 14), ("older", 12),
                                   ("elderly-alone", 4), ("single-parent", 6), ("grandparents", 6)])
        if kind == "elderly-alone":
            sex = _weighted(rng, [("female", 7), ("male", 3)])
            self.add(sex, self.birth(62, 84), "head")
            return
        if kind == "single-parent":
            parent = self.add("female", self.birth(26, 45), "head")
            for _ in range(rng.randint(1, 3)):
                self.child(parent.birth_date, 1, 16)
            return
        head_age = {"young": (22, 36), "school": (32, 50), "extended": (35, 55), "older": (50, 66),
                    "grandparents": (55, 70)}[kind]
        head = self.add("male", self.birth(*head_age), "head")
        spouse_age = max(18, age_in_years(head.birth_date, self.ref) - rng.randint(0, 6))
        if s == "high-risk-pregnancy" and rng.random() < 0.5:
            spouse_age = rng.choice((18, 19, 37, 39))
        elif s == "paud":
            spouse_age = max(spouse_age, 24)
        spouse = self.add("female", self.birth(spouse_age, spouse_age), "spouse")
        mother = spouse.birth_date
        if kind == "young":
            # The mother was at least 17 at the toddler's birth; the growth scenario's child is under two.
            oldest = max(0, min(59, (age_in_years(mother, self.ref) - 17) * 12))
            low = {"paud": 12, "toddler-growth": 3}.get(s or "", 0)
            self.toddler(min(low, oldest), min(oldest, 20) if s == "toddler-growth" else oldest)
            if s == "paud":
                self.child(mother, 4, 6)
            for _ in range(rng.randint(0, 2)):
                self.child(mother, 0, 9)
        elif kind == "school":
            self.child(mother, 7 if s != "disabled-child" else 6, 17)
            for _ in range(rng.randint(1, 3)):
                self.child(mother, 3, 18)
        elif kind == "extended":
            for _ in range(rng.randint(1, 3)):
                self.child(mother, 0, 16)
            grandparent_sex = rng.choice(("male", "female"))
            self.add(grandparent_sex, self.birth(62, 82), rng.choice(("parent", "in-law")))
            if rng.random() < 0.3:
                self.add("female" if grandparent_sex == "male" else "male", self.birth(60, 80), "parent")
        elif kind == "older":
            for _ in range(rng.randint(0, 2)):
                self.child(mother, 15, 26)
        else:  # grandparents raising grandchildren
            for _ in range(rng.randint(1, 2)):
                self.child(None, 1, 12, "grandchild")
        # Pregnancy: the scenario's, or about one young wife in twelve.
        spouse_age = age_in_years(mother, self.ref)
        if s == "high-risk-pregnancy" or (16 <= spouse_age <= 42 and kind in ("young", "school")
                                          and rng.random() < 0.08):
            spouse.pregnant = True
            spouse.expected_delivery_date = self.ref + timedelta(days=rng.randint(14, 250))
        # Disability: rare, and forced for the scenario's child.
        if s == "disabled-child":
            school_age = [m for m in self.members
                          if m.relationship == "child" and 6 <= age_in_years(m.birth_date, self.ref)]
            school_age[0].disability = rng.choice(("physical", "intellectual", "sensory", "multiple"))
        for member in self.members:
            if member.disability == "none" and rng.random() < 0.015:
                member.disability = rng.choice(("physical", "sensory", "intellectual", "mental"))

    def identify(self) -> str:
        """NIK for the members (serials unique within the demo) and the household's KK number."""
        district = self.posyandu.village_code[:6]
        for i, member in enumerate(self.members):
            months = age_in_months(member.birth_date, self.ref)
            if (months < 12 and self.rng.random() < 0.4) or self.rng.random() < 0.01:
                continue  # newborns often have no NIK yet; a few others are unrecorded
            nik_district = district
            moved = (i == 0 and self.number % 20 == 7) or self.rng.random() < 0.03
            if months >= 17 * 12 and self.other_districts and moved:
                nik_district = self.rng.choice(self.other_districts)  # moved here from elsewhere: flagged
            day = member.birth_date.day + (40 if member.sex == "female" else 0)
            serial = 2000 + (self.number * 12 + i) % 7999
            member.nik = f"{nik_district}{day:02d}{member.birth_date:%m%y}{serial:04d}"
        youngest = max(m.birth_date for m in self.members)
        if age_in_years(youngest, self.ref) >= 17:
            issued = self.ref - timedelta(days=self.rng.randint(200, 4000))
        else:  # reissued after the youngest member was added
            issued = min(self.ref - timedelta(days=1), youngest + timedelta(days=self.rng.randint(14, 400)))
        return f"{district}{issued:%d%m%y}{2000 + self.number % 7999:04d}"

    # -- profiles ----------------------------------------------------------------------------------------------

    def pendidikan(self) -> dict[int, dict[str, Any]]:
        rng, s, sections = self.rng, self.scenario, {}
        school = self.posyandu.village_name
        out_of_school_done = dropout_done = paud_done = False
        for i, m in enumerate(self.members):
            age = age_in_years(m.birth_date, self.ref)
            if age < 3:
                continue
            if age <= 18:
                level = "paud" if age <= 6 else "sd" if age <= 12 else "smp" if age <= 15 else \
                    rng.choice(("sma", "sma", "smk"))
                section: dict[str, Any] = {"enrolled": True, "level": level}
                completed = "none" if age <= 12 else "sd" if age <= 15 else "smp"
                if age >= 7:
                    section["highest_completed"] = completed
                if m.disability != "none" and age >= 5:
                    if s == "disabled-child" or rng.random() < 0.5:
                        section = {"enrolled": False, "level": "none", "highest_completed": "none"}
                    else:
                        section["level"] = "slb"
                elif s == "out-of-school" and not out_of_school_done and age >= 7:
                    section = {"enrolled": False, "level": "none", "highest_completed": completed}
                    out_of_school_done = True
                elif s == "paud" and not paud_done and 4 <= age <= 6:
                    section = {"enrolled": False, "level": "none"}
                    paud_done = True
                elif age >= 7 and rng.random() < (0.06 if age >= 16 else 0.01):
                    section = {"enrolled": False, "level": "none", "highest_completed": completed}
                elif 4 <= age <= 6 and rng.random() < 0.08:
                    section = {"enrolled": False, "level": "none"}
                elif age == 3 and rng.random() < 0.6:
                    section = {"enrolled": False, "level": "none"}
                if section.get("enrolled"):
                    if section["level"] != "paud":
                        number = rng.randint(1, 12)
                        section["school_name"] = f"{section['level'].upper()} Negeri {number} {school}".strip()
                    if age >= 10 and ((s == "out-of-school" and not dropout_done) or rng.random() < 0.02):
                        section["dropout_risk"] = True
                        dropout_done = True
                sections[i] = section
            else:
                if age <= 44:
                    levels = [("none", 0.3), ("sd", 3), ("smp", 21), ("sma", 51), ("diploma", 9), ("degree", 15)]
                else:
                    levels = [("none", 6), ("sd", 30), ("smp", 22), ("sma", 30), ("diploma", 5), ("degree", 7)]
                sections[i] = {"highest_completed": _weighted(rng, levels)}
        return sections

    def kesehatan(self, insurance: str, poor: bool) -> dict[int, dict[str, Any]]:
        rng, s, sections = self.rng, self.scenario, {}
        cough_done = False
        for i, m in enumerate(self.members):
            age, months = age_in_years(m.birth_date, self.ref), age_in_months(m.birth_date, self.ref)
            section: dict[str, Any] = {"health_insurance": insurance}
            # The status is computed from the doses (doses()); this draws how a child's doses went.
            if months < 24:
                self.immunization[i] = "incomplete" if s == "toddler-growth" else _weighted(
                    rng, [("complete-for-age", 85), ("incomplete", 11), ("unknown", 4)])
            elif months < 60:
                self.immunization[i] = _weighted(rng, [("complete-for-age", 85), ("incomplete", 10),
                                                       ("unknown", 5)])
            if m.pregnant and m.expected_delivery_date is not None:
                month = pregnancy_month(m.expected_delivery_date, self.ref)
                due = DEFAULT_CONFIG.anc_due_visits(month)
                visits, muac = due + rng.randint(0, 1), round(rng.uniform(24.0, 29.5), 1)
                if s == "high-risk-pregnancy" and 20 <= age <= 35:
                    if due > 0 and rng.random() < 0.5:
                        visits = due - 1
                    else:
                        muac = round(rng.uniform(21.0, 23.2), 1)
                section.update(antenatal_visits=min(visits, 20), pregnant_muac_cm=muac)
            if age >= 40 and (rng.random() < 0.5 or (s == "elderly-alone")):
                hypertensive = s == "elderly-alone" or rng.random() < 0.08
                section["systolic_bp"] = rng.randint(145, 175) if hypertensive else rng.randint(108, 134)
                section["diastolic_bp"] = rng.randint(88, 102) if hypertensive else rng.randint(68, 84)
                section["blood_sugar_mg_dl"] = rng.randint(85, 140)
            if age >= 18:
                if s == "tb-suspect" and not cough_done:
                    section["long_cough"] = True
                    cough_done = True
                elif rng.random() < 0.008:
                    section["long_cough"] = True
                if rng.random() < 0.002 or (m.disability == "mental" and poor):
                    section["severe_mental_illness"] = True
            sections[i] = section
        return sections

    def measurements(self) -> list[MeasurementPlan]:
        """A weighing of every child under five at each of the last sessions; some stunted, wasted or underweight."""
        rng, plans = self.rng, []
        forced = self.scenario == "toddler-growth"
        for i, m in enumerate(self.members):
            if (m.relationship not in ("child", "grandchild")
                    or age_in_months(m.birth_date, self.ref) >= MAX_MEASURED_MONTHS):
                continue
            state = _weighted(rng, [("stunted", 1), ("wasted", 1), ("severe", 0.35), ("underweight", 1)]) \
                if forced else _weighted(rng, [("normal", 89), ("stunted", 6), ("wasted", 2), ("severe", 0.5),
                                               ("underweight", 2.5)])
            forced = False
            haz, whz, waz = {"normal": (rng.gauss(-0.3, 0.7), rng.gauss(0.0, 0.7), None),
                             "stunted": (rng.uniform(-3.2, -2.3), rng.gauss(0.2, 0.4), None),
                             "wasted": (rng.uniform(-1.4, -0.4), rng.uniform(-2.8, -2.2), None),
                             "severe": (rng.uniform(-2.0, -1.0), rng.uniform(-3.6, -3.15), None),
                             "underweight": (rng.uniform(-1.9, -1.3), None, rng.uniform(-2.8, -2.2))}[state]
            haz = min(2.0, max(-3.5, haz))
            if whz is not None and state == "normal":
                whz = min(1.5, max(-1.7, whz))
            sex = Sex(m.sex)
            previous: tuple[float, float] | None = None  # (weight, length) of the month before
            for on in session_dates(self.ref):
                age_days = (on - m.birth_date).days
                if age_days < 1 or age_in_months(m.birth_date, on) >= MAX_MEASURED_MONTHS:
                    continue
                lfa = lms_for_age(Table.LENGTH_HEIGHT_FOR_AGE, sex, age_days)
                if lfa is None:
                    continue
                length = round(lms_value(lfa, haz + rng.uniform(-0.08, 0.08)), 1)
                if previous is not None:
                    length = max(length, round(previous[1] + 0.3, 1))
                lying = age_days < HEIGHT_FROM_AGE_DAYS
                weight_lms = None
                weight_z = waz
                if whz is not None:
                    table = Table.WEIGHT_FOR_LENGTH if lying else Table.WEIGHT_FOR_HEIGHT
                    weight_lms, weight_z = lms_for_length(table, sex, length), whz
                if weight_lms is None:  # underweight, or a length outside the weight-for-length table
                    weight_lms = lms_for_age(Table.WEIGHT_FOR_AGE, sex, age_days)
                    weight_z = waz if waz is not None else (whz if whz is not None else 0.0)
                if weight_lms is None or weight_z is None:
                    continue
                weight = round(lms_value(weight_lms, weight_z + rng.uniform(-0.08, 0.08), restricted_tail=True), 1)
                if previous is not None and state in ("normal", "stunted"):
                    # A thriving child gains at least the KMS minimum for its age (N on the card); the faltering
                    # (wasted, underweight) keep their low z-scores and often gain too little (T, 2T).
                    minimum_kg = default_min_gain_g(completed_months(m.birth_date, on)) / 1000
                    weight = max(weight, round(previous[0] + minimum_kg + 0.04, 1))
                previous = (weight, length)
                months = age_days / MONTH_DAYS
                muac = None
                if months >= 6:
                    muac = round({"severe": rng.uniform(10.6, 11.4), "wasted": rng.uniform(11.8, 12.6)}.get(
                        state, rng.uniform(13.2, 16.0)), 1)
                head = self._head_circumference(months, m.sex, haz)
                plans.append(MeasurementPlan(member=i, measured_on=on, weight_kg=weight, length_height_cm=length,
                                             measured_lying=lying, muac_cm=muac, head_circumference_cm=head))
        return plans

    def _head_circumference(self, months: float, sex: str, haz: float) -> float:
        points = HEAD_CIRCUMFERENCE_MEDIAN
        median = points[-1][1]
        for (m0, v0), (m1, v1) in pairwise(points):
            if m0 <= months <= m1:
                median = v0 + (v1 - v0) * (months - m0) / (m1 - m0)
                break
        return round(median - (1.0 if sex == "female" else 0.0) + 0.4 * haz + self.rng.uniform(-0.4, 0.4), 1)

    def build(self) -> HouseholdPlan:
        rng, s, p = self.rng, self.scenario, self.posyandu
        self.compose()
        kk_number = self.identify()
        regency = p.village_code[:4]
        centre = REGENCY_CENTRES.get(regency)
        lat = round(centre[0] + rng.uniform(-0.02, 0.02), 5) if centre else None
        lon = round(centre[1] + rng.uniform(-0.02, 0.02), 5) if centre else None
        address = f"{rng.choice(STREETS)} No. {rng.randint(1, 120)}"
        rt, rw = f"{rng.randint(1, 15):03d}", f"{rng.randint(1, 9):03d}"
        occupants = len(self.members)
        rural = p.rural

        # sosial: the welfare decile first, the other fields depend on it
        decile: int | None = _weighted(rng, [(d, w) for d, w in zip(
            range(1, 11), (6, 8, 9, 10, 11, 11, 11, 12, 11, 11) if not rural else (12, 13, 13, 12, 11, 10, 9, 8, 6, 6),
            strict=True)])
        if rng.random() < 0.08:
            decile = None
        if s in ("poor-without-aid", "elderly-alone", "displaced", "disabled-child"):
            decile = rng.randint(1, 4)
        elif s == "aid-overlap":
            decile = rng.randint(7, 9)
        poor = decile is not None and decile <= 4
        if s == "poor-without-aid":
            aid: list[str] | None = []
        elif s == "aid-overlap":
            aid = rng.choice((["pkh"], ["bpnt", "pbi-jk"], ["pkh", "pkh"]))
        elif decile is None:
            aid = None if rng.random() < 0.5 else []
        elif poor:
            aid = [] if rng.random() < 0.08 else sorted(rng.sample(["pkh", "bpnt", "pbi-jk", "blt-desa", "baznas"],
                                                                    rng.randint(1, 3)))
        elif decile == 5:
            aid = rng.choice(([], ["bpnt"], ["pbi-jk"]))
        else:
            aid = ["bpnt"] if rng.random() < 0.02 else []
        if poor:
            insurance = "none" if s == "poor-without-aid" or rng.random() < 0.05 else "jkn-pbi"
        else:
            insurance = _weighted(rng, [("jkn-mandiri", 60), ("jkn-pbi", 18), ("none", 22)])

        # pekerjaan-umum
        if rural:
            water = _weighted(rng, [("piped", 22), ("protected-well", 40), ("protected-spring", 15), ("rainwater", 6),
                                    ("bottled", 10), ("unprotected-well", 4), ("unprotected-spring", 2),
                                    ("surface-water", 1)])
            toilet = _weighted(rng, [("private-with-septic", 78), ("private-no-septic", 6), ("shared", 10),
                                     ("public", 3), ("none", 3)])
            wastewater = _weighted(rng, [("septic", 84), ("sewer", 2), ("open-drain", 12), ("none", 2)])
        else:
            water = _weighted(rng, [("piped", 48), ("bottled", 30), ("protected-well", 20), ("unprotected-well", 2)])
            toilet = _weighted(rng, [("private-with-septic", 87), ("shared", 9), ("private-no-septic", 2.5),
                                     ("public", 1.2), ("none", 0.3)])
            wastewater = _weighted(rng, [("septic", 74), ("sewer", 22), ("open-drain", 4)])
        if s == "water-sanitation":
            water = rng.choice(("unprotected-well", "unprotected-spring", "surface-water"))
            toilet = rng.choice(("none", "private-no-septic"))
            wastewater = rng.choice(("open-drain", "none"))
        pekerjaan_umum = {"drinking_water_source": water, "toilet": toilet, "wastewater": wastewater}

        # perumahan-rakyat
        per_occupant = rng.uniform(8.0, 22.0) if rng.random() > 0.03 else rng.uniform(4.0, 7.0)
        housing: dict[str, Any] = {
            "floor_area_m2": float(round(max(18.0, occupants * per_occupant))), "occupants": occupants,
            "floor": _weighted(rng, [("ceramic-or-cement", 90), ("wood", 8), ("earth", 2)] if not rural else
                               [("ceramic-or-cement", 72), ("wood", 25), ("earth", 3)]),
            "wall": _weighted(rng, [("masonry", 88), ("wood", 10), ("bamboo-or-other", 2)] if not rural else
                              [("masonry", 60), ("wood", 36), ("bamboo-or-other", 4)]),
            "roof": _weighted(rng, [("tile-or-metal", 97), ("thatch-or-other", 3)]),
            "roof_condition": "damaged" if rng.random() < 0.015 else "good",
            "wall_condition": "damaged" if rng.random() < 0.01 else "good",
            "tenure": _weighted(rng, [("own", 68), ("rent", 26), ("other", 6)]),
            "disaster_damage": _weighted(rng, [("none", 95.5), ("light", 4), ("moderate", 0.5)]),
            "relocation_affected": rng.random() < 0.005,
        }
        if s == "rtlh":
            housing.update(floor="earth", wall="bamboo-or-other", roof="thatch-or-other", roof_condition="damaged",
                           floor_area_m2=float(max(12, occupants * rng.randint(4, 6))))
        elif s == "fire-hazard":
            housing.update(wall="wood", floor="wood", floor_area_m2=float(max(12, occupants * rng.randint(4, 6))),
                           tenure="rent")
        elif s == "displaced":
            housing.update(disaster_damage="heavy", roof_condition="damaged", wall_condition="damaged")

        # trantibumlinmas
        regional = REGENCY_RISKS.get(regency, DEFAULT_RISKS)
        risks = sorted(rng.sample(regional, rng.randint(1, min(2, len(regional))))) if rng.random() < 0.5 else []
        informed = bool(risks) and rng.random() < 0.9
        fire_hazard = not rural and regency.startswith("31") and rng.random() < 0.015
        displaced = False
        if s in ("disaster-unprepared", "displaced") and not risks:
            risks = sorted(rng.sample(regional, 1))
        if s == "disaster-unprepared":
            informed = False
        elif s == "displaced":
            displaced = True
        elif s == "fire-hazard":
            fire_hazard, risks = True, sorted({*risks, "fire"})
            informed = rng.random() < 0.5
        trantib: dict[str, Any] = {"disaster_risk": risks, "displaced": displaced, "fire_hazard": fire_hazard}
        if risks:
            trantib["preparedness_informed"] = informed

        # sosial members
        social: dict[int, dict[str, Any]] = {}
        for i, m in enumerate(self.members):
            age = age_in_years(m.birth_date, self.ref)
            flags: list[str] = []
            if m.disability != "none" and (s == "disabled-child" or (poor and rng.random() < 0.3)):
                flags.append("neglected-disabled")
            if m.relationship in ("child", "grandchild") and age < 18 and rng.random() < 0.0015:
                flags.append("neglected-child")
            section: dict[str, Any] = {}
            if age >= 60:
                section["lives_alone"] = occupants == 1
            if flags:
                section["neglect_flags"] = flags
            if section:
                social[i] = section

        plan = HouseholdPlan(number=self.number, posyandu=p, kk_number=kk_number, address=address, rt=rt, rw=rw,
                             latitude=lat, longitude=lon, members=self.members, scenario=s)
        plan.member_sections[SpmField.PENDIDIKAN] = self.pendidikan()
        plan.member_sections[SpmField.KESEHATAN] = self.kesehatan(insurance, poor)
        plan.household_sections[SpmField.PEKERJAAN_UMUM] = pekerjaan_umum
        plan.household_sections[SpmField.PERUMAHAN_RAKYAT] = housing
        plan.household_sections[SpmField.TRANTIBUMLINMAS] = trantib
        plan.household_sections[SpmField.SOSIAL] = {"dtsen_decile": decile, "aid_received": aid}
        plan.member_sections[SpmField.SOSIAL] = social
        plan.measurements = self.measurements()
        plan.visits = self.visits(plan.measurements, plan.member_sections[SpmField.KESEHATAN])
        plan.doses = self.doses()
        return plan

    def visits(self, measurements: list[MeasurementPlan], health: dict[int, dict[str, Any]]) -> list[VisitPlan]:
        """Who came to which session for what: every child weighed there, pregnant women for antenatal care, some
        adolescents, adults and elderly for screening. A generator of its own (the household plans stay as they
        were); the last session's screening values are the profile's, which was observed on the reference date."""
        rng = random.Random(f"{SEED}-visits-{self.number}")
        weighed = {(m.member, m.measured_on): m for m in measurements}
        dates = session_dates(self.ref)
        plans: list[VisitPlan] = []
        for i, m in enumerate(self.members):
            section, book_held = health.get(i, {}), rng.random() < 0.85
            for n, on in enumerate(dates):
                if on < m.birth_date:
                    continue
                months, last = age_in_months(m.birth_date, on), n == len(dates) - 1
                years = months // 12
                body: dict[str, Any] = {}
                if months < MAX_MEASURED_MONTHS:
                    if (measurement := weighed.get((i, on))) is None:
                        continue
                    values = {k: v for k, v in measurement.body().items() if k != "measured_on" and v is not None}
                    supplement = on.month in (2, 8)
                    body["child"] = {"measurement": values, "kms_book_held": book_held,
                                     "vitamin_a": (supplement and months >= 6) or None,
                                     "deworming": (supplement and months >= 12) or None,
                                     "supplementary_feeding": rng.random() < 0.15 or None}
                    body["counselling"] = ["nutrition"] if rng.random() < 0.5 else []
                if m.pregnant and (number := section.get("antenatal_visits", 0) - (len(dates) - 1 - n)) >= 1:
                    body["pregnancy"] = {"antenatal_visit_number": number, "iron_tablets": 30,
                                         "muac_cm": section.get("pregnant_muac_cm") if last else None}
                    body["counselling"] = ["pregnancy-care"]
                if 10 <= years <= 18 and last and rng.random() < 0.4:
                    haemoglobin = round(rng.uniform(10.2, 14.5), 1)
                    body["adolescent"] = {"haemoglobin_g_dl": haemoglobin, "anaemia": haemoglobin < 12.0,
                                          "muac_cm": round(rng.uniform(19.0, 26.0), 1)}
                    body["counselling"] = ["reproductive-health"]
                if years >= 19 and rng.random() < (0.5 if years >= 60 else 0.25):
                    body["adult"] = {
                        "systolic_bp": section.get("systolic_bp") if last else None,
                        "diastolic_bp": section.get("diastolic_bp") if last else None,
                        "blood_sugar_mg_dl": section.get("blood_sugar_mg_dl") if last else None,
                        "long_cough": section.get("long_cough") if last else None,
                        "tb_screening": "positive" if last and section.get("long_cough") else "negative",
                        "mental_health_screening": "negative"}
                    body.setdefault("counselling", ["non-communicable-disease"])
                if body:
                    services = {k: ({f: v for f, v in part.items() if v is not None} if isinstance(part, dict)
                                    else part) for k, part in body.items()}
                    plans.append(VisitPlan(member=i, on=on, services=services))
        return plans

    def doses(self) -> list[DosePlan]:
        """The doses of the national schedule in force on the reference date that each under-five has had by then:
        on time or a little late (most), with one vaccine stopped early (`incomplete`), or none (`unknown`).
        Drawn from a generator of their own, so adding doses changed no other part of the plan."""
        rng = random.Random(f"{SEED}-doses-{self.number}")
        version = _national_schedule().in_force(self.ref)
        if version is None:
            return []
        rows = sorted((r for r in version.rows if r.applies_in(self.posyandu.village_code)),
                      key=lambda r: (reached(self.ref, r.due_age), r.vaccine, r.dose))
        plans: list[DosePlan] = []
        for i, pattern in sorted(self.immunization.items()):
            if pattern == "unknown":
                continue
            birth = self.members[i].birth_date
            # A dose that can still be caught up (past its overdue age, not its latest) makes the child incomplete.
            overdue_now = [r for r in rows if reached(birth, r.overdue_age) <= self.ref
                           and (r.latest_age is None or reached(birth, r.latest_age) >= self.ref)]
            stop = rng.choice(overdue_now) if pattern == "incomplete" and overdue_now else None
            last: dict[str, date] = {}
            for row in rows:
                if stop is not None and row.vaccine == stop.vaccine and row.dose >= stop.dose:
                    continue
                given = self._dose_day(rng, birth, row, last.get(row.vaccine))
                if given is None:
                    continue
                last[row.vaccine] = given
                place = _weighted(rng, [("puskesmas", 6), ("elsewhere", 3), ("parent-report", 1)]) \
                    if row.due_age == "0d" else _weighted(rng, [("posyandu", 16), ("puskesmas", 3),
                                                                ("parent-report", 1)])
                lot = None if place == "parent-report" else \
                    f"{row.vaccine[:3].upper()}{given:%y}{rng.randint(1, 999):03d}"
                plans.append(DosePlan(member=i, vaccine=row.vaccine, dose=row.dose, given_on=given, place=place,
                                      lot_number=lot))
        return sorted(plans, key=lambda d: (d.given_on, d.member, d.vaccine, d.dose))

    def _dose_day(self, rng: random.Random, birth: date, row: ScheduleRow, previous: date | None) -> date | None:
        """The day a dose was given: its due day plus a few days, after the previous dose's interval; None when
        that is not yet (or the dose's latest age passed)."""
        if row.dose > 1 and previous is None:
            return None
        due = reached(birth, row.due_age)
        if due > self.ref:
            return None
        day = min(self.ref, due + timedelta(days=rng.choice((0, 0, 1, 3, 7, 12))))
        if previous is not None:
            day = max(day, previous + timedelta(days=row.min_interval_days or 1))
        if row.latest_age is not None and day > reached(birth, row.latest_age):
            return None
        return day if day <= self.ref else None


@functools.cache
def _national_schedule() -> Any:
    return schedule_of(national_versions())


def plan_households(posyandu: Sequence[DemoPosyandu], count: int, reference_date: date,
                    seed: int = SEED) -> list[HouseholdPlan]:
    """``count`` households spread round-robin over ``posyandu`` (in the order given), the same on every call."""
    if not posyandu:
        raise ValueError("no posyandu to place the demo households at")
    rng = random.Random(seed)
    districts = sorted({p.village_code[:6] for p in posyandu})
    plans = []
    for number in range(count):
        place = posyandu[number % len(posyandu)]
        scenario = SCENARIOS[(number // 3) % len(SCENARIOS)] if number % 3 == 0 else None
        others = [d for d in districts if d != place.village_code[:6]] or ["317101" if place.village_code[:6]
                                                                           != "317101" else "647201"]
        plans.append(_Household(rng, number, place, reference_date, others, scenario).build())
    return plans
