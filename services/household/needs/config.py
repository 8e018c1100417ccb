"""Thresholds of the need-detection rules (DOMAIN.md §6); the category table itself is in shared.categories.

Every threshold is a field of :class:`NeedRulesConfig` with DOMAIN.md's default; age ranges are inclusive and
in whole years (or whole months for the child rules) on the day of detection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from shared.categories import CATEGORIES, MANUAL_ONLY_CATEGORIES, Category, Urgency

__all__ = ["CATEGORIES", "DEFAULT_CONFIG", "MANUAL_ONLY_CATEGORIES", "CategoryInfo", "NeedRulesConfig", "Urgency"]


#: The category table is shared with the referral service (DOMAIN.md §6).
CategoryInfo = Category


def _frozen(mapping: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(mapping))


def _frozen_int(mapping: Mapping[int, int]) -> Mapping[int, int]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, kw_only=True)
class NeedRulesConfig:
    """The thresholds of DOMAIN.md §6 (policy: regions may change them). Age ranges are inclusive."""

    # pendidikan ------------------------------------------------------------------------------------------------
    ats_min_age: int = 7
    ats_max_age: int = 18
    paud_min_age: int = 4
    paud_max_age: int = 6
    kesetaraan_min_age: int = 15
    kesetaraan_max_age: int = 44
    #: `highest_completed` strictly below this level qualifies for equivalency education.
    kesetaraan_required_level: str = "smp"
    #: From this age an unrecorded `enrolled` counts as "not enrolled" for kesetaraan (§3 records enrolment for
    #: members aged 3-18 only; adults have just their highest level). Younger members need `enrolled` false.
    kesetaraan_unrecorded_enrolment_min_age: int = 19
    special_needs_min_age: int = 5
    special_needs_max_age: int = 18

    # kesehatan: child growth (latest measurement) ----------------------------------------------------------------
    #: Growth rules apply while the child is at most this many whole months old (WHO standards cover 0-60 months).
    growth_max_age_months: int = 60
    severe_wasting_whz: float = -3.0
    wasting_whz: float = -2.0
    severe_muac_cm: float = 11.5
    #: MUAC thresholds are defined for children aged 6-59 months (at the measurement).
    muac_min_age_months: int = 6
    muac_max_age_months: int = 59
    stunting_haz: float = -2.0
    underweight_waz: float = -2.0
    #: Below the red line of the KMS card (BGM): underweight becomes high urgency.
    bgm_waz: float = -3.0

    # kesehatan: other --------------------------------------------------------------------------------------------
    #: The immunisation need holds for a child at most this many whole months old whose computed status is
    #: `incomplete` (a dose overdue and still possible). DOMAIN.md §6 says "child under 2": the schedule's doses are
    #: all due by two, but its 18-month boosters fall overdue on the second birthday, so a rule that stopped there
    #: could never report a child who turned two without them; the need stays open until the doses are caught up,
    #: as long as the status is computed (under five, like the Kemenkes catch-up campaigns for 0-59 months).
    immunization_max_age_months: int = 59
    pregnancy_min_safe_age: int = 20
    pregnancy_max_safe_age: int = 35
    pregnancy_min_muac_cm: float = 23.5
    #: Conception is taken as expected delivery date - this many days; gestational age = today - conception.
    pregnancy_length_days: int = 280
    #: Pregnancy month = gestational days // this + 1 (month 1 .. 10; 10 = from day 270, at term or beyond).
    pregnancy_month_days: int = 30
    #: Antenatal visits that must have taken place by the start of each pregnancy month: the Indonesian minimum
    #: of 6 visits (Permenkes 21/2021: 1 in the first trimester, 2 in the second, 3 in the third), counted as due
    #: once the part of the trimester they belong to is over. Months not listed take the nearest lower month.
    anc_due_visits_by_month: Mapping[int, int] = field(default_factory=lambda: _frozen_int({
        1: 0, 2: 0, 3: 0,  # first trimester (months 1-3): its visit is due by its end
        4: 1, 5: 1, 6: 2,  # second trimester: 1 + the first of its two visits by mid-trimester
        7: 3, 8: 4, 9: 5,  # third trimester: one more visit each month
        10: 6,             # at term (day 270+): all six
    }))
    hypertension_systolic: int = 140
    hypertension_diastolic: int = 90
    #: The adult thresholds apply from this age (§3 records blood pressure for adults).
    hypertension_min_age: int = 18

    # pekerjaan-umum ----------------------------------------------------------------------------------------------
    unsafe_water_sources: frozenset[str] = frozenset({"unprotected-well", "unprotected-spring", "surface-water",
                                                      "other"})
    #: toilet -> urgency of the sanitation need.
    sanitation_urgency: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({
        "none": Urgency.HIGH, "private-no-septic": Urgency.NORMAL}))
    unmanaged_wastewater: frozenset[str] = frozenset({"open-drain", "none"})

    # perumahan-rakyat --------------------------------------------------------------------------------------------
    rtlh_min_area_per_occupant_m2: float = 7.2
    rtlh_floors: frozenset[str] = frozenset({"earth"})
    #: Non-durable construction: a wall of one of these AND a roof of one of these.
    rtlh_non_durable_walls: frozenset[str] = frozenset({"bamboo-or-other"})
    rtlh_non_durable_roofs: frozenset[str] = frozenset({"thatch-or-other"})
    disaster_damage_levels: frozenset[str] = frozenset({"moderate", "heavy"})

    # sosial ------------------------------------------------------------------------------------------------------
    elderly_min_age: int = 60
    neglected_elderly_max_decile: int = 4
    aid_exclusion_max_decile: int = 4
    aid_overlap_min_decile: int = 6
    #: The highest DTSEN decile each programme targets (PKH deciles 1-4, BPNT/Sembako reaches decile 5, PBI-JK
    #: 1-5). Reported as the programmes a household is eligible for in the aid-exclusion evidence; programmes
    #: without a national limit (blt-desa, baznas, other) are not listed.
    programme_max_decile: Mapping[str, int] = field(default_factory=lambda: _frozen({
        "pkh": 4, "bpnt": 5, "pbi-jk": 5}))
    #: Programmes that may legitimately be recorded twice (two different "other" programmes) for aid-overlap.
    aid_duplicates_allowed: frozenset[str] = frozenset({"other"})
    health_insurance_max_decile: int = 4
    #: The DTSEN deciles the reports count as the poorest (sosial.decile_1_4: 1 to this one).
    reported_low_decile_max: int = 4
    #: `disaster_damage` values that make the household a disaster victim (with `displaced`).
    disaster_victim_damage_levels: frozenset[str] = frozenset({"heavy"})

    def anc_due_visits(self, pregnancy_month: int) -> int:
        """Antenatal visits due by the start of a pregnancy month (nearest listed month at or below it)."""
        months = [month for month in self.anc_due_visits_by_month if month <= pregnancy_month]
        return self.anc_due_visits_by_month[max(months)] if months else 0


DEFAULT_CONFIG = NeedRulesConfig()
