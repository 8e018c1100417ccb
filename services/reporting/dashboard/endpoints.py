"""The dashboard: one static page over the API (plain HTML, vanilla JS, an inline SVG chart; no build step)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import HTMLResponse

from services.reporting.dashboard.page import PAGE

router = APIRouter(tags=["dashboard"])


@router.get("/dashboard", response_class=HTMLResponse, summary="The reporting dashboard (token pasted or ?token=)")
async def dashboard() -> HTMLResponse:
    # The page holds no data: it calls the API with the token the user gives it.
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                       "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                                                                  "style-src 'unsafe-inline'; img-src 'self' data:"})
