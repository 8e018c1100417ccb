"""Permenkes 2/2020 nutritional-status classes from WHO z-scores and MUAC, with their exact boundaries."""

from __future__ import annotations

# Each function states the cut-offs in the regulation's words: "-3 SD sd < -2 SD" includes -3 and excludes -2,
# "-2 SD sd +1 SD" includes both ends, "> +1 SD sd +2 SD" excludes +1 and includes +2.

DAYS_PER_MONTH = 365.25 / 12  # WHO's average month (30.4375 days)


def classify_haz(z: float) -> str:
    """Length/height-for-age: < -3 severely stunted, -3 to < -2 stunted, -2 to +3 normal, > +3 tall."""
    if z < -3:
        return "severely-stunted"
    if z < -2:
        return "stunted"
    if z <= 3:
        return "normal"
    return "tall"


def classify_waz(z: float) -> str:
    """Weight-for-age: < -3 severely underweight, -3 to < -2 underweight, -2 to +1 normal, > +1 risk of overweight."""
    if z < -3:
        return "severely-underweight"
    if z < -2:
        return "underweight"
    if z <= 1:
        return "normal"
    return "risk-of-overweight"


def classify_whz(z: float) -> str:
    """Weight-for-length/height: < -3 severely wasted (gizi buruk), -3 to < -2 wasted (gizi kurang), -2 to +1 normal,
    > +1 to +2 risk of overweight, > +2 to +3 overweight, > +3 obese."""
    if z < -3:
        return "severely-wasted"
    if z < -2:
        return "wasted"
    if z <= 1:
        return "normal"
    if z <= 2:
        return "risk-of-overweight"
    if z <= 3:
        return "overweight"
    return "obese"


def muac_applies(age_days: int) -> bool:
    """MUAC cut-offs are defined for 6-59 completed months only."""
    return 6 <= age_days / DAYS_PER_MONTH < 60


def classify_muac(cm: float, age_days: int) -> str | None:
    """MUAC for 6-59 months: < 11.5 cm severe acute malnutrition, 11.5 to < 12.5 cm moderate, else normal.

    None outside 6-59 months, where these cut-offs do not apply.
    """
    if not muac_applies(age_days):
        return None
    if cm < 11.5:
        return "severe-acute-malnutrition"
    if cm < 12.5:
        return "moderate-acute-malnutrition"
    return "normal"


def is_bgm(waz: float | None) -> bool:
    """BGM (bawah garis merah): weight below the KMS card's red line, i.e. WAZ < -3."""
    return waz is not None and waz < -3
