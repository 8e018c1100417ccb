"""KMS (Kartu Menuju Sehat) growth signals B/O/N/T from monthly weighings, and the 2T referral rule."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

from services.household.growth.zscores import age_in_days, parse_sex

# The KMS minimum weight gain (Kenaikan Berat badan Minimal, KBM) per month of age, in grams, as printed on the
# Indonesian KMS / buku KIA (after the WHO growth-velocity standards). Key (lo, hi): the month of life from lo to hi
# completed months over which the gain is measured, i.e. a child weighed at hi months ("umur hi bulan").
# Configurable: pass another table through `min_gain_from_table`, or any callable, to `kms_signal`.
DEFAULT_KBM_TABLE_G: Mapping[tuple[int, int], int] = {
    (0, 1): 800,
    (1, 2): 900,
    (2, 3): 800,
    (3, 4): 600,
    (4, 5): 500,
    (5, 6): 400,
    (6, 7): 400,
    (7, 8): 300,
    (8, 9): 300,
    (9, 10): 300,
    (10, 11): 200,
    (11, 12): 200,
    (12, 60): 200,
}

BARU = "B"  # first weighing
TIDAK_DITIMBANG = "O"  # not weighed in the previous calendar month
NAIK = "N"  # gained at least the minimum for age
TIDAK_NAIK = "T"  # gained less than the minimum, or lost weight


def min_gain_from_table(table: Mapping[tuple[int, int], int]) -> Callable[[int], int]:
    """A minimum-gain function over a KBM table, looked up by the completed months of age at the current weighing."""

    def min_gain_g(age_months: int) -> int:
        # A weighing before one full month still measures the first month of life.
        month = max(age_months, 1)
        for (lo, hi), grams in table.items():
            if lo < month <= hi:
                return grams
        raise ValueError(f"no minimum weight gain for age {age_months} months in the KBM table")

    return min_gain_g


default_min_gain_g = min_gain_from_table(DEFAULT_KBM_TABLE_G)


def completed_months(birth_date: date, on: date) -> int:
    """Completed calendar months of age (born on 15 March: 1 month on 15 April)."""
    months = (on.year - birth_date.year) * 12 + on.month - birth_date.month
    if on.day < birth_date.day:
        months -= 1
    return months


def _previous_month(d: date) -> tuple[int, int]:
    return (d.year, d.month - 1) if d.month > 1 else (d.year - 1, 12)


def kms_signal(
    previous: list[tuple[date, float]],
    current: tuple[date, float],
    *,
    sex: str,
    birth_date: date,
    min_gain_g: Callable[[int], int] | None = None,
) -> str:
    """The KMS signal of the current weighing (date, kg) given the earlier ones.

    B: no earlier weighing. O: none in the previous calendar month (the card compares month with month, so an older
    weighing or one earlier in the same month does not count). N: the gain since the latest weighing of the previous
    month is at least the minimum for the age in completed months at the current weighing. T: it is less.
    The default KBM table does not depend on sex; a sex-specific `min_gain_g` can be passed instead.
    """
    parse_sex(sex)
    on, weight_kg = current
    age_in_days(birth_date, on)  # raises ValueError before birth or beyond 60 months
    if weight_kg <= 0:
        raise ValueError(f"weight must be positive, not {weight_kg!r}")
    if any(when > on for when, _ in previous):
        raise ValueError("a previous weighing is dated after the current one")
    if not previous:
        return BARU
    last_month = [(when, kg) for when, kg in previous if (when.year, when.month) == _previous_month(on)]
    if not last_month:
        return TIDAK_DITIMBANG
    _, previous_kg = max(last_month)
    # Whole grams, so that 0.2 kg read as 0.19999... still counts as 200 g.
    gain_g = round((weight_kg - previous_kg) * 1000)
    minimum = (min_gain_g or default_min_gain_g)(completed_months(birth_date, on))
    return NAIK if gain_g >= minimum else TIDAK_NAIK


def two_consecutive_t(signals: list[str]) -> bool:
    """2T: the latest two signals (oldest first) are both T, the referral trigger on the card.

    An O between two T is a missed month, so the two T are not consecutive.
    """
    return len(signals) >= 2 and signals[-1] == TIDAK_NAIK and signals[-2] == TIDAK_NAIK
