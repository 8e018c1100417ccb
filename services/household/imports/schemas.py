"""What an import reports: counts, and the errors of the rows it refused (the first MAX_ERRORS of them)."""

from __future__ import annotations

from pydantic import BaseModel, Field

MAX_ERRORS = 1000


class RowErrorPublic(BaseModel):
    row: int = Field(description="Line of the file where the row starts (a CSV's header is line 1)")
    kk_number: str | None
    field: str | None
    message: str


class ImportReport(BaseModel):
    rows: int = 0
    households_imported: int = 0
    members_imported: int = 0
    households_rejected: int = 0
    rows_rejected: int = 0
    error_count: int = Field(0, description=f"All errors found; `errors` lists the first {MAX_ERRORS}")
    errors: list[RowErrorPublic] = Field(default_factory=list)
