"""Seeded random event streams for the summary tests, in Jawa Tengah (province 33, regencies 3301-3303), which no
other test uses: households registered, updated, moved and closed; members added, changed, deceased, moved
between households (taking their needs) and merged; profiles in several versions (observed in other months,
or undated); measurements, visits, doses and voids, needs, referrals and sessions, over the first half of 2025.
The tests shuffle the events, repeat some and hold some back to publish after the rest (late events for months
already reported)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.reporting.tests.factories import Stream
from shared.events import household as hh
from shared.events.topics import SpmField

VILLAGES = ["3301011001", "3301011002", "3301021003", "3302011001", "3303011001"]
FIRST, LAST = date(2025, 1, 1), date(2025, 6, 30)
FIELDS = [f.value for f in SpmField]
GROUPS = ["infant", "toddler", "school-age", "adult", "elderly"]


class Generator:
    def __init__(self, seed: int, villages: list[str] = VILLAGES) -> None:
        """`villages`: where the households live (their regencies and provinces are announced; the first
        regency and its province have an agency each)."""
        self.rnd = random.Random(seed)
        self.villages = villages
        self.stream = Stream(default_time=datetime(2025, 1, 1, tzinfo=UTC))
        self.homes: list[dict[str, Any]] = []

    def day(self, first: date = FIRST, last: date = LAST) -> date:
        # One time in eight a month's first or last day.
        if self.rnd.random() < 0.125:
            month = date(2025, self.rnd.randrange(1, 7), 1)
            return month if self.rnd.random() < 0.5 else (month + timedelta(days=32)).replace(day=1) - timedelta(1)
        return first + timedelta(days=self.rnd.randrange((last - first).days + 1))

    def moment(self, first: date = FIRST) -> datetime:
        return datetime.combine(self.day(first), datetime.min.time(), UTC) + timedelta(
            seconds=self.rnd.randrange(86_400))

    def birth(self) -> date:
        if self.rnd.random() < 0.4:  # children, some on a band's edge
            return date(2025, 6, 30) - timedelta(days=self.rnd.randrange(0, 6 * 365))
        return date(1940, 1, 1) + timedelta(days=self.rnd.randrange(0, 80 * 365))

    def build(self) -> Stream:
        s = self.stream
        for province in sorted({v[:2] for v in self.villages}):
            s.region(province, "Jawa Tengah" if province == "33" else f"Provinsi {province}", "province", None)
        for code in sorted({v[:4] for v in self.villages}):
            s.region(code, f"Kabupaten {code}", "regency", code[:2])
        first = self.villages[0]
        agencies = [(s.agency(first[:4], ["kesehatan", "sosial"]), ["kesehatan", "sosial"]),
                    (s.agency(first[:2], ["pendidikan", "kesehatan"]), ["pendidikan", "kesehatan"])]
        for _ in range(24):
            self.household()
        for home in self.homes:
            self.life(home)
        for _ in range(40):
            field = self.rnd.choice(FIELDS)
            owners = [a for a, fields in agencies if field in fields]
            created = self.moment()
            status = self.rnd.choice(["requested", "accepted", "in-progress", "completed", "completed", "failed",
                                      "rejected", "cancelled"])
            steps: list[tuple[str, float, dict[str, Any]]] = []
            if status != "requested":
                responded = self.rnd.randrange(1, 200)
                steps.append(("accepted" if status not in ("rejected", "cancelled") else status, responded,
                              {"responded_at": created + timedelta(hours=responded)}))
                if status not in ("accepted", "rejected", "cancelled"):
                    steps.append((status, responded + self.rnd.randrange(1, 600), {}))
            if self.rnd.random() < 0.2:
                steps.append((steps[-1][0] if steps else "requested", 80, {"overdue_at": created + timedelta(3)}))
            s.referral(self.rnd.choice(self.villages), f"{field}.other", created=created,
                       agency_id=self.rnd.choice(owners) if owners and self.rnd.random() < 0.8 else None,
                       steps=steps, complete_by_hours=self.rnd.choice((100, 400)), reverse=self.rnd.random() < 0.3)
        for _ in range(15):
            self.session()
        return s

    def household(self) -> None:
        village = self.rnd.choice(self.villages)
        home: dict[str, Any] = {"id": uuid.uuid4(), "village": village, "posyandu": uuid.uuid4(), "version": 1,
                                "members": [], "registered": self.moment()}
        self.homes.append(home)
        self.stream.add(hh.HOUSEHOLD_REGISTERED, self.household_data(home, "active"), subject=str(home["id"]),
                        when=home["registered"], regioncode=village)
        for _ in range(self.rnd.randrange(1, 6)):
            self.member(home)

    def household_data(self, home: dict[str, Any], status: str) -> hh.HouseholdData:
        return hh.HouseholdData(household_id=home["id"], kk_number_masked="3301******0001",
                                village_code=home["village"], posyandu_id=home["posyandu"], status=status,
                                needs_reassignment=False, version=home["version"])

    def member(self, home: dict[str, Any]) -> dict[str, Any]:
        member = {"id": uuid.uuid4(), "household": home["id"], "birth": self.birth(), "version": 1,
                  "pregnant": self.rnd.random() < 0.1, "status": "active", "needs": [],
                  "disability": self.rnd.choice(["none", "none", "physical", "sensory"])}
        home["members"].append(member)
        self.member_event(hh.MEMBER_ADDED, member, self.moment(home["registered"].date()))
        return member

    def member_event(self, event_type: Any, member: dict[str, Any], when: datetime, **extra: Any) -> None:
        data = {"member_id": member["id"], "household_id": member["household"], "nik_masked": None, "sex": "female",
                "birth_date": member["birth"], "relationship": "other", "pregnant": member["pregnant"],
                "disability": member["disability"], "status": member["status"], "version": member["version"], **extra}
        self.stream.add(event_type, event_type.data_model(**data), subject=str(member["household"]), when=when)

    def life(self, home: dict[str, Any]) -> None:
        rnd, s = self.rnd, self.stream
        for member in list(home["members"]):
            child = member["birth"] > date(2020, 7, 1)
            for _ in range(rnd.randrange(4) if child else 0):
                s.measurement(member["household"], member["id"], self.day(max(FIRST, member["birth"])),
                              age_days=rnd.choice((300, 900, 1826, 1827)),
                              haz=rnd.choice(["normal", "stunted", "severely-stunted"]),
                              waz=rnd.choice(["normal", "underweight"]), whz=rnd.choice(["normal", "wasted"]))
            for _ in range(rnd.randrange(3)):
                self.visit(member, child)
            if child:
                self.doses(member)
            for _ in range(rnd.randrange(3)):
                self.need(home, member)
            roll = rnd.random()
            if roll < 0.15:  # changed: another birth date, pregnancy, disability, or no longer active
                member["version"] += 1
                member["pregnant"] = not member["pregnant"]
                member["disability"] = rnd.choice(["none", "mental"])
                member["birth"] = member["birth"] - timedelta(days=rnd.choice((0, 40, 400)))
                member["status"] = rnd.choice(["active", "active", "inactive"])
                self.member_event(hh.MEMBER_UPDATED, member, self.moment())
            elif roll < 0.22:
                member["version"] += 1
                member["status"] = "deceased"
                self.member_event(hh.MEMBER_DIED, member, self.moment(), date_of_death=LAST, cause_category=None)
            elif roll < 0.35 and len(self.homes) > 1:  # moved to another household, its open needs with it
                target = rnd.choice([h for h in self.homes if h is not home])
                member["version"] += 1
                member["household"] = target["id"]
                self.member_event(hh.MEMBER_MOVED, member, self.moment(), from_household_id=home["id"],
                                  moved_on=LAST, reason="marriage", posyandu_id=target["posyandu"],
                                  village_code=target["village"], moved_need_ids=member["needs"])
                if child and rnd.random() < 0.7:  # measured again in the new household
                    s.measurement(target["id"], member["id"], self.day(max(FIRST, member["birth"])), age_days=700,
                                  haz=rnd.choice(["normal", "stunted"]))
            elif roll < 0.42:  # recorded twice: the duplicate is merged into the survivor
                duplicate = self.member(home)
                s.merge(member["id"], duplicate["id"], home["id"])
        for field in FIELDS:
            for version in range(1, rnd.randrange(1, 4)):
                s.profile(home["id"], field, self.profile(field, [m["id"] for m in home["members"]]),
                          observed_on=self.day(), undated=rnd.random() < 0.15, version=version)
        roll = rnd.random()
        if roll < 0.2:  # moved to another village
            home["version"] += 1
            home["village"] = rnd.choice(self.villages)
            s.add(hh.HOUSEHOLD_MOVED, hh.HouseholdMovedData(
                household_id=home["id"], from_posyandu_id=home["posyandu"], to_posyandu_id=uuid.uuid4(),
                village_code=home["village"], version=home["version"]), subject=str(home["id"]), when=self.moment())
        elif roll < 0.3:
            home["version"] += 1
            s.add(hh.HOUSEHOLD_CLOSED, hh.HouseholdClosedData(
                **self.household_data(home, "closed").model_dump(), closed_on=LAST, reason="members-gone",
                merged_into_household_id=None), subject=str(home["id"]), when=self.moment())
        elif roll < 0.4:  # a changed address in the same data (village too)
            home["version"] += 1
            home["village"] = rnd.choice(self.villages)
            s.add(hh.HOUSEHOLD_UPDATED, self.household_data(home, "active"), subject=str(home["id"]),
                  when=self.moment())

    def visit(self, member: dict[str, Any], child: bool) -> None:
        self.stream.add(hh.VISIT_RECORDED, hh.VisitData(
            visit_id=uuid.uuid4(), session_id=uuid.uuid4(), posyandu_id=uuid.uuid4(), household_id=member["household"],
            member_id=member["id"], visited_on=self.day(), life_cycle_group=self.rnd.choice(GROUPS), age_months=20,
            pregnant=self.rnd.random() < 0.2,
            child=hh.ChildVisitData(kms_book_held=self.rnd.choice([None, True, False]), weighed=True,
                                    kms_signal=self.rnd.choice([None, "N", "T"])) if child else None),
            subject=str(member["household"]), when=self.moment())

    def doses(self, member: dict[str, Any]) -> None:
        for vaccine in self.rnd.sample(["hb0", "bcg", "opv", "mr"], self.rnd.randrange(3)):
            data = hh.ImmunizationData(
                dose_id=uuid.uuid4(), household_id=member["household"], member_id=member["id"], vaccine=vaccine,
                dose_number=1, given_on=self.day(max(FIRST, member["birth"])), place="posyandu", lot_number=None,
                age_days=100, source="api", immunization_status="incomplete", schedule_version=None)
            self.stream.add(hh.IMMUNIZATION_RECORDED, data, subject=str(member["household"]), when=self.moment())
            if self.rnd.random() < 0.2:
                self.stream.add(hh.IMMUNIZATION_VOIDED, data, subject=str(member["household"]), when=self.moment())

    def need(self, home: dict[str, Any], member: dict[str, Any]) -> None:
        field = self.rnd.choice(FIELDS)
        need_id = uuid.uuid4()
        member["needs"].append(need_id)
        data = hh.NeedData(need_id=need_id, household_id=home["id"], member_id=member["id"], member_nik_masked=None,
                           posyandu_id=home["posyandu"], village_code=home["village"], spm_field=SpmField(field),
                           category=f"{field}.{self.rnd.choice(['other', 'urgent'])}", urgency="normal", evidence={})
        detected = self.moment()
        self.stream.add(hh.NEED_DETECTED, data, subject=str(home["id"]), when=detected)
        if self.rnd.random() < 0.5:
            self.stream.add(hh.NEED_RESOLVED, data, subject=str(home["id"]),
                            when=detected + timedelta(days=self.rnd.randrange(0, 90)))

    def session(self) -> None:
        village = self.rnd.choice(self.villages)
        data = hh.SessionData(session_id=uuid.uuid4(), posyandu_id=uuid.uuid4(), village_code=village,
                              session_date=self.day(), status="open", version=1)
        self.stream.add(hh.SESSION_OPENED, data, subject=str(data.session_id), when=self.moment())
        if self.rnd.random() < 0.3:  # moved to another day when closed
            counts = hh.VisitCounts(infant=0, toddler=0, school_age=0, adult=0, elderly=0, pregnant=0, total=0)
            self.stream.add(hh.SESSION_CLOSED, hh.SessionClosedData(
                **{**data.model_dump(), "status": "closed", "version": 2, "session_date": self.day()}, visits=counts),
                subject=str(data.session_id), when=self.moment())

    def profile(self, field: str, members: list[uuid.UUID]) -> dict[str, Any]:
        rnd = self.rnd
        some = [str(m) for m in members if rnd.random() < 0.8]
        if field == "kesehatan":
            # The adults' readings on both sides of the thresholds (140/90 mmHg, 200 mg/dL), and the flags.
            return {"members": {m: {"immunization_status": rnd.choice(["complete-for-age", "incomplete"]),
                                    "systolic_bp": rnd.choice([None, 120, 139, 140, 160]),
                                    "diastolic_bp": rnd.choice([None, 80, 89, 90]),
                                    "blood_sugar_mg_dl": rnd.choice([None, 110, 199, 200, 260]),
                                    "long_cough": rnd.choice([None, False, True]),
                                    "severe_mental_illness": rnd.random() < 0.2}
                                for m in some}}
        if field == "pendidikan":
            return {"members": {m: {"enrolled": rnd.choice([True, False])} for m in some}}
        if field == "pekerjaan-umum":
            return {"household": {"drinking_water_source": rnd.choice(["piped", "bottled", "surface-water"]),
                                  "toilet": rnd.choice(["private-with-septic", "shared", "none"])}}
        if field == "perumahan-rakyat":
            return {"household": {"floor": rnd.choice(["earth", "ceramic-or-cement"]),
                                  "floor_area_m2": rnd.randrange(8, 60), "occupants": rnd.randrange(0, 8),
                                  "roof_condition": rnd.choice(["good", "damaged"]),
                                  "disaster_damage": rnd.choice(["none", "moderate"]),
                                  "relocation_affected": rnd.random() < 0.3}}
        if field == "trantibumlinmas":
            return {"household": {"disaster_risk": rnd.sample(["flood", "fire"], rnd.randrange(3)),
                                  "preparedness_informed": rnd.random() < 0.5, "displaced": rnd.random() < 0.2,
                                  "fire_hazard": rnd.random() < 0.3}}
        flags = ["neglected-child", "neglected-elderly", "homeless", "beggar"]
        return {"household": {"dtsen_decile": rnd.randrange(1, 11),
                              "aid_received": rnd.sample(["pkh", "bpnt"], rnd.randrange(3))},
                "members": {m: {"neglect_flags": rnd.sample(flags, rnd.randrange(3))} for m in some}}
