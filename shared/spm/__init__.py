"""The official SPM basic service types (jenis pelayanan dasar, PP 2/2018; DOMAIN.md §9) as versioned reference data.

Held in `service_types.csv` beside this module, never as code: one row per service type with its field, the
government level that owes it (`province` or `regency`, the latter meaning regency/city), its Indonesian name, the
`target` rule that counts who must receive it from the posyandu data (a key reporting implements; empty when only
the agency's own figure can set the target), and the indicators and referral categories that measure it. The
registry serves the list; reporting computes targets and the SPM matrix from it. A new regulation is a new
`version` in the file.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from shared.categories import CATEGORIES
from shared.events.topics import SpmField

__all__ = ["CURRENT_VERSION", "SERVICE_TYPES", "GovernmentLevel", "ServiceType", "load"]

_FILE = Path(__file__).with_name("service_types.csv")


class GovernmentLevel(StrEnum):
    PROVINCE = "province"
    REGENCY = "regency"


class ServiceType(NamedTuple):
    version: str
    code: str
    spm_field: SpmField
    level: GovernmentLevel
    name: str
    #: The reporting rule that counts the target from posyandu data (e.g. `members.pregnant`), or None.
    target: str | None
    indicators: tuple[str, ...]
    referral_categories: tuple[str, ...]


def _split(cell: str) -> tuple[str, ...]:
    return tuple(part for part in cell.split(";") if part)


def load(path: Path = _FILE) -> dict[str, ServiceType]:
    """Reads and checks the list: unique codes, known fields and levels, referral categories of the same field."""
    types: dict[str, ServiceType] = {}
    with path.open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            item = ServiceType(version=row["version"], code=row["code"], spm_field=SpmField(row["spm_field"]),
                               level=GovernmentLevel(row["level"]), name=row["name"], target=row["target"] or None,
                               indicators=_split(row["indicators"]),
                               referral_categories=_split(row["referral_categories"]))
            if item.code in types:
                raise ValueError(f"service type {item.code} listed twice")
            if not item.code.startswith(f"{item.spm_field.value}."):
                raise ValueError(f"service type {item.code} does not start with its field {item.spm_field.value}")
            for category in item.referral_categories:
                if category not in CATEGORIES:
                    raise ValueError(f"service type {item.code}: unknown referral category {category}")
            types[item.code] = item
    return types


#: Every service type of the current list, by code.
SERVICE_TYPES: Mapping[str, ServiceType] = MappingProxyType(load())
CURRENT_VERSION: str = next(iter(SERVICE_TYPES.values())).version
