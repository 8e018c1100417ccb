"""The target rules of `shared/spm/service_types.csv` (its `target` column): who must receive a service type,
counted from the indicators of the region and period (DOMAIN.md §8), never from SQL of their own.

A rule is a sum of indicator counts with signs (`households.unsafe_water` = households profiled minus those with safe
water). A rule whose indicators the catalogue did not hold would give no computed target (null: only the agency's
figure could set it); every rule's indicators are in the catalogue now (test_spm_matrix.py asserts it). The
unit says what is counted: residents (`orang`) or households (`rumah tangga`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.reporting.indicators.catalogue import ALL


@dataclass(frozen=True)
class TargetRule:
    key: str
    unit: str
    #: Indicator key -> sign (+1 or -1).
    terms: Mapping[str, int]
    description: str

    @property
    def computable(self) -> bool:
        return all(key in ALL for key in self.terms)

    def compute(self, values: Mapping[str, Any]) -> int | None:
        """The target from one region's indicator values (a count missing from them is zero)."""
        if not self.computable:
            return None
        return max(0, sum(sign * int(values.get(key) or 0) for key, sign in self.terms.items()))


def _rule(key: str, unit: str, terms: dict[str, int], description: str) -> TargetRule:
    return TargetRule(key, unit, terms, description)


PERSONS, HOUSEHOLDS = "orang", "rumah tangga"

RULES: dict[str, TargetRule] = {r.key: r for r in [
    _rule("members.aged_4_6", PERSONS, {"pendidikan.aged_4_6": 1}, "members aged 4-6 years"),
    _rule("members.aged_7_15", PERSONS, {"pendidikan.aged_7_15": 1},
          "members aged 7-15 years (SD/MI and SMP/MTs age)"),
    _rule("members.out_of_school_7_18", PERSONS, {"pendidikan.out_of_school": 1},
          "members aged 7-18 not enrolled (pendidikan profile)"),
    _rule("members.aged_16_18", PERSONS, {"pendidikan.aged_16_18": 1},
          "members aged 16-18 years (SMA/SMK/MA age)"),
    _rule("members.special_needs_school_age", PERSONS, {"pendidikan.special_needs_7_18": 1},
          "members aged 7-18 with a disability other than none (the member's `disability`)"),
    _rule("members.pregnant", PERSONS, {"coverage.pregnant": 1},
          "pregnant women (also the expected deliveries of ibu bersalin)"),
    _rule("members.infant", PERSONS, {"coverage.infant": 1},
          "infants 0-11 months: the children born in the past year (bayi baru lahir)"),
    _rule("members.under_five", PERSONS, {"kesehatan.children_under_five": 1}, "children 0-59 months"),
    _rule("members.aged_15_59", PERSONS, {"coverage.aged_15_59": 1},
          "members aged 15-59 years (usia produktif)"),
    _rule("members.aged_60_plus", PERSONS, {"coverage.elderly": 1}, "members aged 60 and over"),
    _rule("members.hypertension", PERSONS, {"kesehatan.hypertension": 1},
          "members aged 18 and over with systolic >= 140 or diastolic >= 90 mmHg (kesehatan profile)"),
    _rule("members.diabetes", PERSONS, {"kesehatan.diabetes": 1},
          "members aged 18 and over with blood sugar >= 200 mg/dL (kesehatan profile)"),
    _rule("members.mental_health", PERSONS, {"kesehatan.severe_mental_illness": 1},
          "members flagged with severe mental illness (kesehatan profile)"),
    _rule("members.tb_suspect", PERSONS, {"kesehatan.long_cough": 1},
          "members with a cough of two weeks or more (kesehatan profile)"),
    _rule("households.displaced", HOUSEHOLDS, {"trantibumlinmas.displaced": 1},
          "households displaced (trantibumlinmas profile)"),
    _rule("households.unsafe_water", HOUSEHOLDS,
          {"pekerjaan-umum.households_profiled": 1, "pekerjaan-umum.safe_water": -1},
          "households profiled without safe drinking water"),
    _rule("households.unsafe_sanitation", HOUSEHOLDS,
          {"pekerjaan-umum.households_profiled": 1, "pekerjaan-umum.safe_sanitation": -1},
          "households profiled without safe sanitation"),
    _rule("households.disaster_damaged", HOUSEHOLDS, {"perumahan-rakyat.disaster_damaged": 1},
          "houses moderately or heavily damaged by a disaster"),
    _rule("households.relocation", HOUSEHOLDS, {"perumahan-rakyat.relocation_affected": 1},
          "households affected by a government relocation (perumahan-rakyat profile)"),
    _rule("households.disaster_risk", HOUSEHOLDS, {"trantibumlinmas.at_risk": 1},
          "households at risk of at least one disaster"),
    _rule("households.fire_hazard", HOUSEHOLDS, {"trantibumlinmas.fire_hazard": 1},
          "households with a fire hazard (trantibumlinmas profile)"),
    _rule("members.neglected_disabled", PERSONS, {"sosial.neglected_disabled": 1},
          "neglected persons with disabilities"),
    _rule("members.neglected_child", PERSONS, {"sosial.neglected_child": 1}, "neglected children"),
    _rule("members.neglected_elderly", PERSONS, {"sosial.neglected_elderly": 1}, "neglected elderly"),
    _rule("members.homeless_or_beggar", PERSONS, {"sosial.homeless": 1, "sosial.beggar": 1},
          "homeless persons and beggars (a person flagged as both counts twice)"),
]}


def rule_of(target: str | None) -> TargetRule | None:
    return RULES[target] if target else None
