"""HTTP route of the SPM matrix: JSON, CSV, or the annual SPM report as Excel (`?format=` or Accept)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from services.reporting import access
from services.reporting.exports.render import XLSX, negotiate, render
from services.reporting.indicators.endpoints import (
    EXPORTS,
    AcceptHeader,
    FieldParam,
    FormatParam,
    LangParam,
    RegionParam,
    threshold,
)
from services.reporting.indicators.periods import FIRST_YEAR, LAST_YEAR
from services.reporting.indicators.schemas import ReportTable
from services.reporting.spm import report
from services.reporting.spm.service import ColumnsMode, MatrixQuery, matrix_table
from shared.auth import PrincipalDep
from shared.clock import today_by
from shared.db import SessionDep
from shared.spm import GovernmentLevel

router = APIRouter(prefix="/api/v1/spm", tags=["spm"])


@router.get("/matrix", response_model=ReportTable, responses=EXPORTS,
            summary="The SPM matrix: per field and service type, targets, residents in need and served, "
                    "achievement, programmes and budgets, by child region or agency")
async def matrix(request: Request, session: SessionDep, principal: PrincipalDep, region: RegionParam = None,
                 year: Annotated[int | None, Query(ge=FIRST_YEAR, le=LAST_YEAR,
                                                   description="The SPM year; this year by default")] = None,
                 month: Annotated[int | None, Query(ge=1, le=12, description="Year to date through this month")] = None,
                 columns: Annotated[ColumnsMode, Query(description="Columns: the region's child regions, or the "
                                                                   "agencies of its fields")] = "regions",
                 level: Annotated[GovernmentLevel | None, Query(
                     description="Service types of this government level; by default province ones for the "
                                 "nation's provinces, regency/city ones below (agencies: each its own)")] = None,
                 spm_field: FieldParam = None, format: FormatParam = None, lang: LangParam = "en",
                 accept: AcceptHeader = None) -> Response:
    audience = await access.resolve(session=session, principal=principal, region=region, field=spm_field)
    output = negotiate(format, accept)
    today = today_by(request.state.settings.clock)
    query = MatrixQuery(year=year or today.year, month=month, columns=columns, level=level,
                        lang="id" if output == "xlsx" else lang, threshold=threshold(request), today=today)
    table = await matrix_table(session=session, audience=audience, query=query)
    if output != "xlsx":
        return render(table, output)
    return Response(report.workbook(table), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{report.filename(table)}"'})
