"""WHO Child Growth Standards z-scores (LMS method, restricted tails) for children 0-60 months, and `assess`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from services.household.growth.classify import classify_haz, classify_muac, classify_waz, classify_whz, is_bgm
from services.household.growth.tables import LMS, MAX_AGE_DAYS, Sex, Table, lms_for_age, lms_for_length

# WHO: length is measured lying under 24 months (731 days), height standing from then on.
HEIGHT_FROM_AGE_DAYS = 731
# WHO: standing height is on average 0.7 cm less than recumbent length of the same child.
LYING_STANDING_CORRECTION_CM = 0.7


def parse_sex(sex: str) -> Sex:
    try:
        return Sex(sex)
    except ValueError:
        raise ValueError(f"sex must be 'male' or 'female', not {sex!r}") from None


def age_in_days(birth_date: date, measured_on: date) -> int:
    """Age in completed days, as WHO Anthro computes it from dates; ValueError before birth or beyond 60 months."""
    days = (measured_on - birth_date).days
    if days < 0:
        raise ValueError(f"measured on {measured_on} before birth on {birth_date}")
    if days > MAX_AGE_DAYS:
        raise ValueError(f"age {days} days is beyond the WHO 0-60 month tables (at most {MAX_AGE_DAYS} days)")
    return days


def lms_z(x: float, lms: LMS, *, restricted_tail: bool) -> float:
    """z = ((X/M)^L - 1) / (L*S); beyond ±3 SD weight-based indices use WHO's restricted tail.

    The LMS curve compresses the upper tail of skewed weight distributions, so WHO measures beyond ±3 SD in units of the
    distance between the 2 and 3 SD lines at that age instead of following the curve.
    """
    l, m, s = lms.l, lms.m, lms.s  # noqa: E741 - WHO's own names
    z = ((x / m) ** l - 1) / (l * s) if l != 0 else math.log(x / m) / s
    if not restricted_tail or -3 <= z <= 3:
        return z

    def sd(n: int) -> float:
        # The measurement at n SD on the LMS curve.
        return m * (1 + l * s * n) ** (1 / l) if l != 0 else m * math.exp(s * n)

    if z > 3:
        return 3 + (x - sd(3)) / (sd(3) - sd(2))
    return -3 + (x - sd(-3)) / (sd(-2) - sd(-3))


def corrected_length_cm(length_height_cm: float, measured_lying: bool | None, age_days: int) -> float:
    """The length/height as if measured the way WHO expects at this age (lying < 731 days, standing after).

    When the position is unknown it is taken to be the expected one, as WHO Anthro does.
    """
    if measured_lying is None:
        return length_height_cm
    if measured_lying and age_days >= HEIGHT_FROM_AGE_DAYS:
        return length_height_cm - LYING_STANDING_CORRECTION_CM
    if not measured_lying and age_days < HEIGHT_FROM_AGE_DAYS:
        return length_height_cm + LYING_STANDING_CORRECTION_CM
    return length_height_cm


def weight_for_age_z(sex: Sex, age_days: int, weight_kg: float) -> float | None:
    lms = lms_for_age(Table.WEIGHT_FOR_AGE, sex, age_days)
    return None if lms is None else lms_z(weight_kg, lms, restricted_tail=True)


def length_height_for_age_z(sex: Sex, age_days: int, corrected_cm: float) -> float | None:
    # Length/height is nearly symmetric: no restricted tail.
    lms = lms_for_age(Table.LENGTH_HEIGHT_FOR_AGE, sex, age_days)
    return None if lms is None else lms_z(corrected_cm, lms, restricted_tail=False)


def weight_for_length_height_z(sex: Sex, age_days: int, weight_kg: float, corrected_cm: float) -> float | None:
    """Weight-for-length under 731 days (45-110 cm), weight-for-height from then on (65-120 cm); None outside."""
    table = Table.WEIGHT_FOR_LENGTH if age_days < HEIGHT_FROM_AGE_DAYS else Table.WEIGHT_FOR_HEIGHT
    lms = lms_for_length(table, sex, corrected_cm)
    return None if lms is None else lms_z(weight_kg, lms, restricted_tail=True)


def bmi_for_age_z(sex: Sex, age_days: int, weight_kg: float, corrected_cm: float) -> float | None:
    # The BMI table's rows from 731 days are for standing height, so BMI uses the corrected length/height too.
    lms = lms_for_age(Table.BMI_FOR_AGE, sex, age_days)
    if lms is None:
        return None
    bmi = weight_kg / (corrected_cm / 100) ** 2
    return lms_z(bmi, lms, restricted_tail=True)


@dataclass(frozen=True)
class GrowthResult:
    waz: float | None
    haz: float | None
    whz: float | None
    baz: float | None
    muac_cm: float | None
    age_days: int
    length_height_cm_corrected: float | None
    haz_class: str | None
    waz_class: str | None
    whz_class: str | None
    muac_class: str | None

    @property
    def bgm(self) -> bool:
        """Below the KMS card's red line (WAZ < -3)."""
        return is_bgm(self.waz)


def _measurement(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, not {value!r}")
    return float(value)


def _rounded(z: float | None) -> float | None:
    return None if z is None else round(z, 2)


def assess(
    *,
    sex: str,
    birth_date: date,
    measured_on: date,
    weight_kg: float | None,
    length_height_cm: float | None,
    measured_lying: bool | None,
    muac_cm: float | None = None,
    oedema: bool = False,
) -> GrowthResult:
    """Z-scores (rounded to 2 decimals) and Permenkes 2/2020 classes for one measurement of a child 0-60 months.

    An index whose inputs are missing or outside its WHO table is None. Impossible inputs (unknown sex, a measurement
    that is not a positive number, a date before birth or an age beyond the tables) raise ValueError. With bilateral
    pitting oedema the weight is not a measure of nutrition, so WHO leaves the weight-based indices out.
    """
    sex_ = parse_sex(sex)
    age_days = age_in_days(birth_date, measured_on)
    weight = _measurement("weight_kg", weight_kg)
    length = _measurement("length_height_cm", length_height_cm)
    muac = _measurement("muac_cm", muac_cm)
    if oedema:
        weight = None

    corrected = None if length is None else corrected_length_cm(length, measured_lying, age_days)
    waz = _rounded(None if weight is None else weight_for_age_z(sex_, age_days, weight))
    haz = _rounded(None if corrected is None else length_height_for_age_z(sex_, age_days, corrected))
    whz = baz = None
    if weight is not None and corrected is not None:
        whz = _rounded(weight_for_length_height_z(sex_, age_days, weight, corrected))
        baz = _rounded(bmi_for_age_z(sex_, age_days, weight, corrected))

    # Classes are taken from the rounded z-scores so that a shown -2.00 and its class always agree.
    return GrowthResult(
        waz=waz,
        haz=haz,
        whz=whz,
        baz=baz,
        muac_cm=muac,
        age_days=age_days,
        length_height_cm_corrected=None if corrected is None else round(corrected, 2),
        haz_class=None if haz is None else classify_haz(haz),
        waz_class=None if waz is None else classify_waz(waz),
        whz_class=None if whz is None else classify_whz(whz),
        muac_class=None if muac is None else classify_muac(muac, age_days),
    )
