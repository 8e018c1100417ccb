"""HTTP route of the bulk import: the body is streamed and parsed one KK at a time, never read whole; a bounded
number of imports run at once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fastapi import APIRouter, Request

from services.household.households.endpoints import Writer
from services.household.imports.parsing import Format, read_items
from services.household.imports.schemas import ImportReport
from services.household.imports.service import import_households
from services.household.settings import HouseholdSettings
from shared.db import SessionDep
from shared.errors import Problem, UnsupportedMediaType

router = APIRouter(prefix="/api/v1/households", tags=["households"])

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
             summary="Import households (NDJSON or CSV, one member per row, rows of one KK adjacent)",
             responses={413: {"description": "The body is over HOUSEHOLD_IMPORT_MAX_BYTES; nothing was imported"},
                        415: {"description": "Neither application/x-ndjson nor text/csv"},
                        422: {"description": "No rows, or an unusable CSV header"},
                        503: {"description": "As many imports as HOUSEHOLD_IMPORT_MAX_CONCURRENT are running (slug "
                                             "`imports-busy`), or the database is unavailable: retry after "
                                             "`Retry-After` seconds"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/x-ndjson": {"schema": _ROW},
                 "text/csv": {"schema": {"type": "string"}}}}})
async def import_households_file(request: Request, session: SessionDep, principal: Writer) -> ImportReport:
    """Imports every valid household; a household with an invalid row is refused whole and reported per row.

    A kader imports only at their own posyandu. Imported households emit the events of a registration.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = MEDIA_TYPES.get(media_type)
    if fmt is None:
        raise UnsupportedMediaType("Send the rows as application/x-ndjson or text/csv (UTF-8).")
    settings: HouseholdSettings = request.state.settings
    with SLOTS.take(settings.household_import_max_concurrent):
        return await import_households(session=session, principal=principal,
                                       items=read_items(request.stream(), fmt))
