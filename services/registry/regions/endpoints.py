"""HTTP routes for regions (wilayah)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.registry.dependencies import PathRegion
from services.registry.regions import importer, service
from services.registry.regions.schemas import ImportReport, RegionPublic, to_public
from shared.auth import Admin, PrincipalDep
from shared.db import SessionDep
from shared.errors import BadRequest, UnsupportedMediaType
from shared.events.registry import RegionLevel
from shared.pagination import CursorParam, LimitParam, Page, decode_cursor, page_of
from shared.region_codes import PLAIN_CODE_PATTERN

router = APIRouter(prefix="/api/v1/regions", tags=["regions"])

#: The default name of the official list this project was built against.
DEFAULT_LIST_VERSION = "kepmendagri-300.2.2-2138-2025"


@router.get("", response_model=Page[RegionPublic], summary="List or search regions")
async def list_regions(
    session: SessionDep,
    _: PrincipalDep,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
    parent: Annotated[str | None, Query(pattern=PLAIN_CODE_PATTERN)] = None,
    level: RegionLevel | None = None,
    q: Annotated[str | None, Query(min_length=2, max_length=100, description="Part of the name")] = None,
    include_retired: bool = False,
) -> Any:
    after = decode_cursor(cursor, str)
    rows = await service.list_regions(session=session, parent=parent, level=level.value if level else None, q=q,
                                      include_retired=include_retired, after=after[0] if after else None,
                                      limit=limit)
    items, next_cursor = page_of(rows, limit, lambda r: (r.code,))
    return Page(items=[to_public(r) for r in items], next_cursor=next_cursor)


@router.get("/{code}", response_model=RegionPublic, summary="Look up a region by code")
async def get_region(_: PrincipalDep, region: PathRegion) -> Any:
    return to_public(region)


@router.get("/{code}/children", response_model=Page[RegionPublic], summary="The regions directly below one")
async def list_children(_: PrincipalDep, region: PathRegion, session: SessionDep, limit: LimitParam = 50,
                        cursor: CursorParam = None, include_retired: bool = False) -> Any:
    after = decode_cursor(cursor, str)
    rows = await service.list_regions(session=session, parent=region.code, level=None, q=None,
                                      include_retired=include_retired, after=after[0] if after else None,
                                      limit=limit)
    items, next_cursor = page_of(rows, limit, lambda r: (r.code,))
    return Page(items=[to_public(r) for r in items], next_cursor=next_cursor)


@router.post("/import", response_model=ImportReport, summary="Import the official region list (CSV: kode,nama)",
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def import_regions(
    request: Request,
    session: SessionDep,
    _: Admin,
    list_version: Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")]
        = DEFAULT_LIST_VERSION,
    full: Annotated[bool, Query(description="Retire regions that the list no longer holds")] = False,
) -> Any:
    if request.headers.get("content-type", "").split(";")[0].strip() not in ("text/csv", "text/plain"):
        raise UnsupportedMediaType("Send the list as text/csv with the columns kode,nama.")
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("The list must be UTF-8 text.") from exc
    return await importer.import_csv(session, text, list_version=list_version, full=full,
                                     clock=request.state.settings.clock)
