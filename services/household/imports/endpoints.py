"""HTTP route of the bulk import: the body is streamed and parsed one KK at a time, never read whole."""

from __future__ import annotations

from fastapi import APIRouter, Request

from services.household.households.endpoints import Writer
from services.household.imports.parsing import Format, read_items
from services.household.imports.schemas import ImportReport
from services.household.imports.service import import_households
from shared.db import SessionDep
from shared.errors import UnsupportedMediaType

router = APIRouter(prefix="/api/v1/households", tags=["households"])

IMPORT_PATH = "/api/v1/households/import"
MEDIA_TYPES: dict[str, Format] = {"application/x-ndjson": "ndjson", "text/csv": "csv"}
_ROW = {"type": "object", "description": "kk_number, village_code, posyandu_id, address, rt, rw, nik, name, sex, "
                                         "birth_date, relationship, pregnant, expected_delivery_date, disability"}


@router.post("/import", response_model=ImportReport,
             summary="Import households (NDJSON or CSV, one member per row, rows of one KK adjacent)",
             responses={415: {"description": "Neither application/x-ndjson nor text/csv"},
                        422: {"description": "No rows, or an unusable CSV header"}},
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
    return await import_households(session=session, principal=principal, items=read_items(request.stream(), fmt))
