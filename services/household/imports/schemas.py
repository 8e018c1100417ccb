"""What an import reports: counts, and the errors of the rows it refused (the first MAX_ERRORS of them); what its
job reports while it runs."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

MAX_ERRORS = 1000


class RowErrorPublic(BaseModel):
    row: int = Field(description="Line of the file where the row starts (a CSV's header is line 1)")
    kk_number: str | None
    field: str | None
    message: str


class ImportReport(BaseModel):
    """The whole file's outcome (counts over every run of its job)."""

    rows: int = 0
    households_imported: int = 0
    members_imported: int = 0
    households_rejected: int = 0
    rows_rejected: int = 0
    error_count: int = Field(0, description=f"All errors found; `errors` lists the first {MAX_ERRORS}")
    errors: list[RowErrorPublic] = Field(default_factory=list)
    job_id: uuid.UUID | None = Field(None, description="The import job (GET /api/v1/imports/{id})")
    status: str = Field("completed", description="The job's status: `completed` when this answer is sent")
    rows_skipped: int = Field(0, description="Rows an earlier run of the same file's job had already imported or "
                                             "refused: not imported again (a resumed or repeated import)")
    skipped: list[RowErrorPublic] = Field(default_factory=list,
                                          description=f"The first {MAX_ERRORS} skipped rows, each saying so")


class ImportJobPublic(BaseModel):
    id: uuid.UUID
    file_name: str
    sha256: str
    status: str = Field(description="`running`, `completed` or `failed` (a crashed run stays `running`; a re-run "
                                    "of the same file resumes either)")
    failure: str | None = Field(description="Why the last run stopped, for a `failed` job")
    rows_total: int | None = Field(description="Lines of the file: an upper bound of its rows")
    rows_done: int
    rows_per_second: float = Field(description="Of the current (or last) run")
    households_imported: int
    members_imported: int
    households_rejected: int
    rows_rejected: int
    error_count: int
    errors: list[RowErrorPublic] = Field(description=f"The first {MAX_ERRORS} row errors so far")
    chunks_committed: int
    last_row: int = Field(description="Line of the last row of the last committed chunk")
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
