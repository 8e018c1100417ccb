"""HTTP routes of the indicator tables: JSON, or CSV / Excel by `?format=` or the Accept header."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from services.reporting import access
from services.reporting.exports.render import CSV, XLSX, ExportFormat, negotiate, render
from services.reporting.indicators import service
from services.reporting.indicators.periods import parse_period
from services.reporting.indicators.schemas import ReportTable
from services.reporting.indicators.service import Level
from shared.auth import PrincipalDep
from shared.clock import TodayDep
from shared.db import SessionDep
from shared.events.topics import SpmField

router = APIRouter(prefix="/api/v1", tags=["indicators"])

RegionParam = Annotated[str | None, Query(max_length=10, description="Region code prefix (2, 4, 6 or 10 digits); "
                                                                     "national when empty")]
PeriodParam = Annotated[str | None, Query(max_length=7, description="YYYY-MM, YYYY-Qn or YYYY; this month by default")]
FieldParam = Annotated[SpmField | None, Query(description="Limit to one SPM field")]
ByParam = Annotated[Level | None, Query(description="Break the region down by this level")]
FormatParam = Annotated[ExportFormat | None, Query(description="json (default), csv or xlsx; or use Accept")]
LangParam = Annotated[Literal["en", "id"], Query(description="Column headers in English or Indonesian")]
AcceptHeader = Annotated[str | None, Header(max_length=500)]

EXPORTS: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {}, CSV: {}, XLSX: {}},
                 "description": "The table as JSON, CSV or Excel"}}


def threshold(request: Request) -> int:
    return int(request.state.settings.suppression_threshold)


@router.get("/indicators", response_model=ReportTable, responses=EXPORTS,
            summary="Indicators by region, period and field (DOMAIN.md §8)")
async def indicators(request: Request, session: SessionDep, principal: PrincipalDep,
                     today: TodayDep, region: RegionParam = None,
                     period: PeriodParam = None, field: FieldParam = None, by: ByParam = None,
                     format: FormatParam = None, lang: LangParam = "en", accept: AcceptHeader = None) -> Response:
    audience = await access.resolve(session=session, principal=principal, region=region, field=field)
    table = await service.indicator_table(session=session, audience=audience, period=parse_period(period, today), by=by,
                                          lang=lang, threshold=threshold(request))
    return render(table, negotiate(format, accept))


@router.get("/indicators/needs", response_model=ReportTable, responses=EXPORTS,
            summary="Needs detected, resolved and open per field and category")
async def needs(request: Request, session: SessionDep, principal: PrincipalDep,
                today: TodayDep, region: RegionParam = None,
                period: PeriodParam = None, field: FieldParam = None, by: ByParam = None,
                format: FormatParam = None, lang: LangParam = "en", accept: AcceptHeader = None) -> Response:
    audience = await access.resolve(session=session, principal=principal, region=region, field=field)
    table = await service.needs_table(session=session, audience=audience, period=parse_period(period, today), by=by,
                                      lang=lang, threshold=threshold(request))
    return render(table, negotiate(format, accept))


@router.get("/indicators/referrals/timeline", response_model=ReportTable, responses=EXPORTS,
            summary="Referrals created per month, field and current status")
async def referral_timeline(request: Request, session: SessionDep, principal: PrincipalDep, today: TodayDep,
                            region: RegionParam = None, period: PeriodParam = None, field: FieldParam = None,
                            months: Annotated[int, Query(ge=1, le=36)] = 12, format: FormatParam = None,
                            lang: LangParam = "en", accept: AcceptHeader = None) -> Response:
    audience = await access.resolve(session=session, principal=principal, region=region, field=field)
    table = await service.referral_timeline(session=session, audience=audience, period=parse_period(period, today),
                                            months=months, lang=lang, threshold=threshold(request))
    return render(table, negotiate(format, accept))


@router.get("/rankings/villages", response_model=ReportTable, responses=EXPORTS,
            summary="Villages ranked by needs open at the period's end")
async def village_ranking(request: Request, session: SessionDep, principal: PrincipalDep, today: TodayDep,
                          region: RegionParam = None, period: PeriodParam = None, field: FieldParam = None,
                          limit: Annotated[int, Query(ge=1, le=500)] = 20, format: FormatParam = None,
                          lang: LangParam = "en", accept: AcceptHeader = None) -> Response:
    audience = await access.resolve(session=session, principal=principal, region=region, field=field)
    table = await service.village_ranking(session=session, audience=audience, period=parse_period(period, today),
                                          limit=limit, lang=lang, threshold=threshold(request))
    return render(table, negotiate(format, accept))
