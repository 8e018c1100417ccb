"""The one shape of every report: a table with labelled columns and flat rows (exported as CSV or Excel alike)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Column(BaseModel):
    key: str
    #: The header in the requested language (`?lang=en|id`).
    label: str
    #: `text`, `count`, `rate` (a fraction 0-1), `hours`.
    kind: str


class ReportTable(BaseModel):
    title: str
    region: str = Field(description="The region prefix reported on ('' is national)")
    region_name: str | None
    period: dict[str, str]
    spm_field: str | None = None
    #: The threshold below which counts are suppressed for this caller; null when nothing is suppressed (admin).
    suppression_threshold: int | None
    columns: list[Column]
    #: One object per row: the columns' keys, plus `suppressed` (the keys whose value was withheld, as null).
    rows: list[dict[str, Any]]
