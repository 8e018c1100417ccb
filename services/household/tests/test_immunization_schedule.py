"""The immunisation status against two schedule versions, on the days around each boundary (pure functions)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from services.household.immunization.schedule import (
    Schedule,
    ScheduleVersion,
    ScheduleVersionIn,
    add_months,
    national_versions,
    schedule_of,
)
from services.household.immunization.status import GivenDose, status

DAY = timedelta(days=1)


def version(label: str, valid_from: date, rows: list[dict[str, object]]) -> ScheduleVersion:
    checked = ScheduleVersionIn.model_validate({"version": label, "valid_from": valid_from, "rows": [
        {"name": r["vaccine"], **r} for r in rows]})
    return ScheduleVersion(version=checked.version, valid_from=checked.valid_from, rows=tuple(checked.rows))


#: v1: BCG at birth (overdue from 1 month) and two polio doses at 1 and 2 months (28 days apart).
V1 = version("v1", date(2026, 1, 1), [
    {"vaccine": "bcg", "dose": 1, "due_age": "0d", "overdue_age": "1m"},
    {"vaccine": "opv", "dose": 1, "due_age": "1m", "overdue_age": "2m"},
    {"vaccine": "opv", "dose": 2, "due_age": "2m", "overdue_age": "3m", "min_interval_days": 28}])
#: v2, from 1 May 2026, adds PCV at 2 months.
V2_START = date(2026, 5, 1)
V2_ROWS: list[dict[str, object]] = [{"vaccine": r.vaccine, "dose": r.dose, "due_age": r.due_age,
                                     "overdue_age": r.overdue_age, "min_interval_days": r.min_interval_days}
                                    for r in V1.rows]
V2 = version("v2", V2_START, [*V2_ROWS, {"vaccine": "pcv", "dose": 1, "due_age": "2m", "overdue_age": "3m"}])
BOTH = Schedule((V2, V1))
BIRTH = date(2026, 1, 10)


def codes(doses: tuple[object, ...]) -> list[str]:
    return [f"{d.vaccine}-{d.dose}" for d in doses]  # type: ignore[attr-defined]


def test_due_ages_day_before_on_and_after() -> None:
    given = [GivenDose("bcg", 1, BIRTH)]
    one_month = add_months(BIRTH, 1)  # 2026-02-10: opv-1 due
    before = status(BIRTH, given, on=one_month - DAY, schedule=BOTH)
    assert before.status == "complete-for-age" and before.due == () and before.schedule_version == "v1"
    on = status(BIRTH, given, on=one_month, schedule=BOTH)
    assert codes(on.due) == ["opv-1"] and on.overdue == () and on.complete_for_age
    # Due until the child reaches 2 months; overdue (incomplete) from that day.
    two_months = add_months(BIRTH, 2)
    assert codes(status(BIRTH, given, on=two_months - DAY, schedule=BOTH).due) == ["opv-1"]
    overdue = status(BIRTH, given, on=two_months, schedule=BOTH)
    assert overdue.status == "incomplete" and codes(overdue.overdue) == ["opv-1"]
    assert codes(overdue.due) == ["opv-2"]


def test_a_new_version_changes_the_result_only_from_its_start_date() -> None:
    # Every v1 dose given on time: complete under v1; v2's PCV (due at 2 months, overdue at 3) counts from 1 May.
    given = [GivenDose("bcg", 1, BIRTH), GivenDose("opv", 1, date(2026, 2, 10)), GivenDose("opv", 2, date(2026, 3, 10))]
    day_before = status(BIRTH, given, on=V2_START - DAY, schedule=BOTH)
    assert (day_before.schedule_version, day_before.status, day_before.due) == ("v1", "complete-for-age", ())
    on_start = status(BIRTH, given, on=V2_START, schedule=BOTH)
    assert on_start.schedule_version == "v2"
    # 1 May: the child is 3 months and 21 days, so PCV is past its overdue age (10 April) at once.
    assert on_start.status == "incomplete" and codes(on_start.overdue) == ["pcv-1"]
    after = status(BIRTH, given, on=V2_START + DAY, schedule=BOTH)
    assert after.status == "incomplete"
    # The PCV dose given on the start date makes the child complete again from that day.
    with_pcv = [*given, GivenDose("pcv", 1, V2_START)]
    assert status(BIRTH, with_pcv, on=V2_START, schedule=BOTH).complete_for_age
    # Before v2 the same history is judged by v1 alone, so the new version changed nothing in the past.
    assert status(BIRTH, with_pcv, on=date(2026, 4, 15), schedule=BOTH).schedule_version == "v1"


def test_pcv_due_window_under_the_new_version() -> None:
    born = date(2026, 3, 5)  # two months on 5 May, inside v2
    given = [GivenDose("bcg", 1, born), GivenDose("opv", 1, date(2026, 4, 5))]
    assert codes(status(born, given, on=date(2026, 5, 4), schedule=BOTH).due) == []
    on_due = status(born, given, on=date(2026, 5, 5), schedule=BOTH)
    assert codes(on_due.due) == ["opv-2", "pcv-1"] and on_due.complete_for_age
    assert codes(status(born, given, on=date(2026, 6, 4), schedule=BOTH).due) == ["opv-2", "pcv-1"]
    late = status(born, given, on=date(2026, 6, 5), schedule=BOTH)
    assert late.status == "incomplete" and codes(late.overdue) == ["opv-2", "pcv-1"]
    # Under v1 alone (the same day without v2) only polio would be overdue.
    assert codes(status(born, given, on=date(2026, 6, 5), schedule=Schedule((V1,))).overdue) == ["opv-2"]


def test_minimum_interval_moves_the_due_day() -> None:
    late_first = [GivenDose("bcg", 1, BIRTH), GivenDose("opv", 1, date(2026, 3, 1))]
    # opv-2 is due at 2 months (10 March) by age, but 28 days after dose 1 is 29 March.
    assert codes(status(BIRTH, late_first, on=date(2026, 3, 28), schedule=BOTH).due) == []
    shifted = status(BIRTH, late_first, on=date(2026, 3, 29), schedule=BOTH)
    assert [(d.vaccine, d.due_on) for d in shifted.due] == [("opv", date(2026, 3, 29))]


def test_unknown_without_doses_or_version_and_doses_after_the_day_ignored() -> None:
    assert status(BIRTH, [], on=date(2026, 6, 1), schedule=BOTH).status == "unknown"
    assert status(date(2025, 6, 1), [GivenDose("bcg", 1, date(2025, 6, 1))], on=date(2025, 12, 31),
                  schedule=BOTH).status == "unknown"
    later = [GivenDose("bcg", 1, BIRTH), GivenDose("opv", 1, date(2026, 4, 1))]
    assert codes(status(BIRTH, later, on=date(2026, 3, 15), schedule=BOTH).overdue) == ["opv-1"]


def test_missed_doses_past_their_latest_age_and_regional_rows() -> None:
    schedule = Schedule((version("v", date(2026, 1, 1), [
        {"vaccine": "bcg", "dose": 1, "due_age": "0d", "overdue_age": "1m"},
        {"vaccine": "rotavirus", "dose": 1, "due_age": "2m", "overdue_age": "3m", "latest_age": "8m"},
        {"vaccine": "je", "dose": 1, "due_age": "10m", "overdue_age": "11m", "regions": ["51"]}]),))
    given = [GivenDose("bcg", 1, BIRTH)]
    on = date(2026, 12, 1)
    elsewhere = status(BIRTH, given, on=on, schedule=schedule, village_code="5271011001")
    assert codes(elsewhere.missed) == ["rotavirus-1"] and elsewhere.complete_for_age
    bali = status(BIRTH, given, on=on, schedule=schedule, village_code="5171011001")
    assert codes(bali.due) == ["je-1"]


def test_the_national_file_loads_and_its_current_version_is_in_force() -> None:
    national = schedule_of(national_versions())
    current = national.in_force(date(2026, 12, 1))
    assert current is not None and current.version == "kemenkes-2023"
    assert {r.vaccine for r in current.rows} >= {"hb0", "bcg", "opv", "ipv", "dpt-hb-hib", "pcv", "rotavirus", "mr"}
    assert national.in_force(date(2020, 6, 1)).version == "permenkes-12-2017"  # type: ignore[union-attr]


@pytest.mark.parametrize(("rows", "message"), [
    ([{"vaccine": "opv", "dose": 2, "due_age": "2m", "overdue_age": "3m"}], "1..n"),
    ([{"vaccine": "opv", "dose": 1, "due_age": "2m", "overdue_age": "1m"}], "overdue_age must be after"),
    ([{"vaccine": "opv", "dose": 1, "due_age": "2m", "overdue_age": "3m"},
      {"vaccine": "opv", "dose": 2, "due_age": "1m", "overdue_age": "3m"}], "due before dose 1"),
    ([{"vaccine": "opv", "dose": 1, "due_age": "2m", "overdue_age": "3m", "min_interval_days": 28}],
     "no previous dose"),
])
def test_inconsistent_versions_are_refused(rows: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        version("bad", date(2027, 1, 1), rows)
