"""The import jobs: one row per imported file (and importer scope), committed with each chunk it imports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field

from services.household.tables import Table
from shared.db import timestamptz, utc_now


class ImportJob(Table, table=True):
    """An import of one file. Its id is derived from the file's sha256 and the importer's scope, so a re-run of the
    same file by the same scope is the same job: it resumes after `items_done` (the parser's output is the same for
    the same bytes) and never imports a household twice."""

    __tablename__ = "import_jobs"

    id: uuid.UUID = Field(primary_key=True)
    file_name: str = Field(max_length=255)
    sha256: str = Field(max_length=64)
    #: The posyandu its importer (a kader) may import at; None for an admin's job (read by admins only).
    posyandu_ids: list[uuid.UUID] | None = Field(default=None, sa_column=sa.Column(ARRAY(sa.Uuid()), nullable=True))
    started_by: str = Field(max_length=200)
    #: `running`, `completed` or `failed` (a run that stopped on an error; a crashed run stays `running`).
    status: str = Field(default="running", max_length=10)
    failure: str | None = Field(default=None, max_length=500)
    #: Lines of the file (an upper bound of its rows: a quoted CSV field may span lines; a CSV header counts).
    rows_total: int | None = None
    rows_done: int = 0
    households_imported: int = 0
    members_imported: int = 0
    households_rejected: int = 0
    rows_rejected: int = 0
    error_count: int = 0
    #: The first MAX_ERRORS row errors, as the report lists them.
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(JSONB, nullable=False))
    #: Parsed items (households and refused rows) of the committed chunks: where a re-run resumes.
    items_done: int = 0
    #: The file line of the last row of the last committed chunk.
    last_row: int = 0
    chunks_committed: int = 0
    started_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
    updated_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
    finished_at: datetime | None = Field(default=None, sa_column=timestamptz(nullable=True))
    #: When the current (or last) run started, and rows_done then: its rows/s.
    run_started_at: datetime = Field(default_factory=utc_now, sa_column=timestamptz())
    run_rows_from: int = 0
