"""Which members the need sweep re-evaluates: everyone whose needs the passing days may change, checked against the
rules themselves (services/household/needs/rules.py), over every birth date of a lifetime."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta

import pytest

from services.household.immunization.schedule import national_versions, reached, schedule_of
from services.household.immunization.status import GivenDose, ImmunizationStatus, status
from services.household.needs import DEFAULT_CONFIG, GrowthSnapshot, HouseholdSnapshot, MemberSnapshot, detect
from services.household.needs.sweep import (
    DateRange,
    birth_date_ranges,
    delivery_date_ranges,
    immunization_birth_ranges,
    later_dose_windows,
    latest_birth_date_for_months,
    latest_birth_date_for_years,
    rule_thresholds,
)
from services.household.profiles.schemas import (
    KesehatanMember,
    KesehatanProfile,
    PendidikanMember,
    PendidikanProfile,
    SosialHousehold,
    SosialMember,
    SosialProfile,
)
from shared.events.topics import SpmField

#: Days around the awkward places of the calendar: leap days, month ends, the turn of a year.
DAYS = [date(2024, 2, 29), date(2025, 2, 28), date(2025, 3, 1), date(2024, 3, 31), date(2025, 1, 1),
        date(2025, 6, 15)]


#: A computed status with a dose overdue: the immunisation rule's ages alone decide.
INCOMPLETE = ImmunizationStatus(status="incomplete", schedule_version="kemenkes-2023")


def _in(value: date, ranges: list[DateRange]) -> bool:
    return any(after < value <= up_to for after, up_to in ranges)


def _everyone(births: list[date], *, pregnancies: Sequence[tuple[date, int]] = ()) -> HouseholdSnapshot:
    """A household where every age- or time-dependent rule can fire for everyone: each birth date once (enrolment
    recorded false, or not recorded, in turn), with a disability, a high blood pressure, an incomplete
    immunisation, poor growth, living alone at decile 3 and pregnant (at a fixed term, so only the age matters);
    and pregnant women of 30 with each (expected delivery date, antenatal visits) given."""
    members: list[MemberSnapshot] = []
    education: dict[uuid.UUID, PendidikanMember] = {}
    health: dict[uuid.UUID, KesehatanMember] = {}
    social: dict[uuid.UUID, SosialMember] = {}
    growth = GrowthSnapshot(measured_on=date(1900, 1, 1), waz=-2.5, haz=-2.5, whz=-2.5)
    for index, born in enumerate(births):
        for enrolled in [(False, None)[index % 2]]:
            mid = uuid.uuid4()
            members.append(MemberSnapshot(member_id=mid, birth_date=born, sex="female", relationship="other",
                                          pregnant=True, expected_delivery_date=date(2200, 1, 1),
                                          disability="physical", growth=growth, immunization=INCOMPLETE))
            education[mid] = PendidikanMember(enrolled=enrolled, highest_completed="sd")
            health[mid] = KesehatanMember(systolic_bp=150, antenatal_visits=20)
            social[mid] = SosialMember(lives_alone=True)
    for expected, visits in pregnancies:
        mid = uuid.uuid4()
        members.append(MemberSnapshot(member_id=mid, birth_date=date(1995, 1, 1), sex="female",
                                      relationship="spouse", pregnant=True, expected_delivery_date=expected))
        health[mid] = KesehatanMember(antenatal_visits=visits)
    # Far more members than a household may have (the profile models bound them): constructed, not validated.
    return HouseholdSnapshot(household_id=uuid.uuid4(), members=members, profiles={
        SpmField.PENDIDIKAN: PendidikanProfile.model_construct(members=education),
        SpmField.KESEHATAN: KesehatanProfile.model_construct(members=health),
        SpmField.SOSIAL: SosialProfile.model_construct(household=SosialHousehold(dtsen_decile=3), members=social)})


def _changed(snapshot: HouseholdSnapshot, before: date, today: date) -> set[uuid.UUID]:
    """The members whose needs (keys or urgencies) differ between the two days."""
    old, new = detect(snapshot, today=before), detect(snapshot, today=today)
    keys = {k for k in old.keys() ^ new.keys()} | {k for k in old.keys() & new.keys()
                                                     if old[k].urgency != new[k].urgency}
    return {member_id for member_id, _ in keys if member_id is not None}


def test_latest_birth_dates_follow_the_age_functions() -> None:
    assert latest_birth_date_for_years(21, date(2025, 2, 28)) == date(2004, 2, 28)  # 29 Feb 2004 is still 20
    assert latest_birth_date_for_years(20, date(2024, 2, 29)) == date(2004, 2, 29)
    assert latest_birth_date_for_years(1, date(2024, 2, 29)) == date(2023, 2, 28)
    assert latest_birth_date_for_months(1, date(2024, 3, 31)) == date(2024, 2, 29)
    assert latest_birth_date_for_months(24, date(2025, 6, 15)) == date(2023, 6, 15)


@pytest.mark.parametrize(("today", "days"), [(date(2024, 2, 29), 1), (date(2025, 3, 1), 1), (date(2024, 3, 31), 3)],
                         ids=str)
def test_every_member_whose_needs_the_days_change_is_selected_by_birth_date(today: date, days: int) -> None:
    since = today - timedelta(days=days - 1)
    births = [today - timedelta(days=n) for n in range(0, 62 * 366)]  # the oldest threshold is 60
    snapshot = _everyone(births)
    selected = birth_date_ranges(rule_thresholds(), since, today)
    changed = _changed(snapshot, since - timedelta(days=1), today)
    by_id = {m.member_id: m for m in snapshot.members}
    assert changed, "the household must be sensitive to age"
    missed = sorted({by_id[mid].birth_date for mid in changed if not _in(by_id[mid].birth_date, selected)})
    assert missed == []
    # And the selection is a few days per threshold, not everyone.
    chosen = [b for b in births if _in(b, selected)]
    thresholds = rule_thresholds()
    assert len(chosen) <= (days + 1) * (len(thresholds.years) + len(thresholds.months))


@pytest.mark.parametrize("today", DAYS, ids=str)
@pytest.mark.parametrize("days", [1, 4])
def test_every_pregnancy_whose_antenatal_visits_fall_due_is_selected_by_delivery_date(today: date,
                                                                                      days: int) -> None:
    since = today - timedelta(days=days - 1)
    pregnancies = [(today + timedelta(days=n), visits) for n in range(-90, 301) for visits in range(0, 7)]
    snapshot = _everyone([], pregnancies=pregnancies)
    selected = delivery_date_ranges(since, today)
    changed = _changed(snapshot, since - timedelta(days=1), today)
    by_id = {m.member_id: m for m in snapshot.members}
    assert changed, "the visits due must follow the month of pregnancy"
    missed = sorted({by_id[mid].expected_delivery_date for mid in changed  # type: ignore[type-var]
                     if not _in(by_id[mid].expected_delivery_date, selected)})  # type: ignore[arg-type]
    assert missed == []
    assert len(selected) <= 9 and all((up_to - after).days == days for after, up_to in selected)


def test_the_thresholds_come_from_the_configured_rules() -> None:
    thresholds = rule_thresholds(DEFAULT_CONFIG)
    assert {4, 7, 5, 15, 19, 45, 18, 20, 36, 60} <= thresholds.years
    assert {60, 61} <= thresholds.months
    lowered = rule_thresholds(type(DEFAULT_CONFIG)(elderly_min_age=65, immunization_max_age_months=35))
    assert 65 in lowered.years and 60 not in lowered.years and 36 in lowered.months


def _dose_histories(born: date, schedule_on: date) -> list[list[GivenDose]]:
    """Ways a child's record can look: only the birth dose; every dose on its due day but the two-year boosters;
    every first dose six weeks late (so the later doses fall due after their interval, not at their age), with the
    later doses or without them."""
    rows = schedule_of(national_versions()).in_force(schedule_on).rows  # type: ignore[union-attr]
    on_time = [GivenDose(r.vaccine, r.dose, reached(born, r.due_age)) for r in rows]
    late: list[GivenDose] = []
    for r in sorted(rows, key=lambda r: (r.vaccine, r.dose)):
        day = reached(born, r.due_age) + timedelta(days=45 if r.dose == 1 else 0)
        if late and late[-1].vaccine == r.vaccine and r.min_interval_days:
            day = max(day, late[-1].given_on + timedelta(days=r.min_interval_days))
        late.append(GivenDose(r.vaccine, r.dose, day))
    return [[GivenDose("hb0", 1, born)], [d for d in on_time if d.dose < 4 and (d.vaccine, d.dose) != ("mr", 2)],
            late, [d for d in late if d.dose == 1],
            # DPT-HB-Hib 3 four months late: the fourth dose falls due a year after it (at 20 months, not 18).
            [GivenDose(d.vaccine, d.dose, reached(born, "8m")) if (d.vaccine, d.dose) == ("dpt-hb-hib", 3) else d
             for d in on_time if (d.vaccine, d.dose) != ("dpt-hb-hib", 4)]]


@pytest.mark.parametrize(("today", "days"), [(date(2025, 3, 1), 1), (date(2024, 3, 31), 3), (date(2025, 6, 15), 1)],
                         ids=str)
def test_every_child_whose_immunisation_status_turns_is_selected(today: date, days: int) -> None:
    schedule = schedule_of(national_versions())
    since, before = today - timedelta(days=days - 1), today - timedelta(days=days)
    births = immunization_birth_ranges(schedule, since, today)
    windows = later_dose_windows(schedule, since, today)
    turned = missed = 0
    for born in (today - timedelta(days=n) for n in range(0, 62 * 31)):
        for doses in _dose_histories(born, today):
            if any(before < d.given_on <= today for d in doses):
                continue  # a dose recorded on a day swept: its recording refreshed the needs
            old = status(born, doses, on=before, schedule=schedule).status
            new = status(born, doses, on=today, schedule=schedule).status
            if old == new:
                continue
            turned += 1
            selected = _in(born, births) or any(
                w.after < d.given_on <= w.up_to for w in windows for d in doses
                if (d.vaccine, d.dose) == (w.vaccine, w.previous_dose))
            missed += not selected
    assert turned and missed == 0
    # A few days per schedule age (more at the end of February), not every child.
    assert births and all((up_to - after).days <= days + 14 for after, up_to in births)
