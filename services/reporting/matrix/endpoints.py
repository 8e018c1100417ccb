"""HTTP route of the cross-agency matrix (JSON, CSV or Excel)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from services.reporting import access
from services.reporting.exports.render import negotiate, render
from services.reporting.indicators.endpoints import (
    EXPORTS,
    AcceptHeader,
    FormatParam,
    LangParam,
    PeriodParam,
    RegionParam,
    threshold,
)
from services.reporting.indicators.periods import parse_period
from services.reporting.indicators.schemas import ReportTable
from services.reporting.matrix.service import matrix_table
from shared.auth import PrincipalDep
from shared.clock import TodayDep
from shared.db import SessionDep

router = APIRouter(prefix="/api/v1", tags=["matrix"])


@router.get("/matrix", response_model=ReportTable, responses=EXPORTS,
            summary="The cross-agency matrix: rows are agencies, columns the indicators of their field")
async def matrix(request: Request, session: SessionDep, principal: PrincipalDep,
                 today: TodayDep, region: RegionParam = None,
                 period: PeriodParam = None, format: FormatParam = None, lang: LangParam = "en",
                 accept: AcceptHeader = None) -> Response:
    audience = await access.resolve(session=session, principal=principal, region=region, field=None)
    table = await matrix_table(session=session, audience=audience, period=parse_period(period, today), lang=lang,
                               threshold=threshold(request))
    return render(table, negotiate(format, accept))
