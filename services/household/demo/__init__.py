"""The household service's demo data for `make run`: a few hundred households with members and profiles.

Loaded through the public API after the registry's demo (whose posyandu it uses), reproducibly
(``random.Random(2026)``, dates relative to a reference date) and idempotently (``demo-household-<n>`` keys).
"""

from __future__ import annotations

from services.household.demo.generator import SCENARIOS, DemoPosyandu, HouseholdPlan, plan_households
from services.household.demo.loader import DemoLoadError, DemoSummary, demo_posyandu, describe, load

__all__ = ["SCENARIOS", "DemoLoadError", "DemoPosyandu", "DemoSummary", "HouseholdPlan", "demo_posyandu",
           "describe", "load", "plan_households"]
