"""Need detection (DOMAIN.md §6): pure rules over a household snapshot, and the diff against stored needs."""

from services.household.needs.config import CATEGORIES, DEFAULT_CONFIG, CategoryInfo, NeedRulesConfig, Urgency
from services.household.needs.rules import (
    DetectedNeed,
    GrowthSnapshot,
    HouseholdSnapshot,
    MemberSnapshot,
    NeedDiff,
    NeedKey,
    detect,
    diff,
)

__all__ = [
    "CATEGORIES",
    "DEFAULT_CONFIG",
    "CategoryInfo",
    "DetectedNeed",
    "GrowthSnapshot",
    "HouseholdSnapshot",
    "MemberSnapshot",
    "NeedDiff",
    "NeedKey",
    "NeedRulesConfig",
    "Urgency",
    "detect",
    "diff",
]
