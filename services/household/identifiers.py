"""NIK and KK numbers (DOMAIN.md §4): validation, parsing and masking.

Both are 16 ASCII digits: ``PPKKCC`` (the district code of registration or issue) + ``DDMMYY`` (a date) + ``SSSS``
(a serial from ``0001``). In a NIK the date is the date of birth with 40 added to the day for women; in a KK number
it is the issue date, without the +40 rule.

Two-digit years are resolved to the latest century that does not put the date after ``today``: ``250101`` read on
2025-06-01 is 2025-01-01, read on 2024-06-01 it is 1925-01-01 (for a KK number that is before any KK was issued,
so the number is refused as dated in the future). A person may thus be 100 years older than the NIK
says; :func:`check_nik_against_member` compares the day, the month and the two-digit year only, so it does not
report such a person's real birth date as a disagreement.

Only the province part of the prefix is checked against a list (default: the 38 provinces of Kepmendagri
300.2.2-2138/2025): the regency and district may have been split or renamed since the number was issued, and a NIK
issued elsewhere is legitimate (people move), so :func:`nik_region_mismatch` flags it rather than rejecting it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Literal

from services.household.dates import KK_ISSUE_FLOOR

__all__ = [
    "PROVINCE_CODES",
    "IdentifierError",
    "KkInfo",
    "NikInfo",
    "check_nik_against_member",
    "mask_kk",
    "mask_nik",
    "nik_region_mismatch",
    "parse_kk",
    "parse_nik",
]

#: The 38 province codes of the current official list (`/work/shared/data/wilayah.csv`, rows without a dot).
PROVINCE_CODES: frozenset[str] = frozenset({
    "11", "12", "13", "14", "15", "16", "17", "18", "19", "21",
    "31", "32", "33", "34", "35", "36",
    "51", "52", "53",
    "61", "62", "63", "64", "65",
    "71", "72", "73", "74", "75", "76",
    "81", "82",
    "91", "92", "93", "94", "95", "96",
})

#: Added to the day of birth of women in a NIK.
FEMALE_DAY_OFFSET = 40

_SIXTEEN_DIGITS = re.compile(r"[0-9]{16}")

Sex = Literal["male", "female"]


class IdentifierError(ValueError):
    """A NIK or KK number that is not valid; the message says why (and never repeats the whole number)."""


@dataclass(frozen=True, slots=True)
class NikInfo:
    """What a valid NIK encodes."""

    district_code: str
    birth_date: date
    sex: Sex
    serial: str

    @property
    def province_code(self) -> str:
        return self.district_code[:2]

    @property
    def regency_code(self) -> str:
        return self.district_code[:4]


@dataclass(frozen=True, slots=True)
class KkInfo:
    """What a valid KK (kartu keluarga) number encodes."""

    district_code: str
    issue_date: date
    serial: str

    @property
    def province_code(self) -> str:
        return self.district_code[:2]

    @property
    def regency_code(self) -> str:
        return self.district_code[:4]


def _digits(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise IdentifierError(f"{what} must be a string of 16 digits")
    value = value.strip()
    if len(value) != 16:
        raise IdentifierError(f"{what} must be 16 digits, got {len(value)} characters")
    if not _SIXTEEN_DIGITS.fullmatch(value):
        raise IdentifierError(f"{what} must contain only the digits 0-9")
    return value


def _check_prefix_and_serial(value: str, what: str, known_province_codes: Collection[str] | None) -> None:
    provinces = PROVINCE_CODES if known_province_codes is None else known_province_codes
    if value[:2] not in provinces:
        raise IdentifierError(f"{what} starts with {value[:2]!r}, which is not a known province code")
    if value[12:] == "0000":
        raise IdentifierError(f"{what} serial (last four digits) must not be 0000")


def _resolve_date(day: int, month: int, yy: int, today: date, what: str) -> date:
    """The real date of ``DD MM YY`` in the latest century that does not put it after ``today``."""
    if not 1 <= month <= 12:
        raise IdentifierError(f"{what} has an impossible month {month:02d}")
    if not 1 <= day <= 31:
        raise IdentifierError(f"{what} has an impossible day {day:02d}")
    year = (today.year // 100) * 100 + yy
    if year > today.year:
        year -= 100
    for candidate in (year, year - 100):
        try:
            resolved = date(candidate, month, day)
        except ValueError:
            raise IdentifierError(f"{what} has an impossible date {day:02d}-{month:02d}-{yy:02d}") from None
        if resolved <= today:
            return resolved
    raise IdentifierError(f"{what} has a date in the future")  # pragma: no cover - unreachable after year - 100


def parse_nik(nik: str, *, known_province_codes: Collection[str] | None = None, today: date | None = None) -> NikInfo:
    """Validate a NIK and return what it encodes; raises :class:`IdentifierError` saying what is wrong.

    Checks: 16 ASCII digits (surrounding whitespace is ignored), a known province (``known_province_codes``, default
    :data:`PROVINCE_CODES`), a real date of birth not after ``today`` (day - 40 for women), a serial other than 0000.
    """
    today = today or date.today()
    value = _digits(nik, "NIK")
    _check_prefix_and_serial(value, "NIK", known_province_codes)
    day, month, yy = int(value[6:8]), int(value[8:10]), int(value[10:12])
    sex: Sex = "male"
    if day > FEMALE_DAY_OFFSET:
        sex, day = "female", day - FEMALE_DAY_OFFSET
    birth_date = _resolve_date(day, month, yy, today, "NIK")
    return NikInfo(district_code=value[:6], birth_date=birth_date, sex=sex, serial=value[12:])


def parse_kk(kk: str, *, today: date | None = None, known_province_codes: Collection[str] | None = None) -> KkInfo:
    """Validate a KK number and return what it encodes; raises :class:`IdentifierError` saying what is wrong.

    Checks: 16 ASCII digits, a known province, a real issue date not after ``today`` (no +40 rule) and not before
    :data:`KK_ISSUE_FLOOR` (so a number dated in the future is not taken for one issued a century ago), serial not
    0000.
    """
    today = today or date.today()
    value = _digits(kk, "KK number")
    _check_prefix_and_serial(value, "KK number", known_province_codes)
    issue_date = _resolve_date(int(value[6:8]), int(value[8:10]), int(value[10:12]), today, "KK number")
    if issue_date < KK_ISSUE_FLOOR:
        raise IdentifierError(f"KK number has an issue date in the future ({value[6:8]}-{value[8:10]}-{value[10:12]}; "
                              f"read as {issue_date.year} it would be before {KK_ISSUE_FLOOR.year})")
    return KkInfo(district_code=value[:6], issue_date=issue_date, serial=value[12:])


def check_nik_against_member(nik_info: NikInfo, *, birth_date: date | None, sex: str | None) -> list[str]:
    """Where the NIK disagrees with the member's recorded birth date or sex (empty when they agree).

    The API rejects a member whose NIK disagrees. An unrecorded (None) birth date or sex is not compared. Birth
    dates are compared on day, month and two-digit year, since a NIK cannot tell 1925 from 2025.
    """
    problems: list[str] = []
    if birth_date is not None:
        encoded = nik_info.birth_date
        if (encoded.day, encoded.month, encoded.year % 100) != (birth_date.day, birth_date.month,
                                                                birth_date.year % 100):
            problems.append(
                f"the NIK encodes the birth date {encoded:%d-%m-%y}, the member's birth date is {birth_date:%d-%m-%Y}"
            )
    if sex is not None and str(sex) != nik_info.sex:
        problems.append(f"the NIK encodes sex {nik_info.sex!r}, the member's sex is {str(sex)!r}")
    return problems


def nik_region_mismatch(nik_info: NikInfo, village_code: str) -> bool:
    """True when the NIK was registered in another district than the household's village (a flag, not an error)."""
    return village_code[:6] != nik_info.district_code


def _mask(value: str, what: str) -> str:
    value = _digits(value, what)
    return f"{value[:6]}******{value[12:]}"


def mask_nik(nik: str) -> str:
    """``3171014101900001`` -> ``317101******0001``: the district code and the serial only."""
    return _mask(nik, "NIK")


def mask_kk(kk: str) -> str:
    """``3171010101200001`` -> ``317101******0001``: the district code and the serial only."""
    return _mask(kk, "KK number")
