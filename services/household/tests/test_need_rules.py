"""The need-detection rules of DOMAIN.md §6: each rule fires, and does not fire just across each threshold."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.household.dates import age_in_months, age_in_years
from services.household.immunization.status import ImmunizationStatus, PendingDose, StatusCode
from services.household.needs import (
    CATEGORIES,
    DEFAULT_CONFIG,
    DetectedNeed,
    GrowthSnapshot,
    HouseholdSnapshot,
    MemberSnapshot,
    NeedKey,
    NeedRulesConfig,
    Urgency,
    detect,
    diff,
)
from services.household.needs.config import MANUAL_ONLY_CATEGORIES
from services.household.needs.rules import (
    ProgrammeAid,
    overlapping_fields,
    pregnancy_month,
)
from services.household.profiles.schemas import (
    PROFILE_MODELS,
    KesehatanMember,
    KesehatanProfile,
    PekerjaanUmumHousehold,
    PekerjaanUmumProfile,
    PendidikanMember,
    PendidikanProfile,
    PerumahanHousehold,
    PerumahanRakyatProfile,
    SosialHousehold,
    SosialMember,
    SosialProfile,
    TrantibumlinmasHousehold,
    TrantibumlinmasProfile,
)
from shared.events.topics import SpmField

TODAY = date(2025, 6, 15)
HOUSEHOLD_ID = uuid.UUID(int=1)
MEMBER_ID = uuid.UUID(int=2)


# --- factories ------------------------------------------------------------------------------------------------------


def born(years: int = 0, months: int = 0, *, days_later: int = 0) -> date:
    """The birth date of someone exactly `years` and `months` old on TODAY (`days_later`: that many days younger)."""
    total = TODAY.year * 12 + TODAY.month - 1 - years * 12 - months
    return date(total // 12, total % 12 + 1, TODAY.day) + timedelta(days=days_later)


def member(age: int = 30, *, months: int = 0, member_id: uuid.UUID = MEMBER_ID, **overrides: Any) -> MemberSnapshot:
    values: dict[str, Any] = {"member_id": member_id, "birth_date": born(age, months), "sex": "female",
                              "relationship": "head"}
    return MemberSnapshot(**(values | overrides))


def child(months: int, **growth: Any) -> MemberSnapshot:
    """A child `months` old on TODAY, measured today with the given classification inputs."""
    return member(0, months=months, relationship="child",
                  growth=GrowthSnapshot(measured_on=TODAY, **growth) if growth else None)


def household(*members: MemberSnapshot, pendidikan: dict[str, Any] | None = None,
              kesehatan: dict[str, Any] | None = None, sosial_member: dict[str, Any] | None = None,
              pekerjaan_umum: dict[str, Any] | None = None, perumahan: dict[str, Any] | None = None,
              trantibumlinmas: dict[str, Any] | None = None,
              sosial: dict[str, Any] | None = None) -> HouseholdSnapshot:
    """One household; member sections given as dicts apply to MEMBER_ID, household sections to the household."""
    profiles: dict[SpmField, Any] = {}
    if pendidikan is not None:
        profiles[SpmField.PENDIDIKAN] = PendidikanProfile(members={MEMBER_ID: PendidikanMember(**pendidikan)})
    if kesehatan is not None:
        profiles[SpmField.KESEHATAN] = KesehatanProfile(members={MEMBER_ID: KesehatanMember(**kesehatan)})
    if pekerjaan_umum is not None:
        profiles[SpmField.PEKERJAAN_UMUM] = PekerjaanUmumProfile(household=PekerjaanUmumHousehold(**pekerjaan_umum))
    if perumahan is not None:
        profiles[SpmField.PERUMAHAN_RAKYAT] = PerumahanRakyatProfile(household=PerumahanHousehold(**perumahan))
    if trantibumlinmas is not None:
        profiles[SpmField.TRANTIBUMLINMAS] = TrantibumlinmasProfile(
            household=TrantibumlinmasHousehold(**trantibumlinmas))
    if sosial is not None or sosial_member is not None:
        profiles[SpmField.SOSIAL] = SosialProfile(
            household=SosialHousehold(**sosial) if sosial is not None else None,
            members={MEMBER_ID: SosialMember(**sosial_member)} if sosial_member is not None else {})
    return HouseholdSnapshot(household_id=HOUSEHOLD_ID, members=list(members or [member()]), profiles=profiles)


def needs(snapshot: HouseholdSnapshot, config: NeedRulesConfig = DEFAULT_CONFIG) -> dict[str, DetectedNeed]:
    """The detected needs by category (the snapshots here have one need per category at most)."""
    detected = detect(snapshot, today=TODAY, config=config)
    by_category = {need.category: need for need in detected.values()}
    assert len(by_category) == len(detected)
    return by_category


def assert_need(snapshot: HouseholdSnapshot, category: str, urgency: str | None = None,
                member_id: uuid.UUID | None = MEMBER_ID) -> DetectedNeed:
    found = needs(snapshot)
    assert category in found, f"{category} not detected; detected: {sorted(found)}"
    need = found[category]
    assert need.urgency == (urgency or CATEGORIES[category].default_urgency)
    assert need.member_id == member_id
    assert need.spm_field == CATEGORIES[category].spm_field
    assert need.key == (member_id, category)
    json.dumps(need.evidence)
    return need


def assert_no_need(snapshot: HouseholdSnapshot, category: str) -> None:
    assert category not in needs(snapshot)


def check(snapshot: HouseholdSnapshot, category: str, fires: bool, member_level: bool = True) -> DetectedNeed | None:
    if fires:
        return assert_need(snapshot, category, member_id=MEMBER_ID if member_level else None)
    assert_no_need(snapshot, category)
    return None


# --- helpers and tables -------------------------------------------------------------------------------------------


def test_ages_are_whole_years_and_months() -> None:
    assert age_in_years(date(2007, 6, 15), TODAY) == 18
    assert age_in_years(date(2007, 6, 16), TODAY) == 17
    assert age_in_years(date(2004, 2, 29), date(2025, 2, 28)) == 20
    assert age_in_years(date(2004, 2, 29), date(2025, 3, 1)) == 21
    assert age_in_months(date(2023, 6, 15), TODAY) == 24
    assert age_in_months(date(2023, 6, 16), TODAY) == 23
    assert born(18) == date(2007, 6, 15)
    assert born(0, months=7) == date(2024, 11, 15)


def test_the_category_table_has_the_32_categories_of_domain_md() -> None:
    assert len(CATEGORIES) == 32
    for code, info in CATEGORIES.items():
        assert code.split(".")[0] == info.spm_field.value
        assert info.label
        assert info.default_urgency in Urgency
    assert MANUAL_ONLY_CATEGORIES == {"trantibumlinmas.public-order"}


def test_every_automatic_category_has_a_rule() -> None:
    """One household that meets every rule's condition detects every category but the manual one."""
    snapshot = HouseholdSnapshot(
        household_id=HOUSEHOLD_ID,
        members=[
            # ats, special-needs, dropout-risk
            member(10, member_id=uuid.UUID(int=10), disability="physical"),
            # paud
            member(5, member_id=uuid.UUID(int=11)),
            # kesetaraan, hypertension, tb, mental health, pregnancy (MUAC), insurance, neglect flags
            member(30, member_id=uuid.UUID(int=12), pregnant=True),
            # severe malnutrition, stunting, underweight, immunization
            member(0, months=12, member_id=uuid.UUID(int=13),
                   growth=GrowthSnapshot(measured_on=TODAY, whz=-3.5, haz=-2.5, waz=-2.5),
                   immunization=computed("incomplete")),
            # wasting
            member(0, months=20, member_id=uuid.UUID(int=14), growth=GrowthSnapshot(measured_on=TODAY, whz=-2.5)),
            # neglected elderly living alone
            member(70, member_id=uuid.UUID(int=15)),
        ],
        profiles={
            SpmField.PENDIDIKAN: PendidikanProfile(members={
                uuid.UUID(int=10): PendidikanMember(enrolled=False, dropout_risk=True),
                uuid.UUID(int=11): PendidikanMember(enrolled=False),
                uuid.UUID(int=12): PendidikanMember(highest_completed="sd"),
            }),
            SpmField.KESEHATAN: KesehatanProfile(members={
                uuid.UUID(int=12): KesehatanMember(systolic_bp=150, long_cough=True, severe_mental_illness=True,
                                                   pregnant_muac_cm=22, health_insurance="none"),
            }),
            SpmField.PEKERJAAN_UMUM: PekerjaanUmumProfile(household=PekerjaanUmumHousehold(
                drinking_water_source="surface-water", toilet="none", wastewater="open-drain")),
            SpmField.PERUMAHAN_RAKYAT: PerumahanRakyatProfile(household=PerumahanHousehold(
                floor="earth", disaster_damage="heavy", relocation_affected=True)),
            SpmField.TRANTIBUMLINMAS: TrantibumlinmasProfile(household=TrantibumlinmasHousehold(
                disaster_risk=["flood"], preparedness_informed=False, displaced=True, fire_hazard=True,
                public_order_report="Keributan tiap malam")),
            SpmField.SOSIAL: SosialProfile(
                household=SosialHousehold(dtsen_decile=2, aid_received=[]),
                members={uuid.UUID(int=12): SosialMember(neglect_flags=["neglected-child", "neglected-disabled",
                                                                         "beggar"]),
                         uuid.UUID(int=15): SosialMember(lives_alone=True)}),
        },
    )
    detected = detect(snapshot, today=TODAY)
    categories = {category for _, category in detected}
    automatic = set(CATEGORIES) - MANUAL_ONLY_CATEGORIES - {"sosial.aid-overlap"}  # aid-overlap excludes aid-exclusion
    assert categories == automatic
    json.dumps({category: need.evidence for (_, category), need in detected.items()})
    for (member_id, category), need in detected.items():
        assert (member_id, category) == need.key
        household_level = category.split(".")[0] in {"pekerjaan-umum", "perumahan-rakyat", "trantibumlinmas"} or \
            category in {"sosial.aid-exclusion", "sosial.aid-overlap", "sosial.disaster-victim"}
        assert (member_id is None) == household_level, category


def test_aid_overlap_is_detected_when_aid_exclusion_is_not() -> None:
    assert_need(household(sosial={"dtsen_decile": 2, "aid_received": ["pkh", "pkh"]}), "sosial.aid-overlap",
                member_id=None)


def test_public_order_is_never_detected() -> None:
    snapshot = household(trantibumlinmas={"public_order_report": "Tawuran antarwarga"})
    assert needs(snapshot) == {}


def test_an_empty_household_has_no_needs() -> None:
    assert detect(household(), today=TODAY) == {}
    assert detect(HouseholdSnapshot(household_id=HOUSEHOLD_ID), today=TODAY) == {}


def test_a_profile_of_the_wrong_field_is_refused() -> None:
    with pytest.raises(TypeError, match="pendidikan"):
        HouseholdSnapshot(household_id=HOUSEHOLD_ID, profiles={SpmField.PENDIDIKAN: KesehatanProfile()})


def test_sections_of_people_who_are_not_members_are_ignored() -> None:
    snapshot = household(member(9, member_id=uuid.UUID(int=99)), pendidikan={"enrolled": False},
                         kesehatan={"long_cough": True}, sosial_member={"neglect_flags": ["homeless"]})
    assert needs(snapshot) == {}


# --- pendidikan -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("age", "enrolled", "fires"), [
    (7, False, True), (18, False, True), (12, False, True),
    (6, False, False), (19, False, False), (12, True, False), (12, None, False),
])
def test_ats(age: int, enrolled: bool | None, fires: bool) -> None:
    need = check(household(member(age), pendidikan={"enrolled": enrolled}), "pendidikan.ats", fires)
    if need:
        assert need.evidence == {"age_years": age, "enrolled": False}


def test_ats_ends_on_the_19th_birthday() -> None:
    tomorrow_19 = member(birth_date=born(19, days_later=1))
    assert_need(household(tomorrow_19, pendidikan={"enrolled": False}), "pendidikan.ats")
    assert_no_need(household(member(birth_date=born(19)), pendidikan={"enrolled": False}), "pendidikan.ats")


@pytest.mark.parametrize(("age", "enrolled", "fires"), [
    (4, False, True), (6, False, True), (3, False, False), (7, False, False), (5, True, False), (5, None, False),
])
def test_paud(age: int, enrolled: bool | None, fires: bool) -> None:
    need = check(household(member(age), pendidikan={"enrolled": enrolled}), "pendidikan.paud", fires)
    if need:
        assert need.urgency == "low"


@pytest.mark.parametrize(("dropout_risk", "fires"), [(True, True), (False, False), (None, False)])
def test_dropout_risk(dropout_risk: bool | None, fires: bool) -> None:
    check(household(member(14), pendidikan={"enrolled": True, "dropout_risk": dropout_risk}),
          "pendidikan.dropout-risk", fires)


@pytest.mark.parametrize(("age", "enrolled", "highest", "fires"), [
    (15, False, "sd", True), (44, False, "none", True), (30, None, "sd", True), (19, None, "none", True),
    (14, False, "sd", False), (45, False, "sd", False),  # outside 15-44
    (30, False, "smp", False), (30, False, "degree", False), (30, False, None, False),  # not below smp
    (30, True, "sd", False),  # enrolled (e.g. in paket-b)
    (18, None, "sd", False),  # school age: enrolment must be recorded false
])
def test_kesetaraan(age: int, enrolled: bool | None, highest: str | None, fires: bool) -> None:
    need = check(household(member(age), pendidikan={"enrolled": enrolled, "highest_completed": highest}),
                 "pendidikan.kesetaraan", fires)
    if need:
        assert need.evidence == {"age_years": age, "enrolled": enrolled, "highest_completed": highest}


@pytest.mark.parametrize(("age", "disability", "enrolled", "fires"), [
    (5, "physical", False, True), (18, "sensory", False, True), (10, "multiple", False, True),
    (4, "physical", False, False), (19, "physical", False, False),
    (10, "none", False, False), (10, "intellectual", True, False), (10, "mental", None, False),
])
def test_special_needs(age: int, disability: str, enrolled: bool | None, fires: bool) -> None:
    need = check(household(member(age, disability=disability), pendidikan={"enrolled": enrolled}),
                 "pendidikan.special-needs", fires)
    if need:
        assert need.urgency == "high"
        assert need.evidence["disability"] == disability


# --- kesehatan: child growth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("growth", "fires"), [
    ({"whz": -3.01}, True), ({"whz": -3.0}, False),
    ({"muac_cm": 11.4}, True), ({"muac_cm": 11.5}, False),
    ({"whz": -1.0, "muac_cm": 11.0}, True),
])
def test_severe_malnutrition(growth: dict[str, float], fires: bool) -> None:
    need = check(household(child(18, **growth)), "kesehatan.severe-malnutrition", fires)
    if need:
        assert need.urgency == "emergency"
        assert need.evidence["measured_on"] == TODAY.isoformat()


@pytest.mark.parametrize(("months_at_measurement", "fires"), [(6, True), (59, True), (5, False), (60, False)])
def test_muac_threshold_applies_to_children_of_6_to_59_months(months_at_measurement: int, fires: bool) -> None:
    snapshot = household(child(months_at_measurement, muac_cm=11.0))
    check(snapshot, "kesehatan.severe-malnutrition", fires)


@pytest.mark.parametrize(("months", "fires"), [(0, True), (60, True), (61, False)])
def test_growth_rules_apply_up_to_60_months(months: int, fires: bool) -> None:
    check(household(child(months, haz=-2.5)), "kesehatan.stunting", fires)


def test_growth_rules_read_the_childs_age_today_not_at_the_measurement() -> None:
    old_measurement = GrowthSnapshot(measured_on=TODAY - timedelta(days=400), haz=-2.5)
    assert_no_need(household(member(0, months=70, growth=old_measurement)), "kesehatan.stunting")


@pytest.mark.parametrize(("whz", "fires"), [(-2.01, True), (-3.0, True), (-2.0, False), (-3.01, False), (0.5, False)])
def test_wasting(whz: float, fires: bool) -> None:
    need = check(household(child(18, whz=whz)), "kesehatan.wasting", fires)
    if need:
        assert need.urgency == "high"
        assert need.evidence["whz"] == whz


@pytest.mark.parametrize(("haz", "fires"), [(-2.01, True), (-4.0, True), (-2.0, False), (1.0, False)])
def test_stunting(haz: float, fires: bool) -> None:
    check(household(child(30, haz=haz)), "kesehatan.stunting", fires)


@pytest.mark.parametrize(("growth", "urgency"), [
    ({"waz": -2.01}, "normal"), ({"waz": -3.0}, "normal"), ({"waz": 0.0, "two_t": True}, "normal"),
    ({"two_t": True}, "normal"), ({"waz": -3.01}, "high"), ({"waz": -3.5, "two_t": True}, "high"),
    ({"waz": -2.0}, None), ({"waz": 0.0}, None), ({"whz": -2.5}, None),
])
def test_underweight(growth: dict[str, Any], urgency: str | None) -> None:
    snapshot = household(child(12, **growth))
    if urgency is None:
        assert_no_need(snapshot, "kesehatan.underweight")
    else:
        need = assert_need(snapshot, "kesehatan.underweight", urgency)
        assert need.evidence["bgm"] is (urgency == "high")


def test_no_measurement_no_growth_need() -> None:
    assert needs(household(child(12))) == {}


# --- kesehatan: other -----------------------------------------------------------------------------------------------


def computed(code: StatusCode) -> ImmunizationStatus:
    """A status as immunization/status.py computes it, with polio 2 overdue when incomplete."""
    overdue = (PendingDose("opv", 2, TODAY, TODAY),) if code == "incomplete" else ()
    return ImmunizationStatus(status=code, schedule_version="kemenkes-2023", overdue=overdue)


@pytest.mark.parametrize(("months", "status", "fires"), [
    (0, "incomplete", True), (23, "incomplete", True), (24, "incomplete", True), (59, "incomplete", True),
    (60, "incomplete", False),
    (12, "complete-for-age", False), (12, "unknown", False), (12, None, False),
])
def test_immunization(months: int, status: StatusCode | None, fires: bool) -> None:
    baby = replace(child(months), immunization=computed(status) if status else None)
    need = check(household(baby), "kesehatan.immunization", fires)
    if need:
        assert need.evidence == {"age_months": months, "immunization_status": "incomplete",
                                 "schedule_version": "kemenkes-2023", "overdue": ["opv-2"]}


def test_immunization_reads_the_computed_status_not_the_profile() -> None:
    # A stored profile value (what reporting reads) never makes the rule fire by itself: the rule computes.
    stale = household(replace(child(12), immunization=computed("complete-for-age")),
                      kesehatan={"immunization_status": "incomplete"})
    check(stale, "kesehatan.immunization", False)


def pregnant(age: int = 28, *, gestational_days: int | None = None) -> MemberSnapshot:
    edd = None if gestational_days is None else TODAY + timedelta(days=280 - gestational_days)
    return member(age, pregnant=True, expected_delivery_date=edd)


@pytest.mark.parametrize(("age", "fires"), [(19, True), (20, False), (35, False), (36, True), (42, True)])
def test_high_risk_pregnancy_by_age(age: int, fires: bool) -> None:
    need = check(household(pregnant(age)), "kesehatan.high-risk-pregnancy", fires)
    if need:
        assert need.evidence["reasons"] == ["age"]
        assert need.urgency == "high"


def test_age_alone_is_no_risk_when_not_pregnant() -> None:
    assert_no_need(household(member(17)), "kesehatan.high-risk-pregnancy")
    assert_no_need(household(member(17, pregnant=False), kesehatan={"pregnant_muac_cm": 20}),
                   "kesehatan.high-risk-pregnancy")


@pytest.mark.parametrize(("muac", "fires"), [(23.4, True), (23.5, False), (None, False)])
def test_high_risk_pregnancy_by_muac(muac: float | None, fires: bool) -> None:
    need = check(household(pregnant(), kesehatan={"pregnant_muac_cm": muac}), "kesehatan.high-risk-pregnancy", fires)
    if need:
        assert need.evidence["reasons"] == ["muac"]


@pytest.mark.parametrize(("gestational_days", "visits", "fires"), [
    (89, 0, False),  # month 3: the first-trimester visit is not yet overdue
    (90, 0, True), (90, 1, False),  # month 4: 1 due
    (150, 1, True), (150, 2, False),  # month 6: 2 due
    (180, 2, True), (180, 3, False),  # month 7: 3 due
    (240, 4, True), (240, 5, False),  # month 9: 5 due
    (270, 5, True), (270, 6, False),  # month 10 (term): 6 due
    (300, 5, True),  # past the expected delivery date
])
def test_high_risk_pregnancy_by_antenatal_visits(gestational_days: int, visits: int, fires: bool) -> None:
    snapshot = household(pregnant(gestational_days=gestational_days), kesehatan={"antenatal_visits": visits})
    need = check(snapshot, "kesehatan.high-risk-pregnancy", fires)
    if need:
        assert need.evidence["reasons"] == ["antenatal-visits"]
        assert need.evidence["antenatal_visits"] == visits


def test_antenatal_visits_need_the_expected_delivery_date_and_the_count() -> None:
    assert_no_need(household(pregnant(), kesehatan={"antenatal_visits": 0}), "kesehatan.high-risk-pregnancy")
    assert_no_need(household(pregnant(gestational_days=250), kesehatan={}), "kesehatan.high-risk-pregnancy")


def test_every_pregnancy_risk_is_listed() -> None:
    snapshot = household(pregnant(17, gestational_days=200), kesehatan={"antenatal_visits": 0, "pregnant_muac_cm": 22})
    need = assert_need(snapshot, "kesehatan.high-risk-pregnancy")
    assert need.evidence == {"reasons": ["age", "muac", "antenatal-visits"], "age_years": 17,
                             "pregnant_muac_cm": 22.0, "pregnancy_month": 7, "antenatal_visits": 0,
                             "antenatal_visits_due": 3}


@pytest.mark.parametrize(("edd_in_days", "month"), [(280, 1), (300, 1), (251, 1), (250, 2), (190, 4),
                                                    (11, 9), (10, 10), (0, 10), (-20, 10)])
def test_pregnancy_month(edd_in_days: int, month: int) -> None:
    assert pregnancy_month(TODAY + timedelta(days=edd_in_days), TODAY) == month


def test_antenatal_schedule_is_the_minimum_of_six_visits() -> None:
    assert [DEFAULT_CONFIG.anc_due_visits(m) for m in range(0, 12)] == [0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 6]


@pytest.mark.parametrize(("age", "systolic", "diastolic", "fires"), [
    (40, 140, 80, True), (40, 120, 90, True), (40, 180, 110, True), (40, 140, None, True), (40, None, 95, True),
    (40, 139, 89, False), (40, None, None, False), (18, 150, 95, True), (17, 150, 95, False),
])
def test_hypertension(age: int, systolic: int | None, diastolic: int | None, fires: bool) -> None:
    need = check(household(member(age), kesehatan={"systolic_bp": systolic, "diastolic_bp": diastolic}),
                 "kesehatan.hypertension", fires)
    if need:
        assert need.evidence == {"systolic_bp": systolic, "diastolic_bp": diastolic}


@pytest.mark.parametrize(("category", "item"), [("kesehatan.tb-suspect", "long_cough"),
                                                ("kesehatan.mental-health", "severe_mental_illness")])
@pytest.mark.parametrize(("value", "fires"), [(True, True), (False, False), (None, False)])
def test_flag_rules_of_kesehatan(category: str, item: str, value: bool | None, fires: bool) -> None:
    need = check(household(member(40), kesehatan={item: value}), category, fires)
    if need:
        assert need.urgency == "high"


# --- pekerjaan-umum -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "fires"), [
    ("unprotected-well", True), ("unprotected-spring", True), ("surface-water", True), ("other", True),
    ("piped", False), ("protected-well", False), ("protected-spring", False), ("rainwater", False),
    ("bottled", False), (None, False),
])
def test_drinking_water(source: str | None, fires: bool) -> None:
    check(household(pekerjaan_umum={"drinking_water_source": source}), "pekerjaan-umum.drinking-water", fires,
          member_level=False)


@pytest.mark.parametrize(("toilet", "urgency"), [
    ("none", "high"), ("private-no-septic", "normal"),
    ("private-with-septic", None), ("shared", None), ("public", None), (None, None),
])
def test_sanitation(toilet: str | None, urgency: str | None) -> None:
    snapshot = household(pekerjaan_umum={"toilet": toilet})
    if urgency is None:
        assert_no_need(snapshot, "pekerjaan-umum.sanitation")
    else:
        assert_need(snapshot, "pekerjaan-umum.sanitation", urgency, member_id=None)


@pytest.mark.parametrize(("wastewater", "fires"), [("open-drain", True), ("none", True), ("sewer", False),
                                                   ("septic", False), (None, False)])
def test_wastewater(wastewater: str | None, fires: bool) -> None:
    need = check(household(pekerjaan_umum={"wastewater": wastewater}), "pekerjaan-umum.wastewater", fires,
                 member_level=False)
    if need:
        assert need.urgency == "low"


# --- perumahan-rakyat -----------------------------------------------------------------------------------------------

DECENT_HOUSE: dict[str, Any] = {"floor_area_m2": 72.0, "occupants": 10, "floor": "ceramic-or-cement",
                                "wall": "masonry", "roof": "tile-or-metal", "roof_condition": "good",
                                "wall_condition": "good"}


def test_a_decent_house_is_not_rtlh() -> None:
    assert_no_need(household(perumahan=DECENT_HOUSE), "perumahan-rakyat.rtlh")  # exactly 7.2 m² per occupant


@pytest.mark.parametrize(("change", "reason"), [
    ({"floor_area_m2": 71.9}, "floor-area-per-occupant"),
    ({"occupants": 11}, "floor-area-per-occupant"),
    ({"floor": "earth"}, "floor"),
    ({"roof_condition": "damaged"}, "roof-condition"),
    ({"wall_condition": "damaged"}, "wall-condition"),
    ({"wall": "bamboo-or-other", "roof": "thatch-or-other"}, "non-durable-wall-and-roof"),
])
def test_rtlh_fires(change: dict[str, Any], reason: str) -> None:
    need = assert_need(household(perumahan=DECENT_HOUSE | change), "perumahan-rakyat.rtlh", member_id=None)
    assert need.evidence["reasons"] == [reason]


@pytest.mark.parametrize("change", [
    {"floor": "wood"}, {"wall": "bamboo-or-other"}, {"roof": "thatch-or-other"},
    {"wall": "wood", "roof": "thatch-or-other"}, {"floor_area_m2": 1.0, "occupants": None},
    {"floor_area_m2": None, "occupants": 50},
])
def test_rtlh_does_not_fire(change: dict[str, Any]) -> None:
    assert_no_need(household(perumahan=DECENT_HOUSE | change), "perumahan-rakyat.rtlh")


def test_rtlh_evidence_gives_the_area_per_occupant() -> None:
    need = assert_need(household(perumahan={"floor_area_m2": 20, "occupants": 3}), "perumahan-rakyat.rtlh",
                       member_id=None)
    assert need.evidence == {"reasons": ["floor-area-per-occupant"], "floor_area_m2": 20.0, "occupants": 3,
                             "floor_area_per_occupant_m2": 6.67}


@pytest.mark.parametrize(("damage", "fires"), [("moderate", True), ("heavy", True), ("light", False),
                                               ("none", False), (None, False)])
def test_disaster_damage(damage: str | None, fires: bool) -> None:
    check(household(perumahan={"disaster_damage": damage}), "perumahan-rakyat.disaster-damage", fires,
          member_level=False)


@pytest.mark.parametrize(("value", "fires"), [(True, True), (False, False), (None, False)])
def test_relocation(value: bool | None, fires: bool) -> None:
    check(household(perumahan={"relocation_affected": value}), "perumahan-rakyat.relocation", fires,
          member_level=False)


# --- trantibumlinmas ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("risk", "informed", "fires"), [
    (["flood"], False, True), (["earthquake", "tsunami"], False, True),
    (["flood"], True, False), (["flood"], None, False), ([], False, False), (None, False, False),
])
def test_preparedness(risk: list[str] | None, informed: bool | None, fires: bool) -> None:
    need = check(household(trantibumlinmas={"disaster_risk": risk, "preparedness_informed": informed}),
                 "trantibumlinmas.preparedness", fires, member_level=False)
    if need:
        assert need.evidence == {"disaster_risk": risk, "preparedness_informed": False}


@pytest.mark.parametrize(("category", "item", "urgency"), [
    ("trantibumlinmas.displaced", "displaced", "emergency"),
    ("trantibumlinmas.fire-hazard", "fire_hazard", "normal"),
])
@pytest.mark.parametrize(("value", "fires"), [(True, True), (False, False), (None, False)])
def test_flag_rules_of_trantibumlinmas(category: str, item: str, urgency: str, value: bool | None,
                                       fires: bool) -> None:
    need = check(household(trantibumlinmas={item: value}), category, fires, member_level=False)
    if need:
        assert need.urgency == urgency


# --- sosial ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "category"), [
    (["neglected-child"], "sosial.neglected-child"),
    (["neglected-elderly"], "sosial.neglected-elderly"),
    (["neglected-disabled"], "sosial.neglected-disabled"),
    (["homeless"], "sosial.homeless"),
    (["beggar"], "sosial.homeless"),
])
def test_neglect_flags(flags: list[str], category: str) -> None:
    assert_need(household(member(30), sosial_member={"neglect_flags": flags}), category)


@pytest.mark.parametrize("category", ["sosial.neglected-child", "sosial.neglected-elderly",
                                      "sosial.neglected-disabled", "sosial.homeless"])
@pytest.mark.parametrize("flags", [[], None])
def test_no_neglect_flag_no_need(category: str, flags: list[str] | None) -> None:
    assert_no_need(household(member(30), sosial_member={"neglect_flags": flags}), category)


def test_homeless_and_beggar_are_one_need() -> None:
    snapshot = household(member(30), sosial_member={"neglect_flags": ["beggar", "homeless"]})
    assert needs(snapshot)["sosial.homeless"].evidence == {"neglect_flags": ["beggar", "homeless"]}


@pytest.mark.parametrize(("age", "lives_alone", "decile", "fires"), [
    (60, True, 4, True), (85, True, 1, True),
    (59, True, 4, False), (60, True, 5, False), (60, True, None, False), (60, False, 1, False), (60, None, 1, False),
])
def test_neglected_elderly_living_alone(age: int, lives_alone: bool | None, decile: int | None, fires: bool) -> None:
    snapshot = household(member(age), sosial_member={"lives_alone": lives_alone}, sosial={"dtsen_decile": decile})
    need = check(snapshot, "sosial.neglected-elderly", fires)
    if need:
        assert need.evidence == {"age_years": age, "lives_alone": True, "dtsen_decile": decile}


@pytest.mark.parametrize(("decile", "insurance", "fires"), [
    (4, "none", True), (1, "none", True),
    (5, "none", False), (None, "none", False), (2, "jkn-pbi", False), (2, "jkn-mandiri", False), (2, None, False),
])
def test_health_insurance(decile: int | None, insurance: str | None, fires: bool) -> None:
    snapshot = household(member(30), kesehatan={"health_insurance": insurance}, sosial={"dtsen_decile": decile})
    need = check(snapshot, "sosial.health-insurance", fires)
    if need:
        assert need.spm_field == "sosial"


def test_health_insurance_is_per_member() -> None:
    insured, uninsured = uuid.UUID(int=20), uuid.UUID(int=21)
    snapshot = HouseholdSnapshot(
        household_id=HOUSEHOLD_ID, members=[member(40, member_id=insured), member(12, member_id=uninsured)],
        profiles={SpmField.KESEHATAN: KesehatanProfile(members={
                      insured: KesehatanMember(health_insurance="jkn-pbi"),
                      uninsured: KesehatanMember(health_insurance="none")}),
                  SpmField.SOSIAL: SosialProfile(household=SosialHousehold(dtsen_decile=3))})
    assert set(detect(snapshot, today=TODAY)) == {(uninsured, "sosial.health-insurance")}


@pytest.mark.parametrize(("decile", "aid", "fires"), [
    (4, [], True), (1, [], True),
    (5, [], False), (None, [], False), (2, None, False), (2, ["blt-desa"], False),
])
def test_aid_exclusion(decile: int | None, aid: list[str] | None, fires: bool) -> None:
    need = check(household(sosial={"dtsen_decile": decile, "aid_received": aid}), "sosial.aid-exclusion", fires,
                 member_level=False)
    if need:
        assert need.evidence["aid_received"] == []


def test_aid_exclusion_lists_the_programmes_the_decile_is_eligible_for() -> None:
    need = assert_need(household(sosial={"dtsen_decile": 4, "aid_received": []}), "sosial.aid-exclusion",
                       member_id=None)
    assert need.evidence["eligible_programmes"] == ["bpnt", "pbi-jk", "pkh"]


@pytest.mark.parametrize(("decile", "aid", "reasons"), [
    (6, ["bpnt"], ["decile"]), (10, ["pkh", "pbi-jk"], ["decile"]),
    (2, ["pkh", "pkh"], ["duplicate-programme"]), (None, ["bpnt", "bpnt"], ["duplicate-programme"]),
    (7, ["baznas", "baznas"], ["decile", "duplicate-programme"]),
    (5, ["bpnt"], None), (6, [], None), (6, None, None), (None, ["pkh"], None),
    (2, ["other", "other"], None), (2, ["pkh", "bpnt", "pbi-jk"], None),
])
def test_aid_overlap(decile: int | None, aid: list[str] | None, reasons: list[str] | None) -> None:
    snapshot = household(sosial={"dtsen_decile": decile, "aid_received": aid})
    if reasons is None:
        assert_no_need(snapshot, "sosial.aid-overlap")
    else:
        need = assert_need(snapshot, "sosial.aid-overlap", "low", member_id=None)
        assert need.evidence["reasons"] == reasons


@pytest.mark.parametrize(("displaced", "damage", "fires"), [
    (True, None, True), (None, "heavy", True), (True, "heavy", True),
    (False, "moderate", False), (None, "light", False), (None, None, False),
])
def test_disaster_victim(displaced: bool | None, damage: str | None, fires: bool) -> None:
    snapshot = household(trantibumlinmas={"displaced": displaced}, perumahan={"disaster_damage": damage})
    need = check(snapshot, "sosial.disaster-victim", fires, member_level=False)
    if need:
        assert need.urgency == "high"
        assert need.evidence == {"displaced": displaced is True, "disaster_damage": damage}


# --- configuration --------------------------------------------------------------------------------------------------


def test_thresholds_come_from_the_configuration() -> None:
    house = household(perumahan={"floor_area_m2": 80, "occupants": 10})
    assert_no_need(house, "perumahan-rakyat.rtlh")
    assert "perumahan-rakyat.rtlh" in needs(house, NeedRulesConfig(rtlh_min_area_per_occupant_m2=9))
    poor = household(sosial={"dtsen_decile": 5, "aid_received": []})
    assert "sosial.aid-exclusion" in needs(poor, replace(DEFAULT_CONFIG, aid_exclusion_max_decile=5))


def test_the_configuration_is_frozen() -> None:
    with pytest.raises(AttributeError):
        DEFAULT_CONFIG.ats_min_age = 6  # type: ignore[misc]


# --- diff -----------------------------------------------------------------------------------------------------------


def test_a_condition_that_holds_is_detected_once() -> None:
    snapshot = household(child(12, waz=-2.5), pekerjaan_umum={"toilet": "none"})
    first = detect(snapshot, today=TODAY)
    detected, resolved, changed = diff({}, first)
    assert {need.category for need in detected} == {"kesehatan.underweight", "pekerjaan-umum.sanitation"}
    assert resolved == [] and changed == []
    again = detect(snapshot, today=TODAY)
    assert diff(first, again) == ([], [], [])


def test_a_cleared_condition_is_resolved() -> None:
    before = detect(household(pekerjaan_umum={"toilet": "none", "wastewater": "open-drain"}), today=TODAY)
    after = detect(household(pekerjaan_umum={"toilet": "private-with-septic", "wastewater": "open-drain"}),
                   today=TODAY)
    result = diff(before, after)
    assert result.detected == [] and result.changed == []
    assert result.resolved == [(None, "pekerjaan-umum.sanitation")]


def test_growing_out_of_a_rule_resolves_it() -> None:
    snapshot = household(member(18), pendidikan={"enrolled": False})
    before = detect(snapshot, today=TODAY)
    after = detect(snapshot, today=TODAY.replace(year=2026))
    assert diff(before, after).resolved == [(MEMBER_ID, "pendidikan.ats")]


def test_a_change_of_urgency_is_not_a_new_need() -> None:
    before = detect(household(child(12, waz=-2.5)), today=TODAY)
    after = detect(household(child(12, waz=-3.2)), today=TODAY)
    result = diff(before, after)
    assert result.detected == [] and result.resolved == []
    assert [(need.category, need.urgency) for need in result.changed] == [("kesehatan.underweight", "high")]


def test_new_evidence_for_the_same_need_emits_nothing() -> None:
    before = detect(household(child(12, haz=-2.5)), today=TODAY)
    after = detect(household(child(12, haz=-2.9)), today=TODAY)
    assert diff(before, after) == ([], [], [])


def test_diff_accepts_stored_needs_with_plain_string_urgency() -> None:
    current = detect(household(child(12, waz=-2.5)), today=TODAY)
    key: NeedKey = (MEMBER_ID, "kesehatan.underweight")
    stored = {key: DetectedNeed(spm_field=SpmField.KESEHATAN, category="kesehatan.underweight", member_id=MEMBER_ID,
                                urgency="normal", evidence={})}  # type: ignore[arg-type]
    assert diff(stored, current) == ([], [], [])


def test_a_second_member_with_the_same_condition_is_another_need() -> None:
    other = uuid.UUID(int=30)
    before = detect(household(child(12, waz=-2.5)), today=TODAY)
    after = detect(household(child(12, waz=-2.5), member(0, months=20, member_id=other,
                                                         growth=GrowthSnapshot(measured_on=TODAY, waz=-2.2))),
                   today=TODAY)
    assert [need.key for need in diff(before, after).detected] == [(other, "kesehatan.underweight")]


# --- profile bodies (the inputs of the rules) ------------------------------------------------------------------------


def test_every_field_has_a_profile_model() -> None:
    assert set(PROFILE_MODELS) == set(SpmField)


@pytest.mark.parametrize(("spm_field", "body"), [
    ("pendidikan", {"members": {str(MEMBER_ID): {"enrolled": True, "level": "paket-b", "school_name": "PKBM 1"}}}),
    ("kesehatan", {"members": {str(MEMBER_ID): {"immunization_status": "complete-for-age", "systolic_bp": 120}}}),
    ("pekerjaan-umum", {"household": {"drinking_water_source": "protected-spring", "toilet": "shared"}}),
    ("perumahan-rakyat", {"household": {"floor_area_m2": 36.5, "occupants": 4, "tenure": "rent"}}),
    ("trantibumlinmas", {"household": {"disaster_risk": ["extreme-weather", "volcano"]}}),
    ("sosial", {"household": {"dtsen_decile": 3, "aid_received": ["pkh", "pkh"]},
                "members": {str(MEMBER_ID): {"neglect_flags": ["beggar"], "lives_alone": False}}}),
])
def test_valid_profile_bodies(spm_field: str, body: dict[str, Any]) -> None:
    profile = PROFILE_MODELS[SpmField(spm_field)].model_validate(body)
    assert isinstance(profile, BaseModel)
    assert profile.model_dump(mode="json", exclude_none=True) == body


@pytest.mark.parametrize(("spm_field", "body"), [
    ("pendidikan", {"members": {str(MEMBER_ID): {"level": "university"}}}),
    ("pendidikan", {"members": {str(MEMBER_ID): {"school_name": "x" * 201}}}),
    ("pendidikan", {"members": {"not-a-uuid": {}}}),
    ("pendidikan", {"members": {str(uuid.UUID(int=i)): {} for i in range(51)}}),
    ("pendidikan", {"household": {}}),
    ("kesehatan", {"members": {str(MEMBER_ID): {"antenatal_visits": 21}}}),
    ("kesehatan", {"members": {str(MEMBER_ID): {"systolic_bp": 301}}}),
    ("kesehatan", {"members": {str(MEMBER_ID): {"health_insurance": "bpjs"}}}),
    ("pekerjaan-umum", {"household": {"toilet": "pit"}}),
    ("pekerjaan-umum", {"members": {}}),
    ("perumahan-rakyat", {"household": {"floor_area_m2": 0}}),
    ("perumahan-rakyat", {"household": {"occupants": 0}}),
    ("perumahan-rakyat", {"household": {"colour": "blue"}}),
    ("trantibumlinmas", {"household": {"disaster_risk": ["flood", "flood"]}}),
    ("trantibumlinmas", {"household": {"public_order_report": "x" * 2001}}),
    ("sosial", {"household": {"dtsen_decile": 11}}),
    ("sosial", {"household": {"dtsen_decile": 0}}),
    ("sosial", {"household": {"aid_received": ["pkh"] * 13}}),
    ("sosial", {"members": {str(MEMBER_ID): {"neglect_flags": ["homeless", "homeless"]}}}),
])
def test_invalid_profile_bodies(spm_field: str, body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PROFILE_MODELS[SpmField(spm_field)].model_validate(body)


# --- programme beneficiary lists (issue 15) -------------------------------------------------------------------------


def listed(spm_field: SpmField = SpmField.SOSIAL, *, start: date = TODAY, end: date = TODAY,
           programme_id: uuid.UUID | None = None) -> ProgrammeAid:
    return ProgrammeAid(programme_id=programme_id or uuid.uuid4(), spm_field=spm_field, service_type="x",
                        period_start=start, period_end=end)


def on_lists(*programmes: ProgrammeAid, decile: int | None = 3, aid: list[str] | None = None) -> HouseholdSnapshot:
    return replace(household(sosial={"dtsen_decile": decile, "aid_received": aid}), programme_aid=programmes)


@pytest.mark.parametrize(("programmes", "aid", "decile", "reasons"), [
    # A list beside the profile's own aid, or two lists of one field: an overlap to verify.
    ((listed(),), ["pkh"], 3, ["programme-overlap"]),
    ((listed(), listed()), [], 3, ["programme-overlap"]),
    ((listed(SpmField.PERUMAHAN_RAKYAT), listed(SpmField.PERUMAHAN_RAKYAT)), None, 3, ["programme-overlap"]),
    # A sosial list is aid received: with a high decile it is the decile reason.
    ((listed(),), [], 7, ["decile"]),
    # One source per field, lists outside today's period, or a housing list beside PKH: no overlap.
    ((listed(),), [], 3, None),
    ((listed(SpmField.PERUMAHAN_RAKYAT),), ["pkh"], 3, None),
    ((listed(start=TODAY + timedelta(days=1), end=TODAY + timedelta(days=30)),), ["pkh"], 3, None),
    ((listed(start=TODAY - timedelta(days=30), end=TODAY - timedelta(days=1)),), ["pkh"], 3, None),
])
def test_aid_overlap_sees_the_programme_lists(programmes: tuple[ProgrammeAid, ...], aid: list[str] | None,
                                              decile: int, reasons: list[str] | None) -> None:
    snapshot = on_lists(*programmes, decile=decile, aid=aid)
    if reasons is None:
        assert_no_need(snapshot, "sosial.aid-overlap")
        return
    need = assert_need(snapshot, "sosial.aid-overlap", "low", member_id=None)
    assert need.evidence["reasons"] == reasons
    current = [p for p in programmes if p.period_start <= TODAY <= p.period_end]
    assert need.evidence["programmes"] == sorted(str(p.programme_id) for p in current)


def test_a_sosial_list_is_aid_received_for_aid_exclusion() -> None:
    assert_need(on_lists(aid=[]), "sosial.aid-exclusion", member_id=None)
    assert_no_need(on_lists(listed(), aid=[]), "sosial.aid-exclusion")
    assert_need(on_lists(listed(SpmField.PERUMAHAN_RAKYAT), aid=[]), "sosial.aid-exclusion", member_id=None)


def test_overlapping_fields_counts_each_programme_and_each_aid_code_once() -> None:
    same = uuid.uuid4()
    assert overlapping_fields(["pkh", "pkh"], [listed(programme_id=same)]) == ["sosial"]
    assert overlapping_fields([], [listed(programme_id=same), listed(programme_id=same)]) == []
    assert overlapping_fields(["pkh", "bpnt"], []) == []
