"""NIK and KK numbers: parsing, validation, agreement with the member, masking (DOMAIN.md §4)."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from services.household.identifiers import (
    PROVINCE_CODES,
    IdentifierError,
    KkInfo,
    NikInfo,
    check_nik_against_member,
    mask_kk,
    mask_nik,
    nik_region_mismatch,
    parse_kk,
    parse_nik,
)

TODAY = date(2025, 6, 15)
WILAYAH = Path("/work/shared/data/wilayah.csv")


def nik(district: str = "317101", dd: str = "01", mm: str = "01", yy: str = "90", serial: str = "0001") -> str:
    return f"{district}{dd}{mm}{yy}{serial}"


# --- parse_nik: valid -----------------------------------------------------------------------------------------------


def test_male_nik() -> None:
    info = parse_nik(nik(dd="17", mm="08", yy="90"), today=TODAY)
    assert info == NikInfo(district_code="317101", birth_date=date(1990, 8, 17), sex="male", serial="0001")
    assert (info.province_code, info.regency_code) == ("31", "3171")


def test_female_nik_has_40_added_to_the_day() -> None:
    info = parse_nik(nik(dd="57", mm="08", yy="90", serial="0042"), today=TODAY)
    assert (info.birth_date, info.sex, info.serial) == (date(1990, 8, 17), "female", "0042")


@pytest.mark.parametrize(("dd", "day", "sex"), [("01", 1, "male"), ("31", 31, "male"),
                                                ("41", 1, "female"), ("71", 31, "female")])
def test_day_limits_of_the_plus_40_rule(dd: str, day: int, sex: str) -> None:
    info = parse_nik(nik(dd=dd, mm="01"), today=TODAY)
    assert (info.birth_date.day, info.sex) == (day, sex)


@pytest.mark.parametrize(("yy", "mm", "dd", "expected"), [
    ("25", "06", "15", date(2025, 6, 15)),  # today itself: this century
    ("25", "06", "16", date(1925, 6, 16)),  # tomorrow in 2025 would be in the future: previous century
    ("24", "12", "31", date(2024, 12, 31)),
    ("26", "01", "01", date(1926, 1, 1)),
    ("00", "02", "29", date(2000, 2, 29)),  # 2000 is a leap year
    ("04", "02", "69", date(2004, 2, 29)),  # a woman born on a leap day
])
def test_two_digit_year_never_in_the_future(yy: str, mm: str, dd: str, expected: date) -> None:
    assert parse_nik(nik(dd=dd, mm=mm, yy=yy), today=TODAY).birth_date == expected


def test_today_defaults_to_the_current_date() -> None:
    assert parse_nik(nik(yy="00")).birth_date == date(2000, 1, 1)


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse_nik(f"  {nik()}\n", today=TODAY).district_code == "317101"


def test_known_province_codes_can_be_given() -> None:
    assert parse_nik(nik(district="990101"), known_province_codes={"99"}, today=TODAY).province_code == "99"
    with pytest.raises(IdentifierError, match="province"):
        parse_nik(nik(), known_province_codes={"64"}, today=TODAY)


def test_default_provinces_are_those_of_the_official_list() -> None:
    with WILAYAH.open(newline="", encoding="utf-8") as f:
        provinces = {row["kode"] for row in csv.DictReader(f) if "." not in row["kode"]}
    assert provinces == PROVINCE_CODES
    assert len(PROVINCE_CODES) == 38


# --- parse_nik: rejected --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "message"), [
    ("", "16 digits"),
    ("317101010190000", "16 digits"),     # 15
    ("31710101019000011", "16 digits"),   # 17
    ("31710101019O0001", "only the digits"),  # letter O
    ("3171-10101900001", "only the digits"),
    ("".join(chr(0xFF10 + int(c)) for c in nik()), "only the digits"),  # full-width digits: not ASCII
    ("".join(chr(0x0660 + int(c)) for c in nik()), "only the digits"),  # Arabic-Indic digits
    (nik(district="007101"), "province"),
    (nik(district="207101"), "province"),  # 20 is not a province
    (nik(district="977101"), "province"),
    (nik(serial="0000"), "serial"),
    (nik(dd="00"), "day"),
    (nik(dd="32"), "day"),
    (nik(dd="40"), "day"),
    (nik(dd="72"), "day"),
    (nik(mm="00"), "month"),
    (nik(mm="13"), "month"),
    (nik(dd="31", mm="04"), "impossible date"),
    (nik(dd="30", mm="02"), "impossible date"),
    (nik(dd="29", mm="02", yy="23"), "impossible date"),  # 2023 is not a leap year
    (nik(dd="69", mm="02", yy="23"), "impossible date"),
])
def test_invalid_nik_is_rejected(value: str, message: str) -> None:
    with pytest.raises(IdentifierError, match=message):
        parse_nik(value, today=TODAY)


def test_identifier_error_is_a_value_error() -> None:
    assert issubclass(IdentifierError, ValueError)


def test_error_message_does_not_repeat_the_number() -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_nik(nik(serial="0000"), today=TODAY)
    assert nik(serial="0000") not in str(caught.value)


# --- agreement with the member --------------------------------------------------------------------------------------


def test_agreeing_member_has_no_problems() -> None:
    info = parse_nik(nik(dd="57", mm="08", yy="90"), today=TODAY)
    assert check_nik_against_member(info, birth_date=date(1990, 8, 17), sex="female") == []


def test_unrecorded_birth_date_and_sex_are_not_compared() -> None:
    info = parse_nik(nik(), today=TODAY)
    assert check_nik_against_member(info, birth_date=None, sex=None) == []


def test_different_birth_date_is_reported() -> None:
    info = parse_nik(nik(dd="17", mm="08", yy="90"), today=TODAY)
    problems = check_nik_against_member(info, birth_date=date(1990, 8, 18), sex="male")
    assert len(problems) == 1
    assert "birth date" in problems[0]


def test_different_sex_is_reported() -> None:
    info = parse_nik(nik(dd="17", mm="08", yy="90"), today=TODAY)
    problems = check_nik_against_member(info, birth_date=date(1990, 8, 17), sex="female")
    assert len(problems) == 1
    assert "sex" in problems[0]


def test_both_disagreements_are_reported() -> None:
    info = parse_nik(nik(dd="57", mm="08", yy="90"), today=TODAY)
    assert len(check_nik_against_member(info, birth_date=date(1991, 8, 17), sex="male")) == 2


def test_a_centenarian_is_not_a_disagreement() -> None:
    # 150120 read in 2025 is 2020-01-15; the member was born in 1920, which the NIK cannot tell apart.
    info = parse_nik(nik(dd="15", mm="01", yy="20"), today=TODAY)
    assert info.birth_date == date(2020, 1, 15)
    assert check_nik_against_member(info, birth_date=date(1920, 1, 15), sex="male") == []


def test_region_mismatch_is_flagged_not_rejected() -> None:
    info = parse_nik(nik(district="647201"), today=TODAY)  # registered in Samarinda
    assert nik_region_mismatch(info, "3171011001") is True
    assert nik_region_mismatch(info, "6472011001") is False
    assert nik_region_mismatch(parse_nik(nik(), today=TODAY), "3171011001") is False


def test_another_district_of_the_same_regency_is_a_mismatch() -> None:
    assert nik_region_mismatch(parse_nik(nik(district="317102"), today=TODAY), "3171011001") is True


# --- KK -------------------------------------------------------------------------------------------------------------


def test_valid_kk() -> None:
    info = parse_kk("3171011502200003", today=TODAY)
    assert info == KkInfo(district_code="317101", issue_date=date(2020, 2, 15), serial="0003")
    assert (info.province_code, info.regency_code) == ("31", "3171")


def test_kk_has_no_plus_40_rule() -> None:
    with pytest.raises(IdentifierError, match="day"):
        parse_kk("3171014102200003", today=TODAY)


def test_kk_issue_date_century_is_never_in_the_future() -> None:
    assert parse_kk("3171011506250001", today=TODAY).issue_date == date(2025, 6, 15)
    assert parse_kk("3171010101700001", today=TODAY).issue_date == date(1970, 1, 1)


@pytest.mark.parametrize("value", ["3171011606250001", "3171010101300001", "3171013112690001"],
                         ids=["tomorrow", "in-five-years", "before-1970"])
def test_a_kk_dated_in_the_future_is_not_read_as_a_century_ago(value: str) -> None:
    """16-06-25 read on 2025-06-15 would be 1925-06-16: no KK number was issued then, so it is dated in the future."""
    with pytest.raises(IdentifierError, match="issue date in the future"):
        parse_kk(value, today=TODAY)


@pytest.mark.parametrize(("value", "message"), [
    ("317101150220000", "16 digits"),
    ("317101150220000A", "only the digits"),
    ("2071011502200003", "province"),
    ("3171011502200000", "serial"),
    ("3171013102200003", "impossible date"),
    ("3171011513200003", "month"),
    ("3171012902230003", "impossible date"),
])
def test_invalid_kk_is_rejected(value: str, message: str) -> None:
    with pytest.raises(IdentifierError, match=message):
        parse_kk(value, today=TODAY)


def test_kk_known_province_codes_can_be_given() -> None:
    with pytest.raises(IdentifierError, match="province"):
        parse_kk("3171011502200003", today=TODAY, known_province_codes={"64"})


# --- masking --------------------------------------------------------------------------------------------------------


def test_mask_nik() -> None:
    assert mask_nik("3171014101900001") == "317101******0001"


def test_mask_kk() -> None:
    assert mask_kk("3171011502200003") == "317101******0003"


@pytest.mark.parametrize("value", ["317101410190000", "31710141019000A1"])
def test_masking_refuses_what_is_not_an_identifier(value: str) -> None:
    with pytest.raises(IdentifierError):
        mask_nik(value)
    with pytest.raises(IdentifierError):
        mask_kk(value)
