"""HTTP routes of the bulk import: the body is spooled to a temporary file (hashed as it arrives: the file's
sha256 names its job), then imported chunk by chunk as a job; a bounded number of imports run at once. The job's
progress is readable while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, Request

from services.household.imports.jobs import ImportFile, read_job, run_job
from services.household.imports.parsing import Format
from services.household.imports.schemas import ImportJobPublic, ImportReport
from services.household.settings import HouseholdSettings
from shared.auth import Writer
from shared.db import SessionDep
from shared.errors import Problem, UnsupportedMediaType

router = APIRouter(prefix="/api/v1/households", tags=["households"])
jobs_router = APIRouter(prefix="/api/v1/imports", tags=["households"])

IMPORT_PATH = "/api/v1/households/import"
MEDIA_TYPES: dict[str, Format] = {"application/x-ndjson": "ndjson", "text/csv": "csv"}
#: What a refused import is asked to wait: an import of a few hundred thousand rows takes minutes.
BUSY_RETRY_AFTER_SECONDS = 30


class ImportsBusy(Problem):
    status, title, slug = 503, "Service unavailable", "imports-busy"


class ImportSlots:
    """The imports running in this process, at most `household_import_max_concurrent`: one more is refused, not
    queued (its body would wait unread on the connection), and its client retries after Retry-After."""

    def __init__(self) -> None:
        self.running = 0

    @contextlib.contextmanager
    def take(self, limit: int) -> Iterator[None]:
        if self.running >= limit:
            raise ImportsBusy(f"{self.running} imports are running, as many as this server runs at once; retry "
                              "later.", headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1


SLOTS = ImportSlots()
_ROW = {"type": "object", "description": "kk_number, village_code, posyandu_id, address, rt, rw, nik, name, sex, "
                                         "birth_date, relationship, pregnant, expected_delivery_date, disability"}


@router.post("/import", response_model=ImportReport,
             summary="Import households (NDJSON or CSV, one member per row, rows of one KK adjacent) as a job",
             responses={409: {"description": "The same file's job is being run by another request or process "
                                             "(slug `import-job-running`)"},
                        413: {"description": "The body is over HOUSEHOLD_IMPORT_MAX_BYTES; nothing was imported"},
                        415: {"description": "Neither application/x-ndjson nor text/csv"},
                        422: {"description": "No rows, or an unusable CSV header"},
                        503: {"description": "As many imports as HOUSEHOLD_IMPORT_MAX_CONCURRENT are running (slug "
                                             "`imports-busy`), or the database is unavailable: retry after "
                                             "`Retry-After` seconds"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/x-ndjson": {"schema": _ROW},
                 "text/csv": {"schema": {"type": "string"}}}}})
async def import_households_file(request: Request, principal: Writer) -> ImportReport:
    """Imports every valid household; a household with an invalid row is refused whole and reported per row.

    A kader imports only at their own posyandu. Imported households emit the events of a registration. The file is
    an import job, committed chunk by chunk: posting the same file again resumes its job where it stopped, or (when
    it completed) imports nothing and reports every row as skipped.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = MEDIA_TYPES.get(media_type)
    if fmt is None:
        raise UnsupportedMediaType("Send the rows as application/x-ndjson or text/csv (UTF-8).")
    settings: HouseholdSettings = request.state.settings
    with SLOTS.take(settings.household_import_max_concurrent), tempfile.TemporaryDirectory() as spool:
        path = Path(spool) / f"upload.{fmt}"
        with path.open("wb") as file:
            # The body's size is bounded as it streams (HOUSEHOLD_IMPORT_MAX_BYTES, a 413 with nothing imported).
            async for block in request.stream():
                await asyncio.to_thread(file.write, block)
        return await run_job(request.state.sessionmaker, principal, await ImportFile.of(path), fmt)


@jobs_router.get("/{id}", response_model=ImportJobPublic, summary="An import job's progress",
                 responses={404: {"description": "No such job, or one the caller may not read"}})
async def import_job(id: uuid.UUID, session: SessionDep, principal: Writer) -> ImportJobPublic:
    """Rows done, rows/s, the errors so far and the status of an import job (committed chunk by chunk, so this
    moves while the import runs). An admin reads every job; a kader the jobs of their own posyandu."""
    return await read_job(session=session, principal=principal, id=id)
