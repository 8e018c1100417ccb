"""The dashboard: one page over the API (plain HTML, a small vanilla script, an inline SVG chart; no build step),
and the region picker's API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, Response

from services.reporting.dashboard import regions
from services.reporting.dashboard.labels import Lang
from services.reporting.dashboard.page import SCRIPT, STYLE, render
from shared.auth import PrincipalDep
from shared.db import SessionDep

router = APIRouter(tags=["dashboard"])

#: No inline script or style, nothing from elsewhere; the page calls only its own API.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
           "Content-Security-Policy": POLICY}


#: FastAPI's default 422 (application/json) is not what the service sends: a problem, as on every route.
BAD_QUERY: dict[int | str, dict[str, Any]] = {422: {"description": "A bad `lang` or `refresh`", "content": {
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}


@router.get("/dashboard", response_class=HTMLResponse, responses=BAD_QUERY,
            summary="The reporting dashboard (token pasted or ?token=; ?region=, ?period=)")
async def dashboard(request: Request,
                    lang: Annotated[Lang, Query(description="The page's language; Indonesian by default")] = "id",
                    refresh: Annotated[int | None, Query(ge=0, le=3600, description=(
                        "Seconds between two refreshes of the figures (0: never); DASHBOARD_REFRESH_SECONDS by "
                        "default"))] = None) -> HTMLResponse:
    # The page holds no data: it calls the API with the token the user gives it.
    seconds = request.state.settings.dashboard_refresh_seconds if refresh is None else refresh
    return HTMLResponse(render(lang, seconds), headers=HEADERS)


@router.get("/dashboard/dashboard.js", include_in_schema=False)
async def script() -> Response:
    return Response(SCRIPT, media_type="text/javascript", headers=HEADERS)


@router.get("/dashboard/dashboard.css", include_in_schema=False)
async def style() -> Response:
    return Response(STYLE, media_type="text/css", headers=HEADERS)


#: '' (Indonesia) or a province, regency or district code, ASCII digits only (a village has no sub-regions).
PARENT_PATTERN = r"^([0-9]{2}([0-9]{2}([0-9]{2})?)?)?$"


@router.get("/api/v1/regions", response_model=regions.RegionList,
            summary="The region picker: the caller's own regions, or the sub-regions of one it may read")
async def region_list(session: SessionDep, principal: PrincipalDep,
                      parent: Annotated[str | None, Query(max_length=6, pattern=PARENT_PATTERN, description=(
                          "A region code (2, 4 or 6 digits; '' for Indonesia): its sub-regions one level down; "
                          "without it, the regions the caller's reports start from"))] = None) -> regions.RegionList:
    if parent is None:
        return await regions.roots(session=session, principal=principal)
    return await regions.children(session=session, principal=principal, parent=parent)
