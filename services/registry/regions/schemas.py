"""Region payloads."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from services.registry.tables import Region
from shared.events.registry import RegionLevel


class RegionPublic(BaseModel):
    code: str
    name: str
    level: RegionLevel
    parent_code: str | None
    kind: str | None
    list_version: str
    retired: bool


class ImportRow(BaseModel):
    code: str
    name: str


class ImportReport(BaseModel):
    list_version: str
    received: int
    registered: int
    renamed: int
    retired: int
    unchanged: int
    finished_at: datetime


def to_public(region: Region) -> RegionPublic:
    return RegionPublic(code=region.code, name=region.name, level=RegionLevel(region.level),
                        parent_code=region.parent_code, kind=region.kind, list_version=region.list_version,
                        retired=region.retired_at is not None)
