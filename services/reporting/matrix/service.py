"""The cross-agency matrix: one row per agency and field, the field's indicators and the agency's referrals.

An agency's row is computed over the part of the requested region it is responsible for: the region itself
when the agency's jurisdiction contains it, the jurisdiction when it lies inside the region.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.access import Audience
from services.reporting.indicators import repository
from services.reporting.indicators.catalogue import FIELD_INDICATORS, REFERRALS, Indicator
from services.reporting.indicators.periods import Period
from services.reporting.indicators.repository import Scope, Values
from services.reporting.indicators.schemas import Column, ReportTable
from services.reporting.indicators.service import finish_row, indicator_columns, region_name_of, text_column
from services.reporting.indicators.suppression import with_rates
from shared.events.topics import SpmField


async def _field_values_by_area(session: AsyncSession, prefix: str, period: Period, fields: tuple[str, ...],
                                areas: set[str]) -> dict[str, Values]:
    """The field indicators (all counts) of each area: one statement grouped by the longest area code, summed up.

    Every area lies within the requested region and a group's code begins with at most one area of each length,
    so the groups under an area sum to its counts: one pass serves the province's row and its regencies' alike.
    """
    if not areas:
        return {}
    lengths = sorted({len(a) for a in areas})
    groups = await repository.stock_values(session=session, scope=Scope(prefix, lengths[-1], period, fields))
    out: dict[str, Values] = {area: {} for area in areas}
    for code, values in groups.items():
        for area in {code[:n] for n in lengths} & areas:
            totals = out[area]
            for key, value in values.items():
                totals[key] = (totals.get(key) or 0) + (value or 0)
    return out


async def matrix_table(*, session: AsyncSession, audience: Audience, period: Period, lang: str,
                       threshold: int) -> ReportTable:
    fields = [f.value for f in audience.fields]
    agencies = await repository.agencies_in(session=session, prefix=audience.prefix, fields=fields)
    referrals = await repository.referral_values_by_agency(
        session=session, scope=Scope(audience.prefix, len(audience.prefix), period, tuple(fields)))
    areas = {max(audience.prefix, a["jurisdiction_code"], key=len) for a in agencies}
    by_area = await _field_values_by_area(session, audience.prefix, period, tuple(fields), areas)
    rows: list[dict[str, Any]] = []
    used: list[Indicator] = []
    for agency in agencies:
        for field in (f for f in SpmField if f.value in agency["spm_fields"] and f.value in fields):
            indicators = [*FIELD_INDICATORS[field], *REFERRALS]
            used += [i for i in indicators if i not in used]
            area = max(audience.prefix, agency["jurisdiction_code"], key=len)
            # The area's field indicators, and the referrals of this agency only (not the area's).
            values = with_rates({**by_area.get(area, {}), **referrals.get((agency["id"], field.value), {})},
                                indicators)
            row = {"agency_id": str(agency["id"]), "agency_name": agency["name"], "agency_level": agency["level"],
                   "jurisdiction_code": agency["jurisdiction_code"], "spm_field": field.value,
                   "region_code": area, **values}
            rows.append(finish_row(row, indicators, audience, threshold))
    columns: list[Column] = [*(text_column(k, lang) for k in ("agency_id", "agency_name", "agency_level",
                                                              "jurisdiction_code", "spm_field", "region_code")),
                             *indicator_columns([i for i in used if i not in REFERRALS], lang),
                             *indicator_columns(REFERRALS, lang)]
    return ReportTable(title="Cross-agency matrix", region=audience.prefix,
                       region_name=await region_name_of(session, audience.prefix), period=period.as_dict(),
                       spm_field=fields[0] if len(fields) == 1 else None,
                       suppression_threshold=threshold if audience.suppress else None, columns=columns, rows=rows)
