"""The life-cycle groups of DOMAIN.md §8, by age on a day."""

from __future__ import annotations

from datetime import date

from services.household.dates import age_in_months, age_in_years
from services.household.households.schemas import LifeCycleGroup


def life_cycle_group(birth_date: date, on: date) -> LifeCycleGroup:
    """DOMAIN.md §8: infant 0-11 months, toddler 12-59 months, school-age 5-18, adult 19-59, elderly 60+."""
    months, years = age_in_months(birth_date, on), age_in_years(birth_date, on)
    if months < 12:
        return LifeCycleGroup.INFANT
    if months < 60:
        return LifeCycleGroup.TODDLER
    if years <= 18:
        return LifeCycleGroup.SCHOOL_AGE
    return LifeCycleGroup.ADULT if years < 60 else LifeCycleGroup.ELDERLY
